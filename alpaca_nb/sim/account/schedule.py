"""Time in the engine: ticks, expiries, auctions, the trading day and the close.

:class:`Schedule` is mixed into :class:`~alpaca_nb.sim.engine.Engine`. A tick first settles
what is due (opg / cls auctions, day and gtc expiries), then lets queued orders reach the
venue when the session allows, then matches working orders symbol by symbol, skipping a
symbol whose quote, last trade and orders are unchanged since it was last matched (so 10,000
resting orders cost little per tick). A skipped stop misses nothing: an unchanged last trade
means nothing printed, and its next look covers every trade since the last one. A new trading day records yesterday's closing equity
(``last_equity``); in ``nyse`` mode the close marks partly filled gtc orders done for the day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from . import balances as acct
from .orders import Order

_EXPIRING = ("day", "gtc")  # ioc / fok end at once, opg / cls at their auction


class Schedule:
    """Time-driven order handling; mixed into Engine (which provides the state)."""

    # ---- ticks --------------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> None:
        """Let the market act on open orders at ``now`` (default: the clock): expiries and
        auctions first, then queued orders reach the venue, then matching, by symbol."""
        with self._op(now) as now:
            if self._next_deadline is not None and now >= self._next_deadline:
                self._process_deadlines(now)
                self._recompute_deadline()
            is_open = self.hours.mode == "continuous" or self.hours.is_open(now)
            if self.hours.mode == "nyse":
                if self._was_open and not is_open:
                    self._done_for_day(now)
                self._was_open = is_open
            state = (is_open, not is_open and self._in_extended_window(now))
            for symbol in list(self.book.open_by_symbol):
                orders = self.book.open_by_symbol.get(symbol)
                if not orders:
                    continue
                quote, trade = self._marks(symbol, now)
                key = (quote.t, trade.t, self.book.version.get(symbol), state)
                if self._evaluated.get(symbol) == key:
                    continue  # nothing moved since this symbol was last matched
                for order in list(orders.values()):
                    self._tick_order(order, now)
                self._evaluated[symbol] = (quote.t, trade.t, self.book.version.get(symbol), state)

    def _tick_order(self, order: Order, now: datetime) -> None:
        if not order.is_open or order.status == "held" or order.auction_at is not None:
            return
        if not self._can_trade(order, now):
            return
        if order.status == "accepted":
            self._route_queued(order, now)
        elif order.status == "done_for_day":
            self._set(order, "partially_filled", self._stamp(now))
        self._match(order, now)

    def _process_deadlines(self, now: datetime) -> None:
        for order in list(self.book.open.values()):
            if not order.is_open or order.status == "held":
                continue
            if order.auction_at is not None and order.auction_at <= now:
                self._run_auction(order, now)
            elif order.time_in_force in _EXPIRING and order.expires_at <= now:
                self._expire(order, now)

    def _note_deadline(self, t: datetime | None) -> None:
        if t is not None and (self._next_deadline is None or t < self._next_deadline):
            self._next_deadline = t

    def _recompute_deadline(self) -> None:
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
                at = self._stamp(now)
                self._set(order, "done_for_day", at)
                self._emit("done_for_day", order, at)

    # ---- the trading day ---------------------------------------------------------------------
    def _session_key(self, now: datetime) -> str:
        s = self.hours.previous_session(now)
        return s[0].isoformat() if s else ""

    def _previous_close(self, now: datetime) -> datetime | None:
        """The close of the session before the current trading day's (\"last day\")."""
        s = self.hours.previous_session(now)
        if s is None:
            return None
        prev = self.hours.previous_session(s[0] - timedelta(microseconds=1))
        return prev[1] if prev else None

    def _roll_day(self, now: datetime) -> None:
        """On a new trading day, remember yesterday's closing equity (``last_equity``)."""
        key = self._session_key(now)
        if key == self._day_key:
            return
        self._day_key = key
        self._meta_dirty = True
        close = self._previous_close(now)
        if close is None or close < self.created_at:
            return
        val = acct.value(self.cash, self._positions, lambda symbol: self.market.trade(symbol, close).price)
        self.last_equity = val.equity
        self.last_maintenance_margin = val.maintenance_margin

    def _lastday_price(self, symbol: str) -> Decimal:
        key = (symbol, self._day_key)
        found = self._lastday_cache.get(key)
        if found is None:
            close = self._previous_close(self._now)
            found = self.market.trade(symbol, close).price if close else self._mark(symbol)
            self._lastday_cache[key] = found
        return found
