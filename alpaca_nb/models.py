"""The records of alpaca_nb: credentials, order requests and managed orders.

An :class:`AlpacaOrderRequest` checks itself when it is built: a request that Alpaca would
refuse for its shape (quantities, prices, increments, legs) raises
:class:`~alpaca_nb.errors.OrderValidationError` naming the field and the fix, before anything
is sent. Checks that need the asset (tradable, fractionable, shortable) are in
:meth:`AlpacaOrderRequest.check_asset`, which the service runs against its cached asset list.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar

from . import params
from .errors import ConfigurationError, OrderValidationError
from .order_rules import check_tags
from .secret import Secret

# Exclusive upper bounds: every accepted value fits the ledger's DECIMAL(18, 9) (9 integer
# digits), and a price times a quantity stays far from overflowing anything downstream.
MAX_QTY = Decimal(10) ** 9  # shares
MAX_NOTIONAL = Decimal(10) ** 9  # dollars
MAX_PRICE = Decimal(10) ** 7  # dollars: limit, stop, trail and leg prices


class _Choice(str, enum.Enum):
    """A str enum that accepts any case and suggests the valid values when it does not match."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        # ASCII first: "ſell".upper() is "SELL", and a lookalike must not pass as a choice.
        if isinstance(value, str) and value.isascii():
            for member in cls:
                if member.value == value.lower() or member.name == value.upper():
                    return member
        return None

    @classmethod
    def parse(cls, value: Any, field_name: str) -> Self:
        """The member for ``value`` (the value or name in any case, or an enum whose value it
        is); else :class:`OrderValidationError` listing the choices, with a "did you mean"."""
        text = value.value if isinstance(value, enum.Enum) else value
        try:
            return cls(text.strip(" \t\n\r\f\v") if isinstance(text, str) else text)
        except (ValueError, TypeError):
            values = [m.value for m in cls]
            raise OrderValidationError(
                f"{field_name}={value!r} is not valid: use one of {', '.join(map(repr, values))}"
                f"{params.did_you_mean(text, values)}",
                field_name,
            ) from None

    def __str__(self) -> str:
        return str(self.value)  # a str already (a str enum): typed so


class AlpacaEnvironment(_Choice):
    LOCAL = "local"
    PAPER = "paper"
    LIVE = "live"


class AlpacaOrderSide(_Choice):
    BUY = "buy"
    SELL = "sell"


class AlpacaOrderType(_Choice):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class AlpacaTimeInForce(_Choice):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"
    CLS = "cls"


class AlpacaOrderClass(_Choice):
    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"


class ManagedOrderStatus(_Choice):
    """The ledger's view of an order; every Alpaca status maps to one (see :func:`managed_status`)."""

    PENDING = "pending"  # intent written, not yet answered by the broker
    UNRESOLVED = "unresolved"  # the broker's answer was lost; the next sync resolves it
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {
    ManagedOrderStatus.FILLED,
    ManagedOrderStatus.CANCELED,
    ManagedOrderStatus.EXPIRED,
    ManagedOrderStatus.REPLACED,
    ManagedOrderStatus.REJECTED,
}

_ALPACA_TO_MANAGED = {
    "new": "open",
    "accepted": "open",
    "pending_new": "open",
    "accepted_for_bidding": "open",
    "held": "open",
    "calculated": "open",
    "pending_cancel": "open",
    "pending_replace": "open",
    "stopped": "open",
    "suspended": "open",
    "done_for_day": "open",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "canceled",
    "expired": "expired",
    "replaced": "replaced",
    "rejected": "rejected",
}


def managed_status(alpaca_status: str | None) -> ManagedOrderStatus:
    """Map any Alpaca order status (``new``, ``pending_cancel``, ...) to a managed status."""
    value = alpaca_status.value if isinstance(alpaca_status, enum.Enum) else str(alpaca_status)
    try:
        return ManagedOrderStatus(_ALPACA_TO_MANAGED[value.lower()])
    except KeyError:
        raise ValueError(f"unknown Alpaca order status {alpaca_status!r}") from None


@dataclass(frozen=True, init=False)
class AlpacaCredentials:
    """Keys and the environment they belong to. Neither key ever appears in a repr or message.

    Both keys are held as :class:`~alpaca_nb.secret.Secret`: ``repr``, ``str`` and f-strings
    show ``<hidden>`` (``<unset>`` when empty); ``credentials.api_secret.reveal()`` is the text.

    >>> AlpacaCredentials("PK123", "s3cr3t", "paper")
    AlpacaCredentials(environment='paper', api_key=<hidden>, api_secret=<hidden>)
    """

    api_key: Secret
    api_secret: Secret
    environment: AlpacaEnvironment

    def __init__(
        self,
        api_key: str | None = "",
        api_secret: str | None = "",
        environment: AlpacaEnvironment | str = AlpacaEnvironment.PAPER,
    ):
        # Rebind before anything can raise: no frame of ours keeps a key in clear text.
        try:
            api_key, api_secret = Secret(api_key or ""), Secret(api_secret or "")
        except TypeError:
            raise ConfigurationError(
                "api_key and api_secret must be text (str): the key id and secret from Alpaca's dashboard"
            ) from None
        object.__setattr__(self, "api_key", api_key)
        object.__setattr__(self, "api_secret", api_secret)
        try:
            object.__setattr__(self, "environment", AlpacaEnvironment(environment))
        except ValueError:
            choices = ", ".join(repr(e.value) for e in AlpacaEnvironment)
            raise ConfigurationError(
                f"environment={environment!r} is not one of {choices}: use 'local' for the built-in "
                "broker, 'paper' or 'live' with your keys"
            ) from None

    def __repr__(self) -> str:
        # getattr: a half-built instance (a traceback from __init__ shows ``self``) still prints.
        environment = getattr(getattr(self, "environment", None), "value", None)
        return (
            f"AlpacaCredentials(environment={environment!r}, "
            f"api_key={getattr(self, 'api_key', Secret())!r}, "
            f"api_secret={getattr(self, 'api_secret', Secret())!r})"
        )

    __str__ = __repr__

    @property
    def paper(self) -> bool:
        return self.environment is not AlpacaEnvironment.LIVE


def to_decimal(value: Any, field_name: str, maximum: Decimal | None = None) -> Decimal | None:
    """A number from int, float, str or Decimal; floats go through ``str`` (0.1 stays 0.1).

    With ``maximum``, a magnitude at or above it is refused (see :data:`MAX_QTY`,
    :data:`MAX_NOTIONAL`, :data:`MAX_PRICE`) before any arithmetic could overflow.
    Raises :class:`OrderValidationError` naming ``field_name``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise OrderValidationError(f"{field_name} must be a number, not a bool", field_name)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise OrderValidationError(f"{field_name}={value!r} is not a number", field_name) from None
    if not number.is_finite():
        raise OrderValidationError(f"{field_name}={value!r} must be a finite number", field_name)
    if maximum is not None and number.copy_abs() >= maximum:  # copy_abs: no context, no Overflow
        unit = "shares" if maximum is MAX_QTY else "dollars" if maximum in (MAX_NOTIONAL, MAX_PRICE) else ""
        raise OrderValidationError(
            f"{field_name}={value!r} is too large: it must be below {maximum:,} {unit}".rstrip(), field_name
        )
    return number


def plain(number: Decimal | int) -> str:
    """A number as the wire wants it: plain notation, never an exponent (``1E+3`` -> ``"1000"``).

    Trailing zeros stay as given (``Decimal("0.50")`` -> ``"0.50"``). Use it wherever a number
    goes into a request body, a query or a path. A non-finite number raises
    :class:`OrderValidationError`.
    """
    if isinstance(number, bool) or not isinstance(number, (int, Decimal)):
        raise OrderValidationError(f"number={number!r} must be a Decimal or an int", "number")
    if isinstance(number, Decimal) and not number.is_finite():
        raise OrderValidationError(f"number={number!r} must be a finite number", "number")
    return format(number, "f") if isinstance(number, Decimal) else str(int(number))


def check_price_increment(price: Decimal, field_name: str) -> None:
    """Alpaca accepts whole cents at $1 and above, up to four decimals below $1; every price is
    below :data:`MAX_PRICE` ($10,000,000). Raises :class:`OrderValidationError`."""
    if price.copy_abs() >= MAX_PRICE:
        raise OrderValidationError(
            f"{field_name}={price:.6g} is too large: prices must be below {MAX_PRICE:,} dollars", field_name
        )
    places = 2 if price >= 1 else 4
    if price != price.quantize(Decimal(1).scaleb(-places)):
        fix = price.quantize(Decimal(1).scaleb(-places))
        raise OrderValidationError(
            f"{field_name}={price} has a sub-penny increment: prices of $1 and above take whole cents, "
            f"below $1 at most 4 decimals (e.g. {fix})",
            field_name,
        )


@dataclass(frozen=True)
class TakeProfit:
    """The take-profit leg of a bracket, OCO or OTO order: a limit order."""

    limit_price: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_price", _positive_price(self.limit_price, "take_profit.limit_price"))


@dataclass(frozen=True)
class StopLoss:
    """The stop-loss leg: a stop order, or a stop-limit order when ``limit_price`` is given."""

    stop_price: Decimal
    limit_price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_price", _positive_price(self.stop_price, "stop_loss.stop_price"))
        if self.limit_price is not None:
            object.__setattr__(self, "limit_price", _positive_price(self.limit_price, "stop_loss.limit_price"))


def _positive_price(value: Any, name: str) -> Decimal:
    price = to_decimal(value, name, MAX_PRICE)
    if price is None or price <= 0:
        raise OrderValidationError(f"{name} must be a positive price, got {value!r}", name)
    check_price_increment(price, name)
    return price


# Each number's exclusive bound, checked as it is read (trail_percent's rule is checked later).
_BOUNDS = {
    "qty": MAX_QTY,
    "notional": MAX_NOTIONAL,
    "limit_price": MAX_PRICE,
    "stop_price": MAX_PRICE,
    "trail_price": MAX_PRICE,
    "trail_percent": None,
}
_PRICE_FIELDS = {
    AlpacaOrderType.MARKET: set(),
    AlpacaOrderType.LIMIT: {"limit_price"},
    AlpacaOrderType.STOP: {"stop_price"},
    AlpacaOrderType.STOP_LIMIT: {"limit_price", "stop_price"},
    AlpacaOrderType.TRAILING_STOP: set(),  # exactly one of trail_price / trail_percent
}


@dataclass(frozen=True)
class AlpacaOrderRequest:
    """An order to place, checked when built.

    >>> AlpacaOrderRequest(symbol="AAPL", qty=10, side="buy", type="limit", limit_price=190.5)

    Give ``qty`` (shares, fractional where the asset allows) or ``notional`` (dollars), never
    both. Each type takes exactly its prices: limit ``limit_price``; stop ``stop_price``;
    stop_limit both; trailing_stop one of ``trail_price`` / ``trail_percent``. A bracket needs
    ``take_profit`` and ``stop_loss``; an OCO (an exit pair, type limit) both; an OTO one.

    Every value fits the ledger's DECIMAL(18, 9): ``qty`` below 1,000,000,000 shares
    (:data:`MAX_QTY`), ``notional`` below $1,000,000,000 (:data:`MAX_NOTIONAL`), every price
    (limit, stop, trail, legs) below $10,000,000 (:data:`MAX_PRICE`). ``symbol`` is ASCII in
    Alpaca's grammar (see :func:`alpaca_nb.params.symbol`; ``'ıntc'`` is refused, not read as
    INTC). ``tags`` is a list of non-empty strings; ``None`` means no tags. Numbers go out in
    plain notation (:func:`plain`).
    Raises :class:`OrderValidationError` naming the field and the fix.
    """

    symbol: str
    side: AlpacaOrderSide
    type: AlpacaOrderType = AlpacaOrderType.MARKET
    qty: Decimal | None = None
    notional: Decimal | None = None
    time_in_force: AlpacaTimeInForce = AlpacaTimeInForce.DAY
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    extended_hours: bool = False
    order_class: AlpacaOrderClass = AlpacaOrderClass.SIMPLE
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None
    client_order_id: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)  # frozen

        set_("symbol", params.symbol(self.symbol, "symbol", error=OrderValidationError))
        set_("side", AlpacaOrderSide.parse(self.side, "side"))
        set_("type", AlpacaOrderType.parse(self.type, "type"))
        set_("time_in_force", AlpacaTimeInForce.parse(self.time_in_force, "time_in_force"))
        set_("order_class", AlpacaOrderClass.parse(self.order_class, "order_class"))
        for name, bound in _BOUNDS.items():
            set_(name, to_decimal(getattr(self, name), name, bound))
        if not isinstance(self.extended_hours, bool):
            raise OrderValidationError("extended_hours must be True or False", "extended_hours")
        if isinstance(self.take_profit, Mapping):
            set_("take_profit", _build_leg(TakeProfit, self.take_profit, "take_profit"))
        if isinstance(self.stop_loss, Mapping):
            set_("stop_loss", _build_leg(StopLoss, self.stop_loss, "stop_loss"))
        set_("tags", check_tags(self.tags))
        if self.client_order_id is not None:
            _check_client_order_id(self.client_order_id)
        self._check_quantity()
        self._check_prices()
        self._check_time_in_force()
        self._check_class()

    # -- the rules, one concern each ------------------------------------------------------------

    def _check_quantity(self) -> None:
        if (self.qty is None) == (self.notional is None):
            raise OrderValidationError(
                "give exactly one of qty (shares) or notional (dollars)"
                + (", not both" if self.qty is not None else ""),
                "qty",
            )
        if self.qty is not None and self.qty <= 0:
            raise OrderValidationError(f"qty must be positive, got {self.qty}", "qty")
        if self.qty is not None and self.qty != self.qty.quantize(Decimal("1e-9")):
            raise OrderValidationError("qty takes at most 9 decimal places", "qty")
        if self.notional is not None:
            if self.notional <= 0:
                raise OrderValidationError(f"notional must be positive, got {self.notional}", "notional")
            if self.notional != self.notional.quantize(Decimal("0.01")):
                raise OrderValidationError("notional is in dollars and takes whole cents", "notional")
            if self.notional < 1:
                raise OrderValidationError("notional orders must be at least $1", "notional")
        if self.is_fractional:
            if self.type is AlpacaOrderType.TRAILING_STOP:
                raise OrderValidationError(
                    "fractional and notional orders cannot be trailing stops: use a whole qty", "qty"
                )
            if self.time_in_force is not AlpacaTimeInForce.DAY:
                raise OrderValidationError(
                    "fractional and notional orders must use time_in_force='day'", "time_in_force"
                )
            if self.order_class is not AlpacaOrderClass.SIMPLE:
                raise OrderValidationError(
                    f"{self.order_class.value} orders need a whole qty, not fractional or notional", "qty"
                )
        if self.notional is not None and self.type is not AlpacaOrderType.MARKET:
            raise OrderValidationError(
                f"notional orders must be market orders: use qty for {self.type.value} orders", "notional"
            )

    def _check_prices(self) -> None:
        wanted = _PRICE_FIELDS[self.type]
        for name in ("limit_price", "stop_price"):
            value = getattr(self, name)
            if name in wanted and value is None:
                raise OrderValidationError(f"a {self.type.value} order needs {name}", name)
            if name not in wanted and value is not None:
                raise OrderValidationError(f"a {self.type.value} order takes no {name}: remove it or change type", name)
            if value is not None:
                if value <= 0:
                    raise OrderValidationError(f"{name} must be positive, got {value}", name)
                check_price_increment(value, name)
        trails = [n for n in ("trail_price", "trail_percent") if getattr(self, n) is not None]
        if self.type is AlpacaOrderType.TRAILING_STOP:
            if len(trails) != 1:
                raise OrderValidationError(
                    "a trailing_stop order needs exactly one of trail_price or trail_percent", "trail_price"
                )
            value = getattr(self, trails[0])
            if value <= 0:
                raise OrderValidationError(f"{trails[0]} must be positive, got {value}", trails[0])
            if trails[0] == "trail_price":
                check_price_increment(value, "trail_price")
            elif value >= 100:
                raise OrderValidationError("trail_percent must be below 100", "trail_percent")
        elif trails:
            raise OrderValidationError(f"only trailing_stop orders take {trails[0]}", trails[0])
        if self.extended_hours and not (
            self.type is AlpacaOrderType.LIMIT and self.time_in_force is AlpacaTimeInForce.DAY
        ):
            raise OrderValidationError(
                "extended_hours orders must be limit orders with time_in_force='day'", "extended_hours"
            )

    def _check_time_in_force(self) -> None:
        tif = self.time_in_force
        if tif in (AlpacaTimeInForce.OPG, AlpacaTimeInForce.CLS) and self.type not in (
            AlpacaOrderType.MARKET,
            AlpacaOrderType.LIMIT,
        ):
            raise OrderValidationError(
                f"time_in_force='{tif.value}' takes market or limit orders only", "time_in_force"
            )
        if self.type is AlpacaOrderType.TRAILING_STOP and tif not in (AlpacaTimeInForce.DAY, AlpacaTimeInForce.GTC):
            raise OrderValidationError("trailing_stop orders take time_in_force 'day' or 'gtc'", "time_in_force")
        if self.order_class is not AlpacaOrderClass.SIMPLE and tif not in (
            AlpacaTimeInForce.DAY,
            AlpacaTimeInForce.GTC,
        ):
            raise OrderValidationError(
                f"{self.order_class.value} orders take time_in_force 'day' or 'gtc'", "time_in_force"
            )

    def _check_class(self) -> None:
        cls, tp, sl = self.order_class, self.take_profit, self.stop_loss
        for leg, name in ((tp, "take_profit"), (sl, "stop_loss")):
            if leg is not None and not isinstance(leg, (TakeProfit, StopLoss)):
                raise OrderValidationError(f"{name} must be a {name} leg or a dict", name)
        if cls is AlpacaOrderClass.SIMPLE:
            if tp is not None or sl is not None:
                raise OrderValidationError(
                    "take_profit / stop_loss need order_class 'bracket', 'oco' or 'oto'", "order_class"
                )
            return
        if cls in (AlpacaOrderClass.BRACKET, AlpacaOrderClass.OCO):
            if tp is None or sl is None:
                raise OrderValidationError(
                    f"a {cls.value} order needs both take_profit and stop_loss",
                    "take_profit" if tp is None else "stop_loss",
                )
        if cls is AlpacaOrderClass.OTO and (tp is None) == (sl is None):
            raise OrderValidationError("an oto order needs exactly one of take_profit or stop_loss", "take_profit")
        if cls is AlpacaOrderClass.BRACKET and self.type not in (
            AlpacaOrderType.MARKET,
            AlpacaOrderType.LIMIT,
            AlpacaOrderType.STOP,
            AlpacaOrderType.STOP_LIMIT,
        ):
            raise OrderValidationError("a bracket entry must be market, limit, stop or stop_limit", "type")
        if cls is AlpacaOrderClass.OCO:
            if self.type is not AlpacaOrderType.LIMIT:
                raise OrderValidationError(
                    "an oco order is an exit pair: type='limit' with take_profit and stop_loss", "type"
                )
            assert tp is not None  # checked above: an oco order has both legs
            if tp.limit_price != self.limit_price:
                raise OrderValidationError(
                    "an oco order's limit_price must equal take_profit.limit_price", "limit_price"
                )
        self._check_leg_prices()

    def _check_leg_prices(self) -> None:
        """Exits must sit on the profitable / protective side of the entry.

        For a buy entry the exits sell: take profit above, stop loss below. An OCO's legs exit
        a position in the order's own side, so a sell OCO has its profit above its stop.
        """
        tp, sl = self.take_profit, self.stop_loss
        exits_sell = (self.side is AlpacaOrderSide.BUY) != (self.order_class is AlpacaOrderClass.OCO)
        if tp is not None and sl is not None:
            if exits_sell and not tp.limit_price > sl.stop_price:
                raise OrderValidationError(
                    "take_profit.limit_price must be above stop_loss.stop_price when the exits sell", "take_profit"
                )
            if not exits_sell and not tp.limit_price < sl.stop_price:
                raise OrderValidationError(
                    "take_profit.limit_price must be below stop_loss.stop_price when the exits buy", "take_profit"
                )
        if sl is not None and sl.limit_price is not None:
            if exits_sell and sl.limit_price > sl.stop_price:
                raise OrderValidationError(
                    "stop_loss.limit_price must be at or below its stop_price when the exits sell", "stop_loss"
                )
            if not exits_sell and sl.limit_price < sl.stop_price:
                raise OrderValidationError(
                    "stop_loss.limit_price must be at or above its stop_price when the exits buy", "stop_loss"
                )
        entry = self.limit_price if self.type is AlpacaOrderType.LIMIT else self.stop_price
        if entry is None or self.order_class is AlpacaOrderClass.OCO:
            return
        up, down = ("above", "below") if exits_sell else ("below", "above")
        if tp is not None and (tp.limit_price <= entry if exits_sell else tp.limit_price >= entry):
            raise OrderValidationError(f"take_profit.limit_price must be {up} the entry price {entry}", "take_profit")
        if sl is not None and (sl.stop_price >= entry if exits_sell else sl.stop_price <= entry):
            raise OrderValidationError(f"stop_loss.stop_price must be {down} the entry price {entry}", "stop_loss")

    # -- what the order needs from its asset ------------------------------------------------------

    @property
    def is_fractional(self) -> bool:
        return self.notional is not None or (self.qty is not None and self.qty != self.qty.to_integral_value())

    def check_asset(self, asset: Mapping[str, Any] | None) -> None:
        """Refuse what the asset does not allow; ``asset`` is Alpaca's Asset JSON (None: unknown)."""
        if asset is None:
            raise OrderValidationError(
                f"symbol {self.symbol!r} is not a known asset: check the ticker (see assets())", "symbol"
            )
        if asset.get("status") != "active" or not asset.get("tradable"):
            raise OrderValidationError(
                f"{self.symbol} is not tradable (asset status {asset.get('status')!r})", "symbol"
            )
        if self.is_fractional and not asset.get("fractionable"):
            raise OrderValidationError(
                f"{self.symbol} is not fractionable: use a whole qty, not "
                + ("notional" if self.notional is not None else f"qty={self.qty}"),
                "notional" if self.notional is not None else "qty",
            )

    def to_alpaca(self) -> dict[str, Any]:
        """The JSON body of ``POST /v2/orders`` (numbers as plain-notation strings, as Alpaca
        prints them: never ``"1E+3"``)."""
        body: dict[str, Any] = {
            "symbol": self.symbol,
            "side": self.side.value,
            "type": self.type.value,
            "time_in_force": self.time_in_force.value,
        }
        for name in ("qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent"):
            value = getattr(self, name)
            if value is not None:
                body[name] = plain(value)
        if self.extended_hours:
            body["extended_hours"] = True
        if self.order_class is not AlpacaOrderClass.SIMPLE:
            body["order_class"] = self.order_class.value
        if self.take_profit is not None:
            body["take_profit"] = {"limit_price": plain(self.take_profit.limit_price)}
        if self.stop_loss is not None:
            body["stop_loss"] = {"stop_price": plain(self.stop_loss.stop_price)}
            if self.stop_loss.limit_price is not None:
                body["stop_loss"]["limit_price"] = plain(self.stop_loss.limit_price)
        if self.client_order_id:
            body["client_order_id"] = self.client_order_id
        return body

    def with_client_order_id(self, client_order_id: str) -> AlpacaOrderRequest:
        """This request with another ``client_order_id`` (the rest, already validated, is shared)."""
        _check_client_order_id(client_order_id)
        other = copy.copy(self)
        object.__setattr__(other, "client_order_id", client_order_id)
        return other


def _check_client_order_id(value: Any) -> None:
    """1 to 128 printable characters (no control characters, no half characters): it travels in
    URLs and logs and keys the ledger."""
    if not isinstance(value, str) or not 0 < len(value) <= 128 or not value.isprintable() or value != value.strip():
        raise OrderValidationError(
            f"client_order_id={value!r} must be 1 to 128 printable characters with no leading or trailing "
            "spaces (or leave it out for a fresh one)",
            "client_order_id",
        )


_Leg = TypeVar("_Leg", TakeProfit, StopLoss)


def _build_leg(cls: type[_Leg], values: Mapping[str, Any], name: str) -> _Leg:
    allowed = {f.name for f in fields(cls)}
    unknown = set(values) - allowed
    if unknown:
        raise OrderValidationError(f"{name} takes {sorted(allowed)}, not {sorted(unknown)}", name)
    try:
        return cls(**values)
    except TypeError:
        raise OrderValidationError(f"{name} needs {sorted(allowed)}", name) from None


@dataclass
class ManagedOrder:
    """An order as the ledger keeps it: who placed it, what Alpaca says of it, and why.

    As in the seed, ``tags`` carry symbol, side and type plus the user's own, and ``notes``
    hold the Alpaca order id.
    """

    client_order_id: str
    user: str
    symbol: str
    side: AlpacaOrderSide
    type: AlpacaOrderType
    environment: AlpacaEnvironment
    status: ManagedOrderStatus = ManagedOrderStatus.PENDING
    alpaca_order_id: str | None = None
    account_id: str | None = None
    time_in_force: AlpacaTimeInForce = AlpacaTimeInForce.DAY
    order_class: AlpacaOrderClass = AlpacaOrderClass.SIMPLE
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    alpaca_status: str | None = None
    parent_client_order_id: str | None = None
    tags: tuple[str, ...] = ()
    notes: str = ""
    external: bool = False
    created_at: datetime | None = None  # when the ledger first recorded it
    updated_at: datetime | None = None  # when the ledger last changed it
    submitted_at: datetime | None = None  # Alpaca's own times, from its answers
    alpaca_updated_at: datetime | None = None
    filled_at: datetime | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final

    def apply_alpaca(self, order: Mapping[str, Any]) -> None:
        """Take status, ids, fills and timestamps from an Alpaca order (raw JSON or model)."""
        get = order.get if isinstance(order, Mapping) else lambda k, d=None: getattr(order, k, d)
        self.alpaca_order_id = str(get("id"))
        self.alpaca_status = _plain(get("status"))
        self.status = managed_status(self.alpaca_status)
        filled_qty = to_decimal(get("filled_qty") or 0, "filled_qty")
        assert filled_qty is not None  # a number given (0 at least): a number back
        self.filled_qty = filled_qty
        self.filled_avg_price = to_decimal(get("filled_avg_price"), "filled_avg_price")
        self.submitted_at = _utc(get("submitted_at")) or self.submitted_at
        self.alpaca_updated_at = _utc(get("updated_at")) or self.alpaca_updated_at
        self.filled_at = _utc(get("filled_at")) or self.filled_at
        note = f"alpaca_order_id={self.alpaca_order_id}"
        if note not in self.notes:
            self.notes = f"{self.notes}; {note}" if self.notes else note

    @staticmethod
    def seed_tags(request: AlpacaOrderRequest, extra: Iterable[str] = ()) -> tuple[str, ...]:
        base = (f"symbol:{request.symbol}", f"side:{request.side.value}", f"type:{request.type.value}")
        return tuple(dict.fromkeys((*base, *request.tags, *extra)))


def _utc(value: Any) -> datetime | None:
    """Alpaca's RFC 3339 text (nanoseconds allowed) or a datetime, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:  # Alpaca's usual microsecond text; nanoseconds need pandas (below)
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:  # text without an offset is UTC, as Alpaca means it
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    import pandas as pd  # only when an answer arrives: keeps `import alpaca_nb.models` light

    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime(warn=False)


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    return value.value if isinstance(value, enum.Enum) else str(value)
