"""Turn an order POST / PATCH body into a checked :class:`OrderRequest`, as Alpaca does.

Everything here depends only on the body and the asset; checks that need the account
(buying power, available quantity, shorting) live in ``risk.py``. Every refusal is a
:class:`SimError` whose message names the field, with Alpaca's status and code:
422 / 40010001 for a missing or malformed field, 422 / 42210000 for a rule the order breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import SimError, unprocessable
from .orders import ORDER_CLASSES, ORDER_TYPES, POSITION_INTENTS, SIDES, TIME_IN_FORCES, Order
from .values import parse_decimal

PENNY = Decimal("0.01")
_SUB_DOLLAR_TICK = Decimal("0.0001")
_QTY_PLACES = 9
MIN_NOTIONAL = Decimal(1)


def invalid(message: str) -> SimError:
    """Alpaca's answer to a missing or malformed request field (422, code 40010001)."""
    return SimError(422, 40010001, message)


@dataclass
class OrderRequest:
    """A POST /v2/orders body after every body-level check passed."""

    symbol: str
    asset: dict
    side: str
    type: str
    time_in_force: str
    order_class: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_price: Decimal | None
    trail_percent: Decimal | None
    extended_hours: bool
    client_order_id: str | None
    position_intent: str | None
    take_profit: Decimal | None  # take_profit.limit_price
    stop_loss_stop: Decimal | None  # stop_loss.stop_price
    stop_loss_limit: Decimal | None  # stop_loss.limit_price (a stop_limit exit when set)

    @property
    def fractional(self) -> bool:
        return self.notional is not None or (self.qty is not None and self.qty % 1 != 0)


def parse_order_body(body: dict, find_asset: Callable[[str], dict | None], *, leg_rules: bool = True) -> OrderRequest:
    """Check a new-order body. ``leg_rules=False`` skips the order-class rules (a replacement
    keeps the class and legs of the order it replaces)."""
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    symbol = body.get("symbol")
    if symbol is None or symbol == "":
        raise invalid("symbol is required")
    if not isinstance(symbol, str):
        raise unprocessable(f"invalid symbol: expected a string, got {type(symbol).__name__}")

    intent = _optional_enum(body, "position_intent", POSITION_INTENTS)
    if intent is None:
        side = _enum(body, "side", SIDES)
    else:
        side = _optional_enum(body, "side", SIDES) or intent.split("_")[0]
        if not intent.startswith(side):
            raise unprocessable(f"position_intent {intent} does not match side {side}")
    order_type = _enum(body, "type", ORDER_TYPES, label="order type")
    tif = _enum(body, "time_in_force", TIME_IN_FORCES)
    order_class = body.get("order_class") or "simple"
    if order_class == "mleg":
        raise unprocessable("order_class mleg is for options, which the local broker does not trade")
    if order_class not in ORDER_CLASSES:
        raise invalid(f"invalid order_class: {order_class!r} (one of {', '.join(ORDER_CLASSES)})")
    extended = body.get("extended_hours", False)
    if extended is None:
        extended = False
    if not isinstance(extended, bool):
        raise unprocessable(f"invalid extended_hours: expected a boolean, got {extended!r}")
    coid = body.get("client_order_id")
    if coid is not None:
        if not isinstance(coid, str):
            raise unprocessable("invalid client_order_id: expected a string")
        if len(coid) > 128:
            raise invalid("client_order_id must be no more than 128 characters")
        if coid == "":
            coid = None

    qty = parse_decimal(body.get("qty"), "qty")
    notional = parse_decimal(body.get("notional"), "notional")
    limit_price = _price(body, "limit_price")
    stop_price = _price(body, "stop_price")
    trail_price = _price(body, "trail_price")
    trail_percent = parse_decimal(body.get("trail_percent"), "trail_percent")

    asset = find_asset(symbol)
    if asset is None:
        raise unprocessable(f'asset "{symbol}" not found')
    if asset.get("status") != "active":
        raise unprocessable(f'asset "{asset["symbol"]}" is not active')
    if not asset.get("tradable", False):
        raise unprocessable(f'asset "{asset["symbol"]}" is not tradable')

    _check_quantity(qty, notional, order_type, tif, asset)
    _check_type_fields(order_type, tif, limit_price, stop_price, trail_price, trail_percent, order_class)
    if extended and not (order_type == "limit" and tif in ("day", "gtc")):
        raise unprocessable("extended_hours orders must be limit orders with time_in_force day or gtc")

    take_profit = stop_loss_stop = stop_loss_limit = None
    if leg_rules and order_class != "simple":
        take_profit, stop_loss_stop, stop_loss_limit = _check_class(
            body, order_class, order_type, tif, qty, notional, extended
        )
        if order_class == "oco":
            # An OCO order is its take-profit limit leg plus a stop leg (Alpaca's shape).
            limit_price = take_profit
    return OrderRequest(
        symbol=asset["symbol"],
        asset=asset,
        side=side,
        type=order_type,
        time_in_force=tif,
        order_class=order_class,
        qty=qty,
        notional=notional,
        limit_price=limit_price,
        stop_price=stop_price,
        trail_price=trail_price,
        trail_percent=trail_percent,
        extended_hours=extended,
        client_order_id=coid,
        position_intent=intent,
        take_profit=take_profit,
        stop_loss_stop=stop_loss_stop,
        stop_loss_limit=stop_loss_limit,
    )


def check_leg_prices(req: OrderRequest, base_price: Decimal) -> None:
    """Alpaca's bracket / oto / oco price rules against the entry's ``base_price``.

    base_price is the entry's limit (or stop) price, else the last trade. A buy's take-profit
    must sit at least a cent above it and its stop-loss a cent below; mirrored for a sell.
    """
    if req.order_class == "oco":
        if req.take_profit is not None and req.stop_loss_stop is not None:
            if req.side == "sell" and req.take_profit <= req.stop_loss_stop:
                raise unprocessable("take_profit.limit_price must be > stop_loss.stop_price")
            if req.side == "buy" and req.take_profit >= req.stop_loss_stop:
                raise unprocessable("take_profit.limit_price must be < stop_loss.stop_price")
        return
    if req.order_class not in ("bracket", "oto"):
        return
    up, down = base_price + PENNY, base_price - PENNY
    if req.side == "buy":
        if req.take_profit is not None and req.take_profit < up:
            raise unprocessable(f"take_profit.limit_price must be >= base_price + 0.01 (base_price {base_price})")
        if req.stop_loss_stop is not None and req.stop_loss_stop > down:
            raise unprocessable(f"stop_loss.stop_price must be <= base_price - 0.01 (base_price {base_price})")
    else:
        if req.take_profit is not None and req.take_profit > down:
            raise unprocessable(f"take_profit.limit_price must be <= base_price - 0.01 (base_price {base_price})")
        if req.stop_loss_stop is not None and req.stop_loss_stop < up:
            raise unprocessable(f"stop_loss.stop_price must be >= base_price + 0.01 (base_price {base_price})")


def replacement_body(order: Order, patch: dict) -> dict:
    """The full order body a PATCH amounts to: the old order's terms overridden by ``patch``.

    Only qty, time_in_force, limit_price, stop_price, trail and client_order_id may change.
    """
    if not isinstance(patch, dict):
        raise invalid("request body must be a JSON object")
    if order.notional is not None:
        raise unprocessable("notional orders cannot be replaced: cancel and submit a new order")
    if patch.get("notional") is not None:
        raise unprocessable("notional cannot be set on a replacement of a qty order")
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "qty": order.remaining,
        "extended_hours": order.extended_hours,
    }
    if order.type in ("limit", "stop_limit"):
        body["limit_price"] = order.limit_price
    if order.type in ("stop", "stop_limit"):
        body["stop_price"] = order.stop_price
    if order.type == "trailing_stop":
        body["trail_price"], body["trail_percent"] = order.trail_price, order.trail_percent
    for key in ("qty", "time_in_force", "limit_price", "stop_price", "client_order_id"):
        if patch.get(key) is not None:
            body[key] = patch[key]
    if patch.get("limit_price") is not None and order.type not in ("limit", "stop_limit"):
        raise unprocessable(f"limit_price cannot be set on a {order.type} order")
    if patch.get("stop_price") is not None and order.type not in ("stop", "stop_limit"):
        raise unprocessable(f"stop_price cannot be set on a {order.type} order")
    if patch.get("trail") is not None:
        if order.type != "trailing_stop":
            raise unprocessable(f"trail can only be set on a trailing_stop order, not {order.type}")
        key = "trail_price" if order.trail_price is not None else "trail_percent"
        body[key] = patch["trail"]
    return body


# ---- helpers --------------------------------------------------------------------------------
def _enum(body: dict, field: str, allowed: tuple[str, ...], *, label: str | None = None) -> str:
    """A required field whose value is one of ``allowed``."""
    value = _optional_enum(body, field, allowed, label=label)
    if value is None:
        raise invalid(f"{field} is required")
    return value


def _optional_enum(body: dict, field: str, allowed: tuple[str, ...], *, label: str | None = None) -> str | None:
    """A field that may be missing (or empty: None) or else is one of ``allowed``."""
    value = body.get(field)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise invalid(f"invalid {label or field}: {value!r} (one of {', '.join(allowed)})")
    return value


def _price(body: dict, field: str, label: str | None = None) -> Decimal | None:
    label = label or field
    price = parse_decimal(body.get(field), label)
    if price is not None:
        check_price(price, label)
    return price


def check_price(price: Decimal, field: str) -> None:
    """Positive, and in whole cents from $1 up (1/100 cent below), or Alpaca refuses it."""
    if price <= 0:
        raise unprocessable(f"{field} must be > 0")
    tick = PENNY if price >= 1 else _SUB_DOLLAR_TICK
    if price % tick != 0:
        raise unprocessable(f"invalid {field} {price}. sub-penny increment does not fulfill minimum pricing criteria")


def _places(number: Decimal) -> int:
    """Decimal places of a finite number (``parse_decimal`` lets no other through)."""
    exponent = number.as_tuple().exponent
    return -exponent if isinstance(exponent, int) else 0


def _check_quantity(qty: Decimal | None, notional: Decimal | None, order_type: str, tif: str, asset: dict) -> None:
    if qty is None and notional is None:
        raise invalid("qty or notional is required")
    if qty is not None and notional is not None:
        raise invalid("only one of qty or notional may be given")
    if qty is not None:
        if qty <= 0:
            raise unprocessable("qty must be > 0")
        if _places(qty) > _QTY_PLACES:
            raise unprocessable(f"qty must have at most {_QTY_PLACES} decimal places")
    if notional is not None:
        if notional < MIN_NOTIONAL:
            raise unprocessable("notional must be >= 1")
        if _places(notional) > 2:
            raise unprocessable("notional must be in whole cents")
        if order_type != "market":
            raise unprocessable("notional orders must be market orders")
    fractional = notional is not None or (qty is not None and qty % 1 != 0)
    if fractional:
        if not asset.get("fractionable", False):
            raise unprocessable(f'asset "{asset["symbol"]}" is not fractionable')
        if order_type not in ("market", "limit"):
            raise unprocessable("fractional orders must be market or limit orders")
        if tif != "day":
            raise unprocessable("fractional orders must be DAY orders")


def _check_type_fields(
    order_type: str, tif: str, limit_price, stop_price, trail_price, trail_percent, order_class: str
) -> None:
    needs_limit = order_type in ("limit", "stop_limit") and order_class != "oco"
    if needs_limit and limit_price is None:
        raise invalid(f"limit_price is required for {order_type} orders")
    if order_type in ("market", "stop", "trailing_stop") and limit_price is not None:
        raise unprocessable(f"limit_price is not allowed for {order_type} orders")
    if order_type in ("stop", "stop_limit") and stop_price is None:
        raise invalid(f"stop_price is required for {order_type} orders")
    if order_type in ("market", "limit", "trailing_stop") and stop_price is not None:
        raise unprocessable(f"stop_price is not allowed for {order_type} orders")
    if order_type == "trailing_stop":
        if (trail_price is None) == (trail_percent is None):
            raise invalid("trailing_stop orders need exactly one of trail_price or trail_percent")
        if trail_percent is not None and not (0 < trail_percent < 100):
            raise unprocessable("trail_percent must be > 0 and < 100")
    elif trail_price is not None or trail_percent is not None:
        raise unprocessable(f"trail_price and trail_percent are not allowed for {order_type} orders")
    if order_type in ("stop", "stop_limit", "trailing_stop") and tif not in ("day", "gtc"):
        raise unprocessable(f"invalid time_in_force {tif} for {order_type} orders (day or gtc)")
    if tif in ("opg", "cls", "ioc", "fok") and order_type not in ("market", "limit"):
        raise unprocessable(f"time_in_force {tif} is only for market and limit orders")


def _check_class(
    body: dict,
    order_class: str,
    order_type: str,
    tif: str,
    qty: Decimal | None,
    notional: Decimal | None,
    extended: bool,
):
    tp, sl = body.get("take_profit"), body.get("stop_loss")
    for name, value in (("take_profit", tp), ("stop_loss", sl)):
        if value is not None and not isinstance(value, dict):
            raise unprocessable(f"invalid {name}: expected an object")
    take_profit = _price(tp, "limit_price", "take_profit.limit_price") if tp else None
    sl_stop = _price(sl, "stop_price", "stop_loss.stop_price") if sl else None
    sl_limit = _price(sl, "limit_price", "stop_loss.limit_price") if sl else None
    if sl and sl_stop is None:
        raise invalid("stop_loss.stop_price is required")
    if tp and take_profit is None:
        raise invalid("take_profit.limit_price is required")
    if order_class in ("bracket", "oco"):
        if take_profit is None:
            raise invalid(f"{order_class} orders require take_profit.limit_price")
        if sl_stop is None:
            raise invalid(f"{order_class} orders require stop_loss.stop_price")
    if order_class == "oto" and (take_profit is None) == (sl_stop is None):
        raise invalid("oto orders require exactly one of take_profit or stop_loss")
    if order_class == "oco" and order_type != "limit":
        raise unprocessable("oco orders must be limit orders")
    if order_type == "trailing_stop":
        raise unprocessable(f"{order_class} orders cannot have a trailing_stop entry")
    if tif not in ("day", "gtc"):
        raise unprocessable(f"{order_class} orders must be day or gtc orders")
    if notional is not None:
        raise unprocessable(f"{order_class} orders cannot be notional")
    if qty is not None and qty % 1 != 0:
        raise unprocessable(f"{order_class} orders cannot have a fractional qty")
    if extended:
        raise unprocessable(f"{order_class} orders cannot trade in extended hours")
    return take_profit, sl_stop, sl_limit
