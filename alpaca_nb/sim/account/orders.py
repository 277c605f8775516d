"""The order record of the local broker and its Alpaca JSON form.

An :class:`Order` holds money and quantities as ``Decimal`` and times as aware UTC datetimes;
:meth:`Order.to_json` renders the exact shape alpaca-py's ``Order`` model and the OpenAPI
``Order`` schema expect (numbers as strings, ``notional`` always present, RFC 3339 times).
:meth:`Order.to_row` / :meth:`Order.from_row` are the persisted form (see ``store.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal

from .values import fmt_num, fmt_time

# Statuses after which an order never changes again.
CLOSED_STATUSES = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
# Statuses of an order that is working at the venue (matching looks only at these).
WORKING_STATUSES = frozenset({"new", "partially_filled"})
# Alpaca refuses to replace an order in these states (see the PATCH /v2/orders/{id} spec text).
NOT_REPLACEABLE = frozenset({"accepted", "pending_new", "pending_cancel", "pending_replace"})

ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIME_IN_FORCES = ("day", "gtc", "opg", "cls", "ioc", "fok")
ORDER_CLASSES = ("simple", "bracket", "oco", "oto")
SIDES = ("buy", "sell")
POSITION_INTENTS = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")

_DECIMAL_FIELDS = (
    "qty",
    "notional",
    "filled_qty",
    "filled_avg_price",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "hwm",
)
_ALL_DECIMALS = _DECIMAL_FIELDS + ("filled_notional", "reserve_price")
_TIME_FIELDS = (
    "created_at",
    "updated_at",
    "submitted_at",
    "filled_at",
    "expired_at",
    "expires_at",
    "canceled_at",
    "failed_at",
    "replaced_at",
    "auction_at",
)


@dataclass(eq=False)
class Order:
    """One order (or one leg of a bracket / oco / oto order) as the engine keeps it."""

    id: str
    client_order_id: str
    seq: int  # submission order: the tie-break for equal timestamps
    symbol: str
    asset_id: str
    side: str
    type: str
    time_in_force: str
    order_class: str
    status: str
    created_at: datetime
    submitted_at: datetime
    updated_at: datetime
    qty: Decimal | None = None
    notional: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None
    extended_hours: bool = False
    position_intent: str | None = None
    asset_class: str = "us_equity"
    filled_at: datetime | None = None
    expired_at: datetime | None = None
    expires_at: datetime | None = None
    canceled_at: datetime | None = None
    failed_at: datetime | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    # engine bookkeeping, never on the wire
    parent_id: str | None = None  # set on the legs of a bracket / oco / oto order
    leg_ids: list[str] = field(default_factory=list)
    triggered: bool = False  # a stop / stop_limit / trailing_stop has triggered
    stop_checked_ns: int | None = None  # untriggered stop: trades up to here (ns) were seen
    auction_at: datetime | None = None  # opg / cls: when the auction fills it
    filled_notional: Decimal = Decimal(0)  # value filled so far (notional orders stop on it)
    reserve_price: Decimal | None = None  # per-share buying power an opening order holds back

    # ---- state ---------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Shares still to fill (notional orders: unknown until priced, so 0 here)."""
        if self.qty is None:
            return Decimal(0)
        return self.qty - self.filled_qty

    def record_fill(self, qty: Decimal, price: Decimal, at: datetime) -> None:
        """Add one execution: cumulative qty, average price, status and times."""
        total = self.filled_qty + qty
        old_value = (self.filled_avg_price or Decimal(0)) * self.filled_qty
        self.filled_avg_price = _round_price((old_value + qty * price) / total)
        self.filled_qty = total
        self.filled_notional += qty * price
        done = (self.remaining <= 0) if self.qty is not None else True
        self.status = "filled" if done else "partially_filled"
        if done:
            self.filled_at = at
        self.updated_at = at

    # ---- wire form -----------------------------------------------------------------------
    def to_json(self, legs: list[dict] | None = None) -> dict:
        """The Alpaca ``Order`` JSON; ``legs`` (already rendered) when shown nested."""
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": fmt_time(self.created_at),
            "updated_at": fmt_time(self.updated_at),
            "submitted_at": fmt_time(self.submitted_at),
            "filled_at": fmt_time(self.filled_at),
            "expired_at": fmt_time(self.expired_at),
            "expires_at": fmt_time(self.expires_at),
            "canceled_at": fmt_time(self.canceled_at),
            "failed_at": fmt_time(self.failed_at),
            "replaced_at": fmt_time(self.replaced_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "asset_id": self.asset_id,
            "symbol": self.symbol,
            "asset_class": self.asset_class,
            "notional": fmt_num(self.notional),
            "qty": fmt_num(self.qty),
            "filled_qty": fmt_num(self.filled_qty),
            "filled_avg_price": fmt_num(self.filled_avg_price),
            "order_class": self.order_class,
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": self.position_intent,
            "time_in_force": self.time_in_force,
            "limit_price": fmt_num(self.limit_price),
            "stop_price": fmt_num(self.stop_price),
            "status": self.status,
            "extended_hours": self.extended_hours,
            "legs": legs,
            "trail_percent": fmt_num(self.trail_percent),
            "trail_price": fmt_num(self.trail_price),
            "hwm": fmt_num(self.hwm),
        }

    # ---- persisted form ------------------------------------------------------------------
    def to_row(self) -> dict:
        """Every field as JSON-safe values (Decimals and times as strings)."""
        row = dict(self.__dict__)
        for f in _ALL_DECIMALS:
            value = row[f]
            if value is not None:
                row[f] = str(value)
        for f in _TIME_FIELDS:
            value = row[f]
            if value is not None:
                row[f] = value.isoformat()
        return row

    @classmethod
    def from_row(cls, row: dict) -> Order:
        values = {}
        for f in _FIELDS:
            if f not in row:
                continue
            value = row[f]
            if value is not None and f in _ALL_DECIMALS:
                value = Decimal(value)
            elif value is not None and f in _TIME_FIELDS:
                value = datetime.fromisoformat(value)
            values[f] = value
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(Order))


def _round_price(price: Decimal) -> Decimal:
    """Average prices keep 9 decimals, as Alpaca's filled_avg_price strings do at most."""
    return price.quantize(Decimal("0.000000001")).normalize()
