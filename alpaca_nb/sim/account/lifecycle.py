"""How orders move: submit, activate, match, fill, cancel, replace, expire, auction.

:class:`OrderFlow` is the half of :class:`~alpaca_nb.sim.engine.Engine` that changes orders;
the engine adds state, persistence, locking and the read side. Every change goes through
``_set`` (status + indexes + write-through) and is announced through ``_emit`` in the order
it happens, so the trade-update stream replays the lifecycle exactly:

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

from ..market.bars import to_ns
from . import matching
from .errors import SimError, not_found, unprocessable
from .order_validation import OrderRequest, check_leg_prices, parse_order_body, replacement_body
from .orders import NOT_REPLACEABLE, Order
from .risk import check_buying_power, check_position_rules, reservation
from .values import fmt_num

ZERO = Decimal(0)
_EXTENDED_BEFORE = timedelta(hours=5, minutes=30)  # pre-market from 04:00 ET
_EXTENDED_AFTER = timedelta(hours=4)  # after-hours until 20:00 ET
_GTC_LIFETIME = timedelta(days=90)


class OrderFlow:
    """Order state transitions; mixed into Engine (which provides the attributes used here)."""

    # ---- submit ------------------------------------------------------------------------------
    def _submit(self, body: dict, now: datetime) -> Order:
        req = parse_order_body(body, self._asset)
        if req.client_order_id is not None and req.client_order_id in self.book.by_client_id:
            raise SimError(422, 40010001, "client_order_id must be unique")
        if req.fractional and not self.config["fractional_trading"]:
            raise unprocessable("fractional trading is disabled for this account")
        quote, trade = self._marks(req.symbol, now)
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
        qty = req.qty if req.qty is not None else req.notional / est_price
        pos = self._positions.get(req.symbol)
        opening = check_position_rules(
            side=req.side,
            qty=qty,
            fractional=req.fractional,
            asset=req.asset,
            position_qty=pos.qty if pos else ZERO,
            open_orders=open_orders,
            working_sides=working_sides,
            limits=self.limits,
            exit_only=req.order_class == "oco",
        )
        if not opening:
            return None
        cost = req.notional if req.notional is not None else qty * est_price
        need = reservation(cost, req.asset, self.limits.multiplier)
        check_buying_power(need, self._buying_power() + released)
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
        at = self._stamp(now)
        order = self._new_order(req, at, req.client_order_id, status="pending_new", reserve_price=reserve_price)
        pos = self._positions.get(req.symbol)
        order.position_intent = req.position_intent or _intent(req.side, pos.qty if pos else ZERO)
        self.book.add(order)
        self._dirty[order.id] = order
        for leg in self._make_legs(req, order, now):
            self.book.add(leg)
            self._dirty[leg.id] = leg
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
        self._seq += 1
        values = dict(
            id=str(uuid.uuid4()),
            client_order_id=client_order_id or str(uuid.uuid4()),
            seq=self._seq,
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
                self._stamp(now),
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
        at = self._stamp(now)
        order.expires_at = self._expiry(order, at)
        if order.time_in_force in ("day", "gtc"):
            self._note_deadline(order.expires_at)
        if order.type == "trailing_stop":
            matching.track_trailing(order, self._marks(order.symbol, now)[1].price)
        if order.time_in_force in ("opg", "cls"):
            order.auction_at = order.expires_at = self._auction_time(order, now)
            self._note_deadline(order.auction_at)
            self._set(order, "accepted", at)
            self._emit("accepted", order, at)
            return
        if not self._can_trade(order, now):
            self._set(order, "accepted", at)
            self._emit("accepted", order, at)
            return
        if order.status != "pending_new":
            self._set(order, "pending_new", at)
        self._emit("pending_new", order, at)
        self._set(order, "new", at)
        self._arm_stop(order, now)
        self._emit("new", order, at)
        self._match(order, now)

    def _route_queued(self, order: Order, now: datetime) -> None:
        """A queued (accepted) order reaches the venue when it may trade: new, or rejected
        when the account can no longer pay for it."""
        at = self._stamp(now)
        if order.reserve_price is not None:
            # Its reservation is already counted: the account is short only if the total
            # reserved now exceeds what the account could buy.
            if self._buying_power(clip=False) < 0:
                order.failed_at = at
                self._set(order, "rejected", at)
                self._emit("rejected", order, at)
                self._end_group(order, now)
                return
        self._set(order, "new", at)
        self._arm_stop(order, now)
        self._emit("new", order, at)

    def _arm_stop(self, order: Order, now: datetime) -> None:
        """A stop going to work at the venue watches the tape from its last trade on."""
        if order.type in matching.STOP_TYPES and not order.triggered:
            order.stop_checked_ns = to_ns(self._marks(order.symbol, now)[1].t) - 1

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

    def _can_trade(self, order: Order, now: datetime) -> bool:
        if self.hours.mode == "continuous" or self.hours.is_open(now):
            return True
        return order.extended_hours and self._in_extended_window(now)

    def _in_extended_window(self, now: datetime) -> bool:
        """nyse: pre-market (04:00 ET to the open) or after-hours (the close to 20:00 ET)."""
        if self.hours.mode == "continuous":
            return False
        prev = self.hours.previous_session(now)
        if prev is not None and prev[1] <= now < prev[1] + _EXTENDED_AFTER:
            return True
        return now >= self.hours.next_open(now) - _EXTENDED_BEFORE

    # ---- matching ----------------------------------------------------------------------------
    def _match(self, order: Order, now: datetime) -> None:
        """Let a working order trade against the current quote (at most the displayed size)."""
        if not order.is_working or self._no_match or not self._can_trade(order, now):
            return
        quote, trade = self._marks(order.symbol, now)
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
            self._cancel(order, now)

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
        pos = self._positions.get(order.symbol)
        if pos is None or pos.qty <= 0:
            return fill
        qty = min(fill.qty, pos.qty)
        return matching.Fill(qty, fill.price) if qty > 0 else None

    def _displayed(self, symbol: str, quote, side: str) -> Decimal:
        """Shares still displayed at the quote this order would take (ask for a buy)."""
        used = self._liquidity.get(symbol)
        if used is None or used[0] != quote.t:
            used = self._liquidity[symbol] = [quote.t, ZERO, ZERO]
        if side == "buy":
            return Decimal(quote.ask_size) - used[2]
        return Decimal(quote.bid_size) - used[1]

    def _run_auction(self, order: Order, now: datetime) -> None:
        """opg / cls: the whole order at the auction price, if its limit allows; else expire."""
        if order.status == "accepted":
            self._route_queued(order, now)
            if not order.is_open:
                return
        if self.hours.mode == "continuous":
            quote, _ = self._marks(order.symbol, now)
            price = quote.ask if order.side == "buy" else quote.bid
        else:
            price = self.market.trade(order.symbol, order.auction_at).price
        limit = order.limit_price
        if limit is None or (price <= limit if order.side == "buy" else price >= limit):
            self._fill(order, order.remaining, price, now)
        if order.is_open:
            self._expire(order, now)

    # ---- fills -------------------------------------------------------------------------------
    def _fill(self, order: Order, qty: Decimal, price: Decimal, now: datetime, quote=None) -> None:
        at = self._stamp(now)
        order.record_fill(qty, price, at)
        self._touch(order)
        asset = self._asset(order.symbol)
        position_qty = self._book_fill(asset, order.side, qty, price, at)
        if quote is not None:
            used = self._liquidity[order.symbol]
            used[2 if order.side == "buy" else 1] += qty
        event = "fill" if order.status == "filled" else "partial_fill"
        execution_id = str(uuid.uuid4())
        self._record_fill_activity(order, event, qty, price, at, execution_id)
        self._emit(
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
                self._cancel(partner, now, cascade=False)
        if order.status == "filled" and order.leg_ids and order.order_class in ("bracket", "oto"):
            self._release_legs(order, now)

    def _release_legs(self, parent: Order, now: datetime) -> None:
        """The entry is done: its exit legs go live for the filled quantity (or are canceled
        when nothing filled)."""
        for leg in self._legs(parent):
            if leg.status != "held":
                continue
            if parent.filled_qty <= 0:
                self._cancel(leg, now, cascade=False)
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
    def _cancel(self, order: Order, now: datetime, *, cascade: bool = True) -> None:
        at = self._stamp(now)
        if order.status != "held":
            self._set(order, "pending_cancel", at)
            self._emit("pending_cancel", order, at)
        order.canceled_at = at
        self._set(order, "canceled", at)
        self._emit("canceled", order, at)
        self._cancelled.append(order)
        if cascade:
            self._end_group(order, now)

    def _expire(self, order: Order, now: datetime) -> None:
        at = self._stamp(now)
        order.expired_at = at
        self._set(order, "expired", at)
        self._emit("expired", order, at)
        self._end_group(order, now)

    def _end_group(self, order: Order, now: datetime) -> None:
        """An order ended unfilled (canceled, expired, rejected): settle its group. A bracket /
        oto entry releases its legs for what it filled; an exit leg takes its partner with it."""
        if order.leg_ids and order.order_class in ("bracket", "oto"):
            self._release_legs(order, now)
        elif order.leg_ids:  # oco parent
            for leg in self._legs(order):
                if leg.is_open:
                    self._cancel(leg, now, cascade=False)
        for partner in self._oco_partners(order):
            if partner.is_open:
                self._cancel(partner, now, cascade=False)

    def _cancel_request(self, order_id: str, now: datetime) -> None:
        order = self.book.orders.get(order_id)
        if order is None:
            raise not_found("order not found")
        if not order.is_open:
            raise unprocessable("order is not cancelable")
        self._cancel(order, now)

    # ---- replace -----------------------------------------------------------------------------
    def _replace(self, order_id: str, patch: dict, now: datetime) -> Order:
        old = self.book.orders.get(order_id)
        if old is None:
            raise not_found("order not found")
        if not old.is_open:
            raise unprocessable(f"order is not replaceable: it is {old.status}")
        if old.status in NOT_REPLACEABLE:
            raise unprocessable(f"order is not replaceable while {old.status}")
        req = parse_order_body(replacement_body(old, patch), self._asset, leg_rules=False)
        coid = req.client_order_id
        if coid is not None and coid in self.book.by_client_id:
            raise SimError(422, 40010001, "client_order_id must be unique")
        req.order_class = old.order_class
        quote, _ = self._marks(old.symbol, now)
        # The new order takes the old one's place in its exit group (bracket legs, OCO pair),
        # which counts once: compare it against the symbol's other orders only.
        group = old.parent_id or old.id
        others = [o for o in self.book.symbol_open(old.symbol) if (o.parent_id or o.id) != group]
        sides = {o.side for o in others if o.status != "held"}
        reserve_price = None
        if old.status != "held":
            reserve_price = self._check_account(req, quote, lambda: others, sides, self.book.reserved_by(old))
        at = self._stamp(now)
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
        self._set(old, "pending_replace", at)
        self._emit("pending_replace", old, at)
        if old.parent_id:
            parent = self.book.orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
            self._touch(parent)
        for leg in self._legs(old):
            leg.parent_id = new.id
            self._touch(leg)
        old.replaced_by, old.replaced_at = new.id, at
        self._set(old, "replaced", at)
        self._emit("replaced", old, at)
        self.book.add(new)
        self._dirty[new.id] = new
        if new.status != "held":
            self._start(new, now)
        return new

    # ---- bookkeeping -------------------------------------------------------------------------
    def _set(self, order: Order, status: str, at: datetime) -> None:
        order.status = status
        order.updated_at = at
        self._touch(order)

    def _touch(self, order: Order) -> None:
        self.book.changed(order)
        self._dirty[order.id] = order


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
