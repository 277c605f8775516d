"""Account-level order checks: available quantity, shorting, buying power.

These need the account (the position, the other open orders of the symbol, buying power),
unlike the body checks in ``order_validation.py``. Refusals are Alpaca's 403 / 40310000
answers. Alpaca never lets one order flip a position through zero: selling more than a long
position (or buying more than a short) is refused as insufficient quantity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from .errors import SimError, forbidden
from .orders import Order
from .values import fmt_num

ZERO = Decimal(0)


@dataclass
class AccountLimits:
    """The parts of the account configuration that gate new orders."""

    multiplier: Decimal = Decimal(2)
    no_shorting: bool = False
    suspend_trade: bool = False
    fractional_trading: bool = True


def held_qty(open_orders: Iterable[Order], side: str) -> Decimal:
    """Shares that open ``side`` orders already claim. The two exit legs of a bracket or an
    OCO pair can only both fill by one of them, so a pair counts once (its larger leg)."""
    groups: dict[str, Decimal] = {}
    for o in open_orders:
        if o.side != side or o.status == "held":
            continue
        key = o.parent_id or o.id
        groups[key] = max(groups.get(key, ZERO), o.remaining)
    return sum(groups.values(), ZERO)


def insufficient_qty(requested: Decimal, available: Decimal, symbol: str, existing: Decimal, held: Decimal) -> SimError:
    err = forbidden(
        f"insufficient qty available for order (requested: {fmt_num(requested)}, "
        f"available: {fmt_num(max(available, ZERO))})"
    )
    # Alpaca's body also says what is held; close-all 207 bodies show these fields.
    err.details = {
        "available": fmt_num(max(available, ZERO)),
        "existing_qty": fmt_num(existing),
        "held_for_orders": fmt_num(held),
        "symbol": symbol,
    }
    return err


def check_position_rules(
    *,
    side: str,
    qty: Decimal,
    fractional: bool,
    asset: dict,
    position_qty: Decimal,
    open_orders: Callable[[], list[Order]],
    working_sides: set[str],
    limits: AccountLimits,
    exit_only: bool = False,
) -> bool:
    """Quantity and shorting rules for a new order; returns True when it opens exposure.

    ``open_orders()`` gives the symbol's open orders (only asked for when closing: held
    bracket legs are ignored); ``working_sides`` the sides of its open, non-held orders.
    ``exit_only`` (an OCO order) must close existing shares.
    """
    symbol = asset["symbol"]
    if limits.suspend_trade:
        raise forbidden("new orders are rejected by user request")
    closing_long = side == "sell" and (position_qty > 0 or exit_only)
    closing_short = side == "buy" and (position_qty < 0 or exit_only)
    if closing_long or closing_short:
        existing = abs(position_qty) if (position_qty > 0) == closing_long else ZERO
        held = held_qty(open_orders(), side)
        available = existing - held
        if qty > available:
            raise insufficient_qty(qty, available, symbol, existing, held)
        return False
    if side == "sell":
        if limits.multiplier <= 1 or limits.no_shorting:
            raise forbidden("account is not allowed to short")
        if not asset.get("shortable", False):
            raise forbidden(f'asset "{symbol}" cannot be sold short')
        if not asset.get("easy_to_borrow", False):
            raise forbidden(f'asset "{symbol}" is not easy to borrow and cannot be sold short')
        if fractional:
            raise forbidden("fractional orders cannot be sold short")
        if "buy" in working_sides:
            raise forbidden("cannot open a short sell while a long buy order is open")
    elif "sell" in working_sides and position_qty == 0:
        raise forbidden("cannot open a long buy while a short sell order is open")
    return True


def reservation(cost: Decimal, asset: dict, multiplier: Decimal) -> Decimal:
    """Buying power an opening order of ``cost`` dollars takes: non-marginable stock is paid
    in full, so on a margin account it takes ``multiplier`` times its cost."""
    if multiplier > 1 and not asset.get("marginable", True):
        return cost * multiplier
    return cost


def check_buying_power(needed: Decimal, available: Decimal) -> None:
    if needed > available:
        raise forbidden("insufficient buying power")
