"""Portfolio history: the account's equity over time, rebuilt from its activities.

Equity at any instant is cash (deposits +/- every fill before it) plus each position (the
fills' net quantity) marked at the last trade then. So the curve follows exactly the fills
the account made and the synthetic market's prices; nothing is sampled or stored.

Parameters follow ``GET /v2/account/portfolio/history``: ``period`` (``<n>D|W|M|A``),
``timeframe`` (1Min, 5Min, 15Min, 1H, 1D), ``start`` / ``end`` / ``date_end``,
``intraday_reporting`` (market_hours, extended_hours, continuous), ``extended_hours``
(deprecated alias of extended_hours reporting) and ``pnl_reset`` (per_day, no_reset).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ..market.calendar import MarketHours, ny_date, ny_midnight
from .errors import unprocessable
from .values import parse_bool, parse_time

_TIMEFRAMES = {"1Min": 60, "5Min": 300, "15Min": 900, "1H": 3600, "1D": 86400}
_PERIOD = re.compile(r"^(\d+)([DWMA])$")
_UNIT_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}
_MAX_INTRADAY_DAYS = 30


def _period_days(period: str) -> int:
    m = _PERIOD.match(period)
    if not m or int(m.group(1)) <= 0:
        raise unprocessable(f"invalid period: {period!r} (a number and D, W, M or A, like 1M)")
    return int(m.group(1)) * _UNIT_DAYS[m.group(2)]


def portfolio_history(
    *,
    activities: list[dict],
    price_at: Callable[[str, datetime], Decimal],
    hours: MarketHours,
    now: datetime,
    created_at: datetime,
    params: dict,
) -> dict:
    """The ``PortfolioHistory`` JSON for query ``params`` (strings, as they arrive)."""
    period = params.get("period") or None
    timeframe = params.get("timeframe") or None
    if timeframe is not None and timeframe not in _TIMEFRAMES:
        raise unprocessable(f"invalid timeframe: {timeframe!r} (one of {', '.join(_TIMEFRAMES)})")
    start = _time(params.get("start"), "start")
    end = _time(params.get("end"), "end")
    date_end = params.get("date_end")
    if end is None and date_end:
        if isinstance(date_end, date):
            d = date_end
        else:
            parsed = _time(date_end, "date_end")
            assert parsed is not None  # a non-empty value parses, or parse_time raised a 422
            d = parsed.date()
        end = ny_midnight(d + timedelta(days=1))
    if period and start and end:
        raise unprocessable("only two of start, end and period may be given")
    reporting = params.get("intraday_reporting") or "market_hours"
    if reporting not in ("market_hours", "extended_hours", "continuous"):
        raise unprocessable(f"invalid intraday_reporting: {reporting!r}")
    if parse_bool(params.get("extended_hours"), False) and reporting == "market_hours":
        reporting = "extended_hours"
    pnl_reset = params.get("pnl_reset") or "per_day"
    if pnl_reset not in ("per_day", "no_reset"):
        raise unprocessable(f"invalid pnl_reset: {pnl_reset!r} (per_day or no_reset)")

    days = _period_days(period) if period else None
    if timeframe is None:
        span = days if days is not None else 30
        timeframe = "1Min" if span < 7 else "15Min" if span < 30 else "1D"
    step = _TIMEFRAMES[timeframe]
    if days is None and start is None:
        days = 1 if step < 86400 else 30
    if end is None and start is not None and days is not None:
        end = start + timedelta(days=days)
    end = min(end or now, now)
    if start is None:
        assert days is not None  # set above whenever start is None
        start = end - timedelta(days=days)
    if step < 86400 and end - start > timedelta(days=_MAX_INTRADAY_DAYS):
        raise unprocessable("intraday timeframes (< 1D) can be queried for 30 days or less")
    start = max(start, created_at)

    if step == 86400:
        points = _daily_points(hours, start, end)
    else:
        points = _intraday_points(hours, start, end, step, reporting)
    curve = _EquityCurve(activities, price_at)
    equity = [curve.at(value_t) for _, value_t, _ in points]

    def closing_equity(t: datetime) -> Decimal:
        """Equity at the last close at or before ``t`` (the account's opening if later)."""
        close = _close_before(hours, t)
        return curve.at(max(close or created_at, created_at))

    base_value = closing_equity(points[0][0] if points else start)
    if step < 86400 and pnl_reset == "per_day":
        # Intraday P&L restarts each trading day from the previous close.
        day_base = {
            day: closing_equity(_day_start(hours, day, reporting)) for day in dict.fromkeys(day for _, _, day in points)
        }
        bases = [day_base[day] for _, _, day in points]
    else:
        bases = [base_value] * len(points)
    profit_loss = [round(float(e - b), 4) for e, b in zip(equity, bases, strict=False)]
    profit_loss_pct = [round(float((e - b) / b), 6) if b else 0.0 for e, b in zip(equity, bases, strict=False)]
    return {
        "timestamp": [int(label.timestamp()) for label, _, _ in points],
        "equity": [round(float(e), 2) for e in equity],
        "profit_loss": profit_loss,
        "profit_loss_pct": profit_loss_pct,
        "base_value": round(float(base_value), 2),
        "base_value_asof": ny_date(start).isoformat(),
        "timeframe": timeframe,
        "cashflow": {},
    }


def _time(value, field: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value), field)


def _daily_points(hours: MarketHours, start: datetime, end: datetime):
    """One point per trading day: labelled at the day's New York midnight, valued at its
    close (or ``end`` for today)."""
    out = []
    for day, open_t, close_t in hours.trading_days(ny_date(start), ny_date(end)):
        if open_t > end or close_t < start:
            continue
        out.append((ny_midnight(day), min(close_t, end), day))
    return out


def _day_start(hours: MarketHours, day: date, reporting: str) -> datetime:
    window = _window(hours, day, reporting)
    return window[0] if window else ny_midnight(day)


def _close_before(hours: MarketHours, t: datetime) -> datetime | None:
    """The latest session close at or before ``t``."""
    session = hours.previous_session(t - timedelta(microseconds=1))
    while session is not None and session[1] > t:
        session = hours.previous_session(session[0] - timedelta(microseconds=1))
    return session[1] if session else None


def _window(hours: MarketHours, day: date, reporting: str) -> tuple[datetime, datetime] | None:
    if reporting == "continuous" or hours.mode == "continuous":
        return ny_midnight(day), ny_midnight(day + timedelta(days=1))
    session = hours.session_of_day(day)
    if session is None:
        return None
    if reporting == "extended_hours":
        return session[0] - timedelta(hours=5, minutes=30), session[1] + timedelta(hours=4)
    return session


def _intraday_points(hours: MarketHours, start: datetime, end: datetime, step: int, reporting: str):
    """Left-labelled windows of ``step`` seconds inside the reporting windows of each day,
    each valued at its end (or ``end``)."""
    out = []
    delta = timedelta(seconds=step)
    day = ny_date(start)
    while day <= ny_date(end):
        window = _window(hours, day, reporting)
        if window is not None:
            lo, hi = max(window[0], start), min(window[1], end)
            t = _floor(lo, window[0], step)
            while t < hi:
                out.append((t, min(t + delta, end), day))
                t += delta
        day += timedelta(days=1)
    return out


def _floor(t: datetime, origin: datetime, step: int) -> datetime:
    offset = int((t - origin).total_seconds()) // step * step
    return origin + timedelta(seconds=offset)


class _EquityCurve:
    """Equity at any instant from the activity list (in time order) and market prices."""

    def __init__(self, activities: list[dict], price_at: Callable[[str, datetime], Decimal]):
        self._price_at = price_at
        self._times: list[str] = []
        self._cash: list[Decimal] = []
        self._holdings: list[dict[str, Decimal]] = []
        cash, holdings = Decimal(0), dict[str, Decimal]()
        for act in activities:
            if act["activity_type"] == "FILL":
                qty, price = Decimal(act["qty"]), Decimal(act["price"])
                signed = qty if act["side"] == "buy" else -qty
                cash -= signed * price
                holdings = dict(holdings)
                new = holdings.get(act["symbol"], Decimal(0)) + signed
                if new:
                    holdings[act["symbol"]] = new
                else:
                    holdings.pop(act["symbol"], None)
            elif "net_amount" in act:
                cash += Decimal(act["net_amount"])
            else:
                continue
            self._times.append(act["_t"])
            self._cash.append(cash)
            self._holdings.append(holdings)

    def at(self, t: datetime) -> Decimal:
        key = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        i = bisect_right(self._times, key) - 1
        if i < 0:
            return Decimal(0)
        equity = self._cash[i]
        for symbol, qty in self._holdings[i].items():
            equity += qty * self._price_at(symbol, t)
        return equity
