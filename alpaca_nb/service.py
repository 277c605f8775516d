"""AlpacaService: place, manage and track orders; account, positions and quotes.

Every async method runs alpaca-py's blocking calls in a worker thread, so the kernel's event
loop never blocks, and has a sync twin with the suffix ``_sync`` (one implementation, two
faces)::

    svc = alpaca_nb.connect()                       # ready, for the configured environment
    order = await svc.place_order(user="ana", order_request=AlpacaOrderRequest(
        symbol="AAPL", qty=10, side="buy", type="market"))
    svc.place_order_sync(user="ana", order_request=...)   # the same, without await

Placement is write-ahead: the managed order is recorded (status ``pending``) before the
request is sent, and an ambiguous answer is resolved by looking the order up by its
``client_order_id``, never by sending it again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from . import params
from .broker import Broker, Endpoints
from .config import Settings
from .errors import (
    AuthenticationError,
    BrokerError,
    ConfigurationError,
    DuplicateOrderError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)
from .guard import Closing, ClosingAll, LiveCaps, LiveGuard, Replacement, check_live
from .models import (
    MAX_PRICE,
    MAX_QTY,
    AlpacaCredentials,
    AlpacaEnvironment,
    AlpacaOrderClass,
    AlpacaOrderRequest,
    AlpacaOrderSide,
    AlpacaOrderType,
    AlpacaTimeInForce,
    ManagedOrder,
    ManagedOrderStatus,
    check_price_increment,
    plain,
    to_decimal,
)
from .order_rules import (
    append_note,
    check_notes,
    check_tags,
    check_user,
    is_uuid,
    order_differences,
    order_id_path,
    symbol_path,
)
from .order_rules import is_duplicate_client_order_id as _is_duplicate_client_order_id
from .service_frames import FrameMethods
from .sync import SyncMethods

log = logging.getLogger("alpaca_nb")


class OrderStore(Protocol):
    """What keeps managed orders: the DuckDB ledger, or :class:`InMemoryOrderStore`.

    ``source`` says who saw the change: submit, stream, poll, sync or reconcile. ``new_id``
    (the order's ``client_order_id`` was just generated) and ``defer`` (the write may be applied
    later, before any read) let a store take a faster path; a store may ignore both.
    """

    def create(self, order: ManagedOrder, *, source: str = "submit", new_id: bool = False) -> ManagedOrder: ...
    def update(self, order: ManagedOrder, *, source: str = "submit", defer: bool = False) -> ManagedOrder: ...
    def get(self, client_order_id: str) -> ManagedOrder | None: ...
    def list(self, user: str | None = None) -> list[ManagedOrder]: ...


class InMemoryOrderStore:
    """Managed orders in a dict, for one kernel's life (the default ledger persists them)."""

    def __init__(self) -> None:
        self._orders: dict[str, ManagedOrder] = {}
        self._lock = threading.Lock()

    def create(self, order: ManagedOrder, *, source: str = "submit", new_id: bool = False) -> ManagedOrder:
        with self._lock:
            if order.client_order_id in self._orders:
                raise DuplicateOrderError(
                    f"client_order_id {order.client_order_id!r} already recorded", order.client_order_id
                )
            order.created_at = order.updated_at = datetime.now(UTC)
            self._orders[order.client_order_id] = order
        return order

    def update(self, order: ManagedOrder, *, source: str = "submit", defer: bool = False) -> ManagedOrder:
        with self._lock:
            order.updated_at = datetime.now(UTC)
            self._orders[order.client_order_id] = order
        return order

    def get(self, client_order_id: str) -> ManagedOrder | None:
        return self._orders.get(client_order_id)

    def list(self, user: str | None = None) -> list[ManagedOrder]:
        return [o for o in self._orders.values() if user is None or o.user == user]


def _twin(impl: Callable) -> tuple[Callable, Callable]:
    """An async method and its sync twin from one sync implementation."""

    @functools.wraps(impl)
    async def run_async(self, *args, **kwargs):
        return await asyncio.to_thread(impl, self, *args, **kwargs)

    @functools.wraps(impl)
    def run_sync(self, *args, **kwargs):
        return impl(self, *args, **kwargs)

    return run_async, run_sync


class AlpacaService(FrameMethods, SyncMethods):
    """Trading on one Alpaca account (local, paper or live) with managed-order tracking.

    ``order_service`` keeps the managed orders: by default the DuckDB ledger at
    ``$ALPACA_NB_LEDGER`` (see :mod:`alpaca_nb.ledger`); :class:`InMemoryOrderStore` keeps them
    for one kernel's life. Call ``initialize``
    (or use :func:`alpaca_nb.connect`) before anything else. In the live environment orders
    need :meth:`arm_live` first.
    """

    ASSET_TTL = 900.0  # seconds the cached asset list stays fresh
    # Seconds after which an intent the broker never saw is settled as never placed: far beyond
    # any request's life (ALPACA_NB_TIMEOUT), so a request still in flight is never settled.
    # Should one land later all the same, the next sync records it on its row.
    UNPLACED_AFTER = 600.0

    def __init__(self, order_service: OrderStore | None = None, *, settings: Settings | None = None):
        if order_service is None:
            from .ledger import Ledger

            order_service = Ledger(settings.ledger_path if settings else None)
        self.order_service: OrderStore = order_service
        self.settings = settings
        self._sync_lock = threading.Lock()
        self.broker: Broker | None = None
        self.account_id: str | None = None
        self._assets: dict[str, dict] = {}
        self._assets_at = 0.0
        self._live_guard: LiveGuard | None = None

    def __repr__(self) -> str:
        if self.broker is None:
            return "AlpacaService(not initialized)"
        return (
            f"AlpacaService({self.environment.value}, account={self.account_id}, "
            f"trading={self.broker.endpoints.trading_url})"
        )

    # -- setup ------------------------------------------------------------------------------------

    @property
    def environment(self) -> AlpacaEnvironment:
        return self._require().credentials.environment

    def _initialize(
        self,
        credentials: AlpacaCredentials,
        trading_url: str | None = None,
        data_url: str | None = None,
        timeout: float | None = None,
    ) -> AlpacaService:
        settings = self.settings
        if timeout is None:
            timeout = settings.timeout if settings else 10.0
        trading_url = trading_url or (settings.trading_url if settings else None)
        data_url = data_url or (settings.data_url if settings else None)
        if credentials.environment is AlpacaEnvironment.LOCAL and not trading_url:
            from .local import local_broker_url, local_keys

            trading_url = data_url = local_broker_url(settings.home if settings else None)
            # The local broker accepts the keys of the environment that started it (local-key
            # unless ALPACA_API_KEY was set): use those, whatever a .env says.
            key, secret = local_keys()
            credentials = AlpacaCredentials(key, secret, AlpacaEnvironment.LOCAL)
        if not credentials.api_key or not credentials.api_secret:
            raise ConfigurationError(
                f"the {credentials.environment.value} environment needs ALPACA_API_KEY and ALPACA_API_SECRET"
            )
        endpoints = Endpoints.for_environment(credentials.environment, trading_url, data_url)
        broker = Broker(credentials, endpoints, timeout=timeout)
        account = broker.call(broker.trading.get, "/account", what="get account")
        if self.broker is not None and (self.account_id, self.environment) != (account["id"], credentials.environment):
            self._live_guard = None  # arming is for one account in one environment, never carried over
        self.broker, self.account_id = broker, account["id"]
        if hasattr(self.order_service, "scoped"):  # the ledger: read and write this account only
            self.order_service = self.order_service.scoped(self.account_id, credentials.environment.value)
        log.info("alpaca_nb connected to %s (%s)", endpoints.trading_url, credentials.environment.value)
        return self

    initialize, initialize_sync = _twin(_initialize)

    def _require(self) -> Broker:
        if self.broker is None:
            raise ConfigurationError(
                "the service is not initialized: call `await service.initialize(credentials)` "
                "or use alpaca_nb.connect()"
            )
        return self.broker

    @property
    def streams(self):
        """This account's :class:`~alpaca_nb.stream.StreamHub` (one per account, shared by all cells)."""
        from .stream import stream_hub

        return stream_hub(self)

    def arm_live(
        self,
        *,
        max_order_notional: float = 1_000.0,
        max_orders_per_minute: int = 10,
        minutes: float = 60.0,
        tighten_only: bool = False,
    ) -> LiveCaps:
        """Allow live orders for ``minutes``: each up to ``max_order_notional`` dollars (priced at
        the market, see :mod:`alpaca_nb.guard`), at most ``max_orders_per_minute`` a minute.

        Returns the caps in force. ``tighten_only=True`` (what the ticket does) never loosens the
        caps last armed in code. Re-arming never resets the count of orders in the last minute.
        Raises :class:`InvalidArgumentError` for a bad cap.
        """
        if self.environment is not AlpacaEnvironment.LIVE:
            log.info("arm_live: %s environment needs no arming", self.environment.value)
        if self._live_guard is None:
            self._live_guard = LiveGuard()
        return self._live_guard.arm(
            max_order_notional=max_order_notional,
            max_orders_per_minute=max_orders_per_minute,
            minutes=minutes,
            tighten_only=tighten_only,
        )

    def disarm_live(self) -> None:
        """No live order until :meth:`arm_live` again (caps armed in code still bound the ticket)."""
        if self._live_guard is not None:
            self._live_guard.disarm()

    # -- assets -----------------------------------------------------------------------------------

    def asset(self, symbol: str) -> dict | None:
        """Alpaca's Asset JSON for ``symbol`` from the cached list (refreshed every 15 minutes)."""
        symbol = params.symbol(symbol)
        if not self._assets or time.monotonic() - self._assets_at > self.ASSET_TTL:
            broker = self._require()
            assets = broker.get_json("trading", "/assets", {"asset_class": "us_equity"}, what="list assets")
            self._assets = {a["symbol"]: a for a in assets}
            self._assets_at = time.monotonic()
        return self._assets.get(symbol)

    # -- orders -----------------------------------------------------------------------------------

    def check_order(
        self, order_request: AlpacaOrderRequest, *, user: str = "check", tags: Any = (), notes: Any = ""
    ) -> AlpacaOrderRequest:
        """Every check :meth:`place_order` makes before sending, without sending anything: the
        request's type, ``user``, ``tags`` and ``notes``, and the asset (known, active and
        tradable, fractionable for a fractional order). Raises :class:`OrderValidationError`
        naming the field; returns the request. (In the live environment the live guard is
        checked when placing.)"""
        self._require()
        if not isinstance(order_request, AlpacaOrderRequest):
            raise OrderValidationError("order_request must be an AlpacaOrderRequest", "order_request")
        check_user(user)
        check_tags(tags)
        check_notes(notes)
        order_request.check_asset(self.asset(order_request.symbol))
        return order_request

    def _place_order(
        self, user: str, order_request: AlpacaOrderRequest, *, tags: Iterable[str] = (), notes: str = ""
    ) -> ManagedOrder:
        """Place an order, write-ahead; returns its managed order.

        Raises (nothing sent) :class:`OrderValidationError` / :class:`InvalidArgumentError` for bad
        input and :class:`LiveTradingNotArmed`; (the broker refused: not placed, the row says
        ``rejected``) :class:`OrderValidationError` (422), :class:`OrderRejectedError` (403),
        :class:`AuthenticationError`, :class:`RateLimitError`, :class:`NotFoundError`,
        :class:`BrokerError`; and :class:`OrderOutcomeUnknownError` when no definite answer came
        and the lookup by ``client_order_id`` could not settle it (the order may exist: the row
        says ``unresolved`` until a sync settles it). Placing again with the same
        ``client_order_id`` returns the order already placed, never a second one.
        """
        broker = self._require()
        self.check_order(order_request, user=user, tags=tags, notes=notes)
        tags, notes = check_tags(tags), check_notes(notes)
        self._check_live(order_request)
        given = order_request.client_order_id
        if given:
            existing = self.order_service.get(given)
            if existing is not None:
                return self._place_again(existing, order_request)
        request = order_request.with_client_order_id(given or new_client_order_id())
        managed = ManagedOrder(
            client_order_id=request.client_order_id,
            user=user.strip(),
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            environment=self.environment,
            account_id=self.account_id,
            time_in_force=request.time_in_force,
            order_class=request.order_class,
            qty=request.qty,
            notional=request.notional,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            tags=ManagedOrder.seed_tags(request, tags),
            notes=notes,
        )
        try:  # the intent is on record (on disk) before the request leaves
            self.order_service.create(managed, new_id=not given)
        except DuplicateOrderError:  # recorded meanwhile (another cell, thread or process placing it)
            existing = self.order_service.get(request.client_order_id)
            if existing is None:
                raise OrderValidationError(
                    f"client_order_id {request.client_order_id!r} is recorded in this ledger for another "
                    "account or environment: leave it out for a fresh one",
                    "client_order_id",
                ) from None
            return self._place_again(existing, order_request)
        return self._send(
            managed,
            lambda: broker.call(
                broker.trading.post, "/orders", request.to_alpaca(), what=f"place {request.side.value} {request.symbol}"
            ),
        )

    place_order, place_order_sync = _twin(_place_order)

    def _place_again(self, existing: ManagedOrder, request: AlpacaOrderRequest) -> ManagedOrder:
        """``request`` names a ``client_order_id`` already on record: the same order, never a second.

        A different order under that id is refused. An order the broker has answered for is
        returned as recorded. One whose outcome is open (pending, unresolved, or refused before
        it reached the broker) is looked up; when the broker does not have it, it is sent again
        under the same id, which the broker accepts at most once.
        """
        broker = self._require()
        differences = order_differences(existing, request)
        if differences:
            name, mine, theirs = differences[0]
            raise OrderValidationError(
                f"client_order_id {existing.client_order_id!r} is already used by another order "
                f"({name} {mine} there, {theirs} here): leave client_order_id out for a fresh one",
                "client_order_id",
            )
        if existing.alpaca_order_id:
            return existing
        try:
            found = self._lookup_client_order_id(existing.client_order_id)
        except NotFoundError:
            found = None
        except (
            NetworkError,
            AuthenticationError,
            RateLimitError,
            OrderRejectedError,
            OrderValidationError,
            BrokerError,
        ) as err:
            raise self._unknown(existing, err) from None
        if found is not None:
            return self._adopt(existing, found)
        existing.status = ManagedOrderStatus.PENDING
        return self._send(
            existing,
            lambda: broker.call(
                broker.trading.post,
                "/orders",
                request.with_client_order_id(existing.client_order_id).to_alpaca(),
                what=f"place {request.side.value} {request.symbol}",
            ),
        )

    def _send(self, managed: ManagedOrder, send: Callable[[], dict]) -> ManagedOrder:
        """Send the request that creates ``managed`` (already on record) and record the outcome.

        A definite refusal marks it ``rejected`` and re-raises; no definite answer is resolved by
        a lookup, never by sending again (:meth:`_resolve_ambiguous`); a broker that already holds
        the ``client_order_id`` is asked which order that is (:meth:`_adopt`).
        """
        try:
            answer = send()
        except OrderValidationError as err:
            if _is_duplicate_client_order_id(err):
                return self._resolve_duplicate(managed)
            self._refused(managed, err)
            raise
        except (OrderRejectedError, AuthenticationError, RateLimitError, NotFoundError, BrokerError) as err:
            self._refused(managed, err)  # a definite answer: the order was not placed
            raise
        except NetworkError as err:
            return self._resolve_ambiguous(managed, err)
        managed.apply_alpaca(answer)
        return self.order_service.update(managed, defer=True)

    def _refused(self, managed: ManagedOrder, err: Exception) -> None:
        managed.status = ManagedOrderStatus.REJECTED
        managed.notes = append_note(managed.notes, f"rejected: {err}")
        self.order_service.update(managed, defer=True)

    def _resolve_duplicate(self, managed: ManagedOrder) -> ManagedOrder:
        """The broker already has this ``client_order_id``: ours (an earlier attempt landed), or
        another order's, which is never attached to this row."""
        try:
            found = self._lookup_client_order_id(managed.client_order_id)
        except (
            NetworkError,
            NotFoundError,
            AuthenticationError,
            RateLimitError,
            OrderRejectedError,
            OrderValidationError,
            BrokerError,
        ) as err:
            raise self._unknown(managed, err) from None
        return self._adopt(managed, found)

    def _adopt(self, managed: ManagedOrder, found: dict) -> ManagedOrder:
        """Attach the broker's order ``found`` (same ``client_order_id``) if it is this order."""
        differences = order_differences(managed, found)
        if not differences:
            managed.apply_alpaca(found)
            return self.order_service.update(managed, defer=True)
        name, mine, theirs = differences[0]
        message = (
            f"client_order_id {managed.client_order_id!r} is already used at the broker by another "
            f"order ({found.get('id')}: {name} {theirs}, this one {mine}); this order was not "
            "placed: leave client_order_id out for a fresh one"
        )
        self._refused(managed, OrderValidationError(message, "client_order_id"))
        raise OrderValidationError(message, "client_order_id")

    LOOKUP_RETRIES = (0.2, 0.5)  # seconds between lookups that got no definite answer

    def _resolve_ambiguous(self, managed: ManagedOrder, err: NetworkError) -> ManagedOrder:
        """The request may or may not have reached Alpaca: ask by client_order_id, never resend.

        Found: recorded and returned. Otherwise the row stays ``unresolved`` and
        :class:`OrderOutcomeUnknownError` says so (a 404 now does not prove the request will
        never land; a refused or rate-limited lookup proves nothing).
        """
        reason: Exception = err
        for pause in (0.0, *self.LOOKUP_RETRIES):
            time.sleep(pause)
            try:
                found = self._lookup_client_order_id(managed.client_order_id)
            except NotFoundError as missing:
                reason = missing
                break  # a definite "not now": the lookup will not say more for a while
            except (
                NetworkError,
                AuthenticationError,
                RateLimitError,
                OrderRejectedError,
                OrderValidationError,
                BrokerError,
            ) as failed:
                reason = failed
                continue
            managed.apply_alpaca(found)
            return self.order_service.update(managed, defer=True)
        raise self._unknown(managed, err, reason) from None

    def _unknown(
        self, managed: ManagedOrder, err: Exception, lookup: Exception | None = None
    ) -> OrderOutcomeUnknownError:
        """Record ``managed`` as unresolved; the error that says its outcome is unknown."""
        managed.status = ManagedOrderStatus.UNRESOLVED
        self.order_service.update(managed, defer=True)
        looked = "" if lookup is None or lookup is err else f"; the lookup by client_order_id got: {lookup}"
        return OrderOutcomeUnknownError(
            f"{err}{looked}. The outcome of order {managed.client_order_id} is UNKNOWN: it may be at the "
            "broker. It is recorded as unresolved; svc.sync_order_status(order) or svc.sync() settles it, "
            "and placing again with the same client_order_id returns it rather than a second order",
            client_order_id=managed.client_order_id,
            order=managed,
        )

    def _lookup_client_order_id(self, client_order_id: str) -> dict:
        broker = self._require()
        return broker.get_json(
            "trading", "/orders:by_client_order_id", {"client_order_id": client_order_id}, what="look up order"
        )

    def _check_live(self, subject: AlpacaOrderRequest | Replacement | Closing | ClosingAll) -> None:
        """In LIVE, the guard admits what ``subject`` would make the broker create, priced at the
        market, or raises :class:`LiveTradingNotArmed` before anything is sent (see
        :mod:`alpaca_nb.guard`). Other environments pass."""
        if self.environment is AlpacaEnvironment.LIVE:
            check_live(self, self._live_guard, subject)

    def _sync_order_status(self, order: ManagedOrder) -> ManagedOrder:
        """Bring ``order`` in step with Alpaca (by its Alpaca id, else its client_order_id).

        An intent the broker does not know stays ``unresolved`` while its request might still
        land (``UNPLACED_AFTER`` seconds); after that it is settled as ``rejected`` ("never
        reached the broker"). Should it land later all the same, the next sync records it.
        """
        broker = self._require()
        if not isinstance(order, ManagedOrder):
            raise InvalidArgumentError("order must be a ManagedOrder (from place_order or the ledger)", "order")
        try:
            if order.alpaca_order_id:
                answer = broker.call(
                    broker.trading.get, f"/orders/{order_id_path(order.alpaca_order_id)}", what="get order"
                )
            else:
                answer = self._lookup_client_order_id(order.client_order_id)
        except NotFoundError:
            if order.status not in (ManagedOrderStatus.PENDING, ManagedOrderStatus.UNRESOLVED):
                raise
            age = (datetime.now(UTC) - order.created_at).total_seconds() if order.created_at else 0
            if age < self.UNPLACED_AFTER:
                order.status = ManagedOrderStatus.UNRESOLVED
            else:
                order.status = ManagedOrderStatus.REJECTED
                order.notes = append_note(order.notes, "never reached the broker")
            return self.order_service.update(order, source="poll")
        if order.alpaca_order_id is None and order_differences(order, answer):
            return self._adopt(order, answer)  # another order holds this client_order_id: refused
        order.apply_alpaca(answer)
        return self.order_service.update(order, source="poll")

    sync_order_status, sync_order_status_sync = _twin(_sync_order_status)

    def _cancel_order(self, order: ManagedOrder | str) -> None:
        """Ask Alpaca to cancel ``order``: a managed order, an Alpaca order id (a UUID), or the
        ``client_order_id`` of an order in the ledger. Anything else raises
        :class:`InvalidArgumentError` before a request is sent."""
        broker = self._require()
        if isinstance(order, ManagedOrder):
            order_id = order.alpaca_order_id
            if not order_id:
                raise OrderValidationError("this order has no Alpaca id yet: sync_order_status() first", "order")
        elif isinstance(order, str) and not is_uuid(order) and self.order_service.get(order) is not None:
            return self._cancel_order(self.order_service.get(order))
        else:
            order_id = order
        broker.call(broker.trading.delete, f"/orders/{order_id_path(order_id, 'order')}", what="cancel order")

    cancel_order, cancel_order_sync = _twin(_cancel_order)

    def _replace_order(
        self,
        order: ManagedOrder,
        *,
        qty: Any = None,
        limit_price: Any = None,
        stop_price: Any = None,
        trail: Any = None,
        time_in_force: str | None = None,
    ) -> ManagedOrder:
        """Replace an open order (Alpaca's PATCH): a new managed order that records its parent.

        The old order becomes ``replaced``; the returned order is the new one. Write-ahead like
        :meth:`place_order`, with the same errors: a definite refusal marks the new row
        ``rejected``; no definite answer is settled by a lookup or raises
        :class:`OrderOutcomeUnknownError`.
        """
        broker = self._require()
        if not isinstance(order, ManagedOrder):
            raise InvalidArgumentError("order must be a ManagedOrder (from place_order or the ledger)", "order")
        if not order.alpaca_order_id:
            raise OrderValidationError("this order has no Alpaca id yet: sync_order_status() first", "order")
        path = f"/orders/{order_id_path(order.alpaca_order_id)}"
        body: dict[str, Any] = {}
        for name, value in (("qty", qty), ("limit_price", limit_price), ("stop_price", stop_price), ("trail", trail)):
            number = to_decimal(value, name, MAX_QTY if name == "qty" else MAX_PRICE)
            if number is None:
                continue
            if number <= 0:
                raise OrderValidationError(f"{name} must be positive, got {number}", name)
            if name != "qty":
                check_price_increment(number, name)
            body[name] = plain(number)
        tif = order.time_in_force
        if time_in_force is not None:
            tif = AlpacaTimeInForce.parse(time_in_force, "time_in_force")
            body["time_in_force"] = tif.value
        if not body:
            raise OrderValidationError(
                "nothing to replace: give qty, limit_price, stop_price, trail or time_in_force", "qty"
            )
        body["client_order_id"] = new_client_order_id()
        new = ManagedOrder(
            client_order_id=body["client_order_id"],
            user=order.user,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            environment=order.environment,
            account_id=order.account_id,
            time_in_force=tif,
            order_class=order.order_class,
            qty=to_decimal(body.get("qty"), "qty") or order.qty,
            notional=order.notional,
            limit_price=to_decimal(body.get("limit_price"), "limit_price") or order.limit_price,
            stop_price=to_decimal(body.get("stop_price"), "stop_price") or order.stop_price,
            parent_client_order_id=order.client_order_id,
            tags=order.tags,
            notes=f"replaces {order.client_order_id}",
        )
        self._check_live(Replacement(order.alpaca_order_id, body))
        self.order_service.create(new, new_id=True)
        self._send(
            new, lambda: broker.call(broker.trading.patch, path, body, what=f"replace order {order.alpaca_order_id}")
        )
        self._sync_order_status(order)  # the old one is now replaced (or pending_replace)
        return new

    replace_order, replace_order_sync = _twin(_replace_order)

    def _close_position(
        self, symbol: str, *, qty: Any = None, percentage: Any = None, user: str = "close_position"
    ) -> ManagedOrder:
        """Close all of a position, or ``qty`` shares, or ``percentage`` percent of it.

        The closing order is tracked as a managed order of ``user``.
        """
        broker = self._require()
        symbol = symbol_path(symbol)
        check_user(user)
        if qty is not None and percentage is not None:
            raise OrderValidationError("give qty or percentage, not both", "qty")
        params: dict[str, str] = {}
        if qty is not None:
            number = to_decimal(qty, "qty", MAX_QTY)
            if number <= 0:
                raise OrderValidationError(f"qty must be positive, got {number}", "qty")
            params["qty"] = plain(number)
        if percentage is not None:
            number = to_decimal(percentage, "percentage")
            if not 0 < number <= 100:
                raise OrderValidationError("percentage must be in (0, 100]", "percentage")
            params["percentage"] = plain(number)
        self._check_live(Closing(symbol, qty=params.get("qty"), percentage=params.get("percentage")))
        answer = broker.call(
            broker.trading.delete, f"/positions/{symbol}", params or None, what=f"close position {symbol}"
        )
        return self._track(answer, user=user, tags=("close_position",))

    close_position, close_position_sync = _twin(_close_position)

    def _close_all_positions(self, *, cancel_orders: bool = True, user: str = "close_all") -> list[ManagedOrder]:
        """Close every position (cancelling open orders first by default); returns the closing orders.

        Raises :class:`OrderRejectedError` listing the symbols Alpaca could not close.
        """
        broker = self._require()
        check_user(user)
        if not isinstance(cancel_orders, bool):
            raise InvalidArgumentError("cancel_orders must be True or False", "cancel_orders")
        self._check_live(ClosingAll())
        answers = broker.call(
            broker.trading.delete, "/positions", {"cancel_orders": cancel_orders}, what="close all positions"
        )
        closing, failed = [], []
        for item in answers or []:
            if 200 <= int(item.get("status", 500)) < 300 and item.get("body", {}).get("id"):
                closing.append(self._track(item["body"], user=user, tags=("close_all",)))
            else:
                failed.append(f"{item.get('symbol')}: {item.get('body', {}).get('message', item.get('status'))}")
        if failed:
            raise OrderRejectedError("could not close " + "; ".join(failed))
        return closing

    close_all_positions, close_all_positions_sync = _twin(_close_all_positions)

    def _cancel_all_orders(self) -> int:
        """Cancel every open order; returns how many Alpaca accepted to cancel."""
        broker = self._require()
        answers = broker.call(broker.trading.delete, "/orders", what="cancel all orders")
        return sum(1 for item in answers or [] if 200 <= int(item.get("status", 500)) < 300)

    cancel_all_orders, cancel_all_orders_sync = _twin(_cancel_all_orders)

    def _track(self, answer: dict, *, user: str, tags: Iterable[str] = ()) -> ManagedOrder:
        """Record an order Alpaca created on our behalf (closing orders) as a managed order."""
        managed = ManagedOrder(
            client_order_id=answer["client_order_id"],
            user=user,
            symbol=answer["symbol"],
            side=AlpacaOrderSide(answer["side"]),
            type=AlpacaOrderType(answer.get("type") or answer["order_type"]),
            environment=self.environment,
            account_id=self.account_id,
            time_in_force=AlpacaTimeInForce(answer["time_in_force"]),
            order_class=AlpacaOrderClass(answer.get("order_class") or "simple"),
            qty=to_decimal(answer.get("qty"), "qty"),
            notional=to_decimal(answer.get("notional"), "notional"),
            tags=(
                f"symbol:{answer['symbol']}",
                f"side:{answer['side']}",
                f"type:{answer.get('type') or answer['order_type']}",
                *tags,
            ),
        )
        managed.apply_alpaca(answer)
        try:
            self.order_service.create(managed)
        except DuplicateOrderError:
            # The stream (follow()) imported it first, as an external order: claim it as ours.
            managed.external = False
            self.order_service.update(managed)
        return managed

    def _get_account(self) -> dict:
        broker = self._require()
        return broker.call(broker.trading.get, "/account", what="get account")

    get_account, get_account_sync = _twin(_get_account)

    def _get_positions(self) -> list[dict]:
        broker = self._require()
        return broker.call(broker.trading.get, "/positions", what="list positions")

    get_positions, get_positions_sync = _twin(_get_positions)

    def _get_stock_quote(self, symbol: str) -> dict[str, Any]:
        """The latest quote: ``bid_price``, ``ask_price``, ``bid_size``, ``ask_size``, ``timestamp``."""
        symbol = params.symbol(symbol)
        quote = self._latest("quotes", symbol).get("quotes", {}).get(symbol)
        if quote is None:
            raise NotFoundError(f"no quote for {symbol}: check the symbol")
        return {
            "symbol": symbol,
            "bid_price": float(quote["bp"]),
            "ask_price": float(quote["ap"]),
            "bid_size": float(quote["bs"]),
            "ask_size": float(quote["as"]),
            "timestamp": pd.Timestamp(quote["t"]).tz_convert("UTC"),
        }

    get_stock_quote, get_stock_quote_sync = _twin(_get_stock_quote)

    def _feed(self) -> str:
        return self.settings.feed if self.settings else "iex"


def new_client_order_id() -> str:
    """A fresh id that says where the order came from: ``nb-`` and 32 hex digits."""
    return f"nb-{uuid.uuid4().hex}"
