"""The local broker's account: orders, fills, positions, cash, activities, history.

One account, like a paper account. :class:`Engine` is thread-safe (one re-entrant lock):
HTTP handlers call it from the server loop, the ticker (or a test) calls :meth:`Engine.tick`.
Each public call is one *operation*: it runs under the lock, then writes what changed to the
SQLite file in one transaction (write-through), then tells the listeners, in order, every
trade update the operation produced.

The engine is composed of parts it owns, each with a stated contract: ``book``
(:class:`~.book.OrderBook`: the orders and their indexes), ``lifecycle``
(:class:`~.lifecycle.Lifecycle`: every order transition) and ``schedule``
(:class:`~.schedule.Schedule`: ticks, deadlines, the trading day). The engine keeps the
account (cash, positions, activities, configuration), the lock, persistence and listeners,
and answers the parts' callbacks (:class:`~.lifecycle.LifecycleHost`).

    >>> engine = Engine(market, hours, clock)            # in memory; state_path= to persist
    >>> engine.submit_order({"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
    ...                      "time_in_force": "day"})["status"]
    'filled'

Bulk creation for tests and benchmarks: :meth:`Engine.submit_orders` submits many bodies in
one operation and one commit (10,000 orders in about a second).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ..market import assets as asset_universe
from ..market.calendar import MarketHours
from ..market.clock import SimClock
from ..market.market import Market, Quote, Trade
from . import activities as acts
from . import balances as acct
from .book import OrderBook
from .configurations import DEFAULT_CONFIG, update_config
from .errors import SimError, not_found, unprocessable
from .history import portfolio_history
from .lifecycle import Lifecycle, opening_reserve
from .orders import Order
from .risk import AccountLimits, held_qty
from .schedule import Schedule
from .store import Store
from .values import fmt_num, fmt_time, parse_decimal

log = logging.getLogger("alpaca_nb.sim")

ZERO = Decimal(0)
_MAX_ORDERS_PAGE = 500


class Engine:
    """The account and its orders, one locked operation per public call (see the module
    docstring). Public methods are the operations the API serves; the methods under "what
    the parts call back" implement :class:`~.lifecycle.LifecycleHost` and are for the parts."""

    def __init__(
        self,
        market: Market,
        hours: MarketHours,
        clock: SimClock,
        state_path: Path | None = None,
        *,
        initial_cash: Decimal = Decimal("100000"),
    ):
        self.market, self.hours, self.clock = market, hours, clock
        self.initial_cash = Decimal(initial_cash)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[dict], None]] = []
        self._store = Store(state_path)
        self._assets: dict[str, dict] = {}
        self.book = OrderBook(self._reserve_of)
        self.lifecycle: Lifecycle
        self.schedule: Schedule
        self._depth = 0
        self._now: datetime = clock.now()
        self._reset_transient()
        self._restore(self._store.load())

    # ---- state -------------------------------------------------------------------------------
    def _reset_transient(self) -> None:
        """Fresh parts and no pending writes (at start and on :meth:`reset`)."""
        self._dirty: dict[str, Order] = {}
        self._dirty_positions: set[str] = set()
        self._new_activities: list[tuple[int, str, dict]] = []
        self._events: list[dict] = []
        self._marks_cache: dict[tuple[str, datetime], tuple[Quote, Trade]] = {}
        self._meta_dirty = False
        self.lifecycle = Lifecycle(self.book, self.market, self.hours, self)
        self.schedule = Schedule(self.book, self.lifecycle, self.hours, self.market, self.marks)

    def _restore(self, data: dict) -> None:
        meta = data["meta"]
        self.book.clear()
        self._positions: dict[str, acct.Position] = {}
        self._activities: list[dict] = []
        if not meta.get("account_id"):
            self._open_account()
            return
        self.account_id = meta["account_id"]
        self.account_number = meta["account_number"]
        self.created_at = datetime.fromisoformat(meta["created_at"])
        self.cash = Decimal(meta["cash"])
        self.config = {**DEFAULT_CONFIG, **meta.get("config", {})}
        self.limits = _limits(self.config)
        self.last_equity = Decimal(meta["last_equity"])
        self.last_maintenance_margin = Decimal(meta.get("last_maintenance_margin", "0"))
        self.schedule.day_key = meta.get("day_key")
        self._seq = int(meta["seq"])
        self._last_stamp = datetime.fromisoformat(meta["last_stamp"])
        for row in data["orders"]:
            self.book.add(Order.from_row(row))
        for row in data["positions"]:
            pos = acct.Position.from_row(row)
            self._positions[pos.symbol] = pos
        self._activities = data["activities"]
        self.schedule.recompute_deadline()

    def _open_account(self) -> None:
        """A fresh account: new id, the initial deposit as a CSD activity."""
        now = self.clock.now()
        self.account_id = str(uuid.uuid4())
        self.account_number = "PA" + str(uuid.UUID(self.account_id).int)[:10]
        self.created_at = now
        self.cash = self.initial_cash
        self.config = dict(DEFAULT_CONFIG)
        self.limits = _limits(self.config)
        self.last_equity = self.initial_cash
        self.last_maintenance_margin = ZERO
        self.schedule.day_key = self.schedule.session_key(now)
        self._seq = 0
        self._last_stamp = now
        self._add_activity(acts.cash_activity(self.account_id, "CSD", self.initial_cash, now, "initial deposit"))
        self._meta_dirty = True
        self._flush()

    def _meta(self) -> dict:
        return {
            "account_id": self.account_id,
            "account_number": self.account_number,
            "created_at": self.created_at.isoformat(),
            "cash": str(self.cash),
            "config": self.config,
            "last_equity": str(self.last_equity),
            "last_maintenance_margin": str(self.last_maintenance_margin),
            "day_key": self.schedule.day_key,
            "seq": self._seq,
            "last_stamp": self._last_stamp.isoformat(),
        }

    # ---- operations, persistence, events -----------------------------------------------------
    @contextmanager
    def _op(self, now: datetime | None = None) -> Iterator[datetime]:
        """One locked operation; on the way out: write-through, then notify listeners."""
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    self._now = now or self.clock.now()
                    self._marks_cache = {}
                    self.lifecycle.canceled.clear()
                    self._roll_day(self._now)
                yield self._now
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._flush()

    def _flush(self) -> None:
        changed = bool(self._dirty or self._dirty_positions or self._new_activities)
        if changed or self._meta_dirty:
            positions = [self._positions[s].to_row() for s in self._dirty_positions if s in self._positions]
            deleted = [s for s in self._dirty_positions if s not in self._positions]
            self._store.write(
                meta=self._meta(),
                orders=[o.to_row() for o in self._dirty.values()],
                positions=positions,
                deleted_positions=deleted,
                activities=self._new_activities,
            )
        self._dirty, self._dirty_positions, self._new_activities = {}, set(), []
        self._meta_dirty = False
        events, self._events = self._events, []
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:  # one broken listener must not stop the others or the engine
                    log.exception("local broker: trade-update listener failed")

    def add_listener(self, fn: Callable[[dict], None]) -> None:
        """Call ``fn(update)`` for every trade update, in order, after it is persisted.

        ``update`` is ``{"event", "order" (full order JSON, legs nested), "timestamp"}`` plus,
        for ``fill`` / ``partial_fill``, ``"execution_id", "price", "qty", "position_qty"``.
        Listeners run on the thread of the operation, under the engine's lock: hand the
        update to your own loop (``loop.call_soon_threadsafe``) rather than block.
        """
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _roll_day(self, now: datetime) -> None:
        """On a new trading day, remember yesterday's closing equity (``last_equity``)."""
        if not self.schedule.new_day(now):
            return
        self._meta_dirty = True
        close = self.schedule.previous_close(now)
        if close is None or close < self.created_at:
            return
        val = acct.value(self.cash, self._positions, lambda symbol: self.market.trade(symbol, close).price)
        self.last_equity = val.equity
        self.last_maintenance_margin = val.maintenance_margin

    # ---- what the parts call back (LifecycleHost); only inside an operation ---------------------
    def asset(self, symbol_or_id: str) -> dict | None:
        """The asset JSON of a symbol or asset id (cached), None when unknown."""
        found = self._assets.get(symbol_or_id)
        if found is None:
            found = asset_universe.asset(symbol_or_id)
            if found is not None:
                self._assets[symbol_or_id] = found
        return found

    def marks(self, symbol: str, now: datetime) -> tuple[Quote, Trade]:
        """(quote, trade) for ``symbol`` at ``now``, asked of the market once per operation."""
        key = (symbol, now)
        found = self._marks_cache.get(key)
        if found is None:
            found = self._marks_cache[key] = (self.market.quote(symbol, now), self.market.trade(symbol, now))
        return found

    def position_qty(self, symbol: str) -> Decimal:
        """The signed position in ``symbol``, 0 when flat."""
        pos = self._positions.get(symbol)
        return pos.qty if pos is not None else ZERO

    def buying_power(self, clip: bool = True) -> Decimal:
        """What new opening orders may still spend, at the operation's prices."""
        return acct.buying_power(self._valuation(), self.limits.multiplier, self.book.reserved_total, clip=clip)

    def next_seq(self) -> int:
        """The next order sequence number."""
        self._seq += 1
        return self._seq

    def stamp(self, now: datetime) -> datetime:
        """A strictly increasing instant: two orders never share ``submitted_at``, so paging
        by time never loses one."""
        t = now if now > self._last_stamp else self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = t
        return t

    def persist(self, order: Order) -> None:
        """Write ``order`` at the end of the operation."""
        self._dirty[order.id] = order

    def emit(self, event: str, order: Order, at: datetime, **extra: str | None) -> None:
        """Queue a trade update; listeners get it once the operation is written."""
        if not self._listeners:
            return  # building the order JSON costs; nobody listens
        self._events.append(
            {"event": event, "order": self._order_json(order, nested=True), "timestamp": fmt_time(at), **extra}
        )

    def settle_fill(
        self, order: Order, event: str, qty: Decimal, price: Decimal, at: datetime, execution_id: str
    ) -> Decimal:
        """One execution: cash and the position move, a FILL activity is recorded; returns the
        symbol's new signed position."""
        self.cash += -qty * price if order.side == "buy" else qty * price
        self._dirty_positions.add(order.symbol)
        self._meta_dirty = True
        position_qty = acct.apply_fill(self._positions, self._known_asset(order.symbol), order.side, qty, price, at)
        self._add_activity(acts.fill_activity(self.account_id, order, event, qty, price, at, execution_id))
        return position_qty

    def note_deadline(self, t: datetime | None) -> None:
        """An order has something due at ``t``: the schedule settles it at the next tick after."""
        self.schedule.note_deadline(t)

    # ---- the account's own bookkeeping ---------------------------------------------------------
    def _known_asset(self, symbol: str) -> dict:
        """The asset of a symbol the account already trades (an order or a position has it)."""
        found = self.asset(symbol)
        if found is None:
            raise not_found(f"asset not found: {symbol}")
        return found

    def _mark(self, symbol: str) -> Decimal:
        return self.marks(symbol, self._now)[1].price

    def _valuation(self) -> acct.Valuation:
        return acct.value(self.cash, self._positions, self._mark)

    def _reserve_of(self, order: Order) -> Decimal:
        return opening_reserve(order, self._known_asset(order.symbol), self.limits.multiplier)

    def _add_activity(self, activity: dict) -> None:
        self._activities.append(activity)
        self._new_activities.append((len(self._activities), activity["id"], activity))

    # ---- read side ---------------------------------------------------------------------------
    def _order_json(self, order: Order, nested: bool) -> dict:
        legs = None
        if nested and order.leg_ids:
            legs = [self.book.orders[i].to_json() for i in order.leg_ids]
        return order.to_json(legs)

    def account(self) -> dict:
        """The ``Account`` JSON (values at the current last trades)."""
        with self._op() as now:
            val = self._valuation()
            return acct.account_json(
                account_id=self.account_id,
                account_number=self.account_number,
                created_at=self.created_at,
                val=val,
                bp=self.buying_power(),
                multiplier=self.limits.multiplier,
                last_equity=self.last_equity,
                last_maintenance_margin=self.last_maintenance_margin,
                shorting_enabled=self.limits.multiplier > 1 and not self.limits.no_shorting,
                balance_asof=(now.date() - timedelta(days=1)).isoformat(),
                trading_blocked=self.limits.suspend_trade,
            )

    def list_orders(
        self,
        *,
        status: str = "open",
        limit: int = 50,
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str = "desc",
        nested: bool = False,
        symbols: list[str] | None = None,
        side: str | None = None,
    ) -> list[dict]:
        """``GET /v2/orders``: newest first by default; ``after``/``until`` exclusive on
        ``submitted_at``; ``nested`` rolls legs up under their parent."""
        if status not in ("open", "closed", "all"):
            raise unprocessable(f"invalid status: {status!r} (open, closed or all)")
        if direction not in ("asc", "desc"):
            raise unprocessable(f"invalid direction: {direction!r} (asc or desc)")
        if not 1 <= limit <= _MAX_ORDERS_PAGE:
            raise unprocessable(f"invalid limit: {limit} (between 1 and {_MAX_ORDERS_PAGE})")
        if side is not None and side not in ("buy", "sell"):
            raise unprocessable(f"invalid side: {side!r} (buy or sell)")
        with self._lock:
            wanted = set(symbols) if symbols else None
            out = []
            for order in self.book.select(
                status=status,
                after=after,
                until=until,
                direction=direction,
                symbols=wanted,
                side=side,
                top_level_only=nested,
            ):
                out.append(self._order_json(order, nested))
                if len(out) >= limit:
                    break
            return out

    def get_order(self, order_id: str, nested: bool = False) -> dict:
        with self._lock:
            order = self.book.orders.get(str(order_id))
            if order is None:
                raise not_found("order not found")
            return self._order_json(order, nested)

    def get_order_by_client_order_id(self, client_order_id: str) -> dict:
        with self._lock:
            order = self.book.by_client_id.get(client_order_id)
            if order is None:
                raise not_found("order not found")
            return self._order_json(order, False)

    def positions(self) -> list[dict]:
        """Every open position (``Position`` JSON), by symbol."""
        with self._op():
            return [self._position_json(p) for _, p in sorted(self._positions.items())]

    def position(self, symbol_or_asset_id: str) -> dict:
        with self._op():
            return self._position_json(self._find_position(symbol_or_asset_id))

    def _find_position(self, symbol_or_asset_id: str) -> acct.Position:
        asset = self.asset(symbol_or_asset_id)
        pos = self._positions.get(asset["symbol"]) if asset else None
        if pos is None:
            raise not_found("position does not exist")
        return pos

    def _position_json(self, pos: acct.Position) -> dict:
        current = self._mark(pos.symbol)
        lastday = self.schedule.lastday_price(pos.symbol, self._now)
        exit_side = "sell" if pos.qty > 0 else "buy"
        held = held_qty(self.book.symbol_open(pos.symbol), exit_side)
        available = pos.qty - held if pos.qty > 0 else pos.qty + held
        session = self.hours.previous_session(self._now)
        opened_today = session is not None and pos.opened_at >= session[0]
        ref = pos.avg_entry_price if opened_today else lastday
        return acct.position_json(pos, current, lastday, available, ref)

    def activities(
        self,
        *,
        activity_types: list[str] | None = None,
        after: datetime | None = None,
        until: datetime | None = None,
        date: datetime | None = None,
        direction: str = "desc",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> list[dict]:
        """``GET /v2/account/activities``: FILL and cash activities, newest first."""
        with self._lock:
            return acts.page(
                self._activities,
                activity_types=activity_types,
                after=after,
                until=until,
                date=date,
                direction=direction,
                page_size=page_size,
                page_token=page_token,
            )

    def portfolio_history(self, **params) -> dict:
        """``GET /v2/account/portfolio/history`` from the fills and the market's prices."""
        with self._op() as now:
            return portfolio_history(
                activities=self._activities,
                price_at=lambda symbol, t: self.market.trade(symbol, t).price,
                hours=self.hours,
                now=now,
                created_at=self.created_at,
                params=params,
            )

    def configurations(self) -> dict:
        with self._lock:
            return dict(self.config)

    def update_configurations(self, patch: dict) -> dict:
        """``PATCH /v2/account/configurations``: known keys, type-checked (422 otherwise)."""
        with self._op():
            self.config = update_config(self.config, patch)
            self.limits = _limits(self.config)
            self._meta_dirty = True
            return dict(self.config)

    # ---- write side --------------------------------------------------------------------------
    def submit_order(self, body: dict) -> dict:
        """Place an order (``POST /v2/orders`` body); it trades at once when it can.

        Raises :class:`SimError` (422 invalid, 403 buying power / quantity / shorting); a
        refused order leaves no trace. Returns the order JSON with its legs.
        """
        with self._op() as now:
            order = self.lifecycle.submit(body, now)
            return self._order_json(order, True)

    def submit_orders(self, bodies: list[dict], *, match: bool = True) -> list[dict]:
        """Place many orders in one operation and one database commit (tests, benchmarks).

        Each body is checked and placed exactly as :meth:`submit_order` would, in order; the
        first refused body raises its :class:`SimError` (``message`` prefixed with its index)
        and the orders before it stay placed. ``match=False`` leaves them resting until the
        next :meth:`tick` (no immediate fills), which is the fastest way to create many.
        """
        with self._op() as now:
            out = []
            self.lifecycle.hold_matching = not match
            try:
                for i, body in enumerate(bodies):
                    try:
                        order = self.lifecycle.submit(body, now)
                    except SimError as err:
                        err.message = f"order {i}: {err.message}"
                        err.args = (err.message,)
                        raise
                    out.append(self._order_json(order, True))
            finally:
                self.lifecycle.hold_matching = False
            return out

    def replace_order(self, order_id: str, body: dict) -> dict:
        """``PATCH /v2/orders/{id}``: a new order replaces the old (``replaces`` / ``replaced_by``)."""
        with self._op() as now:
            return self._order_json(self.lifecycle.replace(str(order_id), body, now), True)

    def cancel_order(self, order_id: str) -> None:
        """Cancel an open order (404 unknown, 422 when it is no longer cancelable)."""
        with self._op() as now:
            self.lifecycle.request_cancel(str(order_id), now)

    def cancel_all_orders(self) -> list[dict]:
        """Cancel every open order; the 207 body: ``[{"id", "status": 200, "body": order}]``."""
        with self._op() as now:
            for order in list(self.book.open.values()):
                if order.is_open:
                    self.lifecycle.cancel(order, now)
            return [{"id": o.id, "status": 200, "body": self._order_json(o, False)} for o in self.lifecycle.canceled]

    def close_position(self, symbol_or_asset_id: str, qty=None, percentage=None) -> dict:
        """Market order closing all, ``qty`` shares or ``percentage`` % of a position."""
        with self._op() as now:
            return self._order_json(self._close(symbol_or_asset_id, qty, percentage, now), True)

    def _close(self, symbol_or_asset_id: str, qty, percentage, now: datetime) -> Order:
        pos = self._find_position(symbol_or_asset_id)
        qty = parse_decimal(qty, "qty")
        percentage = parse_decimal(percentage, "percentage")
        if qty is not None and percentage is not None:
            raise unprocessable("only one of qty or percentage may be given")
        size = abs(pos.qty)
        if percentage is not None:
            if not 0 < percentage <= 100:
                raise unprocessable("percentage must be > 0 and <= 100")
            qty = size * percentage / 100
            fractionable = self._known_asset(pos.symbol).get("fractionable", False) and size % 1 != 0
            qty = qty.quantize(Decimal("0.000000001") if fractionable else Decimal(1), rounding="ROUND_DOWN")
            if qty <= 0:
                raise unprocessable(f"percentage {percentage} of {fmt_num(size)} shares is less than one share")
        body = {
            "symbol": pos.symbol,
            "qty": qty if qty is not None else size,
            "side": "sell" if pos.qty > 0 else "buy",
            "type": "market",
            "time_in_force": "day",
        }
        return self.lifecycle.submit(body, now)

    def close_all_positions(self, cancel_orders: bool = False) -> list[dict]:
        """Close every position; the 207 body: ``[{"symbol", "status", "body"}]`` where body
        is the closing order, or Alpaca's error body when that position could not close."""
        with self._op() as now:
            if cancel_orders:
                for order in list(self.book.open.values()):
                    if order.is_open:
                        self.lifecycle.cancel(order, now)
            out = []
            for symbol in sorted(self._positions):
                try:
                    order = self._close(symbol, None, None, now)
                except SimError as err:
                    body = err.body()
                    out.append({"symbol": symbol, "status": err.status, "body": body})
                else:
                    out.append(
                        {"symbol": symbol, "status": 200, "order_id": order.id, "body": self._order_json(order, False)}
                    )
            return out

    def tick(self, now: datetime | None = None) -> None:
        """Let the market act on open orders at ``now`` (default: the clock): expiries and
        auctions first, then queued orders reach the venue, then matching, by symbol."""
        with self._op(now) as now:
            self.schedule.tick(now)

    # ---- lifecycle of the engine -------------------------------------------------------------
    def reset(self) -> None:
        """Start afresh: a new account id, no orders, positions or activities, initial cash."""
        with self._lock:
            self._store.clear()
            self._reset_transient()
            self._restore({"meta": {}, "orders": [], "positions": [], "activities": []})

    def close(self) -> None:
        """Close the database file (the engine is unusable afterwards)."""
        with self._lock:
            self._store.close()


def _limits(config: dict) -> AccountLimits:
    return AccountLimits(
        multiplier=Decimal(str(config["max_margin_multiplier"])),
        no_shorting=bool(config["no_shorting"]),
        suspend_trade=bool(config["suspend_trade"]),
        fractional_trading=bool(config["fractional_trading"]),
    )
