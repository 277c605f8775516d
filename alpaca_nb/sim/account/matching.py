"""Pure matching rules: when an order may trade against the market, at what price, how much.

No state lives here: the engine passes an order, the latest quote, the trades a stop has not
seen yet and the displayed size still unused this quote, and applies what these functions
decide. Rules:

* market (and a triggered stop / trailing stop) buys at the ask, sells at the bid;
* limit (and a triggered stop_limit) buys when ask <= limit, sells when bid >= limit, at the
  quote (the better price for the customer);
* an untriggered stop sees *every* trade printed since it last looked (:func:`watch_stop`),
  not only the last one, so a spike between two engine ticks (or within one manual step)
  triggers it as it would at a real broker: a buy stop at a trade >= stop, a sell stop at a
  trade <= stop. It then executes as above, at the quote of the moment it is evaluated;
* a trailing stop tracks the high-water mark (a sell: the highest trade since it was placed;
  a buy: the lowest) and its stop is that mark minus (plus) the trail, rounded away from the
  market to the tick. Over a run of trades the mark is the running extreme, and the order
  triggers at the first trade that crosses the stop of the mark reached so far; its ``hwm``
  and ``stop_price`` then stay those of that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

import numpy as np

from ..market.tape import PRICE_SCALE
from .orders import Order

_QTY_STEP = Decimal("0.000000001")
_HUNDRED = Decimal(100)
_SCALE = Decimal(PRICE_SCALE)
_CENT = PRICE_SCALE // 100  # the $0.01 tick in price units (1/10000 $)
STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})


@dataclass
class Fill:
    """One execution the engine should book."""

    qty: Decimal
    price: Decimal


def price_tick(price: Decimal) -> Decimal:
    """The minimum price increment: a cent from $1, a hundredth of a cent below."""
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def trailing_stop_price(side: str, hwm: Decimal, trail_price: Decimal | None, trail_percent: Decimal | None) -> Decimal:
    """The stop a trailing order has for high-water mark ``hwm`` (rounded away from the market)."""
    if trail_price is not None:
        offset = trail_price
    elif trail_percent is not None:
        offset = hwm * trail_percent / _HUNDRED
    else:
        raise ValueError("a trailing stop has a trail_price or a trail_percent")
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


def watch_stop(order: Order, prices: np.ndarray) -> bool:
    """Let an untriggered stop / stop_limit / trailing_stop see ``prices``: the trades (in
    1/10000 $, in trade order) printed since it last looked. Sets ``triggered`` when one of
    them crosses the stop; a trailing stop's ``hwm`` / ``stop_price`` follow the running
    extreme up to that trade. True when the order changed."""
    if not len(prices):
        return False
    if order.type == "trailing_stop":
        return _watch_trailing(order, prices)
    if order.stop_price is None:
        return False
    if order.side == "buy":
        hit = prices.max() >= _units(order.stop_price, ROUND_CEILING)
    else:
        hit = prices.min() <= _units(order.stop_price, ROUND_FLOOR)
    if hit:
        order.triggered = True
    return bool(hit)


def _watch_trailing(order: Order, prices: np.ndarray) -> bool:
    """The mark at each trade is the running extreme so far (from ``hwm``); the first trade
    at or beyond its mark's stop triggers, and ``hwm`` / ``stop_price`` stay those of then."""
    sell = order.side == "sell"
    marks = (np.maximum if sell else np.minimum).accumulate(prices)
    if order.hwm is not None:
        start = _units(order.hwm, ROUND_FLOOR if sell else ROUND_CEILING)
        marks = np.maximum(marks, start) if sell else np.minimum(marks, start)
    stops = trailing_stop_units(order.side, marks, order.trail_price, order.trail_percent)
    hits = prices <= stops if sell else prices >= stops
    k = int(hits.argmax()) if hits.any() else len(prices) - 1
    mark = Decimal(int(marks[k])) / _SCALE
    changed = bool(hits[k])
    if mark != order.hwm or order.stop_price is None:
        order.hwm = mark
        order.stop_price = trailing_stop_price(order.side, mark, order.trail_price, order.trail_percent)
        changed = True
    if hits[k]:
        order.triggered = True
    return changed


def trailing_stop_units(
    side: str, marks: np.ndarray, trail_price: Decimal | None, trail_percent: Decimal | None
) -> np.ndarray:
    """:func:`trailing_stop_price` for an array of marks, all in 1/10000 $, exactly.

    The unrounded stop is the rational ``num / den``; it is rounded to the tick away from the
    market in integers (Python integers when int64 could overflow, e.g. a long trail_percent).
    """
    sell = side == "sell"
    if trail_price is not None:
        c, d = trail_price.as_integer_ratio()
        coef, den, shift = d, d, (-c if sell else c) * PRICE_SCALE
    elif trail_percent is not None:
        a, b = trail_percent.as_integer_ratio()
        coef, den, shift = 100 * b + (-a if sell else a), 100 * b, 0
    else:
        raise ValueError("a trailing stop has a trail_price or a trail_percent")
    big = max(int(marks.max()) * abs(coef) + abs(shift), PRICE_SCALE * den) >= 2**62
    num = (marks.astype(object) if big else marks) * coef + shift
    tick = np.where(num >= PRICE_SCALE * den, _CENT, 1)  # cents from $1, else $0.0001
    if big:
        tick = tick.astype(object)
    if sell:
        stops = np.maximum(num // (den * tick) * tick, 1)
    else:
        stops = -(-num // (den * tick)) * tick
    return stops.astype(np.int64)


def _units(price: Decimal, rounding: str) -> int:
    """``price`` in 1/10000 $, rounded to an integer that way (exact for tick prices)."""
    return int((price * _SCALE).to_integral_value(rounding))


def is_marketable_type(order: Order) -> bool:
    """Trades at any price now: a market order or a stop / trailing stop that has triggered."""
    return order.type == "market" or (order.triggered and order.type in ("stop", "trailing_stop"))


def execution_price(order: Order, bid: Decimal, ask: Decimal) -> Decimal | None:
    """The price the order trades at against this quote, or None if it cannot trade."""
    if order.type in STOP_TYPES and not order.triggered:
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
