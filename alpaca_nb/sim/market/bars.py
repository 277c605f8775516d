"""Bar timeframes as Alpaca spells them, and how minutes fall into bars.

``parse_timeframe`` accepts what the Market Data API accepts (``[1-59]Min``/``T``,
``[1-23]Hour``/``H``, ``1Day``/``D``, ``1Week``/``W``, ``[1,2,3,4,6,12]Month``/``M``); alpaca-py
sends the long forms. Where a bar starts (its ``t``):

- minute and hour bars: aligned to UTC midnight, so ``5Min`` bars start at :00, :05, ... and a
  ``7Hour`` day is cut 00-07, 07-14, 14-21, 21-24 UTC (bars never straddle UTC midnight);
- day bars: midnight New York time of the trading day (``...T05:00:00Z`` in winter), as Alpaca;
- week bars: the Monday of the week; month bars: the first day of the month, months grouped
  from January (``3Month`` = calendar quarters). Both at New York midnight.

A bar with ``t`` in ``[start, end]`` is returned whole, with every trade of its interval up
to the clock, so a bar at ``end`` may contain trades after ``end``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from .calendar import ny_midnight
from .tape import EMPTY_BARS, MINUTE_NS, Bars

DAY_NS = 86_400_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = {
    "Min": "Min",
    "T": "Min",
    "Hour": "Hour",
    "H": "Hour",
    "Day": "Day",
    "D": "Day",
    "Week": "Week",
    "W": "Week",
    "Month": "Month",
    "M": "Month",
}
_PATTERN = re.compile(r"(\d{1,2})(Min|T|Hour|H|Day|D|Week|W|Month|M)")
_MONTHS = (1, 2, 3, 4, 6, 12)


@dataclass(frozen=True)
class TimeFrame:
    """A bar length: ``amount`` of ``unit`` (one of Min, Hour, Day, Week, Month)."""

    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def intraday(self) -> bool:
        """Minute and hour bars are cut from minutes; longer bars from whole New York days."""
        return self.unit in ("Min", "Hour")

    @property
    def length_ns(self) -> int:
        return self.amount * MINUTE_NS * (60 if self.unit == "Hour" else 1)

    # ---- intraday bars

    def bucket(self, t: np.ndarray) -> np.ndarray:
        """Start (ns) of the bar each minute ``t`` (ns) belongs to."""
        day0 = t - t % DAY_NS
        return day0 + (t - day0) // self.length_ns * self.length_ns

    def bucket_end(self, t: int) -> int:
        """End (exclusive, ns) of the bar containing instant ``t``."""
        day0 = t - t % DAY_NS
        return min(int(self.bucket(np.array([t]))[0]) + self.length_ns, day0 + DAY_NS)

    # ---- day, week and month bars

    def day_bucket(self, d: date) -> date:
        """The New York date that names the bar containing trading day ``d``."""
        if self.unit == "Day":
            return d
        if self.unit == "Week":
            return d - timedelta(days=d.weekday())
        month = (d.month - 1) // self.amount * self.amount + 1
        return date(d.year, month, 1)

    def next_day_bucket(self, b: date) -> date:
        """The first date of the bar after the one named ``b``."""
        if self.unit == "Day":
            return b + timedelta(days=1)
        if self.unit == "Week":
            return b + timedelta(days=7)
        month0 = b.month - 1 + self.amount
        return date(b.year + month0 // 12, month0 % 12 + 1, 1)

    def day_key(self, d: date) -> int:
        """``t`` of the bar containing trading day ``d``, in ns."""
        return to_ns(ny_midnight(self.day_bucket(d)))


def parse_timeframe(text: str) -> TimeFrame:
    """``"5Min"`` -> ``TimeFrame(5, "Min")``; raises ValueError naming the rule broken."""
    match = _PATTERN.fullmatch(text or "")
    if not match:
        raise ValueError(f"invalid timeframe {text!r}")
    amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    ok = {
        "Min": 1 <= amount <= 59,
        "Hour": 1 <= amount <= 23,
        "Day": amount == 1,
        "Week": amount == 1,
        "Month": amount in _MONTHS,
    }[unit]
    if not ok:
        raise ValueError(
            f"invalid timeframe {text!r}: Min takes 1-59, Hour 1-23, Day and Week 1, "
            f"Month {', '.join(map(str, _MONTHS))}"
        )
    return TimeFrame(amount, unit)


def to_ns(dt) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact, no float)."""
    seconds = (dt - _EPOCH).days * 86_400 + (dt - _EPOCH).seconds
    return seconds * 1_000_000_000 + dt.microsecond * 1_000


def from_ns(ns: int) -> datetime:
    """Integer nanoseconds since the epoch -> aware UTC datetime (to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def aggregate(bars: Bars, keys: np.ndarray) -> Bars:
    """Merge consecutive bars sharing a key (sorted ascending) into one bar per key."""
    if len(bars) == 0:
        return EMPTY_BARS
    first = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    last = np.append(first[1:], len(keys)) - 1
    return Bars(
        t=keys[first],
        o=bars.o[first],
        h=np.maximum.reduceat(bars.h, first),
        l=np.minimum.reduceat(bars.l, first),
        c=bars.c[last],
        v=np.add.reduceat(bars.v, first),
        n=np.add.reduceat(bars.n, first),
        pv=np.add.reduceat(bars.pv, first),
    )


def distinct(keys: np.ndarray) -> int:
    """How many different values a sorted (either way) key array holds."""
    return 0 if len(keys) == 0 else 1 + int(np.count_nonzero(np.diff(keys)))
