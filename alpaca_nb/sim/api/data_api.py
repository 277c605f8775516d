"""Market Data API v2 for stocks, served from the synthetic market.

Historical bars, trades and quotes (multi-symbol ``/v2/stocks/bars?symbols=A,B`` as alpaca-py
calls them, and single-symbol ``/v2/stocks/{symbol}/bars`` as other clients do), the latest
trade / quote / minute bar, and snapshots. The reference routes of the trading API (clock,
calendar, assets) are registered on the same table by :mod:`.reference_api`.

Paging follows Alpaca: ``limit`` (1-10000, default 1000) counts items over all symbols; items
come sorted by symbol, then time (``sort=desc`` reverses time only), so one page may hold the
end of one symbol and the start of the next. ``next_page_token`` is base64 of
``SYMBOL|kind|last-timestamp`` (kind B, T or Q) and the next page resumes strictly after
that item; it is null on the last page. Unknown symbols are simply absent (``"bars": {}``).

Bad parameters answer 400 ``{"code": 40010000, "message": "invalid limit: ..."}``, naming
the parameter, as the spec declares for these endpoints. ``feed`` may be any of Alpaca's
feeds and all serve the same data, except ``delayed_sip``, which ends 15 minutes before now;
``adjustment`` and ``asof`` are checked and otherwise have no effect (the synthetic market has
no corporate actions); ``currency`` must be USD.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass

import numpy as np
from aiohttp import web

from ..account.errors import SimError, bad_request, not_found
from ..account.values import parse_time
from ..market.assets import PROFILES
from ..market.bars import TimeFrame, from_ns, parse_timeframe, to_ns
from ..market.calendar import ny_date, ny_midnight
from ..market.data_json import BarJSON, QuoteJSON, TradeJSON, bar_items, quote_items, rfc3339, trade_items
from ..market.market import Market
from .http import encode_json, json_response
from .state import SIM_KEY

routes = web.RouteTableDef()

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
ADJUSTMENTS = ("raw", "split", "dividend", "spin-off", "all")
DELAY_NS = 15 * 60 * 1_000_000_000
_KIND_LETTER = {"bars": "B", "trades": "T", "quotes": "Q"}

_COMMON = {"feed", "currency"}
_HISTORICAL = _COMMON | {"start", "end", "limit", "asof", "page_token", "sort"}
_ALLOWED = {
    "bars": _HISTORICAL | {"timeframe", "adjustment"},
    "trades": _HISTORICAL,
    "quotes": _HISTORICAL,
    "latest": _COMMON,
    "snapshots": _COMMON,
}


@dataclass(frozen=True)
class _Request:
    """The checked parameters of one historical data request."""

    symbols: list[str]
    start_ns: int
    end_ns: int  # inclusive
    until_ns: int  # exclusive end of what the feed may show
    limit: int
    desc: bool
    timeframe: TimeFrame | None
    cursor: tuple[str, int] | None
    currency: bool


# ---------------------------------------------------------------------- parameters


def _check_names(request: web.Request, kind: str, multi: bool) -> None:
    allowed = _ALLOWED[kind] | ({"symbols"} if multi else set())
    unexpected = sorted(set(request.query) - allowed)
    if unexpected:
        raise bad_request(f"unexpected parameter(s): {', '.join(unexpected)}")


def _symbols(request: web.Request, multi: bool) -> list[str]:
    if not multi:
        return [request.match_info["symbol"]]
    raw = request.query.get("symbols", "")
    symbols = sorted({s.strip() for s in raw.split(",") if s.strip()})
    if not symbols:
        raise bad_request("invalid symbols: give at least one symbol, e.g. symbols=AAPL,MSFT")
    return symbols


def _until(request: web.Request, market: Market) -> int:
    """Exclusive end of the data the requested feed shows (delayed SIP: 15 minutes ago)."""
    feed = request.query.get("feed")
    if feed is not None and feed not in FEEDS:
        raise bad_request(f"invalid feed: {feed!r} (one of {', '.join(FEEDS)})")
    now = market.now_ns() + 1
    return now - DELAY_NS if feed == "delayed_sip" else now


def _currency(request: web.Request) -> bool:
    currency = request.query.get("currency")
    if currency is not None and currency.upper() != "USD":
        raise bad_request(f"invalid currency: {currency!r} (the local broker quotes USD only)")
    return currency is not None


def _time(request: web.Request, name: str) -> int | None:
    try:
        value = parse_time(request.query.get(name), name)
    except SimError as err:
        raise bad_request(err.message) from None
    return None if value is None else to_ns(value)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request(f"invalid limit: {raw!r} (must be between 1 and {MAX_LIMIT})")
    return limit


def _historical_request(request: web.Request, kind: str, multi: bool) -> _Request:
    _check_names(request, kind, multi)
    market = request.app[SIM_KEY].market
    symbols = _symbols(request, multi)
    timeframe = None
    if kind == "bars":
        try:
            timeframe = parse_timeframe(request.query.get("timeframe", ""))
        except ValueError as err:
            raise bad_request(str(err)) from None
        adjustment = request.query.get("adjustment", "raw")
        if not set(adjustment.split(",")) <= set(ADJUSTMENTS):
            raise bad_request(f"invalid adjustment: {adjustment!r} (any of {', '.join(ADJUSTMENTS)})")
    asof = request.query.get("asof")
    if asof not in (None, "", "-"):
        try:
            np.datetime64(asof, "D")
        except ValueError:
            raise bad_request(f"invalid asof: {asof!r} (YYYY-MM-DD or -)") from None
    sort = request.query.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise bad_request(f"invalid sort: {sort!r} (asc or desc)")
    until = _until(request, market)
    end = _time(request, "end")
    end = until - 1 if end is None else end
    start = _time(request, "start")
    if start is None:  # Alpaca: the beginning of the current day
        start = to_ns(ny_midnight(ny_date(from_ns(until - 1))))
    if start > end:
        raise bad_request("invalid start: start must not be after end")
    return _Request(
        symbols,
        start,
        end,
        until,
        _limit(request),
        sort == "desc",
        timeframe,
        _decode_token(request.query.get("page_token"), kind, symbols),
        _currency(request),
    )


# ---------------------------------------------------------------------- page tokens


def _encode_token(symbol: str, kind: str, ns: int) -> str:
    text = f"{symbol}|{_KIND_LETTER[kind]}|{rfc3339(np.array([ns]))[0]}"
    return base64.b64encode(text.encode()).decode()


def _decode_token(token: str | None, kind: str, symbols: list[str]) -> tuple[str, int] | None:
    if not token:
        return None
    try:
        symbol, letter, stamp = base64.b64decode(token, validate=True).decode().split("|")
        ns = int(np.datetime64(stamp.rstrip("Z"), "ns").astype(np.int64))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request("invalid page_token: not a token this API issued") from None
    if letter != _KIND_LETTER[kind] or symbol not in symbols:
        raise bad_request("invalid page_token: it belongs to a different request")
    return symbol, ns


# ---------------------------------------------------------------------- historical


def _page(market: Market, kind: str, q: _Request) -> tuple[dict[str, list], str | None]:
    """One page: items per symbol (at most ``q.limit`` in all) and the next page's token."""
    out: dict[str, list] = {}
    remaining = q.limit
    symbols = q.symbols
    if q.cursor is not None:
        symbols = symbols[symbols.index(q.cursor[0]) :]
    known = [s for s in symbols if market.has(s)]
    for i, symbol in enumerate(known):
        lo, hi = q.start_ns, q.end_ns
        if q.cursor is not None and symbol == q.cursor[0]:
            if q.desc:
                hi = min(hi, q.cursor[1] - 1)
            else:
                lo = max(lo, q.cursor[1] + 1)
        items: list[BarJSON] | list[QuoteJSON] | list[TradeJSON]
        if kind == "bars":
            assert q.timeframe is not None  # a bars query always has one
            bars, more = market.bars(symbol, q.timeframe, lo, hi, remaining, q.desc, until_ns=q.until_ns)
            items, last = bar_items(bars), (int(bars.t[-1]) if len(bars) else None)
        else:
            ticks, more = market.ticks(
                symbol, lo, hi + 1, remaining, q.desc, by_quote=kind == "quotes", until_ns=q.until_ns
            )
            items = quote_items(ticks) if kind == "quotes" else trade_items(ticks, PROFILES[symbol].lot)
            last = int((ticks.qt if kind == "quotes" else ticks.t)[-1]) if len(ticks) else None
        if items:
            out[symbol] = items
            remaining -= len(items)
        if more or (remaining == 0 and i + 1 < len(known)):
            assert last is not None  # more to come, or the page is full: this symbol gave items
            return out, _encode_token(symbol, kind, last)
    return out, None


async def _historical(request: web.Request, kind: str, multi: bool) -> web.Response:
    q = _historical_request(request, kind, multi)
    market = request.app[SIM_KEY].market
    # A full page can take tens of milliseconds (seconds for years of day bars): build and
    # encode it on a worker thread so the loop keeps serving orders and streams meanwhile.
    body = await asyncio.get_running_loop().run_in_executor(None, _historical_body, market, kind, q, multi)
    return web.Response(body=body, content_type="application/json")


def _historical_body(market: Market, kind: str, q: _Request, multi: bool) -> bytes:
    page, token = _page(market, kind, q)
    if multi:
        body: dict = {kind: page, "next_page_token": token}
    else:
        body = {kind: page.get(q.symbols[0], []), "symbol": q.symbols[0], "next_page_token": token}
    if q.currency:
        body["currency"] = "USD"
    return encode_json(body)


def _historical_route(kind: str, multi: bool):
    async def handler(request: web.Request) -> web.Response:
        return await _historical(request, kind, multi)

    handler.__name__ = f"stock_{kind}{'' if multi else '_single'}"
    return handler


for _kind in ("bars", "trades", "quotes"):
    routes.get(f"/v2/stocks/{_kind}")(_historical_route(_kind, True))
    routes.get(f"/v2/stocks/{{symbol}}/{_kind}")(_historical_route(_kind, False))


# ---------------------------------------------------------------------- latest & snapshots


def _latest_item(market: Market, kind: str, symbol: str, until: int):
    if kind == "bars":
        bars = market.latest_minute_bar(symbol, until)
        return bar_items(bars)[0] if len(bars) else None
    ticks = market.latest_ticks(symbol, by_quote=kind == "quotes", until_ns=until)
    if ticks is None:
        return None
    return quote_items(ticks)[0] if kind == "quotes" else trade_items(ticks, PROFILES[symbol].lot)[0]


def _snapshot(market: Market, symbol: str, until: int) -> dict | None:
    """latestTrade, latestQuote, minuteBar, dailyBar, prevDailyBar; absent keys when none."""
    trade = _latest_item(market, "trades", symbol, until)
    if trade is None:
        return None
    snap = {
        "latestTrade": trade,
        "latestQuote": _latest_item(market, "quotes", symbol, until),
        "minuteBar": _latest_item(market, "bars", symbol, until),
    }
    daily, previous = market.daily_bars(symbol, until)
    if len(daily):
        snap["dailyBar"] = bar_items(daily)[0]
    if len(previous):
        snap["prevDailyBar"] = bar_items(previous)[0]
    return {k: v for k, v in snap.items() if v is not None}


def _latest_route(kind: str, multi: bool):
    single_key = {"bars": "bar", "trades": "trade", "quotes": "quote", "snapshots": None}[kind]

    async def handler(request: web.Request) -> web.Response:
        _check_names(request, "snapshots" if kind == "snapshots" else "latest", multi)
        market = request.app[SIM_KEY].market
        until = _until(request, market)
        currency = _currency(request)
        found = {}
        for symbol in _symbols(request, multi):
            item = (
                _snapshot(market, symbol, until) if kind == "snapshots" else _latest_item(market, kind, symbol, until)
            )
            if item is not None:
                found[symbol] = item
        extra = {"currency": "USD"} if currency else {}
        if multi:  # snapshots have no wrapper key
            return json_response({**found, **extra} if kind == "snapshots" else {kind: found, **extra})
        symbol = request.match_info["symbol"]
        if symbol not in found:
            raise not_found(f"no {single_key or 'snapshot'} found for {symbol}")
        item = found[symbol]
        body = {**item, "symbol": symbol} if kind == "snapshots" else {single_key: item, "symbol": symbol}
        return json_response({**body, **extra})

    handler.__name__ = f"stock_latest_{kind}{'' if multi else '_single'}"
    return handler


for _kind in ("bars", "trades", "quotes"):
    routes.get(f"/v2/stocks/{_kind}/latest")(_latest_route(_kind, True))
    routes.get(f"/v2/stocks/{{symbol}}/{_kind}/latest")(_latest_route(_kind, False))
routes.get("/v2/stocks/snapshots")(_latest_route("snapshots", True))
routes.get("/v2/stocks/{symbol}/snapshot")(_latest_route("snapshots", False))

from . import reference_api  # noqa: E402  (adds /v2/clock, /v2/calendar, /v2/assets here)

reference_api.register(routes)
