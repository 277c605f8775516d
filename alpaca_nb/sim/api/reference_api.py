"""The trading API's reference routes: ``/v2/clock``, ``/v2/calendar`` and ``/v2/assets``.

They describe the local market rather than the account, so they live beside the market data
routes (:func:`register` adds them to :data:`alpaca_nb.sim.api.data_api.routes`).

- ``GET /v2/clock``: now, ``is_open``, ``next_open``, ``next_close`` in New York time.
- ``GET /v2/calendar?start=&end=&date_type=``: trading days (default 1970-2029, as Alpaca),
  ``"open": "09:30"`` style times; ``date_type=SETTLEMENT`` selects by settlement date.
- ``GET /v2/assets?status=&asset_class=&exchange=&attributes=``, and
  ``GET /v2/assets/{symbol_or_asset_id}`` (404, code 40410000, when unknown).
"""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from ..account.errors import SimError, bad_request, not_found
from ..account.values import parse_time
from ..market.assets import asset, filter_assets
from ..market.calendar import NY
from .http import json_response
from .state import SIM_KEY

CALENDAR_FIRST = date(1970, 1, 1)
CALENDAR_LAST = date(2029, 12, 31)
_EXCHANGES = ("AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC")


async def clock(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    now = sim.clock.now()
    return json_response(
        {
            "timestamp": now.astimezone(NY).isoformat(),
            "is_open": sim.hours.is_open(now),
            "next_open": sim.hours.next_open(now).astimezone(NY).isoformat(),
            "next_close": sim.hours.next_close(now).astimezone(NY).isoformat(),
        }
    )


def _calendar_date(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        value = parse_time(raw, name)
    except SimError as err:
        raise bad_request(err.message) from None
    # A bare date means that date; a timestamp means its New York date.
    if len(raw) == 10:
        return date.fromisoformat(raw)
    assert value is not None  # raw is not empty, so it parsed (or was a 400)
    return value.astimezone(NY).date()


async def calendar(request: web.Request) -> web.Response:
    hours = request.app[SIM_KEY].hours
    start = _calendar_date(request, "start", CALENDAR_FIRST)
    end = _calendar_date(request, "end", CALENDAR_LAST)
    date_type = request.query.get("date_type", "TRADING").upper()
    if date_type not in ("TRADING", "SETTLEMENT"):
        raise bad_request(f"invalid date_type: {date_type!r} (TRADING or SETTLEMENT)")
    if date_type == "TRADING":
        days = (hours.calendar_day(d) for d in _dates(start, end))
        return json_response([day for day in days if day is not None])
    # Settlement is at most a week after the trade: look back that far, keep what settles in range.
    days = (hours.calendar_day(d) for d in _dates(start - timedelta(days=10), end))
    return json_response(
        [day for day in days if day is not None and start.isoformat() <= day["settlement_date"] <= end.isoformat()]
    )


def _dates(start: date, end: date):
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


async def assets(request: web.Request) -> web.Response:
    query = request.query
    status = query.get("status") or None
    if status not in (None, "active", "inactive"):
        raise SimError(422, 42210000, f"invalid status: {status!r} (active or inactive)")
    exchange = query.get("exchange") or None
    if exchange is not None and exchange not in _EXCHANGES:
        raise SimError(422, 42210000, f"invalid exchange: {exchange!r} (one of {', '.join(_EXCHANGES)})")
    attributes = [a for a in (query.get("attributes") or "").split(",") if a] or None
    return json_response(
        filter_assets(
            status=status, asset_class=query.get("asset_class") or None, exchange=exchange, attributes=attributes
        )
    )


async def one_asset(request: web.Request) -> web.Response:
    found = asset(request.match_info["symbol_or_asset_id"])
    if found is None:
        raise not_found("asset not found")
    return json_response(found)


def register(routes: web.RouteTableDef) -> None:
    """Add the reference routes to ``routes`` (the data API's table)."""
    routes.get("/v2/clock")(clock)
    routes.get("/v2/calendar")(calendar)
    routes.get("/v2/assets")(assets)
    # ".+" so that crypto pairs such as BTC/USD, which alpaca-py does not URL-encode, reach
    # the handler and get Alpaca's 404 rather than the router's.
    routes.get("/v2/assets/{symbol_or_asset_id:.+}")(one_asset)
