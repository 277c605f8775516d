"""Every failure at the broker maps onto alpaca_nb's error tree, produced by real conditions."""

from __future__ import annotations

import time
import uuid

import pytest
from brokers import service_for

from alpaca_nb import (
    AlpacaCredentials,
    AlpacaOrderRequest,
    AlpacaService,
    AuthenticationError,
    InMemoryOrderStore,
    ManagedOrderStatus,
    NetworkError,
    NotFoundError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)
from alpaca_nb.sim import LocalBroker


def market(symbol="AAPL", qty=1, side="buy", **kw):
    return AlpacaOrderRequest(symbol=symbol, qty=qty, side=side, type="market", **kw)


def orders_posted(broker) -> int:
    return broker.requests[("POST", "/v2/orders")]


def test_wrong_keys_raise_authentication_error_without_leaking_them(broker):
    with pytest.raises(AuthenticationError) as info:
        AlpacaService().initialize_sync(
            AlpacaCredentials("wrong-key", "wrong-secret-123", "local"), trading_url=broker.url, data_url=broker.url
        )
    assert "401" in str(info.value) and "wrong-secret-123" not in str(info.value)
    assert "wrong-key" not in str(info.value)


def test_insufficient_buying_power_is_rejected_with_alpacas_reason(svc, broker):
    with pytest.raises(OrderRejectedError, match="buying power"):
        svc.place_order_sync(user="t", order_request=market(qty=1_000_000))
    [managed] = svc.order_service.list()
    assert managed.status is ManagedOrderStatus.REJECTED and "buying power" in managed.notes
    assert svc.orders(status="all").empty


def test_selling_more_than_held_is_rejected(svc):
    asset = svc.asset("IBM") or svc.asset("AAPL")
    with pytest.raises(OrderRejectedError):
        svc.place_order_sync(user="t", order_request=market(symbol=asset["symbol"], qty="0.5", side="sell"))


def test_unknown_order_is_not_found(svc):
    with pytest.raises(NotFoundError):
        svc.cancel_order_sync(str(uuid.uuid4()))


def test_a_client_order_id_the_broker_holds_is_the_same_order_or_refused(svc, broker):
    first = svc.place_order_sync(user="t", order_request=market(client_order_id="dup-1"))
    assert first.alpaca_order_id
    # A service whose store has never seen it sends it: the broker refuses (422), the lookup
    # finds the same order, and that order is returned: placing again never makes a second.
    other = AlpacaService(InMemoryOrderStore()).initialize_sync(
        AlpacaCredentials(broker.key, broker.secret, "local"), trading_url=broker.url, data_url=broker.url
    )
    again = other.place_order_sync(user="t", order_request=market(client_order_id="dup-1"))
    assert again.alpaca_order_id == first.alpaca_order_id
    # Another order under that id is refused, and the broker's order is not attached to it.
    with pytest.raises(OrderValidationError, match="another order") as info:
        other.place_order_sync(user="t", order_request=market(client_order_id="dup-1", qty=2))
    assert info.value.field == "client_order_id"
    assert len(svc.orders(status="all")) == 1


def test_placing_again_with_a_recorded_client_order_id_returns_it_without_sending(svc, broker):
    first = svc.place_order_sync(user="t", order_request=market(client_order_id="dup-2"))
    posted = orders_posted(broker)
    again = svc.place_order_sync(user="t", order_request=market(client_order_id="dup-2"))
    assert again.alpaca_order_id == first.alpaca_order_id and orders_posted(broker) == posted
    with pytest.raises(OrderValidationError, match="already used by another order") as info:
        svc.place_order_sync(user="t", order_request=market(client_order_id="dup-2", side="sell"))
    assert info.value.field == "client_order_id" and orders_posted(broker) == posted


def test_unknown_symbol_is_refused_before_sending(svc, broker):
    svc.asset("AAPL")  # warm the asset cache
    before = broker.requests["total"]
    with pytest.raises(OrderValidationError, match="not a known asset"):
        svc.place_order_sync(user="t", order_request=market(symbol="ZZZZ"))
    assert broker.requests["total"] == before


def test_rate_limit_waits_for_the_reset_then_succeeds():
    with LocalBroker(rate_limit=3, rate_window=1.0) as broker:
        svc = service_for(broker)  # uses 1 request
        started = time.monotonic()
        for _ in range(5):
            svc.get_account_sync()
        assert time.monotonic() - started >= 0.5  # it had to wait for a reset
        # 6 answered requests plus at least one refused with 429 and sent again after the reset
        assert broker.requests[("GET", "/v2/account")] > 6


def test_rate_limit_beyond_the_bounded_wait_raises():
    with LocalBroker(rate_limit=2, rate_window=60.0) as broker:
        svc = service_for(broker)
        svc.get_account_sync()
        started = time.monotonic()
        with pytest.raises(RateLimitError, match="rate limit") as info:
            svc.get_account_sync()
        assert time.monotonic() - started < 2  # no 3 x 3 s retries
        assert info.value.reset_at and info.value.reset_at > time.time()


def test_timeout_is_a_network_error(broker):
    svc = AlpacaService().initialize_sync(
        AlpacaCredentials(broker.key, broker.secret, "local"), trading_url=broker.url, data_url=broker.url, timeout=0.3
    )
    broker.faults.add(path="/v2/account", delay=2)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="no answer within"):
        svc.get_account_sync()
    assert time.monotonic() - started < 1.5


def test_server_error_is_a_network_error_and_never_retried(svc, broker):
    broker.faults.add(path="/v2/positions", status=504)
    with pytest.raises(NetworkError, match="504"):
        svc.get_positions_sync()
    assert broker.requests[("GET", "/v2/positions")] == 1


def test_connection_refused_is_a_network_error(broker):
    svc = service_for(broker)
    broker.stop()
    with pytest.raises(NetworkError, match="refused"):
        svc.get_account_sync()


def test_order_post_answered_504_is_looked_up_not_resent(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", status=504)
    with pytest.raises(NetworkError, match="unresolved"):
        svc.place_order_sync(user="t", order_request=market())
    assert orders_posted(broker) == 1  # alpaca-py's 3 retries are off
    [managed] = svc.order_service.list()
    assert managed.status is ManagedOrderStatus.UNRESOLVED
    # Right after, the request might still be in flight: it stays unresolved...
    svc.sync_order_status_sync(managed)
    assert managed.status is ManagedOrderStatus.UNRESOLVED
    # ...and once past the grace period, a sync settles it as never placed.
    svc.UNPLACED_AFTER = 0.0
    svc.sync_order_status_sync(managed)
    assert managed.status is ManagedOrderStatus.REJECTED and "never reached" in managed.notes


def test_lost_answer_after_accept_is_resolved_by_client_order_id(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", drop_after=True)
    order = svc.place_order_sync(user="t", order_request=market())
    assert orders_posted(broker) == 1
    assert order.alpaca_order_id and order.status is not ManagedOrderStatus.UNRESOLVED
    assert len(svc.orders(status="all")) == 1  # exactly one order at the broker


def test_an_order_refused_for_the_rate_limit_is_recorded_as_not_placed():
    with LocalBroker(rate_limit=3, rate_window=60.0) as broker:
        svc = service_for(broker)  # 1 request
        svc.asset("AAPL")  # 2
        svc.get_account_sync()  # 3: the budget is spent
        with pytest.raises(RateLimitError):
            svc.place_order_sync(user="t", order_request=market())
        [managed] = svc.order_service.list()
        assert managed.status is ManagedOrderStatus.REJECTED and "rate limit" in managed.notes
        assert broker.engine.list_orders(status="all") == []
