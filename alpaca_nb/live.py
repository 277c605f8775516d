"""Live DataFrames: the latest quote per symbol, the latest trades, and minute bars as they close.

    quotes = live_quotes(["AAPL", "MSFT"])
    quotes.df            # one row per symbol, the latest quote; read it any time
    trades = live_trades("AAPL", max_rows=500)
    trades.df            # time and sales: the most recent trades, oldest first
    bars = live_bars(["AAPL"])
    bars.df              # (symbol, timestamp) -> open high low close volume trade_count vwap
    quotes.stop(); trades.stop(); bars.stop()

Both follow the DataFrame contract of :mod:`alpaca_nb.frames` (tz-aware UTC timestamps,
float64 prices and sizes, the same columns and dtypes when empty). Messages update them on the
stream's thread; ``.df`` builds a fresh frame from a snapshot taken under a lock, so reading it
from the notebook while quotes arrive is safe, and the frame you hold never changes under you.
A live frame holds its subscription weakly: a live frame you no longer reference (the old
object after a cell is re-run) stops by itself when it is garbage collected.
``on_update=callback`` is called with the live frame after each message (on the stream's
thread: keep it short, e.g. ask a widget to redraw); an exception in it is logged.

Every argument is checked before anything subscribes (see :mod:`alpaca_nb.params`): symbols
ASCII in Alpaca's grammar (or ``"*"`` for every symbol), ``tz`` a known zone, ``wait`` seconds,
``max_rows`` a positive int, ``on_update`` callable, ``hub`` a :class:`StreamHub`; a bad one
raises :class:`~alpaca_nb.errors.InvalidArgumentError` naming it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable

import pandas as pd

from . import frames, params
from .errors import InvalidArgumentError
from .stream import StreamHub, Subscription, stream_hub
from .stream_wire import Bar, Quote, Trade, normalize_symbols

log = logging.getLogger("alpaca_nb")


class _LiveFrame:
    """What both live frames share: a lock, a subscription, counters, waiting, display."""

    def __init__(
        self,
        hub: StreamHub,
        symbols: str | Iterable[str],
        tz: str | None,
        on_update: Callable[[_LiveFrame], None] | None = None,
        wait: float | None = None,
    ):
        names = _checked(symbols, hub, tz, wait, on_update, hub_required=True)
        self.hub = hub
        self.symbols = normalize_symbols(names)
        self.tz = tz
        self.on_update = on_update
        self.updates = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._subs: list[Subscription] = []

    def _count(self) -> None:  # under the lock
        self.updates += 1
        self._changed.notify_all()

    def _tell(self) -> None:  # after the lock is released
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:
                log.exception("alpaca_nb: the on_update callback of %s failed", type(self).__name__)

    def wait(self, updates: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``updates`` messages in all have arrived; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self.updates >= updates, timeout)

    @property
    def live(self) -> bool:
        return any(s.active for s in self._subs)

    def stop(self) -> None:
        """Stop updating (the frame keeps what it has)."""
        for sub in self._subs:
            sub.cancel()

    def _repr_html_(self) -> str:
        return self.df._repr_html_()

    def __repr__(self) -> str:
        what = "*" if self.symbols is None else ",".join(sorted(self.symbols))
        state = "live" if self.live else "stopped"
        return f"<{type(self).__name__} {what}: {state}, {self.updates} updates>\n{self.df!r}"

    @property
    def df(self) -> pd.DataFrame:  # pragma: no cover - both subclasses define it
        raise NotImplementedError


class LiveQuotes(_LiveFrame):
    """The latest quote of each symbol, indexed by ``symbol``; columns ``QUOTE_COLUMNS``."""

    def __init__(
        self,
        hub: StreamHub,
        symbols: str | Iterable[str],
        tz: str | None = None,
        wait: float | None = 5.0,
        on_update: Callable[[LiveQuotes], None] | None = None,
    ):
        super().__init__(hub, symbols, tz, on_update, wait)
        self._latest: dict[str, Quote] = {}
        self._subs.append(
            hub.subscribe(
                "quotes",
                "*" if self.symbols is None else self.symbols,
                self._on_quote,
                name=f"LiveQuotes@{id(self):x}",
                wait=wait,
                weak=True,
            )
        )

    def _on_quote(self, quote: Quote) -> None:
        with self._lock:
            self._latest[quote.symbol] = quote
            self._count()
        self._tell()

    @property
    def df(self) -> pd.DataFrame:
        """A snapshot: one row per symbol that has quoted, sorted by symbol."""
        with self._lock:
            rows = [q._asdict() for _s, q in sorted(self._latest.items())]
        frame = frames.records_frame(rows, {"symbol": "str", **frames.QUOTE_COLUMNS}, tz=self.tz)
        return frame.set_index("symbol")


class LiveTrades(_LiveFrame):
    """Time and sales: the last ``max_rows`` trades (default 1,000) of the symbols, oldest first;
    columns ``symbol`` and those of :data:`alpaca_nb.frames.TRADE_COLUMNS`."""

    def __init__(
        self,
        hub: StreamHub,
        symbols: str | Iterable[str],
        tz: str | None = None,
        max_rows: int = 1_000,
        wait: float | None = 5.0,
        on_update: Callable[[LiveTrades], None] | None = None,
    ):
        params.count(max_rows, "max_rows")
        super().__init__(hub, symbols, tz, on_update, wait)
        self._trades: deque[Trade] = deque(maxlen=max_rows)
        self._subs.append(
            hub.subscribe(
                "trades",
                "*" if self.symbols is None else self.symbols,
                self._on_trade,
                name=f"LiveTrades@{id(self):x}",
                wait=wait,
                weak=True,
            )
        )

    def _on_trade(self, trade: Trade) -> None:
        with self._lock:
            self._trades.append(trade)
            self._count()
        self._tell()

    @property
    def df(self) -> pd.DataFrame:
        """A snapshot of the trades kept, in arrival order (a fresh RangeIndex)."""
        with self._lock:
            rows = [t._asdict() for t in self._trades]
        return frames.records_frame(rows, {"symbol": "str", **frames.TRADE_COLUMNS}, tz=self.tz)


class LiveBars(_LiveFrame):
    """Minute bars as they close, indexed by (``symbol``, ``timestamp``), the columns of
    :data:`alpaca_nb.frames.BAR_COLUMNS` (as :func:`alpaca_nb.marketdata.bars_frame` has them).

    An updated bar (a late trade, Alpaca's ``updatedBars``) replaces the bar it corrects.
    ``max_rows`` keeps only the most recent bars.
    """

    def __init__(
        self,
        hub: StreamHub,
        symbols: str | Iterable[str],
        tz: str | None = None,
        max_rows: int | None = None,
        wait: float | None = 5.0,
        on_update: Callable[[LiveBars], None] | None = None,
    ):
        params.count(max_rows, "max_rows", allow_none=True)
        super().__init__(hub, symbols, tz, on_update, wait)
        self.max_rows = max_rows
        self._bars: dict[tuple[str, pd.Timestamp], Bar] = {}
        chosen = "*" if self.symbols is None else self.symbols
        for channel in ("bars", "updatedBars"):
            self._subs.append(
                hub.subscribe(
                    channel, chosen, self._on_bar, name=f"LiveBars.{channel}@{id(self):x}", wait=wait, weak=True
                )
            )

    def _on_bar(self, bar: Bar) -> None:
        with self._lock:
            self._bars[(bar.symbol, bar.timestamp)] = bar
            if self.max_rows is not None and len(self._bars) > self.max_rows:
                oldest = sorted(self._bars, key=lambda k: k[1])[: len(self._bars) - self.max_rows]
                for key in oldest:
                    del self._bars[key]
            self._count()
        self._tell()

    @property
    def df(self) -> pd.DataFrame:
        """A snapshot of the bars so far, sorted by symbol then time."""
        with self._lock:
            rows = [b._asdict() for _k, b in sorted(self._bars.items())]
        frame = frames.records_frame(rows, {"symbol": "str", **frames.BAR_COLUMNS}, tz=self.tz)
        return frame.set_index(["symbol", "timestamp"])


def _checked(
    symbols: object, hub: object, tz: object, wait: object, on_update: object, *, hub_required: bool = False
) -> list[str]:
    """Every argument a live frame shares, checked (before any hub is made or subscribed)."""
    if not isinstance(hub, StreamHub) and (hub_required or hub is not None):
        raise InvalidArgumentError(
            f"hub={hub!r} is not a StreamHub: give stream_hub(...), svc.streams or None (the default account's)", "hub"
        )
    names = params.symbols(symbols, allow_all=True)
    params.tz(tz)
    params.seconds(wait, "wait")
    params.callback(on_update, "on_update")
    return names


def live_quotes(
    symbols: str | Iterable[str],
    *,
    hub: StreamHub | None = None,
    tz: str | None = None,
    wait: float | None = 5.0,
    on_update: Callable[[LiveQuotes], None] | None = None,
) -> LiveQuotes:
    """A :class:`LiveQuotes` on ``hub`` (default: the default account's :func:`stream_hub`)."""
    names = _checked(symbols, hub, tz, wait, on_update)  # a generator is read once, here
    return LiveQuotes(hub or stream_hub(), names, tz, wait, on_update)


def live_trades(
    symbols: str | Iterable[str],
    *,
    hub: StreamHub | None = None,
    tz: str | None = None,
    max_rows: int = 1_000,
    wait: float | None = 5.0,
    on_update: Callable[[LiveTrades], None] | None = None,
) -> LiveTrades:
    """A :class:`LiveTrades` on ``hub`` (default: the default account's :func:`stream_hub`)."""
    names = _checked(symbols, hub, tz, wait, on_update)  # a generator is read once, here
    params.count(max_rows, "max_rows")
    return LiveTrades(hub or stream_hub(), names, tz, max_rows, wait, on_update)


def live_bars(
    symbols: str | Iterable[str],
    *,
    hub: StreamHub | None = None,
    tz: str | None = None,
    max_rows: int | None = None,
    wait: float | None = 5.0,
    on_update: Callable[[LiveBars], None] | None = None,
) -> LiveBars:
    """A :class:`LiveBars` on ``hub`` (default: the default account's :func:`stream_hub`)."""
    names = _checked(symbols, hub, tz, wait, on_update)  # a generator is read once, here
    params.count(max_rows, "max_rows", allow_none=True)
    return LiveBars(hub or stream_hub(), names, tz, max_rows, wait, on_update)


__all__ = ["LiveQuotes", "LiveTrades", "LiveBars", "live_quotes", "live_trades", "live_bars"]
