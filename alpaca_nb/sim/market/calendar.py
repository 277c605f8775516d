"""When the local market trades: NYSE sessions computed from the exchange's rules, or always.

Two modes, chosen once per broker:

- ``continuous`` (the default): every minute of every day trades, so a notebook works at
  3 a.m. on a Sunday. "The close" of a day (when day orders expire) is the next midnight in
  New York.
- ``nyse``: regular sessions 09:30-16:00 America/New_York on NYSE trading days, 13:00 on the
  early-close days. Holidays are *computed* from the rules NYSE publishes (weekend observance
  included), not tabled by year, so any year works::

      >>> hours = MarketHours("nyse")
      >>> hours.is_trading_day(date(2026, 11, 26))     # Thanksgiving
      False
      >>> hours.session_of_day(date(2026, 11, 27))[1]  # day after: closes 13:00 ET
      datetime.datetime(2026, 11, 27, 18, 0, tzinfo=datetime.timezone.utc)

Unscheduled closures (storms, national days of mourning) are not modelled. Every datetime
returned is aware UTC; every ``date`` is a New York calendar date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")
UTC = UTC

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
EXTENDED_OPEN = time(4, 0)
EXTENDED_CLOSE = time(20, 0)
EARLY_EXTENDED_CLOSE = time(17, 0)

MODES = ("continuous", "nyse")


# --------------------------------------------------------------------------- NYSE rules


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based) ``weekday`` (Mon=0) of a month; n=-1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous "Meeus/Jones/Butcher" computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741
    m = (a + 11 * h + 19 * l) // 433
    month = (h + l - 7 * m + 90) // 25
    return date(year, month, (h + l - 7 * m + 33 * month + 19) % 32)


def _observed(d: date) -> date:
    """NYSE observance: a Saturday holiday closes the Friday before, a Sunday one the Monday after."""
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


@cache
def nyse_holidays(year: int) -> frozenset[date]:
    """The weekdays of ``year`` on which NYSE is closed for a holiday."""
    days = set()
    new_year = date(year, 1, 1)
    # NYSE rule 7.2: New Year's Day on a Saturday is not observed on the Friday before
    # (that Friday is the last trading day of the previous year).
    if new_year.weekday() != 5:
        days.add(_observed(new_year))
    if year >= 1998:
        days.add(_nth_weekday(year, 1, 0, 3))  # Martin Luther King Jr. Day
    days.add(_nth_weekday(year, 2, 0, 3) if year >= 1971 else _observed(date(year, 2, 22)))
    days.add(_easter(year) - timedelta(days=2))  # Good Friday
    days.add(_nth_weekday(year, 5, 0, -1) if year >= 1971 else _observed(date(year, 5, 30)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days.add(_observed(date(year, 7, 4)))
    days.add(_nth_weekday(year, 9, 0, 1))  # Labor Day
    days.add(_nth_weekday(year, 11, 3, 4))  # Thanksgiving
    days.add(_observed(date(year, 12, 25)))
    return frozenset(d for d in days if d.year == year)


@cache
def nyse_early_closes(year: int) -> frozenset[date]:
    """Days closing at 13:00 ET: the day after Thanksgiving, and Christmas Eve and July 3
    when they are ordinary weekdays (not themselves the observed holiday)."""
    holidays = nyse_holidays(year)
    days = {_nth_weekday(year, 11, 3, 4) + timedelta(days=1)}
    for d in (date(year, 7, 3), date(year, 12, 24)):
        if d.weekday() < 5 and d not in holidays:
            days.add(d)
    return frozenset(days)


def is_nyse_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in nyse_holidays(d.year)


def _settlement_holidays(year: int) -> frozenset[date]:
    """Bank holidays that are not NYSE holidays still delay settlement (Columbus, Veterans Day)."""
    return frozenset({_nth_weekday(year, 10, 0, 2), _observed(date(year, 11, 11))})


def settlement_date(trade_day: date) -> date:
    """Regular-way settlement: T+1 business days since 2024-05-28, T+2 since 2017-09-05, else T+3."""
    lag = 1 if trade_day >= date(2024, 5, 28) else 2 if trade_day >= date(2017, 9, 5) else 3
    d = trade_day
    while lag:
        d += timedelta(days=1)
        if is_nyse_trading_day(d) and d not in _settlement_holidays(d.year):
            lag -= 1
    return d


def ny_date(t: datetime) -> date:
    """The New York calendar date of an aware instant."""
    return t.astimezone(NY).date()


def ny_midnight(d: date) -> datetime:
    """00:00 America/New_York on ``d``, as aware UTC (04:00Z or 05:00Z)."""
    return datetime.combine(d, time(0), NY).astimezone(UTC)


def _at(d: date, clock_time: time) -> datetime:
    return datetime.combine(d, clock_time, NY).astimezone(UTC)


# --------------------------------------------------------------------------- MarketHours


class MarketHours:
    """The trading schedule the local broker follows (``"continuous"`` or ``"nyse"``).

    The engine asks it whether the market is open and when it next closes (day orders expire
    then); the market generator asks it which window of each New York day trades; the
    ``/v2/clock`` and ``/v2/calendar`` routes print it.
    """

    def __init__(self, mode: str = "continuous"):
        if mode not in MODES:
            raise ValueError(f"market hours must be one of {MODES}, not {mode!r}")
        self.mode = mode

    def __repr__(self) -> str:
        return f"MarketHours({self.mode!r})"

    def is_trading_day(self, d: date) -> bool:
        return self.mode == "continuous" or is_nyse_trading_day(d)

    def session_of_day(self, d: date) -> tuple[datetime, datetime] | None:
        """The regular session of New York day ``d`` as (open, close) in UTC, None if closed.

        Continuous mode: the whole day, midnight to midnight (23 or 25 hours on DST changes).
        """
        return _session_of_day(self.mode, d)

    def is_open(self, t: datetime) -> bool:
        return self.session(t) is not None

    def session(self, t: datetime) -> tuple[datetime, datetime] | None:
        """The session containing instant ``t`` (open inclusive, close exclusive), or None."""
        window = self.session_of_day(ny_date(t))
        if window is not None and window[0] <= t < window[1]:
            return window
        return None

    def next_open(self, t: datetime) -> datetime:
        """The first session open strictly after ``t`` (while open: the next day's open)."""
        return self._next_edge(t, 0)

    def next_close(self, t: datetime) -> datetime:
        """The first session close strictly after ``t`` (while open: today's close)."""
        return self._next_edge(t, 1)

    def _next_edge(self, t: datetime, which: int) -> datetime:
        d = ny_date(t)
        for _ in range(15):  # the longest NYSE closure computed here is 4 days
            window = self.session_of_day(d)
            if window is not None and window[which] > t:
                return window[which]
            d += timedelta(days=1)
        raise RuntimeError(f"no session within 15 days after {t}")  # pragma: no cover

    def previous_session(self, t: datetime) -> tuple[datetime, datetime] | None:
        """The latest session that opened at or before ``t`` (the current one when open)."""
        d = ny_date(t)
        for _ in range(15):
            window = self.session_of_day(d)
            if window is not None and window[0] <= t:
                return window
            d -= timedelta(days=1)
        return None

    def trading_days(self, start: date, end: date) -> list[tuple[date, datetime, datetime]]:
        """Every trading day in ``[start, end]`` as (day, open UTC, close UTC)."""
        out = []
        d = start
        while d <= end:
            window = self.session_of_day(d)
            if window is not None:
                out.append((d, *window))
            d += timedelta(days=1)
        return out

    def calendar_day(self, d: date) -> dict | None:
        """One entry of ``GET /v2/calendar`` (times in New York, as Alpaca prints them).

        Continuous mode closes at "23:59" because alpaca-py parses the times with ``%H:%M``,
        which rejects "24:00".
        """
        if not self.is_trading_day(d):
            return None
        if self.mode == "continuous":
            open_, close, s_open, s_close = "00:00", "23:59", "0000", "2359"
        else:
            early = d in nyse_early_closes(d.year)
            open_ = REGULAR_OPEN.strftime("%H:%M")
            close = (EARLY_CLOSE if early else REGULAR_CLOSE).strftime("%H:%M")
            s_open = EXTENDED_OPEN.strftime("%H%M")
            s_close = (EARLY_EXTENDED_CLOSE if early else EXTENDED_CLOSE).strftime("%H%M")
        return {
            "date": d.isoformat(),
            "open": open_,
            "close": close,
            "session_open": s_open,
            "session_close": s_close,
            "settlement_date": settlement_date(d).isoformat(),
        }


@lru_cache(maxsize=8192)
def _session_of_day(mode: str, d: date) -> tuple[datetime, datetime] | None:
    # Cached: the engine asks on every tick and the market generator for every day it builds.
    if mode == "continuous":
        return ny_midnight(d), ny_midnight(d + timedelta(days=1))
    if not is_nyse_trading_day(d):
        return None
    close = EARLY_CLOSE if d in nyse_early_closes(d.year) else REGULAR_CLOSE
    return _at(d, REGULAR_OPEN), _at(d, close)
