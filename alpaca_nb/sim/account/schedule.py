"""Time in the engine: ticks, deadlines (expiries, auctions), the trading day and the close.

A tick first settles what is due (opg / cls auctions, day and gtc expiries), then lets each
open order take its turn (:meth:`.lifecycle.Lifecycle.work`: queued orders reach the venue
when the session allows, working ones match), symbol by symbol, skipping a symbol whose
quote, last trade and orders are unchanged since it was last matched (so 10,000 resting
orders cost little per tick). A skipped stop misses nothing: an unchanged last trade means
nothing printed, and its next look covers every trade since the last one. The trading day
says when ``last_equity`` rolls (the engine keeps the money); in ``nyse`` mode the close
marks partly filled gtc orders done for the day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from ..market.calendar import MarketHours
from ..market.market import Market, Quote, Trade
from .book import OrderBook
from .lifecycle import Lifecycle

_EXPIRING = ("day", "gtc")  # ioc / fok end at once, opg / cls at their auction


class Schedule:
    """What happens because time passes.

    Owns: the next deadline (the soonest expiry or auction of an open order), whether the
    market was open at the last tick, what each symbol looked like when last matched, which
    trading day it is (``day_key``, persisted by the engine) and the day's ``lastday`` prices.
    May call: the :class:`~.book.OrderBook` (read only), the :class:`~.lifecycle.Lifecycle`
    (every order change goes through it), the market hours, the market's trades, and
    ``marks(symbol, now)`` (the engine's per-operation quote and trade).
    Promises: :meth:`tick` settles auctions and expiries before any matching, and never
    changes an order itself; it runs inside one of the engine's operations.
    """

    def __init__(
        self,
        book: OrderBook,
        lifecycle: Lifecycle,
        hours: MarketHours,
        market: Market,
        marks: Callable[[str, datetime], tuple[Quote, Trade]],
    ):
        self.book = book
        self.lifecycle = lifecycle
        self.hours = hours
        self.market = market
        self.marks = marks
        self.day_key: str | None = None
        self._next_deadline: datetime | None = None
        self._was_open: bool | None = None
        self._evaluated: dict[str, tuple] = {}
        self._lastday_cache: dict[tuple[str, str | None], Decimal] = {}

    # ---- ticks --------------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Let the market act on open orders at ``now``: expiries and auctions first, then
        queued orders reach the venue, then matching, by symbol."""
        if self._next_deadline is not None and now >= self._next_deadline:
            self._process_deadlines(now)
            self.recompute_deadline()
        is_open = self.hours.mode == "continuous" or self.hours.is_open(now)
        if self.hours.mode == "nyse":
            if self._was_open and not is_open:
                self._done_for_day(now)
            self._was_open = is_open
        state = (is_open, not is_open and self.lifecycle.in_extended_window(now))
        for symbol in list(self.book.open_by_symbol):
            orders = self.book.open_by_symbol.get(symbol)
            if not orders:
                continue
            quote, trade = self.marks(symbol, now)
            key = (quote.t, trade.t, self.book.version.get(symbol), state)
            if self._evaluated.get(symbol) == key:
                continue  # nothing moved since this symbol was last matched
            for order in list(orders.values()):
                self.lifecycle.work(order, now)
            self._evaluated[symbol] = (quote.t, trade.t, self.book.version.get(symbol), state)

    def _process_deadlines(self, now: datetime) -> None:
        for order in list(self.book.open.values()):
            if not order.is_open or order.status == "held":
                continue
            if order.auction_at is not None and order.auction_at <= now:
                self.lifecycle.run_auction(order, now)
            elif order.time_in_force in _EXPIRING and order.expires_at is not None and order.expires_at <= now:
                self.lifecycle.expire(order, now)

    def note_deadline(self, t: datetime | None) -> None:
        """Something is due at ``t``: the next tick at or after it settles deadlines."""
        if t is not None and (self._next_deadline is None or t < self._next_deadline):
            self._next_deadline = t

    def recompute_deadline(self) -> None:
        """The soonest deadline of the open orders (after deadlines were settled or a restore)."""
        soonest = None
        for order in self.book.open.values():
            t = order.auction_at or (order.expires_at if order.time_in_force in _EXPIRING else None)
            if t is not None and (soonest is None or t < soonest):
                soonest = t
        self._next_deadline = soonest

    def _done_for_day(self, now: datetime) -> None:
        """nyse: at the close, partly filled gtc orders are done for the day."""
        for order in list(self.book.open.values()):
            if order.status == "partially_filled" and order.time_in_force == "gtc":
                self.lifecycle.done_for_day(order, now)

    # ---- the trading day ---------------------------------------------------------------------
    def session_key(self, now: datetime) -> str:
        """The trading day ``now`` belongs to: the open of the latest session that began."""
        s = self.hours.previous_session(now)
        return s[0].isoformat() if s else ""

    def new_day(self, now: datetime) -> bool:
        """True (once) when ``now`` is in a later trading day than the one recorded."""
        key = self.session_key(now)
        if key == self.day_key:
            return False
        self.day_key = key
        return True

    def previous_close(self, now: datetime) -> datetime | None:
        """The close of the session before the current trading day's ("last day")."""
        s = self.hours.previous_session(now)
        if s is None:
            return None
        prev = self.hours.previous_session(s[0] - timedelta(microseconds=1))
        return prev[1] if prev else None

    def lastday_price(self, symbol: str, now: datetime) -> Decimal:
        """``symbol``'s last trade at the previous close (its current one when there is none)."""
        key = (symbol, self.day_key)
        found = self._lastday_cache.get(key)
        if found is None:
            close = self.previous_close(now)
            found = self.market.trade(symbol, close).price if close else self.marks(symbol, now)[1].price
            self._lastday_cache[key] = found
        return found
