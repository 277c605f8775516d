"""How orders move: submit, activate, match, fill, cancel, replace, expire, auction.

:class:`Lifecycle` is the part of :class:`~alpaca_nb.sim.account.engine.Engine` that changes
orders; the engine keeps the account, persistence, locking and the read side. Every change goes
through ``set_status`` / ``_touch`` (indexes + write-through) and is announced through the
host's ``emit`` in the order it happens, so the trade-update stream replays the lifecycle exactly:

    pending_new -> new -> partial_fill* -> fill          (accepted instead of new when queued)
    pending_cancel -> canceled;  pending_replace -> replaced (+ pending_new / new of the new order)
    expired (day at the close, gtc after 90 days, unfilled opg/cls at their auction)
    done_for_day (nyse: a partly filled gtc order at the close);  rejected (queued, then refused)

Stops: an untriggered stop / stop_limit / trailing_stop remembers up to which instant it has
seen the tape (``Order.stop_checked_ns``; it starts just before the last trade when it goes
to work at the venue). Each match hands it every trade since then (``Market.trades_between``)
so a spike between two ticks triggers it and a trailing stop's mark is the run's extreme (see
:mod:`.matching`); the execution that follows is at the quote of that match. The instant is
saved with the order row whenever that is written (not on every tick): after a restart the
stop re-reads from there, which is harmless, since trades it had already seen neither
triggered it nor moved its saved mark. Rows written before it existed start at the restart.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from ..market.bars import to_ns
from ..market.calendar import MarketHours
from ..market.market import Market, Quote, Trade
from . import matching
from .book import OrderBook
from .errors import SimError, not_found, unprocessable
from .order_validation import OrderRequest, check_leg_prices, parse_order_body, replacement_body
from .orders import NOT_REPLACEABLE, Order
from .risk import AccountLimits, check_buying_power, check_position_rules, reservation
from .values import fmt_num

ZERO = Decimal(0)
_EXTENDED_BEFORE = timedelta(hours=5, minutes=30)  # pre-market from 04:00 ET
_EXTENDED_AFTER = timedelta(hours=4)  # after-hours until 20:00 ET
_GTC_LIFETIME = timedelta(days=90)


class LifecycleHost(Protocol):
    """What :class:`Lifecycle` calls back in the engine that owns it (the account and the
    operation in progress). Everything else it touches is handed to its constructor."""

    limits: AccountLimits

    def asset(self, symbol_or_id: str) -> dict | None:
        """The asset JSON (cached), or None when the universe has no such symbol or id."""

    def marks(self, symbol: str, now: datetime) -> tuple[Quote, Trade]:
        """The quote and the last trade of ``symbol`` at ``now``."""

    def position_qty(self, symbol: str) -> Decimal:
        """The signed position in ``symbol`` (0 when flat)."""

    def buying_power(self, clip: bool = True) -> Decimal:
        """What new opening orders may still spend (``clip=False``: may be negative)."""

    def next_seq(self) -> int:
        """The next order sequence number (persisted with the account)."""

    def stamp(self, now: datetime) -> datetime:
        """A strictly increasing instant at or after ``now``."""

    def persist(self, order: Order) -> None:
        """Write ``order`` when the operation ends."""

    def emit(self, event: str, order: Order, at: datetime, **extra: str | None) -> None:
        """Announce a trade update (sent once the operation is written)."""

    def settle_fill(
        self, order: Order, event: str, qty: Decimal, price: Decimal, at: datetime, execution_id: str
    ) -> Decimal:
        """Move cash and the position for one execution, record its FILL activity; returns
        the symbol's new signed position."""

    def note_deadline(self, t: datetime | None) -> None:
        """An open order has something due at ``t`` (an expiry or an auction)."""


class Lifecycle:
    """Order state transitions: submit, start, match, fill, cancel, replace, expire, auction.

    Owns: the order transitions and their events, the per-quote displayed liquidity already
    taken, ``canceled`` (orders canceled since the engine last cleared it) and ``hold_matching``
    (set by the engine to place orders without matching them).
    May call: the :class:`~.book.OrderBook` (it adds and updates orders there), the market's
    trades for stops, the trading hours, and the :class:`LifecycleHost` (nothing else of the
    engine). Does not lock, write or notify by itself: the engine runs every call inside one
    of its operations.
    Promises: every status change updates the book's indexes and is persisted and announced
    in the order it happens; a refused request (a :class:`SimError`) changes nothing.
    """

    def __init__(self, book: OrderBook, market: Market, hours: MarketHours, host: LifecycleHost):
        self.book = book
        self.market = market
        self.hours = hours
        self.host = host
        self.canceled: list[Order] = []
        self.hold_matching = False
        self._liquidity: dict[str, list] = {}  # symbol -> [quote time, bid size used, ask size used]

    # ---- submit ------------------------------------------------------------------------------
    def submit(self, body: dict, now: datetime) -> Order:
        req = parse_order_body(body, self.host.asset)
        if req.client_order_id is not None and req.client_order_id in self.book.by_client_id:
            raise SimError(422, 40010001, "client_order_id must be unique")
        if req.fractional and not self.host.limits.fractional_trading:
            raise unprocessable("fractional trading is disabled for this account")
        quote, trade = self.host.marks(req.symbol, now)
        if req.order_class in ("bracket", "oto", "oco"):
            base = req.limit_price if req.type in ("limit", "stop_limit") else req.stop_price
            check_leg_prices(req, base if base is not None else trade.price)
        reserve_price = self._check_account(
            req, quote, lambda: self.book.symbol_open(req.symbol), self.book.working_sides(req.symbol)
        )
        return self._place(req, now, reserve_price)

    def _check_account(
        self, req: OrderRequest, quote, open_orders, working_sides: set[str], released: Decimal = ZERO
    ) -> Decimal | None:
        """Quantity, shorting and buying-power checks; the reservation price when opening.

        ``open_orders()`` lists the symbol's other open orders; ``released`` is buying power
        a replaced order gives back.
        """
        est_price = self._estimate_price(req.side, req.type, req.limit_price, req.stop_price, quote)
        if req.qty is not None:
            qty = req.qty
        elif req.notional is not None:
            qty = req.notional / est_price
        else:  # parse_order_body refuses such a body before it gets here
            raise unprocessable("qty or notional is required")
        opening = check_position_rules(
            side=req.side,
            qty=qty,
            fractional=req.fractional,
            asset=req.asset,
            position_qty=self.host.position_qty(req.symbol),
            open_orders=open_orders,
            working_sides=working_sides,
            limits=self.host.limits,
            exit_only=req.order_class == "oco",
        )
        if not opening:
            return None
        cost = req.notional if req.notional is not None else qty * est_price
        need = reservation(cost, req.asset, self.host.limits.multiplier)
        check_buying_power(need, self.host.buying_power() + released)
        return est_price

    @staticmethod
    def _estimate_price(side: str, order_type: str, limit: Decimal | None, stop: Decimal | None, quote) -> Decimal:
        """What an order will cost per share at worst: its limit, its stop, else the quote."""
        if order_type in ("limit", "stop_limit") and limit is not None:
            return limit
        if order_type == "stop" and stop is not None:
            return max(stop, quote.ask) if side == "buy" else stop
        price = quote.ask if side == "buy" else quote.bid
        return price if price > 0 else (quote.bid if side == "buy" else quote.ask)

    def _place(self, req: OrderRequest, now: datetime, reserve_price: Decimal | None) -> Order:
        """Create the order (and its held legs) and start it."""
        at = self.host.stamp(now)
        order = self._new_order(req, at, req.client_order_id, status="pending_new", reserve_price=reserve_price)
        order.position_intent = req.position_intent or _intent(req.side, self.host.position_qty(req.symbol))
        self.book.add(order)
        self.host.persist(order)
        for leg in self._make_legs(req, order, now):
            self.book.add(leg)
            self.host.persist(leg)
        self._start(order, now)
        if order.order_class == "oco":
            for leg in self._legs(order):
                if leg.status == "pending_new":  # not already canceled by a parent fill
                    self._start(leg, now)
        return order

    def _new_order(
        self,
        req: OrderRequest,
        at: datetime,
        client_order_id: str | None,
        *,
        status: str,
        reserve_price: Decimal | None,
        **overrides,
    ) -> Order:
        values = dict(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id or str(uuid.uuid4()),
            seq=self.host.next_seq(),
            symbol=req.symbol,
            asset_id=req.asset["id"],
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            order_class=req.order_class,
            status=status,
            created_at=at,
            submitted_at=at,
            updated_at=at,
            qty=req.qty,
            notional=req.notional,
            limit_price=req.limit_price,
            stop_price=req.stop_price,
            trail_price=req.trail_price,
            trail_percent=req.trail_percent,
            extended_hours=req.extended_hours,
            reserve_price=reserve_price,
        )
        values.update(overrides)
        return Order(**values)

    def _make_legs(self, req: OrderRequest, parent: Order, now: datetime) -> list[Order]:
        """Bracket / oto: exit legs held until the entry fills. OCO: the stop leg, live at once."""
        if req.order_class == "simple":
            return []
        exit_side = "sell" if req.side == "buy" else "buy"
        specs = []
        if req.order_class in ("bracket", "oto") and req.take_profit is not None:
            specs.append(dict(side=exit_side, type="limit", limit_price=req.take_profit, stop_price=None))
        if req.stop_loss_stop is not None:
            specs.append(
                dict(
                    side=exit_side if req.order_class != "oco" else req.side,
                    type="stop_limit" if req.stop_loss_limit is not None else "stop",
                    limit_price=req.stop_loss_limit,
                    stop_price=req.stop_loss_stop,
                )
            )
        legs = []
        status = "pending_new" if req.order_class == "oco" else "held"
        for spec in specs:
            leg = self._new_order(
                req,
                self.host.stamp(now),
                None,
                status=status,
                reserve_price=None,
                parent_id=parent.id,
                trail_price=None,
                trail_percent=None,
                extended_hours=False,
                **spec,
            )
            leg.position_intent = "sell_to_close" if leg.side == "sell" else "buy_to_close"
            leg.expires_at = self._expiry(leg, leg.submitted_at)  # reset when it is released
            parent.leg_ids.append(leg.id)
            legs.append(leg)
        return legs

    # ---- activation --------------------------------------------------------------------------
    def _start(self, order: Order, now: datetime) -> None:
        """First status of a live order: queued (accepted) or at the venue (new), then match."""
        at = self.host.stamp(now)
        order.expires_at = self._expiry(order, at)
        if order.time_in_force in ("day", "gtc"):
            self.host.note_deadline(order.expires_at)
        if order.type == "trailing_stop":
            matching.track_trailing(order, self.host.marks(order.symbol, now)[1].price)
        if order.time_in_force in ("opg", "cls"):
            order.auction_at = order.expires_at = self._auction_time(order, now)
            self.host.note_deadline(order.auction_at)
            self.set_status(order, "accepted", at)
            self.host.emit("accepted", order, at)
            return
        if not self.can_trade(order, now):
            self.set_status(order, "accepted", at)
            self.host.emit("accepted", order, at)
            return
        if order.status != "pending_new":
            self.set_status(order, "pending_new", at)
        self.host.emit("pending_new", order, at)
        self.set_status(order, "new", at)
        self._arm_stop(order, now)
        self.host.emit("new", order, at)
        self.match(order, now)

    def route_queued(self, order: Order, now: datetime) -> None:
        """A queued (accepted) order reaches the venue when it may trade: new, or rejected
        when the account can no longer pay for it."""
        at = self.host.stamp(now)
        if order.reserve_price is not None:
            # Its reservation is already counted: the account is short only if the total
            # reserved now exceeds what the account could buy.
            if self.host.buying_power(clip=False) < 0:
                order.failed_at = at
                self.set_status(order, "rejected", at)
                self.host.emit("rejected", order, at)
                self._end_group(order, now)
                return
        self.set_status(order, "new", at)
        self._arm_stop(order, now)
        self.host.emit("new", order, at)

    def _arm_stop(self, order: Order, now: datetime) -> None:
        """A stop going to work at the venue watches the tape from its last trade on."""
        if order.type in matching.STOP_TYPES and not order.triggered:
            order.stop_checked_ns = to_ns(self.host.marks(order.symbol, now)[1].t) - 1

    def _expiry(self, order: Order, at: datetime) -> datetime:
        """When the order ends if nothing fills it (ioc / fok: at once; opg / cls: at their
        auction, set by the caller)."""
        tif = order.time_in_force
        if tif == "day":
            if order.extended_hours and self.hours.mode == "nyse":
                prev = self.hours.previous_session(at)
                if prev is not None and at < prev[1] + _EXTENDED_AFTER:
                    return prev[1] + _EXTENDED_AFTER
                return self.hours.next_close(at) + _EXTENDED_AFTER
            return self.hours.next_close(at)
        if tif == "gtc":
            return self.hours.next_close(at + _GTC_LIFETIME)
        return at

    def _auction_time(self, order: Order, at: datetime) -> datetime:
        if self.hours.mode == "continuous":
            return at  # no auctions: trade at the next tick, like a market order
        if order.time_in_force == "opg":
            return self.hours.next_open(at)
        return self.hours.next_close(at)

    def can_trade(self, order: Order, now: datetime) -> bool:
        if self.hours.mode == "continuous" or self.hours.is_open(now):
            return True
        return order.extended_hours and self.in_extended_window(now)

    def in_extended_window(self, now: datetime) -> bool:
        """nyse: pre-market (04:00 ET to the open) or after-hours (the close to 20:00 ET)."""
        if self.hours.mode == "continuous":
            return False
        prev = self.hours.previous_session(now)
        if prev is not None and prev[1] <= now < prev[1] + _EXTENDED_AFTER:
            return True
        return now >= self.hours.next_open(now) - _EXTENDED_BEFORE

    # ---- matching ----------------------------------------------------------------------------
    def match(self, order: Order, now: datetime) -> None:
        """Let a working order trade against the current quote (at most the displayed size)."""
        if not order.is_working or self.hold_matching or not self.can_trade(order, now):
            return
        quote, trade = self.host.marks(order.symbol, now)
        if order.type in matching.STOP_TYPES and not order.triggered:
            self._watch_stop(order, trade, now)
        price = matching.execution_price(order, quote.bid, quote.ask)
        if price is not None:
            fill = matching.fill_for(order, price, self._displayed(order.symbol, quote, order.side))
            if fill is not None and order.notional is not None and order.side == "sell":
                fill = self._clip_to_position(order, fill)
            if fill is not None:
                self._fill(order, fill.qty, fill.price, now, quote=quote)
        if order.time_in_force in ("ioc", "fok") and order.is_open:
            self.cancel(order, now)

    def _watch_stop(self, order: Order, trade, now: datetime) -> None:
        """Show an untriggered stop every trade since it last looked, up to ``now``."""
        hi = min(to_ns(now), self.market.now_ns())
        lo = order.stop_checked_ns
        if lo is None:  # saved before this was kept: start from the last trade
            lo = to_ns(trade.t) - 1
        if hi <= lo:
            return
        order.stop_checked_ns = hi
        _, prices = self.market.trades_between(order.symbol, lo, hi)
        if matching.watch_stop(order, prices):
            self._touch(order)

    def _clip_to_position(self, order: Order, fill: matching.Fill) -> matching.Fill | None:
        position_qty = self.host.position_qty(order.symbol)
        if position_qty <= 0:
            return fill
        qty = min(fill.qty, position_qty)
        return matching.Fill(qty, fill.price) if qty > 0 else None

    def _displayed(self, symbol: str, quote, side: str) -> Decimal:
        """Shares still displayed at the quote this order would take (ask for a buy)."""
        used = self._liquidity.get(symbol)
        if used is None or used[0] != quote.t:
            used = self._liquidity[symbol] = [quote.t, ZERO, ZERO]
        if side == "buy":
            return Decimal(quote.ask_size) - used[2]
        return Decimal(quote.bid_size) - used[1]

    def run_auction(self, order: Order, now: datetime) -> None:
        """opg / cls: the whole order at the auction price, if its limit allows; else expire."""
        if order.status == "accepted":
            self.route_queued(order, now)
            if not order.is_open:
                return
        if self.hours.mode == "continuous":
            quote, _ = self.host.marks(order.symbol, now)
            price = quote.ask if order.side == "buy" else quote.bid
        else:
            price = self.market.trade(order.symbol, order.auction_at).price
        limit = order.limit_price
        if limit is None or (price <= limit if order.side == "buy" else price >= limit):
            self._fill(order, order.remaining, price, now)
        if order.is_open:
            self.expire(order, now)

    # ---- fills -------------------------------------------------------------------------------
    def _fill(self, order: Order, qty: Decimal, price: Decimal, now: datetime, quote=None) -> None:
        at = self.host.stamp(now)
        order.record_fill(qty, price, at)
        self._touch(order)
        if quote is not None:
            used = self._liquidity[order.symbol]
            used[2 if order.side == "buy" else 1] += qty
        event = "fill" if order.status == "filled" else "partial_fill"
        execution_id = str(uuid.uuid4())
        position_qty = self.host.settle_fill(order, event, qty, price, at, execution_id)
        self.host.emit(
            event,
            order,
            at,
            execution_id=execution_id,
            price=fmt_num(price),
            qty=fmt_num(qty),
            position_qty=fmt_num(position_qty),
        )
        for partner in self._oco_partners(order):
            if partner.is_open:
                self.cancel(partner, now, cascade=False)
        if order.status == "filled" and order.leg_ids and order.order_class in ("bracket", "oto"):
            self._release_legs(order, now)

    def _release_legs(self, parent: Order, now: datetime) -> None:
        """The entry is done: its exit legs go live for the filled quantity (or are canceled
        when nothing filled)."""
        for leg in self._legs(parent):
            if leg.status != "held":
                continue
            if parent.filled_qty <= 0:
                self.cancel(leg, now, cascade=False)
                continue
            leg.qty = parent.filled_qty
            self._start(leg, now)

    def _oco_partners(self, order: Order) -> list[Order]:
        """Orders that one fill of ``order`` cancels: the other exit leg(s) of its group."""
        if order.order_class == "oco":
            if order.parent_id:
                return [self.book.orders[order.parent_id]]
            return self._legs(order)
        if order.parent_id and order.order_class == "bracket":
            parent = self.book.orders[order.parent_id]
            return [leg for leg in self._legs(parent) if leg.id != order.id]
        return []

    def _legs(self, order: Order) -> list[Order]:
        return [self.book.orders[i] for i in order.leg_ids]

    # ---- cancel / expire ---------------------------------------------------------------------
    def cancel(self, order: Order, now: datetime, *, cascade: bool = True) -> None:
        at = self.host.stamp(now)
        if order.status != "held":
            self.set_status(order, "pending_cancel", at)
            self.host.emit("pending_cancel", order, at)
        order.canceled_at = at
        self.set_status(order, "canceled", at)
        self.host.emit("canceled", order, at)
        self.canceled.append(order)
        if cascade:
            self._end_group(order, now)

    def expire(self, order: Order, now: datetime) -> None:
        at = self.host.stamp(now)
        order.expired_at = at
        self.set_status(order, "expired", at)
        self.host.emit("expired", order, at)
        self._end_group(order, now)

    def _end_group(self, order: Order, now: datetime) -> None:
        """An order ended unfilled (canceled, expired, rejected): settle its group. A bracket /
        oto entry releases its legs for what it filled; an exit leg takes its partner with it."""
        if order.leg_ids and order.order_class in ("bracket", "oto"):
            self._release_legs(order, now)
        elif order.leg_ids:  # oco parent
            for leg in self._legs(order):
                if leg.is_open:
                    self.cancel(leg, now, cascade=False)
        for partner in self._oco_partners(order):
            if partner.is_open:
                self.cancel(partner, now, cascade=False)

    def request_cancel(self, order_id: str, now: datetime) -> None:
        order = self.book.orders.get(order_id)
        if order is None:
            raise not_found("order not found")
        if not order.is_open:
            raise unprocessable("order is not cancelable")
        self.cancel(order, now)

    # ---- replace -----------------------------------------------------------------------------
    def replace(self, order_id: str, patch: dict, now: datetime) -> Order:
        old = self.book.orders.get(order_id)
        if old is None:
            raise not_found("order not found")
        if not old.is_open:
            raise unprocessable(f"order is not replaceable: it is {old.status}")
        if old.status in NOT_REPLACEABLE:
            raise unprocessable(f"order is not replaceable while {old.status}")
        req = parse_order_body(replacement_body(old, patch), self.host.asset, leg_rules=False)
        coid = req.client_order_id
        if coid is not None and coid in self.book.by_client_id:
            raise SimError(422, 40010001, "client_order_id must be unique")
        req.order_class = old.order_class
        quote, _ = self.host.marks(old.symbol, now)
        # The new order takes the old one's place in its exit group (bracket legs, OCO pair),
        # which counts once: compare it against the symbol's other orders only.
        group = old.parent_id or old.id
        others = [o for o in self.book.symbol_open(old.symbol) if (o.parent_id or o.id) != group]
        sides = {o.side for o in others if o.status != "held"}
        reserve_price = None
        if old.status != "held":
            reserve_price = self._check_account(req, quote, lambda: others, sides, self.book.reserved_by(old))
        at = self.host.stamp(now)
        new = self._new_order(
            req,
            at,
            coid,
            status="held" if old.status == "held" else "pending_new",
            reserve_price=reserve_price,
            parent_id=old.parent_id,
            leg_ids=list(old.leg_ids),
            replaces=old.id,
            position_intent=old.position_intent,
            hwm=old.hwm,
        )
        self.set_status(old, "pending_replace", at)
        self.host.emit("pending_replace", old, at)
        if old.parent_id:
            parent = self.book.orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
            self._touch(parent)
        for leg in self._legs(old):
            leg.parent_id = new.id
            self._touch(leg)
        old.replaced_by, old.replaced_at = new.id, at
        self.set_status(old, "replaced", at)
        self.host.emit("replaced", old, at)
        self.book.add(new)
        self.host.persist(new)
        if new.status != "held":
            self._start(new, now)
        return new

    # ---- ticks -------------------------------------------------------------------------------
    def work(self, order: Order, now: datetime) -> None:
        """A tick's turn for one open order: a queued one reaches the venue, one done for the
        day works again, then it matches (when its session allows)."""
        if not order.is_open or order.status == "held" or order.auction_at is not None:
            return
        if not self.can_trade(order, now):
            return
        if order.status == "accepted":
            self.route_queued(order, now)
        elif order.status == "done_for_day":
            self.set_status(order, "partially_filled", self.host.stamp(now))
        self.match(order, now)

    def done_for_day(self, order: Order, now: datetime) -> None:
        """nyse, at the close: a partly filled gtc order rests until the next session."""
        at = self.host.stamp(now)
        self.set_status(order, "done_for_day", at)
        self.host.emit("done_for_day", order, at)

    # ---- bookkeeping -------------------------------------------------------------------------
    def set_status(self, order: Order, status: str, at: datetime) -> None:
        order.status = status
        order.updated_at = at
        self._touch(order)

    def _touch(self, order: Order) -> None:
        self.book.changed(order)
        self.host.persist(order)


def _intent(side: str, position_qty: Decimal) -> str:
    if side == "buy":
        return "buy_to_close" if position_qty < 0 else "buy_to_open"
    return "sell_to_close" if position_qty > 0 else "sell_to_open"


def opening_reserve(order: Order, asset: dict, multiplier: Decimal) -> Decimal:
    """Buying power an open order holds back (entries only; exits and held legs hold none)."""
    if order.reserve_price is None or order.status == "held" or not order.is_open:
        return ZERO
    if order.notional is not None:
        left = order.notional - order.filled_notional
    else:
        left = order.remaining * order.reserve_price
    return reservation(max(left, ZERO), asset, multiplier)
