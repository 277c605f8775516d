"""Pure matching rules: when an order may trade against the market, at what price, how much.

No state lives here: the engine passes an order, the latest quote / trade price and the
displayed size still unused this quote, and applies what these functions decide. Rules:

* market (and a triggered stop / trailing stop) buys at the ask, sells at the bid;
* limit (and a triggered stop_limit) buys when ask <= limit, sells when bid >= limit, at the
  quote (the better price for the customer);
* stop orders trigger on the last trade: a buy stop at trade >= stop, a sell stop at <= stop;
* a trailing stop tracks the high-water mark (a sell: the highest trade since it was placed;
  a buy: the lowest) and its stop is that mark minus (plus) the trail, in cents.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from .orders import Order

_QTY_STEP = Decimal("0.000000001")
_HUNDRED = Decimal(100)


@dataclass
class Fill:
    """One execution the engine should book."""

    qty: Decimal
    price: Decimal


def price_tick(price: Decimal) -> Decimal:
    """The minimum price increment: a cent from $1, a hundredth of a cent below."""
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def trailing_stop_price(side: str, hwm: Decimal, trail_price: Decimal | None,
                        trail_percent: Decimal | None) -> Decimal:
    """The stop a trailing order has for high-water mark ``hwm`` (rounded away from the market)."""
    offset = trail_price if trail_price is not None else hwm * trail_percent / _HUNDRED
    if side == "sell":
        stop = hwm - offset
        return max(stop.quantize(price_tick(stop), ROUND_FLOOR), Decimal("0.0001"))
    stop = hwm + offset
    return stop.quantize(price_tick(stop), ROUND_CEILING)


def track_trailing(order: Order, last_price: Decimal) -> bool:
    """Move a trailing stop's mark with ``last_price``; True when hwm / stop changed."""
    if order.hwm is None:
        mark = last_price
    elif order.side == "sell":
        mark = max(order.hwm, last_price)
    else:
        mark = min(order.hwm, last_price)
    if mark == order.hwm and order.stop_price is not None:
        return False
    order.hwm = mark
    order.stop_price = trailing_stop_price(order.side, mark, order.trail_price, order.trail_percent)
    return True


def stop_triggered(order: Order, last_price: Decimal) -> bool:
    """A buy stop triggers when the last trade is at or above it, a sell stop at or below."""
    if order.stop_price is None:
        return False
    if order.side == "buy":
        return last_price >= order.stop_price
    return last_price <= order.stop_price


def is_marketable_type(order: Order) -> bool:
    """Trades at any price now: a market order or a stop / trailing stop that has triggered."""
    return order.type == "market" or (order.triggered and order.type in ("stop", "trailing_stop"))


def execution_price(order: Order, bid: Decimal, ask: Decimal) -> Decimal | None:
    """The price the order trades at against this quote, or None if it cannot trade."""
    if order.type in ("stop", "stop_limit", "trailing_stop") and not order.triggered:
        return None
    price = ask if order.side == "buy" else bid
    if price is None or price <= 0:
        return None
    if is_marketable_type(order):
        return price
    limit = order.limit_price
    if limit is None:
        return None
    if order.side == "buy":
        return price if price <= limit else None
    return price if price >= limit else None


def fill_for(order: Order, price: Decimal, available: Decimal) -> Fill | None:
    """How much of ``order`` trades at ``price`` given ``available`` displayed shares.

    Notional orders are priced into whole-or-fractional shares and fill completely (fractional
    shares are filled by the broker as principal, not against the displayed size). ``fok``
    fills all or nothing.
    """
    if order.notional is not None:
        left = order.notional - order.filled_notional
        qty = (left / price).quantize(_QTY_STEP, ROUND_DOWN)
        return Fill(qty, price) if qty > 0 else None
    want = order.remaining
    if want <= 0 or available <= 0:
        return None
    if order.time_in_force == "fok" and available < want:
        return None
    return Fill(min(want, available), price)
