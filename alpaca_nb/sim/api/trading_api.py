"""Trading API v2 routes: account, orders, positions, activities, portfolio history.

Thin HTTP faces over :class:`~alpaca_nb.sim.account.engine.Engine`: parse the query or JSON body,
call the engine, encode its answer. The engine does every check on the *content* of a
request (422 naming the field, 403 for money and shares); here only the *form* is checked:
a body that is not a JSON object is Alpaca's 400 ``request body format is invalid``, a query
parameter of the wrong type a 422 naming it. Clock, calendar and assets are served by the
market helper's :mod:`.reference_api`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from ..account.errors import SimError, bad_request, unprocessable
from ..account.values import parse_bool, parse_int, parse_time
from .http import json_response
from .state import SIM_KEY

routes = web.RouteTableDef()

_ACTIVITY_TYPES = frozenset(
    "FILL TRANS MISC ACATC ACATS CFEE CGD CSD CSW DIV DIVCGL DIVCGS DIVFEE DIVFT DIVNRA DIVROC "
    "DIVTW DIVTXEX FEE INT INTNRA INTTW JNL JNLC JNLS MA NC OPASN OPCA OPCSH OPEXC OPEXP OPTRD "
    "PTC PTR REORG SPIN SPLIT FOPT".split()
)
_HISTORY_PARAMS = (
    "period",
    "timeframe",
    "intraday_reporting",
    "start",
    "pnl_reset",
    "end",
    "date_end",
    "extended_hours",
    "cashflow_types",
)


def _engine(request: web.Request):
    return request.app[SIM_KEY].engine


async def _body(request: web.Request) -> dict:
    """The JSON object in the request body (400 as Alpaca answers anything else)."""
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError):
        raise bad_request("request body format is invalid") from None
    if not isinstance(body, dict):
        raise bad_request("request body format is invalid")
    return body


def _order_id(request: web.Request) -> str:
    value = request.match_info["order_id"]
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise SimError(422, 40010001, f"invalid order_id: {value!r} is not a UUID") from None


def _symbols(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


# ---- account ---------------------------------------------------------------------------------
@routes.get("/v2/account")
async def get_account(request: web.Request) -> web.Response:
    return json_response(_engine(request).account())


@routes.get("/v2/account/configurations")
async def get_configurations(request: web.Request) -> web.Response:
    return json_response(_engine(request).configurations())


@routes.patch("/v2/account/configurations")
async def patch_configurations(request: web.Request) -> web.Response:
    return json_response(_engine(request).update_configurations(await _body(request)))


@routes.get("/v2/account/activities")
async def get_activities(request: web.Request) -> web.Response:
    q = request.query
    types = _symbols(q.get("activity_types"))
    category = q.get("category")
    if category is not None:
        if types:
            raise unprocessable("category cannot be used with activity_types")
        if category == "trade_activity":
            types = ["FILL"]
        elif category == "non_trade_activity":
            types = sorted(_ACTIVITY_TYPES - {"FILL"})
        else:
            raise unprocessable(f"invalid category: {category!r} (trade_activity or non_trade_activity)")
    for t in types or ():
        if t not in _ACTIVITY_TYPES:
            raise unprocessable(f"invalid activity_types: {t!r} is not an activity type")
    return json_response(_activities(request, types))


@routes.get("/v2/account/activities/{activity_type}")
async def get_activities_of_type(request: web.Request) -> web.Response:
    activity_type = request.match_info["activity_type"]
    if activity_type not in _ACTIVITY_TYPES:
        raise unprocessable(f"invalid activity_type: {activity_type!r} is not an activity type")
    return json_response(_activities(request, [activity_type]))


def _activities(request: web.Request, types: list[str] | None) -> list[dict]:
    q = request.query
    return _engine(request).activities(
        activity_types=types,
        after=parse_time(q.get("after"), "after"),
        until=parse_time(q.get("until"), "until"),
        date=parse_time(q.get("date"), "date"),
        direction=q.get("direction") or "desc",
        page_size=parse_int(q.get("page_size"), "page_size", 100, 1, 100),
        page_token=q.get("page_token") or None,
    )


@routes.get("/v2/account/portfolio/history")
async def get_portfolio_history(request: web.Request) -> web.Response:
    params = {k: request.query[k] for k in _HISTORY_PARAMS if k in request.query}
    return json_response(_engine(request).portfolio_history(**params))


# ---- orders ----------------------------------------------------------------------------------
@routes.post("/v2/orders")
async def post_order(request: web.Request) -> web.Response:
    return json_response(_engine(request).submit_order(await _body(request)))


@routes.get("/v2/orders")
async def get_orders(request: web.Request) -> web.Response:
    q = request.query
    engine = _engine(request)
    after = parse_time(q.get("after"), "after")
    until = parse_time(q.get("until"), "until")
    for name in ("after_order_id", "before_order_id"):
        if q.get(name):
            if after is not None or until is not None:
                raise unprocessable(f"{name} cannot be combined with after or until")
            ref = engine.get_order(q[name])
            bound = parse_time(ref["submitted_at"], name)
            after, until = (bound, until) if name == "after_order_id" else (after, bound)
    return json_response(
        engine.list_orders(
            status=q.get("status") or "open",
            limit=parse_int(q.get("limit"), "limit", 50, 1, 500),
            after=after,
            until=until,
            direction=q.get("direction") or "desc",
            nested=parse_bool(q.get("nested"), False),
            symbols=_symbols(q.get("symbols")),
            side=q.get("side") or None,
        )
    )


@routes.delete("/v2/orders")
async def delete_orders(request: web.Request) -> web.Response:
    return json_response(_engine(request).cancel_all_orders(), status=207)


@routes.get("/v2/orders:by_client_order_id")
async def get_order_by_client_id(request: web.Request) -> web.Response:
    client_order_id = request.query.get("client_order_id")
    if not client_order_id:
        raise SimError(422, 40010001, "client_order_id is required")
    return json_response(_engine(request).get_order_by_client_order_id(client_order_id))


@routes.get("/v2/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    nested = parse_bool(request.query.get("nested"), False)
    return json_response(_engine(request).get_order(_order_id(request), nested))


@routes.patch("/v2/orders/{order_id}")
async def patch_order(request: web.Request) -> web.Response:
    order_id = _order_id(request)
    return json_response(_engine(request).replace_order(order_id, await _body(request)))


@routes.delete("/v2/orders/{order_id}")
async def delete_order(request: web.Request) -> web.Response:
    _engine(request).cancel_order(_order_id(request))
    return web.Response(status=204)


# ---- positions -------------------------------------------------------------------------------
@routes.get("/v2/positions")
async def get_positions(request: web.Request) -> web.Response:
    return json_response(_engine(request).positions())


@routes.delete("/v2/positions")
async def delete_positions(request: web.Request) -> web.Response:
    cancel = parse_bool(request.query.get("cancel_orders"), False)
    return json_response(_engine(request).close_all_positions(cancel_orders=cancel), status=207)


@routes.get("/v2/positions/{symbol_or_asset_id}")
async def get_position(request: web.Request) -> web.Response:
    return json_response(_engine(request).position(request.match_info["symbol_or_asset_id"]))


@routes.delete("/v2/positions/{symbol_or_asset_id}")
async def delete_position(request: web.Request) -> web.Response:
    q = request.query
    order = _engine(request).close_position(
        request.match_info["symbol_or_asset_id"],
        qty=_query_number(q.get("qty")),
        percentage=_query_number(q.get("percentage")),
    )
    return json_response(order)


def _query_number(value: str | None) -> Any:
    return None if value is None or value == "" else value
