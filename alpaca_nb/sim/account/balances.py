"""Cash, positions and the numbers Alpaca derives from them (equity, margin, buying power).

The account is a margin account like a paper account, with Reg T rules: 50% initial margin
on marginable stock (100% otherwise), so ``buying_power = multiplier x (equity - initial
margin) - what open opening orders reserve`` with ``multiplier`` 2 (1 makes it a cash
account). Maintenance margin: 25% of longs, 30% of shorts. No commissions, as on Alpaca.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .values import fmt_num, fmt_time

ZERO = Decimal(0)
_HALF = Decimal("0.5")
_LONG_MAINTENANCE = Decimal("0.25")
_SHORT_MAINTENANCE = Decimal("0.30")
_PL_PLACES = Decimal("0.0000000001")


@dataclass(eq=False)
class Position:
    """A holding: ``qty`` is signed (negative = short); ``avg_entry_price`` of the open lot."""

    symbol: str
    asset_id: str
    exchange: str
    qty: Decimal
    avg_entry_price: Decimal
    opened_at: datetime
    marginable: bool = True

    @property
    def side(self) -> str:
        return "long" if self.qty > 0 else "short"

    def to_row(self) -> dict:
        return {
            "symbol": self.symbol,
            "asset_id": self.asset_id,
            "exchange": self.exchange,
            "qty": str(self.qty),
            "avg_entry_price": str(self.avg_entry_price),
            "opened_at": self.opened_at.isoformat(),
            "marginable": self.marginable,
        }

    @classmethod
    def from_row(cls, row: dict) -> Position:
        return cls(
            row["symbol"],
            row["asset_id"],
            row["exchange"],
            Decimal(row["qty"]),
            Decimal(row["avg_entry_price"]),
            datetime.fromisoformat(row["opened_at"]),
            row.get("marginable", True),
        )


def apply_fill(
    positions: dict[str, Position], asset: dict, side: str, qty: Decimal, price: Decimal, at: datetime
) -> Decimal:
    """Book one execution into ``positions``; returns the symbol's new signed quantity.

    Adding to a position averages the entry price; reducing it keeps the entry price (the
    difference is realised P&L, already in cash); crossing zero opens a new lot at ``price``.
    """
    symbol = asset["symbol"]
    signed = qty if side == "buy" else -qty
    pos = positions.get(symbol)
    if pos is None:
        positions[symbol] = Position(
            symbol, asset["id"], _exchange(asset), signed, price, at, bool(asset.get("marginable", True))
        )
        return signed
    new_qty = pos.qty + signed
    if new_qty == 0:
        del positions[symbol]
    elif (pos.qty > 0) == (signed > 0):  # adding
        pos.avg_entry_price = _avg(abs(pos.qty), pos.avg_entry_price, qty, price)
        pos.qty = new_qty
    elif (pos.qty > 0) == (new_qty > 0):  # reducing
        pos.qty = new_qty
    else:  # crossed through zero
        pos.qty, pos.avg_entry_price, pos.opened_at = new_qty, price, at
    return new_qty


def _avg(q1: Decimal, p1: Decimal, q2: Decimal, p2: Decimal) -> Decimal:
    return ((q1 * p1 + q2 * p2) / (q1 + q2)).quantize(Decimal("0.000000001")).normalize()


def _exchange(asset: dict) -> str:
    # The Position schema allows a fixed set of venues; anything else is shown as "".
    exchange = asset.get("exchange", "")
    return exchange if exchange in ("AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC") else ""


@dataclass
class Valuation:
    """The account's numbers at one moment, from cash, positions and current prices."""

    cash: Decimal
    long_market_value: Decimal
    short_market_value: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal

    @property
    def equity(self) -> Decimal:
        return self.cash + self.long_market_value + self.short_market_value


def value(cash: Decimal, positions: dict[str, Position], mark: Callable[[str], Decimal]) -> Valuation:
    """Mark every position at ``mark(symbol)`` (the last trade)."""
    long_mv = short_mv = im = mm = ZERO
    for pos in positions.values():
        mv = pos.qty * mark(pos.symbol)
        if mv >= 0:
            long_mv += mv
            mm += mv * (_LONG_MAINTENANCE if pos.marginable else 1)
        else:
            short_mv += mv
            mm += -mv * _SHORT_MAINTENANCE
        im += abs(mv) * (_HALF if pos.marginable else 1)
    return Valuation(cash, long_mv, short_mv, im, mm)


def buying_power(val: Valuation, multiplier: Decimal, reserved: Decimal, *, clip: bool = True) -> Decimal:
    """What new opening orders may still spend: Reg T excess equity x multiplier (cash for a
    cash account) - reserved; ``clip=False`` lets it go below zero (an over-committed account)."""
    raw = val.cash if multiplier <= 1 else multiplier * (val.equity - val.initial_margin)
    left = raw - reserved
    return max(ZERO, left) if clip else left


def account_json(
    *,
    account_id: str,
    account_number: str,
    created_at: datetime,
    val: Valuation,
    bp: Decimal,
    multiplier: Decimal,
    last_equity: Decimal,
    last_maintenance_margin: Decimal,
    shorting_enabled: bool,
    balance_asof: str,
    trading_blocked: bool,
) -> dict:
    """The ``Account`` JSON with every field the OpenAPI schema lists."""
    equity = val.equity
    return {
        "id": account_id,
        "account_number": account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": _num(_cents(bp)),
        "regt_buying_power": _num(_cents(bp)),
        "daytrading_buying_power": _num(_cents(bp)),
        "non_marginable_buying_power": _num(_cents(bp / multiplier if multiplier > 1 else bp)),
        "options_buying_power": _num(_cents(bp / multiplier if multiplier > 1 else bp)),
        "cash": _num(_cents(val.cash)),
        "accrued_fees": "0",
        "pending_transfer_out": "0",
        "pending_transfer_in": "0",
        "pending_reg_taf_fees": "0",
        "portfolio_value": _num(_cents(equity)),
        "pattern_day_trader": False,
        "trading_blocked": trading_blocked,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": fmt_time(created_at),
        "trade_suspended_by_user": trading_blocked,
        "multiplier": fmt_num(multiplier),
        "shorting_enabled": shorting_enabled,
        "equity": _num(_cents(equity)),
        "last_equity": _num(_cents(last_equity)),
        "long_market_value": _num(_cents(val.long_market_value)),
        "short_market_value": _num(_cents(val.short_market_value)),
        "initial_margin": _num(_cents(val.initial_margin)),
        "maintenance_margin": _num(_cents(val.maintenance_margin)),
        "last_maintenance_margin": _num(_cents(last_maintenance_margin)),
        "sma": _num(_cents(max(ZERO, equity - val.initial_margin))),
        "daytrade_count": 0,
        "balance_asof": balance_asof,
        "options_approved_level": 0,
        "options_trading_level": 0,
        "intraday_adjustments": "0",
    }


def position_json(
    pos: Position, current: Decimal, lastday: Decimal, qty_available: Decimal, intraday_ref: Decimal
) -> dict:
    """The ``Position`` JSON: values at ``current`` (last trade), change vs ``lastday``.

    ``intraday_ref`` is the price today's P&L is measured from: yesterday's close for a lot
    held overnight, the entry price for a lot opened today.
    """
    qty = pos.qty
    market_value = qty * current
    cost_basis = qty * pos.avg_entry_price
    unrealized = market_value - cost_basis
    intraday = qty * (current - intraday_ref)
    intraday_base = abs(qty * intraday_ref)
    values = {
        "avg_entry_price": _num(pos.avg_entry_price),
        "market_value": _num(market_value),
        "cost_basis": _num(cost_basis),
        "unrealized_pl": _num(unrealized),
        "unrealized_plpc": _num(_ratio(unrealized, abs(cost_basis))),
        "unrealized_intraday_pl": _num(intraday),
        "unrealized_intraday_plpc": _num(_ratio(intraday, intraday_base)),
        "current_price": _num(current),
        "lastday_price": _num(lastday),
        "change_today": _num(_ratio(current - lastday, lastday)),
    }
    return {
        "asset_id": pos.asset_id,
        "symbol": pos.symbol,
        "exchange": pos.exchange,
        "asset_class": "us_equity",
        "asset_marginable": pos.marginable,
        "qty": _num(qty),
        "qty_available": _num(qty_available),
        "side": pos.side,
        **values,
    }


def _num(x: Decimal) -> str:
    """fmt_num without negative zero (a short position with no change is "0", not "-0")."""
    return fmt_num(x + ZERO)


def _ratio(a: Decimal, b: Decimal) -> Decimal:
    return (a / b).quantize(_PL_PLACES) if b else ZERO


def _cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"))
