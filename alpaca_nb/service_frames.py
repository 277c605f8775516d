"""The DataFrame face of :class:`~alpaca_nb.service.AlpacaService`: account, orders, market data.

Every method returns a frame by the contract in :mod:`alpaca_nb.frames` (UTC timestamps,
``tz=`` to show another zone, numeric dtypes, the same columns when empty). Historical data goes
through :mod:`alpaca_nb.marketdata`'s fast path (raw pages, msgspec, numpy); the rest are raw
GETs turned into frames column-wise.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Iterable

import pandas as pd

from . import frames

FRAME_METHODS = ("account", "positions", "orders", "quotes", "bars", "historical_quotes",
                 "historical_trades", "trades", "latest_bars", "snapshots", "activities", "clock",
                 "calendar", "assets", "portfolio_history")


def _labelled(method: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    """Every frame says where it comes from: ``df.attrs["environment"]`` and ``["account_id"]``."""

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = method(self, *args, **kwargs)
        frame.attrs.update(environment=self.environment.value, account_id=self.account_id)
        return frame

    return wrapper


class FrameMethods:
    """Mixed into AlpacaService, which provides ``_require()``, ``_feed()`` and the raw getters.

    Every frame carries ``attrs["environment"]`` (local, paper, live) and ``attrs["account_id"]``.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in FRAME_METHODS:
            if name in FrameMethods.__dict__ and name not in cls.__dict__:
                setattr(cls, name, _labelled(FrameMethods.__dict__[name]))

    def account(self, tz: str | None = None) -> pd.DataFrame:
        """The account as a one-row frame (cash, buying_power, equity, ... as float64)."""
        return frames.account_frame(self._get_account(), tz=tz)

    def positions(self, tz: str | None = None) -> pd.DataFrame:
        """Open positions, one row per symbol (see :data:`alpaca_nb.frames.POSITION_COLUMNS`)."""
        return frames.positions_frame(self._get_positions(), tz=tz)

    def orders(self, status: str = "all", symbols: Iterable[str] | str | None = None, after: Any = None,
               until: Any = None, limit: int = 500, tz: str | None = None) -> pd.DataFrame:
        """Alpaca's orders, newest first (see :data:`alpaca_nb.frames.ORDER_COLUMNS`).

        ``status``: "open", "closed" or "all"; ``limit`` up to 500.
        """
        from .marketdata import symbols_param, time_param

        broker = self._require()
        if status not in ("open", "closed", "all"):
            raise ValueError(f"status={status!r}: use 'open', 'closed' or 'all'")
        if not 1 <= int(limit) <= 500:
            raise ValueError(f"limit={limit!r}: Alpaca lists 1 to 500 orders per request")
        params: dict[str, Any] = {"status": status, "limit": int(limit), "direction": "desc"}
        if symbols:
            params["symbols"] = ",".join(symbols_param(symbols))
        for name, value in (("after", after), ("until", until)):
            if value is not None:
                params[name] = time_param(value, name)
        rows = broker.get_json("trading", "/orders", params, what="list orders")
        return frames.orders_frame(rows, tz=tz)

    def quotes(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest quote per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.QUOTE_COLUMNS`)."""
        return frames.latest_quotes_frame(self._latest("quotes", symbols).get("quotes", {}), tz=tz)

    # -- market data and reference frames ---------------------------------------------------------
    # (frames helper) Historical data goes through alpaca_nb.marketdata's fast path (raw pages,
    # msgspec, numpy); the rest are raw GETs turned into frames by alpaca_nb.frames. Timestamps
    # are UTC; ``tz=`` shows them in another zone.

    def bars(self, symbols: Iterable[str] | str, timeframe: Any, start: Any = None, end: Any = None,
             feed: str | None = None, adjustment: str | None = None, tz: str | None = None, *,
             limit: int | None = None, sort: str = "asc", progress: bool = True) -> pd.DataFrame:
        """Historical bars, index (``symbol``, ``timestamp``); columns ``open, high, low, close,
        volume, vwap`` (float64) and ``trade_count`` (int64), the same when empty.

        ``timeframe``: "1Min", "5Min", "1Hour", "1Day", "1Week", "1Month" or an alpaca-py
        TimeFrame. ``feed`` defaults to the configured one. Raises ``ValueError`` for bad
        arguments before any request.

        >>> svc.bars(["AAPL", "MSFT"], "1Day", "2024-01-01", "2024-06-30").loc["AAPL", "close"]
        """
        from . import marketdata

        return marketdata.fetch_bars(self._require(), symbols, timeframe, start, end,
                                     feed=feed or self._feed(), adjustment=adjustment, limit=limit,
                                     sort=sort, progress=progress, tz=tz)

    def historical_quotes(self, symbols: Iterable[str] | str, start: Any = None, end: Any = None,
                          feed: str | None = None, tz: str | None = None, *, limit: int | None = None,
                          sort: str = "asc", progress: bool = True) -> pd.DataFrame:
        """Historical quotes, index (``symbol``, ``timestamp``); columns ``bid_price, bid_size,
        ask_price, ask_size`` (float64), ``bid_exchange, ask_exchange, conditions, tape`` (string).
        """
        from . import marketdata

        return marketdata.fetch_quotes(self._require(), symbols, start, end, feed=feed or self._feed(),
                                       limit=limit, sort=sort, progress=progress, tz=tz)

    def historical_trades(self, symbols: Iterable[str] | str, start: Any = None, end: Any = None,
                          feed: str | None = None, tz: str | None = None, *, limit: int | None = None,
                          sort: str = "asc", progress: bool = True) -> pd.DataFrame:
        """Historical trades, index (``symbol``, ``timestamp``); columns ``price, size`` (float64),
        ``id`` (int64), ``exchange, conditions, tape`` (string).
        """
        from . import marketdata

        return marketdata.fetch_trades(self._require(), symbols, start, end, feed=feed or self._feed(),
                                       limit=limit, sort=sort, progress=progress, tz=tz)

    def _latest(self, what: str, symbols: Iterable[str] | str) -> Any:
        from .marketdata import symbols_param

        broker = self._require()
        names = symbols_param(symbols)
        path = "/stocks/snapshots" if what == "snapshots" else f"/stocks/{what}/latest"
        return broker.get_json("data", path, {"symbols": ",".join(names), "feed": self._feed()},
                               what=f"latest {what}")

    def trades(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest trade per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.TRADE_COLUMNS`)."""
        return frames.latest_trades_frame(self._latest("trades", symbols).get("trades"), tz=tz)

    def latest_bars(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest minute bar per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.BAR_COLUMNS`)."""
        return frames.latest_bars_frame(self._latest("bars", symbols).get("bars"), tz=tz)

    def snapshots(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """One row per symbol: latest trade and quote, minute, daily and previous daily bar,
        flattened into prefixed columns (``latest_trade_price``, ``daily_bar_close``, ...; see
        :func:`alpaca_nb.frames.snapshots_frame`)."""
        return frames.snapshots_frame(self._latest("snapshots", symbols), tz=tz)

    def activities(self, types: Iterable[str] | str | None = None, after: Any = None, until: Any = None,
                   direction: str = "desc", tz: str | None = None) -> pd.DataFrame:
        """Account activities (fills and cash activities) in one frame, every page fetched.

        ``types``: "FILL", "DIV", ... or a list (all when None). Columns: see
        :data:`alpaca_nb.frames.ACTIVITY_COLUMNS`.
        """
        from .marketdata import time_param

        broker = self._require()
        if direction not in ("asc", "desc"):
            raise ValueError(f"direction={direction!r} is not valid: use 'asc' or 'desc'")
        params: dict[str, Any] = {"direction": direction, "page_size": 100}
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            params["activity_types"] = ",".join(str(getattr(t, "value", t)).upper() for t in names)
        for name, value in (("after", after), ("until", until)):
            text = time_param(value, name)
            if text is not None:
                params[name] = text
        rows: list[dict] = []
        while True:
            page = broker.get_json("trading", "/account/activities", params, what="list activities")
            rows.extend(page or [])
            if not page or len(page) < params["page_size"]:
                break
            params["page_token"] = page[-1]["id"]  # Alpaca pages by the last id seen
        return frames.activities_frame(rows, tz=tz)

    def clock(self, tz: str | None = None) -> pd.DataFrame:
        """The market clock as one row: ``timestamp, is_open, next_open, next_close``."""
        broker = self._require()
        return frames.clock_frame(broker.get_json("trading", "/clock", what="market clock"), tz=tz)

    def calendar(self, start: Any = None, end: Any = None, tz: str | None = None) -> pd.DataFrame:
        """Market days from ``start`` to ``end`` (dates); ``open``/``close`` as UTC instants
        (see :func:`alpaca_nb.frames.calendar_frame`)."""
        from .marketdata import time_param

        broker = self._require()
        params = {}
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                time_param(value, name)  # refuses what is not a date or time, naming it
                stamp = pd.Timestamp(value)
                # The calendar takes New York days.
                params[name] = (stamp.tz_convert("America/New_York") if stamp.tzinfo else stamp).strftime("%Y-%m-%d")
        return frames.calendar_frame(broker.get_json("trading", "/calendar", params, what="market calendar"),
                                     tz=tz)

    def assets(self, status: str | None = None, exchange: str | None = None,
               asset_class: str | None = None, attributes: Iterable[str] | str | None = None) -> pd.DataFrame:
        """Tradable assets as a frame (see :data:`alpaca_nb.frames.ASSET_COLUMNS`).

        ``status``: "active"/"inactive"; ``exchange``: "NASDAQ", "NYSE", ...; ``attributes``:
        e.g. "has_options" (assets with any of them).
        """
        broker = self._require()
        params: dict[str, Any] = {}
        for name, value in (("status", status), ("exchange", exchange), ("asset_class", asset_class)):
            if value is not None:
                params[name] = str(getattr(value, "value", value))
        if attributes is not None:
            params["attributes"] = attributes if isinstance(attributes, str) else ",".join(attributes)
        return frames.assets_frame(broker.get_json("trading", "/assets", params, what="list assets"))

    def portfolio_history(self, period: str | None = None, timeframe: str | None = None,
                          start: Any = None, end: Any = None, tz: str | None = None) -> pd.DataFrame:
        """Equity over time, index ``timestamp``; ``equity, profit_loss, profit_loss_pct``
        (float64). ``period``: "1D", "1W", "1M", "1A"; ``timeframe``: "1Min", "5Min", "15Min",
        "1H", "1D" (Alpaca's defaults when None)."""
        from .marketdata import time_param

        broker = self._require()
        params: dict[str, Any] = {}
        for name, value in (("period", period), ("timeframe", timeframe)):
            if value is not None:
                params[name] = str(value)
        for name, value in (("start", start), ("end", end)):
            text = time_param(value, name)
            if text is not None:
                params[name] = text
        history = broker.get_json("trading", "/account/portfolio/history", params, what="portfolio history")
        return frames.portfolio_history_frame(history, tz=tz)
