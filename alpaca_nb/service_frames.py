"""The DataFrame face of :class:`~alpaca_nb.service.AlpacaService`: account, orders, market data.

Every method returns a frame by the contract in :mod:`alpaca_nb.frames` (UTC timestamps,
``tz=`` to show another zone, numeric dtypes, the same columns when empty). Historical data goes
through :mod:`alpaca_nb.marketdata`'s fast path (raw pages, msgspec, numpy); the rest are raw
GETs turned into frames column-wise.

Every argument is checked by :mod:`alpaca_nb.params` before anything is sent: a bad one raises
:class:`~alpaca_nb.errors.InvalidArgumentError` naming it and the fix. Many symbols go out in
several requests of legal size (:func:`alpaca_nb.params.symbol_chunks`), merged into one frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from . import frames, params
from .errors import InvalidArgumentError

FRAME_METHODS = (
    "account",
    "positions",
    "orders",
    "quotes",
    "bars",
    "historical_quotes",
    "historical_trades",
    "trades",
    "latest_bars",
    "snapshots",
    "activities",
    "clock",
    "calendar",
    "assets",
    "portfolio_history",
)


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
        tz = params.tz(tz)
        return frames.account_frame(self._get_account(), tz=tz)

    def positions(self, tz: str | None = None) -> pd.DataFrame:
        """Open positions, one row per symbol (see :data:`alpaca_nb.frames.POSITION_COLUMNS`)."""
        tz = params.tz(tz)
        return frames.positions_frame(self._get_positions(), tz=tz)

    def orders(
        self,
        status: str = "all",
        symbols: Iterable[str] | str | None = None,
        after: Any = None,
        until: Any = None,
        limit: int = 500,
        tz: str | None = None,
    ) -> pd.DataFrame:
        """Alpaca's orders, newest first (see :data:`alpaca_nb.frames.ORDER_COLUMNS`).

        ``status``: "open", "closed" or "all"; ``symbols``: only these (None: every symbol);
        ``after``/``until``: submitted in that window (see :func:`alpaca_nb.params.timestamp`);
        ``limit``: 1 to 500. Many symbols go out in several requests, merged newest first.
        """
        query: dict[str, Any] = {
            "status": params.choice(status, "status", params.ORDER_STATUSES),
            "limit": params.count(limit, "limit", maximum=params.MAX_ORDERS),
            "direction": "desc",
        }
        for name, text in zip(("after", "until"), params.time_range(after, until, ("after", "until")), strict=False):
            if text is not None:
                query[name] = text
        chunks = [None] if symbols is None else params.symbol_chunks(params.symbols(symbols))
        tz = params.tz(tz)
        broker = self._require()
        rows: list[dict] = []
        for chunk in chunks:
            chunk_query = query if chunk is None else {**query, "symbols": ",".join(chunk)}
            rows.extend(broker.get_json("trading", "/orders", chunk_query, what="list orders") or [])
        if len(chunks) > 1:  # one list again: newest first, at most ``limit``
            rows.sort(key=_submitted, reverse=True)
            rows = rows[: query["limit"]]
        return frames.orders_frame(rows, tz=tz)

    def quotes(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest quote per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.QUOTE_COLUMNS`)."""
        tz = params.tz(tz)
        return frames.latest_quotes_frame(self._latest("quotes", symbols).get("quotes", {}), tz=tz)

    # -- market data and reference frames ---------------------------------------------------------
    # (frames helper) Historical data goes through alpaca_nb.marketdata's fast path (raw pages,
    # msgspec, numpy); the rest are raw GETs turned into frames by alpaca_nb.frames. Timestamps
    # are UTC; ``tz=`` shows them in another zone. Every argument is checked by alpaca_nb.params
    # before anything is sent: a bad one raises InvalidArgumentError naming it.

    def bars(
        self,
        symbols: Iterable[str] | str,
        timeframe: Any,
        start: Any = None,
        end: Any = None,
        feed: str | None = None,
        adjustment: str | None = None,
        tz: str | None = None,
        *,
        limit: int | None = None,
        sort: str = "asc",
        progress: bool = True,
    ) -> pd.DataFrame:
        """Historical bars, index (``symbol``, ``timestamp``); columns ``open, high, low, close,
        volume, vwap`` (float64) and ``trade_count`` (int64), the same when empty.

        ``timeframe``: "1Min", "5Min", "1Hour", "1Day", "1Week", "1Month" or an alpaca-py
        TimeFrame. ``start``/``end``: datetimes, dates or ISO strings (naive times are UTC;
        numbers are refused). ``feed`` defaults to the configured one. Raises
        :class:`~alpaca_nb.errors.InvalidArgumentError` (a ``ValueError``) for a bad argument
        before any request.

        >>> svc.bars(["AAPL", "MSFT"], "1Day", "2024-01-01", "2024-06-30").loc["AAPL", "close"]
        """
        from . import marketdata

        return marketdata.fetch_bars(
            self._require(),
            symbols,
            timeframe,
            start,
            end,
            feed=self._feed() if feed is None else feed,
            adjustment=adjustment,
            limit=limit,
            sort=sort,
            progress=progress,
            tz=tz,
        )

    def historical_quotes(
        self,
        symbols: Iterable[str] | str,
        start: Any = None,
        end: Any = None,
        feed: str | None = None,
        tz: str | None = None,
        *,
        limit: int | None = None,
        sort: str = "asc",
        progress: bool = True,
    ) -> pd.DataFrame:
        """Historical quotes, index (``symbol``, ``timestamp``); columns ``bid_price, bid_size,
        ask_price, ask_size`` (float64), ``bid_exchange, ask_exchange, conditions, tape`` (string).
        Arguments as in :meth:`bars`.
        """
        from . import marketdata

        return marketdata.fetch_quotes(
            self._require(),
            symbols,
            start,
            end,
            feed=self._feed() if feed is None else feed,
            limit=limit,
            sort=sort,
            progress=progress,
            tz=tz,
        )

    def historical_trades(
        self,
        symbols: Iterable[str] | str,
        start: Any = None,
        end: Any = None,
        feed: str | None = None,
        tz: str | None = None,
        *,
        limit: int | None = None,
        sort: str = "asc",
        progress: bool = True,
    ) -> pd.DataFrame:
        """Historical trades, index (``symbol``, ``timestamp``); columns ``price, size`` (float64),
        ``id`` (int64), ``exchange, conditions, tape`` (string). Arguments as in :meth:`bars`.
        """
        from . import marketdata

        return marketdata.fetch_trades(
            self._require(),
            symbols,
            start,
            end,
            feed=self._feed() if feed is None else feed,
            limit=limit,
            sort=sort,
            progress=progress,
            tz=tz,
        )

    def _latest(self, what: str, symbols: Iterable[str] | str) -> Any:
        """Alpaca's latest ``what`` for ``symbols``: ``{what: {symbol: item}}`` (snapshots:
        ``{symbol: snapshot}``), however many requests the symbols took."""
        names = params.symbols(symbols)
        broker = self._require()
        path = "/stocks/snapshots" if what == "snapshots" else f"/stocks/{what}/latest"
        merged: dict[str, Any] = {}
        for chunk in params.symbol_chunks(names):
            body = (
                broker.get_json("data", path, {"symbols": ",".join(chunk), "feed": self._feed()}, what=f"latest {what}")
                or {}
            )
            merged.update(body if what == "snapshots" else (body.get(what) or {}))
        return merged if what == "snapshots" else {what: merged}

    def trades(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest trade per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.TRADE_COLUMNS`)."""
        tz = params.tz(tz)
        return frames.latest_trades_frame(self._latest("trades", symbols).get("trades"), tz=tz)

    def latest_bars(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """The latest minute bar per symbol, indexed by ``symbol`` (see :data:`alpaca_nb.frames.BAR_COLUMNS`)."""
        tz = params.tz(tz)
        return frames.latest_bars_frame(self._latest("bars", symbols).get("bars"), tz=tz)

    def snapshots(self, symbols: Iterable[str] | str, tz: str | None = None) -> pd.DataFrame:
        """One row per symbol: latest trade and quote, minute, daily and previous daily bar,
        flattened into prefixed columns (``latest_trade_price``, ``daily_bar_close``, ...; see
        :func:`alpaca_nb.frames.snapshots_frame`)."""
        tz = params.tz(tz)
        return frames.snapshots_frame(self._latest("snapshots", symbols), tz=tz)

    def activities(
        self,
        types: Iterable[str] | str | None = None,
        after: Any = None,
        until: Any = None,
        direction: str = "desc",
        tz: str | None = None,
    ) -> pd.DataFrame:
        """Account activities (fills and cash activities) in one frame, every page fetched.

        ``types``: "FILL", "DIV", ... or a list (all when None). ``after``/``until``: see
        :func:`alpaca_nb.params.timestamp`. ``direction``: "asc" or "desc". Columns: see
        :data:`alpaca_nb.frames.ACTIVITY_COLUMNS`.
        """
        query: dict[str, Any] = {"direction": params.choice(direction, "direction", params.SORTS), "page_size": 100}
        if types is not None:
            query["activity_types"] = ",".join(params.choice_list(types, "types", params.ACTIVITY_TYPES))
        for name, text in zip(("after", "until"), params.time_range(after, until, ("after", "until")), strict=False):
            if text is not None:
                query[name] = text
        tz = params.tz(tz)
        broker = self._require()
        rows: list[dict] = []
        while True:
            page = broker.get_json("trading", "/account/activities", query, what="list activities")
            rows.extend(page or [])
            if not page or len(page) < query["page_size"]:
                break
            query["page_token"] = page[-1]["id"]  # Alpaca pages by the last id seen
        return frames.activities_frame(rows, tz=tz)

    def clock(self, tz: str | None = None) -> pd.DataFrame:
        """The market clock as one row: ``timestamp, is_open, next_open, next_close``."""
        tz = params.tz(tz)
        broker = self._require()
        return frames.clock_frame(broker.get_json("trading", "/clock", what="market clock"), tz=tz)

    def calendar(self, start: Any = None, end: Any = None, tz: str | None = None) -> pd.DataFrame:
        """Market days from ``start`` to ``end`` (dates; an aware time counts as its New York
        day); ``open``/``close`` as UTC instants (see :func:`alpaca_nb.frames.calendar_frame`)."""
        query = {
            name: day
            for name, day in zip(("start", "end"), params.day_range(start, end), strict=False)
            if day is not None
        }
        tz = params.tz(tz)
        broker = self._require()
        return frames.calendar_frame(broker.get_json("trading", "/calendar", query, what="market calendar"), tz=tz)

    def assets(
        self,
        status: str | None = None,
        exchange: str | None = None,
        asset_class: str | None = None,
        attributes: Iterable[str] | str | None = None,
    ) -> pd.DataFrame:
        """Tradable assets as a frame (see :data:`alpaca_nb.frames.ASSET_COLUMNS`).

        ``status``: "active"/"inactive"; ``exchange``: "NASDAQ", "NYSE", ...; ``asset_class``:
        "us_equity", "crypto", ...; ``attributes``: e.g. "has_options" (assets with any of them).
        """
        query: dict[str, Any] = {}
        for name, value, choices in (
            ("status", status, params.ASSET_STATUSES),
            ("exchange", exchange, params.EXCHANGES),
            ("asset_class", asset_class, params.ASSET_CLASSES),
        ):
            if value is not None:
                query[name] = params.choice(value, name, choices)
        if attributes is not None:
            query["attributes"] = ",".join(params.choice_list(attributes, "attributes", params.ASSET_ATTRIBUTES))
        broker = self._require()
        return frames.assets_frame(broker.get_json("trading", "/assets", query, what="list assets"))

    def portfolio_history(
        self,
        period: str | None = None,
        timeframe: str | None = None,
        start: Any = None,
        end: Any = None,
        tz: str | None = None,
    ) -> pd.DataFrame:
        """Equity over time, index ``timestamp``; ``equity, profit_loss, profit_loss_pct``
        (float64). ``period``: "1D", "1W", "1M", "1A" (a number and D, W, M or A);
        ``timeframe``: "1Min", "5Min", "15Min", "1H", "1D" (Alpaca's defaults when None). Give
        at most two of ``period``, ``start`` and ``end``; an intraday timeframe spans at most 30
        days."""
        query: dict[str, Any] = {}
        period = params.history_period(period)
        if period is not None:
            query["period"] = period
        if timeframe is not None:
            query["timeframe"] = params.choice(timeframe, "timeframe", params.HISTORY_TIMEFRAMES)
        for name, text in zip(("start", "end"), params.time_range(start, end), strict=False):
            if text is not None:
                query[name] = text
        _check_history_span(query)
        tz = params.tz(tz)
        broker = self._require()
        history = broker.get_json("trading", "/account/portfolio/history", query, what="portfolio history")
        return frames.portfolio_history_frame(history, tz=tz)


def _submitted(order: dict) -> pd.Timestamp:
    when = order.get("submitted_at") or order.get("created_at")
    return pd.Timestamp(when) if when else pd.Timestamp(0, tz="UTC")


def _check_history_span(query: dict[str, Any]) -> None:
    """Alpaca's rules for combining period, start and end (refused before asking)."""
    if all(name in query for name in ("period", "start", "end")):
        raise InvalidArgumentError("give at most two of period, start and end (the third follows from them)", "period")
    if query.get("timeframe", "1D") == "1D":
        return
    if "period" in query:
        days = params.period_days(query["period"])
    elif "start" in query and "end" in query:
        days = (pd.Timestamp(query["end"]) - pd.Timestamp(query["start"])).total_seconds() / 86400
    else:
        return
    if days > params.HISTORY_INTRADAY_DAYS:
        raise InvalidArgumentError(
            f"timeframe={query['timeframe']!r} covers at most {params.HISTORY_INTRADAY_DAYS} days: "
            "use timeframe='1D', or a shorter period / start..end",
            "timeframe",
        )
