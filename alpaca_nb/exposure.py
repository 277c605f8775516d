"""What an order can cost: the dollars the live guard counts for it (see :mod:`alpaca_nb.guard`).

A share counts at (times the quantity; a notional order counts as its notional):

============  ======================================  =====================================
type          buy                                     sell
============  ======================================  =====================================
market        the ask                                 the bid
limit         its limit (a buy pays no more)          the higher of its limit and the bid
stop          the higher of its stop and the ask      the bid
stop_limit    its limit                               the higher of its limit and the bid
trailing      the ask plus the trail                  the bid
============  ======================================  =====================================

So an order counts at no less than the market it can trade at now: a sell limit at $0.01 for
1,000 shares with the bid at $190 counts as $190,000, and a buy stop below the market counts
at the ask. A bracket or OTO counts as its entry: its exits close what the entry opened (same
qty, the other side, one at most, after the entry fills), so they never open or enlarge a
position. An OCO is a pair of exits either of which can trade, position or not: it counts as
the larger of the two. Every order with a qty needs the latest quote on its side: none, a zero
price or a failed lookup refuses it (fails closed) with
:class:`~alpaca_nb.errors.LiveTradingNotArmed`, never a price of $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from .errors import LiveTradingNotArmed
from .models import AlpacaOrderClass, AlpacaOrderRequest


class Exposure(NamedTuple):
    """One order the broker would create, and the dollars it can move."""

    what: str  # "sell 1000 AAPL limit 0.01"
    dollars: Decimal
    basis: str  # how it was priced: "1000 x the bid $190.00"


@dataclass(frozen=True)
class OrderShape:
    """What pricing needs of an order: side, type, size, prices, and the legs it may trigger."""

    symbol: str
    side: str
    type: str
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    legs: tuple[OrderShape, ...] = ()

    @classmethod
    def of_request(cls, request: AlpacaOrderRequest) -> OrderShape:
        """A request to place. An OCO's stop_loss is a leg: the pair exits on the order's own
        side and either can trade. A bracket's or OTO's exits are not: they close what the
        entry opened (same qty, the other side, one at most), so the entry is what counts."""
        legs: tuple[OrderShape, ...] = ()
        if request.order_class is AlpacaOrderClass.OCO and request.stop_loss is not None:
            stop = request.stop_loss
            legs = (
                cls(
                    request.symbol,
                    request.side.value,
                    "stop_limit" if stop.limit_price else "stop",
                    request.qty,
                    limit_price=stop.limit_price,
                    stop_price=stop.stop_price,
                ),
            )
        return cls(
            request.symbol,
            request.side.value,
            request.type.value,
            request.qty,
            request.notional,
            request.limit_price,
            request.stop_price,
            request.trail_price,
            request.trail_percent,
            legs,
        )

    @classmethod
    def of_alpaca(cls, order: Mapping[str, Any], changes: Mapping[str, Any] | None = None) -> OrderShape:
        """Alpaca's Order JSON (with nested legs), as it will be once ``changes`` (a PATCH body)
        apply. As for :meth:`of_request`, only an OCO's open legs count, at the larger quantity."""
        changes = changes or {}
        values = {
            name: _number(changes.get(name, order.get(name)), name)
            for name in ("qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent")
        }
        if changes.get("trail") is not None:
            values["trail_percent" if order.get("trail_percent") not in (None, "") else "trail_price"] = _number(
                changes["trail"], "trail"
            )
        legs = tuple(
            cls.of_alpaca({**leg, "qty": _larger(leg.get("qty"), values["qty"])})
            for leg in order.get("legs") or ()
            if order.get("order_class") == "oco" and leg.get("status") not in _FINAL
        )
        return cls(
            str(order["symbol"]),
            str(order["side"]),
            str(order.get("type") or order.get("order_type")),
            legs=legs,
            **values,
        )

    @classmethod
    def closing(cls, position: Mapping[str, Any], qty: Any = None, percentage: Any = None) -> OrderShape:
        """The market order that closes ``position`` (Alpaca's Position JSON): all of it, ``qty``
        shares, or ``percentage`` percent."""
        held = abs(_number(position.get("qty"), "qty") or Decimal(0))
        size: Decimal | None = held
        if qty is not None:
            size = _number(qty, "qty")
        elif percentage is not None:
            share = _number(percentage, "percentage")
            if share is None:  # an empty text: no number to take a share of
                raise LiveTradingNotArmed(f"the live guard cannot read percentage={percentage!r}: nothing was sent")
            size = held * share / 100
        side = "buy" if str(position.get("side")) == "short" or str(position.get("qty", "")).startswith("-") else "sell"
        return cls(str(position["symbol"]), side, "market", size)

    def __str__(self) -> str:
        size = f"${self.notional}" if self.qty is None else f"{self.qty.normalize():f}"
        prices = " ".join(
            f"{name} {value}"
            for name, value in (
                ("stop", self.stop_price),
                ("limit", self.limit_price),
                ("trail $", self.trail_price),
                ("trail %", self.trail_percent),
            )
            if value is not None
        )
        return " ".join(p for p in (self.side, size, self.symbol, self.type, prices) if p)


_FINAL = {"filled", "canceled", "expired", "replaced", "rejected", "done_for_day", "stopped", "suspended"}


def _number(value: Any, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise LiveTradingNotArmed(f"the live guard cannot read {name}={value!r}: nothing was sent") from None
    if not number.is_finite():
        raise LiveTradingNotArmed(f"the live guard cannot read {name}={value!r}: nothing was sent")
    return number


def _larger(a: Any, b: Decimal | None) -> Decimal | None:
    numbers = [n for n in (_number(a, "qty"), b) if n is not None]
    return max(numbers) if numbers else None


@dataclass(frozen=True)
class Quote:
    """The latest quote's two sides; a side that is missing or not positive is None."""

    symbol: str
    bid: Decimal | None
    ask: Decimal | None

    @classmethod
    def of_alpaca(cls, symbol: str, quote: Mapping[str, Any] | None) -> Quote:
        quote = quote or {}
        return cls(symbol, _price(quote.get("bp")), _price(quote.get("ap")))

    def side(self, side: str) -> Decimal:
        """The price a ``side`` order trades at now: the ask for a buy, the bid for a sell."""
        name = "ask" if side == "buy" else "bid"
        price: Decimal | None = getattr(self, name)
        if price is None:
            raise LiveTradingNotArmed(
                f"no {name} in the latest quote for {self.symbol}: the live guard prices every order at the "
                "market and refuses one it cannot price; nothing was sent (try again when the market quotes it)"
            )
        return price


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


def unit_price(order: OrderShape, quote: Quote) -> tuple[Decimal, str]:
    """The price per share ``order`` counts at (see the module's table), and how it was found."""
    market = quote.side(order.side)  # every order needs its side's quote, whatever its type
    limit, stop = order.limit_price, order.stop_price
    if order.side == "buy":
        if order.type in ("limit", "stop_limit") and limit is not None:
            return limit, f"its limit ${limit} (a buy pays no more)"
        if order.type == "stop" and stop is not None and stop > market:
            return stop, f"its stop ${stop} (above the ask ${market})"
        if order.type == "trailing_stop":
            if order.trail_price is not None:
                return market + order.trail_price, f"the ask ${market} plus the trail ${order.trail_price}"
            if order.trail_percent is not None:
                return (market * (1 + order.trail_percent / 100), f"the ask ${market} plus {order.trail_percent}%")
        return market, f"the ask ${market}"
    if limit is not None and order.type in ("limit", "stop_limit") and limit > market:
        return limit, f"its limit ${limit} (a sell gets no less)"
    return market, f"the bid ${market}"


def exposure(order: OrderShape, quote: Quote | None) -> Exposure:
    """The dollars ``order`` can move: its notional, or the largest of its entry and its legs
    at :func:`unit_price` times the quantity."""
    if order.qty is None:
        if order.notional is None:
            raise LiveTradingNotArmed(f"{order}: the live guard cannot size an order with no qty or notional")
        return Exposure(str(order), order.notional, "its notional")
    if quote is None:
        raise LiveTradingNotArmed(
            f"no quote for {order.symbol}: the live guard prices every order at the market "
            "and refuses one it cannot price; nothing was sent"
        )
    best: Exposure | None = None
    for part, name in ((order, ""), *((leg, f"its {leg.side} {leg.type} leg, ") for leg in order.legs)):
        price, basis = unit_price(part, quote)
        qty = part.qty if part.qty is not None else order.qty
        dollars = qty * price
        if best is None or dollars > best.dollars:
            best = Exposure(str(order), dollars, f"{name}{qty.normalize():f} x {basis}")
    assert best is not None  # the order itself is always priced
    return best
