"""The deterministic synthetic market: what the engine fills against and the data API serves.

``Market(seed, hours, clock)`` knows every trade and quote of every symbol in
:mod:`.assets` on every New York day from 1970 to 2099, generated on demand by :mod:`.tape`
and cached per (symbol, day). The same seed always gives the same data, in any process and
in any order of requests. Nothing after ``clock.now()`` exists: every query is cut there.

The engine uses :meth:`Market.quote` and :meth:`Market.trade` (latest at or before a time),
and :meth:`Market.trades_between` (every trade price in a window: what untriggered stops watch).
The data API uses the columnar range queries, which return numpy columns plus whether more
data lies beyond ``limit``; their cost follows the page asked for, not the range::

    market = Market(7, MarketHours("nyse"), SimClock())
    market.quote("AAPL").ask                    # Decimal('231.18')
    bars, more = market.bars("AAPL", parse_timeframe("1Min"), start_ns, end_ns, limit=10_000)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from .assets import PROFILES
from .bars import TimeFrame, aggregate, distinct, from_ns, to_ns
from .calendar import MarketHours, ny_date, ny_midnight
from .clock import SimClock
from .tape import (
    BAR_FIELDS,
    EMPTY_BARS,
    EPOCH,
    LAST_DAY,
    MINUTE_NS,
    PRICE_SCALE,
    Bars,
    DayTape,
    Ticks,
    build_day,
    minute_bars,
)

_SCALE = Decimal(PRICE_SCALE)
_LOOKBACK_DAYS = 10  # longest NYSE closure is 4 days; continuous mode trades every day
WINDOW_TRADING_DAYS = 2  # trades_between reaches back at most this many trading days
_FIRST_NS = to_ns(datetime(1970, 1, 2, tzinfo=UTC))
_LAST_NS = to_ns(datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, tzinfo=UTC))


class NoData(LookupError):
    """The symbol has not traded at or before the time asked (or is not in the universe)."""


@dataclass(frozen=True)
class Quote:
    symbol: str
    t: datetime
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int


@dataclass(frozen=True)
class Trade:
    symbol: str
    t: datetime
    price: Decimal
    size: int
    id: int


class _LRU:
    """A small thread-safe LRU map (the engine ticks from other threads than the server)."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class Market:
    """Seeded synthetic trades, quotes and bars for the symbols of :mod:`.assets`.

    ``tape_days`` / ``minute_days`` bound the caches of generated (symbol, day) tapes
    (~0.3 MB each) and of their minute bars (~0.1 MB each); ``minute_days=1024`` holds ten
    symbols' 100,000 one-minute bars each.
    """

    def __init__(self, seed: int, hours: MarketHours, clock: SimClock, *, tape_days: int = 64, minute_days: int = 1024):
        self.seed = int(seed)
        self.hours = hours
        self.clock = clock
        self._tapes = _LRU(tape_days)
        self._minutes = _LRU(minute_days)
        self._summaries = _LRU(100_000)

    def __repr__(self) -> str:
        return f"Market(seed={self.seed}, {self.hours.mode})"

    # ------------------------------------------------------------------ basics

    def has(self, symbol: str) -> bool:
        """Whether ``symbol`` has market data (every symbol of the asset universe has)."""
        return symbol in PROFILES

    def now_ns(self) -> int:
        return to_ns(self.clock.now())

    def _window(self, d: date) -> tuple[int, int] | None:
        if not (EPOCH < d < LAST_DAY):
            return None
        session = self.hours.session_of_day(d)
        return None if session is None else (to_ns(session[0]), to_ns(session[1]))

    def day_tape(self, symbol: str, d: date) -> DayTape | None:
        """Every trade and quote of ``symbol`` on New York day ``d`` (None: no session)."""
        key = (symbol, d)
        tape = self._tapes.get(key)
        if tape is None:
            window = self._window(d)
            if window is None or symbol not in PROFILES:
                return None
            tape = build_day(self.seed, symbol, PROFILES[symbol], d, window, self.hours.mode == "continuous")
            self._tapes.put(key, tape)
        return tape

    def _session_tape(self, symbol: str, d: date) -> DayTape:
        """The tape of a day the caller knows has a session (its window exists, the symbol is known)."""
        tape = self.day_tape(symbol, d)
        if tape is None:
            raise NoData(f"{symbol!r} has no session on {d}")
        return tape

    def _until(self, until_ns: int | None) -> int:
        """Exclusive upper bound of what exists: just after now, or earlier if asked."""
        now = self.now_ns() + 1
        return now if until_ns is None else min(until_ns, now)

    # ------------------------------------------------------------------ engine face

    def quote(self, symbol: str, at: datetime | None = None) -> Quote:
        """The quote standing at ``at`` (default: now; never later than now)."""
        tape, j = self._latest(symbol, at, quotes=True)
        return Quote(
            symbol,
            from_ns(int(tape.qt[j])),
            _dec(tape.bid[j]),
            _dec(tape.ask[j]),
            int(tape.bid_size[j]),
            int(tape.ask_size[j]),
        )

    def trade(self, symbol: str, at: datetime | None = None) -> Trade:
        """The last trade at or before ``at`` (default: now; never later than now)."""
        tape, j = self._latest(symbol, at, quotes=False)
        return Trade(symbol, from_ns(int(tape.t[j])), _dec(tape.price[j]), int(tape.size[j]), tape.first_id + j)

    def _latest(self, symbol: str, at: datetime | None, quotes: bool) -> tuple[DayTape, int]:
        if symbol not in PROFILES:
            raise NoData(f"no market data for {symbol!r}")
        now = self.now_ns()
        at_ns = now if at is None else min(to_ns(at), now)
        return self._latest_ns(symbol, at_ns, quotes)

    def _latest_ns(self, symbol: str, at_ns: int, quotes: bool) -> tuple[DayTape, int]:
        d = ny_date(from_ns(at_ns))
        for _ in range(_LOOKBACK_DAYS):
            tape = self.day_tape(symbol, d)
            if tape is not None:
                j = int(np.searchsorted(tape.qt if quotes else tape.t, at_ns, "right")) - 1
                if j >= 0:
                    return tape, j
            d -= timedelta(days=1)
        raise NoData(f"{symbol} has not traded in the {_LOOKBACK_DAYS} days before {from_ns(at_ns)}")

    def trades_between(self, symbol: str, lo_ns: int, hi_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (ns) and prices (1/10000 $) of the trades of ``symbol`` with
        ``lo_ns < t <= hi_ns`` (never after now), in trade order.

        Views of the cached day tapes, not to be modified (copies only when the window
        crosses days).
        The window is capped: it reaches back at most into the trading day before the one
        holding ``hi_ns`` (``WINDOW_TRADING_DAYS`` day tapes, searched at most
        ``_LOOKBACK_DAYS`` calendar days back), which covers every engine tick, a manual step
        of a day and a weekend or holiday; older trades are left out.
        """
        hi = min(hi_ns, self.now_ns(), _LAST_NS - 1)
        if hi <= lo_ns or symbol not in PROFILES:
            return _NO_TRADES
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        d, days = ny_date(from_ns(hi)), WINDOW_TRADING_DAYS
        for _ in range(_LOOKBACK_DAYS):
            tape = self.day_tape(symbol, d)
            if tape is not None:
                i0, i1 = np.searchsorted(tape.t, [lo_ns, hi], "right")
                if i1 > i0:
                    parts.append((tape.t[i0:i1], tape.price[i0:i1]))
                days -= 1
                if days == 0 or tape.start_ns <= lo_ns:
                    break  # capped, or earlier days traded before lo_ns
            elif to_ns(ny_midnight(d)) <= lo_ns:
                break
            d -= timedelta(days=1)
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _NO_TRADES
        parts.reverse()
        return np.concatenate([t for t, _ in parts]), np.concatenate([p for _, p in parts])

    # ------------------------------------------------------------------ data API face

    def ticks(
        self,
        symbol: str,
        lo_ns: int,
        hi_ns: int,
        limit: int,
        desc: bool = False,
        *,
        by_quote: bool = False,
        until_ns: int | None = None,
    ) -> tuple[Ticks, bool]:
        """Trades (``by_quote=False``) or quotes with time in ``[lo_ns, hi_ns)``, at most
        ``limit`` of them from the early (or, ``desc``, the late) end; plus whether more exist."""
        lo, hi = max(lo_ns, _FIRST_NS), min(hi_ns, self._until(until_ns), _LAST_NS)
        parts: list[Ticks] = []
        got, need = 0, limit + 1
        tape_letter = "B"
        for d in _days(lo, hi, desc):
            tape = self.day_tape(symbol, d)
            if tape is None:
                continue
            tape_letter = tape.tape
            times = tape.qt if by_quote else tape.t
            i0, i1 = np.searchsorted(times, [lo, hi])
            if desc:
                i0 = max(i0, i1 - (need - got))
            else:
                i1 = min(i1, i0 + (need - got))
            if i1 > i0:
                part = Ticks.of(tape, int(i0), int(i1))
                parts.append(part.take(slice(None, None, -1)) if desc else part)
                got += i1 - i0
                if got >= need:
                    break
        out = Ticks.concat(parts, tape_letter)
        if len(out) > limit:
            return out.take(slice(0, limit)), True
        return out, False

    def bars(
        self,
        symbol: str,
        tf: TimeFrame,
        start_ns: int,
        end_ns: int,
        limit: int,
        desc: bool = False,
        *,
        until_ns: int | None = None,
    ) -> tuple[Bars, bool]:
        """Bars whose ``t`` lies in ``[start_ns, end_ns]``, built from the trades (see
        :mod:`.bars` for alignment): at most ``limit`` from the early or (``desc``) the late
        end, in that order; plus whether more exist."""
        until = self._until(until_ns)
        collect = self._intraday_parts if tf.intraday else self._daily_parts
        parts = collect(symbol, tf, start_ns, end_ns, limit, desc, until)
        if not parts:
            return EMPTY_BARS, False
        if desc:
            parts.reverse()
        out = aggregate(Bars.concat([bars for bars, _ in parts]), np.concatenate([keys for _, keys in parts]))
        more = len(out) > limit
        if desc:
            out = out.take(slice(None, None, -1))
        return (out.take(slice(0, limit)) if more else out), more

    def _intraday_parts(
        self, symbol: str, tf: TimeFrame, start_ns: int, end_ns: int, limit: int, desc: bool, until: int
    ) -> list:
        """Minute bars with their bar keys, day by day, until ``limit + 1`` bars have begun
        (so the first ``limit`` are complete), walking away from the requested end."""
        lo = max(start_ns, _FIRST_NS)
        hi = min(tf.bucket_end(end_ns), until, _LAST_NS)
        parts: list = []
        count, edge = 0, None
        for d in _days(lo, hi, desc):
            day = self.day_minutes(symbol, d, until)
            i0, i1 = np.searchsorted(day.t, [lo, hi])
            if i1 <= i0:
                continue
            bars = day.take(slice(int(i0), int(i1)))
            keys = tf.bucket(bars.t)
            if keys[0] < start_ns:  # minutes of the bar that began before `start`
                keep = keys >= start_ns
                bars, keys = bars.take(keep), keys[keep]
                if not len(keys):
                    continue
            parts.append((bars, keys))
            # A bar may straddle two New York days: count it once.
            near, far = (keys[-1], keys[0]) if desc else (keys[0], keys[-1])
            count += distinct(keys) - (near == edge)
            edge = far
            if count > limit:
                break
        return parts

    def _daily_parts(
        self, symbol: str, tf: TimeFrame, start_ns: int, end_ns: int, limit: int, desc: bool, until: int
    ) -> list:
        """Day summaries with their bar keys, as :meth:`_intraday_parts` does with minutes."""
        first = tf.day_bucket(ny_date(from_ns(max(start_ns, _FIRST_NS))))
        if tf.day_key(first) < start_ns:
            first = tf.next_day_bucket(first)
        last_bar = tf.day_bucket(ny_date(from_ns(min(end_ns, _LAST_NS))))
        last = min(tf.next_day_bucket(last_bar) - timedelta(days=1), ny_date(from_ns(until - 1)))
        parts: list = []
        count, edge = 0, None
        step = timedelta(days=-1 if desc else 1)
        d = last if desc else first
        while first <= d <= last:
            summary = self.day_summary(symbol, d, until)
            if len(summary):
                key = tf.day_key(d)
                parts.append((summary, np.array([key], dtype=np.int64)))
                count += key != edge
                edge = key
                if count > limit:
                    break
            d += step
        return parts

    def day_minutes(self, symbol: str, d: date, until_ns: int | None = None) -> Bars:
        """The one-minute bars of New York day ``d`` up to ``until_ns`` (default: now)."""
        until = self._until(until_ns)
        window = self._window(d)
        if window is None or window[0] >= until or symbol not in PROFILES:
            return EMPTY_BARS
        if window[1] <= until:
            bars = self._minutes.get((symbol, d))
            if bars is None:
                tape = self._session_tape(symbol, d)
                bars = minute_bars(tape.t, tape.price, tape.size)
                self._minutes.put((symbol, d), bars)
            return bars
        tape = self._session_tape(symbol, d)  # today: the bars so far, the last one partial
        k = int(np.searchsorted(tape.t, until))
        return minute_bars(tape.t[:k], tape.price[:k], tape.size[:k])

    def day_summary(self, symbol: str, d: date, until_ns: int | None = None) -> Bars:
        """One bar of all of day ``d``'s trades up to ``until_ns`` (empty if none); ``t`` is
        New York midnight, as Alpaca stamps daily bars."""
        until = self._until(until_ns)
        window = self._window(d)
        if window is None or window[0] >= until or symbol not in PROFILES:
            return EMPTY_BARS
        complete = window[1] <= until
        if complete:
            cached = self._summaries.get((symbol, d))
            if cached is not None:
                return Bars(*(np.array([x]) for x in cached))
        tape = self._session_tape(symbol, d)
        k = int(np.searchsorted(tape.t, until)) if not complete else tape.n
        if k == 0:
            return EMPTY_BARS
        p, s = tape.price[:k], tape.size[:k]
        one = lambda x: np.array([x], dtype=np.int64)  # noqa: E731
        summary = Bars(
            one(to_ns(ny_midnight(d))),
            one(p[0]),
            one(p.max()),
            one(p.min()),
            one(p[-1]),
            one(s.sum()),
            one(k),
            np.array([float(np.dot(p, s.astype(float)))]),
        )
        if complete:  # kept as a tuple of scalars: ~0.3 kB a day instead of ~1 kB of arrays
            self._summaries.put((symbol, d), tuple(getattr(summary, f)[0].item() for f in BAR_FIELDS))
        return summary

    def latest_ticks(self, symbol: str, *, by_quote: bool = False, until_ns: int | None = None) -> Ticks | None:
        """The last trade (or quote) before ``until_ns`` (default: now) as 1-row columns."""
        if symbol not in PROFILES:
            return None
        try:
            tape, j = self._latest_ns(symbol, self._until(until_ns) - 1, by_quote)
        except NoData:
            return None
        return Ticks.of(tape, j, j + 1)

    def latest_minute_bar(self, symbol: str, until_ns: int | None = None) -> Bars:
        """The minute bar holding the latest trade (partial while that minute runs)."""
        last = self.latest_ticks(symbol, until_ns=until_ns)
        if last is None:
            return EMPTY_BARS
        t = int(last.t[0])
        tape = self._session_tape(symbol, ny_date(from_ns(t)))
        # Sessions start on whole minutes, so the minute lies within the trade's own day.
        i0, i1 = np.searchsorted(tape.t, [t // MINUTE_NS * MINUTE_NS, t + 1])
        return minute_bars(tape.t[i0:i1], tape.price[i0:i1], tape.size[i0:i1])

    def daily_bars(self, symbol: str, until_ns: int | None = None) -> tuple[Bars, Bars]:
        """(current day's bar, previous trading day's bar) as of ``until_ns`` (default: now).

        The current day is the day of the latest trade; either bar may be empty.
        """
        last = self.latest_ticks(symbol, until_ns=until_ns)
        if last is None:
            return EMPTY_BARS, EMPTY_BARS
        until = self._until(until_ns)
        d = ny_date(from_ns(int(last.t[0])))
        today = self.day_summary(symbol, d, until)
        for _ in range(_LOOKBACK_DAYS):
            d -= timedelta(days=1)
            prev = self.day_summary(symbol, d, until)
            if len(prev):
                return today, prev
        return today, EMPTY_BARS


_NO_TRADES = (np.empty(0, np.int64), np.empty(0, np.int64))


def _days(lo_ns: int, hi_ns: int, desc: bool):
    """New York days overlapping ``[lo_ns, hi_ns)``, in either direction."""
    if hi_ns <= lo_ns:
        return
    first, last = ny_date(from_ns(lo_ns)), ny_date(from_ns(hi_ns - 1))
    step = timedelta(days=-1 if desc else 1)
    d = last if desc else first
    while first <= d <= last:
        yield d
        d += step


def _dec(units) -> Decimal:
    return Decimal(int(units)) / _SCALE
