"""Keeping the ledger in step with Alpaca: paged sync, fills, the live stream, reconciliation.

Mixed into :class:`~alpaca_nb.service.AlpacaService` when its ``order_service`` is a
:class:`~alpaca_nb.ledger.Ledger`::

    svc.sync_orders()      # every order changed since the last sync, in pages of 500
    svc.sync_fills()       # FILL activities since the last sync, deduplicated by execution
    svc.follow()           # apply trade updates as they arrive; catch up after every reconnect
    svc.reconcile()        # a DataFrame of every difference between ledger and broker

**Few requests.** Alpaca lists orders by submission time. A sync asks only for orders
submitted after the oldest point that can still change: the last sync's newest order, or the
oldest order the ledger holds as not final (a resting limit order submitted last week is
fetched again until it is done). For 2,000 new orders that is five pages of up to 500 (each
page overlaps the previous one by an order, see :func:`_order_pages`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from . import params
from .errors import ConfigurationError
from .marketdata import time_param
from .models import ManagedOrderStatus, managed_status, to_decimal
from .order_rules import append_note, order_differences

log = logging.getLogger("alpaca_nb")

PAGE = 500  # Alpaca's largest page of orders
ACTIVITY_PAGE = 100  # ... and of account activities
# Local and broker clocks may disagree: intents are looked for this far before they were written.
CLOCK_SKEW = timedelta(minutes=5)
_NOT_FINAL = ("pending", "unresolved", "open", "partially_filled")

RECONCILE_COLUMNS = {
    "kind": "string",
    "symbol": "string",
    "client_order_id": "string",
    "alpaca_order_id": "string",
    "field": "string",
    "ledger": "string",
    "broker": "string",
}


@dataclass
class SyncResult:
    """What one :meth:`SyncMethods.sync_orders` did."""

    requests: int = 0
    orders_seen: int = 0
    inserted: int = 0
    updated: int = 0
    settled: int = 0  # pending/unresolved intents found to have never reached the broker
    after: str | None = None  # the lower bound asked for
    fills: int = 0  # new fills stored (by sync(), not sync_orders())

    def __str__(self) -> str:
        return (
            f"synced {self.orders_seen} orders in {self.requests} requests: {self.inserted} new, "
            f"{self.updated} changed, {self.settled} never placed, {self.fills} new fills"
        )


@dataclass
class Follower:
    """A running :meth:`SyncMethods.follow`; ``stop()`` ends it. ``applied`` counts updates."""

    service: Any
    applied: int = 0
    catch_ups: int = 0
    errors: list = field(default_factory=list)
    _subs: list = field(default_factory=list)

    def stop(self) -> None:
        for sub in self._subs:
            sub.cancel()
        self._subs.clear()

    @property
    def running(self) -> bool:
        return bool(self._subs)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Follower({state}, applied={self.applied}, catch_ups={self.catch_ups})"


class SyncMethods:
    """Ledger sync for AlpacaService (which provides ``_require()``, ``order_service``, ...)."""

    _sync_lock: threading.Lock

    def _ledger(self):
        from .ledger import Ledger

        store = self.order_service
        if not isinstance(store, Ledger):
            raise ConfigurationError(
                "sync, follow and reconcile need the DuckDB ledger as order_service: "
                "AlpacaService(Ledger(path)) or alpaca_nb.connect()"
            )
        return store

    def _scope(self) -> dict[str, str]:
        return {"account_id": self.account_id, "environment": self.environment.value}

    def sync_orders(self) -> SyncResult:
        """Bring every order changed since the last sync into the ledger (external ones too).

        Orders placed outside alpaca_nb are imported with ``external=True``; intents that
        never reached the broker (and are older than ``UNPLACED_AFTER``) are settled as
        rejected. Returns a :class:`SyncResult`.
        """
        ledger, broker = self._ledger(), self._require()
        with self._sync_lock:
            scope = self._scope()
            after = self._sync_lower_bound(ledger, scope)
            result = SyncResult(after=after)
            newest = ledger.sync_state("orders.newest_submitted_at", **scope)
            seen: set[str] = set()
            for page in _order_pages(broker, after, "sync orders"):
                result.requests += 1
                if page:
                    done = ledger.upsert_from_alpaca(page, source="sync", **scope)
                    result.inserted += done.inserted
                    result.updated += done.updated
                    seen.update(order["id"] for order in page)
                    last = page[-1]["submitted_at"]
                    if newest is None or pd.Timestamp(last) > pd.Timestamp(newest):
                        newest = last
            result.orders_seen = len(seen)
            if newest:
                ledger.set_sync_state("orders.newest_submitted_at", newest, **scope)
            result.settled = self._settle_unplaced(ledger)
        log.info("alpaca_nb: %s", result)
        return result

    def sync(self) -> SyncResult:
        """:meth:`sync_orders` then :meth:`sync_fills`: the ledger in step with the broker."""
        result = self.sync_orders()
        result.fills = self.sync_fills()
        return result

    def _sync_lower_bound(self, ledger, scope: dict[str, str]) -> str | None:
        """The earliest submission time whose orders may have changed since the last sync."""
        newest = ledger.sync_state("orders.newest_submitted_at", **scope)
        if newest is None:
            return None  # never synced: everything
        found = ledger.sql(
            """SELECT min(coalesce(p.submitted_at, o.submitted_at)) AS open_since,
                      min(CASE WHEN o.status IN ('pending', 'unresolved') THEN o.created_at END) AS intent_since
               FROM managed_orders o LEFT JOIN managed_orders p
                 ON p.client_order_id = o.parent_client_order_id
               WHERE o.account_id = ? AND o.environment = ? AND o.status IN ('pending', 'unresolved',
                     'open', 'partially_filled')""",
            [scope["account_id"], scope["environment"]],
        )
        bounds = [pd.Timestamp(newest)]
        open_since, intent_since = found.iloc[0]["open_since"], found.iloc[0]["intent_since"]
        if pd.notna(open_since):
            bounds.append(pd.Timestamp(open_since) - pd.Timedelta(microseconds=1))
        if pd.notna(intent_since):
            bounds.append(pd.Timestamp(intent_since) - CLOCK_SKEW)
        return time_param(min(bounds), "after")

    def _settle_unplaced(self, ledger) -> int:
        """Pending / unresolved intents that no sync has found, settled as never placed once
        their request cannot still land (``UNPLACED_AFTER``); all in one batch (journaled, then
        applied together). One that lands later all the same is recorded by the next sync."""
        settled = 0
        cutoff = datetime.now(UTC) - timedelta(seconds=self.UNPLACED_AFTER)
        for order in ledger.list(status=["pending", "unresolved"]):
            if order.created_at and order.created_at < cutoff:
                order.status = ManagedOrderStatus.REJECTED
                order.notes = append_note(order.notes, "never reached the broker")
                ledger.update(order, source="sync", defer=True)
                settled += 1
        if settled:
            ledger.drain()
        return settled

    def sync_fills(self) -> int:
        """Store FILL activities since the last fill sync; returns how many fills were new."""
        ledger, broker = self._ledger(), self._require()
        with self._sync_lock:
            scope = self._scope()
            after = ledger.sync_state("fills.after", **scope)
            new, token, latest = 0, None, after
            while True:
                params: dict[str, Any] = {"direction": "asc", "page_size": ACTIVITY_PAGE}
                if after:
                    params["after"] = after
                if token:
                    params["page_token"] = token
                page = broker.get_json("trading", "/account/activities/FILL", params, what="sync fills")
                if page:
                    new += ledger.record_fills(page, source="sync", **scope)
                    token = page[-1]["id"]
                    latest = page[-1]["transaction_time"]
                if len(page) < ACTIVITY_PAGE:
                    break
            if latest:
                # Re-read the last instant next time: fills sharing it are deduplicated.
                ledger.set_sync_state(
                    "fills.after", time_param(pd.Timestamp(latest) - pd.Timedelta(microseconds=1), "after"), **scope
                )
        return new

    @property
    def follower(self) -> Follower | None:
        """The running :meth:`follow`, or None."""
        follower = getattr(self, "_follower", None)
        return follower if follower is not None and follower.running else None

    def follow(self) -> Follower:
        """Apply the account's trade updates to the ledger as they arrive, on the stream's thread.

        Runs a catch-up sync (orders and fills) now and after every reconnect, so nothing that
        happened while the stream was down is missed. Returns a :class:`Follower`. One follower
        runs per service: calling ``follow()`` while one runs (a re-run cell, a widget) returns
        that one rather than doubling it; :attr:`follower` says which runs.
        """
        ledger = self._ledger()
        scope = self._scope()
        running = self.follower
        if running is not None:
            return running
        follower = Follower(self)

        def apply(update) -> None:
            ledger.apply_trade_updates([_wire(update)], source="stream", defer=True, **scope)
            follower.applied += 1

        def catch_up(_gap=None) -> None:
            try:
                self.sync()
                follower.catch_ups += 1
            except Exception as err:  # reported, and the next reconnect tries again
                follower.errors.append(err)
                log.exception("alpaca_nb: catch-up sync after a stream gap failed")

        hub = self.streams
        follower._subs.append(hub.on_trade_update(apply, name=f"ledger-follow-{id(self)}"))
        follower._subs.append(hub.on_gap(catch_up, name=f"ledger-catch-up-{id(self)}"))
        catch_up()
        self._follower = follower
        return follower

    def reconcile(self) -> pd.DataFrame:
        """Every difference between the ledger and the broker, one row each; empty when in step.

        ``kind`` is ``missing_in_ledger`` (Alpaca has an order the ledger lacks),
        ``missing_at_broker`` (the ledger says Alpaca has it; Alpaca does not), ``order`` (the
        row and the broker's order under one ``client_order_id`` are different orders: ``field``
        is the symbol, side, type, qty, notional, limit_price, stop_price or alpaca_order_id
        that differs), ``status`` or ``filled_qty`` (the same order, they disagree; ``ledger`` /
        ``broker`` say how), or ``position`` (the ledger's fills add up to another quantity
        than the broker's position).
        Columns: :data:`RECONCILE_COLUMNS`, all strings.
        """
        ledger, broker = self._ledger(), self._require()
        rows: list[dict[str, Any]] = []
        at_broker = {o["client_order_id"]: o for o in self._all_broker_orders(broker)}
        in_ledger = {o.client_order_id: o for o in ledger.list()}
        for cid, raw in at_broker.items():
            order = in_ledger.get(cid)
            if order is None:
                rows.append(_diff("missing_in_ledger", raw["symbol"], cid, raw["id"], "order", None, raw["status"]))
                continue
            different = order_differences(order, raw)
            if order.alpaca_order_id and order.alpaca_order_id != raw["id"]:
                different.append(("alpaca_order_id", order.alpaca_order_id, raw["id"]))
            for name, mine, theirs in different:
                rows.append(_diff("order", order.symbol, cid, raw["id"], name, mine, theirs))
            if different:
                continue  # another order under this id: its status and fills are not this row's
            status = managed_status(raw["status"]).value
            if order.status.value != status:
                rows.append(_diff("status", order.symbol, cid, raw["id"], "status", order.status.value, status))
            broker_filled = to_decimal(raw.get("filled_qty") or 0, "filled_qty")
            if (order.filled_qty or Decimal(0)) != broker_filled:
                rows.append(
                    _diff("filled_qty", order.symbol, cid, raw["id"], "filled_qty", order.filled_qty, broker_filled)
                )
        for cid, order in in_ledger.items():
            if cid not in at_broker and order.alpaca_order_id:
                rows.append(
                    _diff(
                        "missing_at_broker", order.symbol, cid, order.alpaca_order_id, "order", order.status.value, None
                    )
                )
        held = {
            p["symbol"]: to_decimal(p["qty"], "qty")
            for p in broker.get_json("trading", "/positions", what="list positions")
        }
        from .analytics import positions as fill_positions

        from_fills = fill_positions(ledger)
        booked = {str(r.symbol): Decimal(str(round(float(r.qty), 6))) for r in from_fills.itertuples()}
        for symbol in sorted(set(held) | set(booked)):
            mine = booked.get(symbol, Decimal(0)).quantize(Decimal("1e-6"))
            theirs = held.get(symbol, Decimal(0)).quantize(Decimal("1e-6"))
            if mine != theirs:
                rows.append(_diff("position", symbol, None, None, "qty", mine, theirs))
        frame = pd.DataFrame(rows, columns=list(RECONCILE_COLUMNS))
        return frame.astype(RECONCILE_COLUMNS)

    # -- P&L at today's prices -------------------------------------------------------------------

    def marks(self, symbols: Any = None) -> pd.Series:
        """Mid prices ((bid + ask) / 2; one side when the other is missing) of ``symbols``,
        default: every symbol this account's ledger holds a position in. A Series indexed by
        symbol, ready for :mod:`alpaca_nb.analytics`."""
        if symbols is None:
            from .analytics import positions as fill_positions

            held = fill_positions(self._ledger())
            symbols = sorted(held.loc[held["qty"] != 0, "symbol"])
        symbols = [] if isinstance(symbols, (list, tuple)) and not symbols else params.symbols(symbols)
        if not symbols:
            return pd.Series([], dtype="float64", name="mark").rename_axis("symbol")
        quotes = self.quotes(symbols)
        bid = quotes["bid_price"].where(quotes["bid_price"] > 0)
        ask = quotes["ask_price"].where(quotes["ask_price"] > 0)
        mid = ((bid + ask) / 2).fillna(bid).fillna(ask)
        return mid.dropna().rename("mark").rename_axis("symbol")

    def pnl(self, by: Any = "symbol", marks: Any = None) -> pd.DataFrame:
        """This account's FIFO P&L from the ledger's fills (:func:`alpaca_nb.analytics.pnl`),
        grouped ``by`` symbol (default), user, tag or a list of those; open lots are marked at
        ``marks`` (default: :meth:`marks`, today's mid prices)."""
        from .analytics import pnl as fill_pnl

        return fill_pnl(self._ledger(), self.marks() if marks is None else marks, by=by)

    def _all_broker_orders(self, broker) -> list[dict]:
        """Every order of the account, legs flattened in (pages of 500)."""
        orders: dict[str, dict] = {}
        for page in _order_pages(broker, None, "reconcile orders"):
            for order in page:
                orders[order["id"]] = order
                orders.update((leg["id"], leg) for leg in order.get("legs") or [])
        return list(orders.values())


def _order_pages(broker, after: str | None, what: str):
    """Pages of ``GET /v2/orders`` (all statuses, oldest first, legs nested) from ``after`` on.

    ``after`` is exclusive at Alpaca, and two orders can share a submission time: each next
    page starts one microsecond before the last order seen, so an order sharing that instant
    across the page boundary is read (twice, harmlessly) rather than skipped. A page whose
    orders all share one instant moves on past it, so paging always ends.
    """
    while True:
        params: dict[str, Any] = {"status": "all", "limit": PAGE, "direction": "asc", "nested": True}
        if after:
            params["after"] = after
        page = broker.get_json("trading", "/orders", params, what=what)
        yield page
        if len(page) < PAGE:
            return
        first, last = pd.Timestamp(page[0]["submitted_at"]), pd.Timestamp(page[-1]["submitted_at"])
        after = time_param(last if first == last else last - pd.Timedelta(microseconds=1), "after")


def _wire(update: Any) -> dict[str, Any]:
    """A :class:`~alpaca_nb.stream.TradeUpdate` back in Alpaca's JSON shape (as the ledger reads it)."""
    if isinstance(update, dict):
        return update
    text = lambda v: None if v is None else str(v)  # noqa: E731
    return {
        "event": update.event,
        "order": update.order,
        "timestamp": update.timestamp.isoformat(),
        "execution_id": update.execution_id,
        "price": text(update.price),
        "qty": text(update.qty),
        "position_qty": text(update.position_qty),
    }


def _diff(
    kind: str, symbol: str | None, cid: str | None, alpaca_id: str | None, name: str, ledger: Any, broker: Any
) -> dict[str, Any]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return format(value.normalize(), "f")
        return str(value)

    return {
        "kind": kind,
        "symbol": symbol,
        "client_order_id": cid,
        "alpaca_order_id": alpaca_id,
        "field": name,
        "ledger": text(ledger),
        "broker": text(broker),
    }
