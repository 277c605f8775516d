"""The ledger in step with the broker: write-ahead placement, paged sync, the stream, reconcile."""

from __future__ import annotations

import math
import threading
import time
import uuid
from decimal import Decimal

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from brokers import service_for, wait_for

from alpaca_nb import AlpacaOrderRequest, ManagedOrderStatus, NetworkError, OrderOutcomeUnknownError
from alpaca_nb.ledger import Ledger
from alpaca_nb.models import AlpacaEnvironment, ManagedOrder
from alpaca_nb.sim import LocalBroker


def market(symbol="AAPL", qty=1, side="buy", **kw):
    return AlpacaOrderRequest(symbol=symbol, qty=qty, side=side, type="market", **kw)


def far_limit(svc, symbol="MSFT", qty=1):
    bid = svc.get_stock_quote_sync(symbol)["bid_price"]
    return AlpacaOrderRequest(
        symbol=symbol, qty=qty, side="buy", type="limit", limit_price=round(bid * 0.5, 2), time_in_force="gtc"
    )


@pytest.fixture
def persistent(tmp_path):
    """A broker that keeps its account on disk, so it can be stopped and started again."""
    broker = LocalBroker(state_dir=tmp_path / "broker", rate_limit=None).start()
    yield broker
    broker.stop()


def restart(broker: LocalBroker, state_dir) -> LocalBroker:
    broker.stop()
    return LocalBroker(port=broker.port, state_dir=state_dir, rate_limit=None).start()


def test_connect_uses_the_ledger_by_default(svc):
    assert isinstance(svc.order_service, Ledger)
    assert svc.order_service.account_id == svc.account_id
    order = svc.place_order_sync(user="ana", order_request=market())
    stored = svc.order_service.get(order.client_order_id)
    assert stored.user == "ana" and stored.alpaca_order_id == order.alpaca_order_id
    assert {"symbol:AAPL", "side:buy", "type:market"} <= set(stored.tags)
    assert f"alpaca_order_id={order.alpaca_order_id}" in stored.notes
    events = svc.order_service.events(order.client_order_id)
    assert list(events["source"])[:2] == ["submit", "submit"]


def test_the_intent_is_on_record_before_the_request_reaches_the_broker(persistent, tmp_path):
    broker = persistent
    svc = service_for(broker)
    svc.UNPLACED_AFTER = 0.0
    broker.faults.add(path="/v2/orders", method="POST", delay=2.0)  # held before processing
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(_place(svc, market())))
    worker.start()
    wait_for(lambda: broker.requests[("POST", "/v2/orders")] == 1)
    [intent] = svc.order_service.list()
    assert intent.status is ManagedOrderStatus.PENDING and intent.alpaca_order_id is None
    assert broker.engine.list_orders(status="all") == []
    broker = restart(broker, tmp_path / "broker")  # the broker dies mid-request
    worker.join(10)
    assert isinstance(outcome[0], NetworkError)
    [unresolved] = svc.order_service.list()
    assert unresolved.status is ManagedOrderStatus.UNRESOLVED
    result = svc.sync_orders()  # the broker never processed it: settled, never resent
    assert result.settled == 1 and broker.requests[("POST", "/v2/orders")] == 0
    assert svc.order_service.get(intent.client_order_id).status is ManagedOrderStatus.REJECTED
    broker.stop()


def test_an_order_accepted_while_the_answer_was_lost_is_found_by_the_next_sync(persistent, tmp_path):
    broker = persistent
    svc = service_for(broker)
    svc.LOOKUP_RETRIES = ()  # one lookup, while the broker is down: the sync must settle it
    broker.faults.add(path="/v2/orders", method="POST", delay_after=2.0)  # processed, answer held
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(_place(svc, market())))
    worker.start()
    wait_for(lambda: broker.engine.list_orders(status="all"))
    broker = restart(broker, tmp_path / "broker")
    worker.join(10)
    assert isinstance(outcome[0], OrderOutcomeUnknownError) and "unresolved" in str(outcome[0])
    assert outcome[0].client_order_id == outcome[0].order.client_order_id
    [order] = svc.order_service.list()
    assert order.status is ManagedOrderStatus.UNRESOLVED
    svc.sync_orders()
    order = svc.order_service.get(order.client_order_id)
    assert order.status is ManagedOrderStatus.FILLED and order.alpaca_order_id
    assert len(broker.engine.list_orders(status="all")) == 1  # never sent twice
    broker.stop()


def _place(svc, request):
    try:
        return svc.place_order_sync(user="t", order_request=request)
    except Exception as err:  # the test inspects what the caller saw
        return err


def test_status_transitions_are_recorded_with_their_source(svc, trading):
    filled = svc.place_order_sync(user="u", order_request=market(qty=2))
    resting = svc.place_order_sync(user="u", order_request=far_limit(svc))
    replaced = svc.place_order_sync(user="u", order_request=far_limit(svc))
    canceled_behind = svc.place_order_sync(user="u", order_request=far_limit(svc))
    new = svc.replace_order_sync(replaced, qty=2)
    svc.cancel_order_sync(resting)
    trading.cancel_order_by_id(canceled_behind.alpaca_order_id)  # behind the ledger's back
    wait_for(lambda: trading.get_order_by_id(canceled_behind.alpaca_order_id).status == "canceled")
    svc.sync_orders()
    ledger = svc.order_service
    status = {o.client_order_id: o.status for o in ledger.list()}
    assert status[filled.client_order_id] is ManagedOrderStatus.FILLED
    assert status[resting.client_order_id] is ManagedOrderStatus.CANCELED
    assert status[replaced.client_order_id] is ManagedOrderStatus.REPLACED
    assert status[new.client_order_id] is ManagedOrderStatus.OPEN
    assert status[canceled_behind.client_order_id] is ManagedOrderStatus.CANCELED
    assert ledger.get(new.client_order_id).parent_client_order_id == replaced.client_order_id
    history = ledger.events(canceled_behind.client_order_id)
    assert list(history["status"].dropna())[-1] == "canceled" and list(history["source"])[-1] == "sync"
    rejected = ledger.list(status="rejected")
    assert rejected == []


def test_sync_of_2000_orders_takes_at_most_ceil_2000_over_500_plus_2_requests(manual_broker):
    svc = service_for(manual_broker)
    bodies = [
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "limit_price": "1.00",
            "time_in_force": "gtc",
            "client_order_id": f"ext-{i}",
        }
        for i in range(2000)
    ]
    manual_broker.engine.submit_orders(bodies, match=False)
    before = manual_broker.requests[("GET", "/v2/orders")]
    result = svc.sync_orders()
    used = manual_broker.requests[("GET", "/v2/orders")] - before
    assert used == result.requests <= math.ceil(2000 / 500) + 2
    assert result.inserted == 2000
    orders = svc.order_service.list()
    assert len(orders) == 2000 and all(o.external for o in orders)
    assert {o.user for o in orders} == {"external"}
    # Nothing changed: a second sync brings nothing new and stays as cheap.
    before = manual_broker.requests[("GET", "/v2/orders")]
    again = svc.sync_orders()
    assert again.inserted == 0 and again.updated == 0
    assert manual_broker.requests[("GET", "/v2/orders")] - before <= math.ceil(2000 / 500) + 2


def test_a_later_sync_asks_only_from_the_oldest_open_order(manual_broker):
    svc = service_for(manual_broker)
    resting = svc.place_order_sync(user="u", order_request=far_limit(svc))
    for _ in range(3):
        svc.place_order_sync(user="u", order_request=market())
    svc.sync_orders()
    manual_broker.step(1)
    svc.cancel_order_sync(resting)
    result = svc.sync_orders()
    assert result.after is not None and result.orders_seen == 4  # from the resting order on
    assert svc.order_service.get(resting.client_order_id).status is ManagedOrderStatus.CANCELED


def test_a_fill_from_the_stream_and_from_the_activities_is_stored_once(svc):
    follower = svc.follow()
    try:
        order = svc.place_order_sync(user="u", order_request=market(qty=3))
        ledger = svc.order_service
        wait_for(lambda: len(ledger.fills()) >= 1 and ledger.fills()["qty"].sum() == 3)
        assert set(ledger.fills()["source"]) == {"stream"}
        assert follower.applied >= 1
        assert svc.sync_fills() == 0  # the activities report the same executions
        fills = ledger.fills()
        assert fills["qty"].sum() == 3 and fills["execution_id"].is_unique
        assert set(fills["client_order_id"]) == {order.client_order_id}
        assert ledger.get(order.client_order_id).status is ManagedOrderStatus.FILLED
    finally:
        follower.stop()


def test_follow_catches_up_after_the_stream_was_dropped(svc, broker):
    follower = svc.follow()
    try:
        assert follower.catch_ups == 1
        broker.drop_streams()
        TradingClient(broker.key, broker.secret, url_override=broker.url).submit_order(
            MarketOrderRequest(symbol="SPY", qty=1, side="buy", time_in_force="day")
        )
        wait_for(lambda: follower.catch_ups >= 2)
        wait_for(lambda: len(svc.order_service.list(symbol="SPY")) == 1)
        [external] = svc.order_service.list(symbol="SPY")
        assert external.external and external.user == "external"
    finally:
        follower.stop()
    assert not follower.running


def test_following_twice_does_not_double_apply(svc):
    assert svc.follower is None
    first = svc.follow()
    second = svc.follow()  # a re-run cell, or a widget: the same follower
    try:
        assert second is first and first.running and svc.follower is first
        assert svc.streams.status()["subscriptions"] == len(first._subs)
        svc.place_order_sync(user="u", order_request=market())
        wait_for(lambda: svc.order_service.fills()["qty"].sum() == 1)
        time.sleep(0.3)
        assert svc.order_service.fills()["qty"].sum() == 1
    finally:
        first.stop()
    assert svc.follower is None and svc.follow() is not first  # a stopped follower is replaced
    svc.follower.stop()


def test_reconcile_is_empty_after_a_sync_and_lists_exactly_what_changed_behind_its_back(svc, broker):
    svc.place_order_sync(user="u", order_request=market(qty=4))
    resting = svc.place_order_sync(user="u", order_request=far_limit(svc))
    wait_for(lambda: svc.positions()["qty"].sum() == 4)
    svc.sync()
    assert svc.reconcile().empty

    raw = TradingClient(broker.key, broker.secret, url_override=broker.url)
    outside = raw.submit_order(
        LimitOrderRequest(symbol="MSFT", qty=1, side="buy", limit_price=1.0, time_in_force="gtc")
    )
    raw.cancel_order_by_id(resting.alpaca_order_id)
    raw.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="sell", time_in_force="day"))
    wait_for(lambda: svc.positions()["qty"].sum() == 3)
    ghost = ManagedOrder(
        client_order_id="ghost-1",
        user="u",
        symbol="IBM",
        side="buy",
        type="market",
        environment=AlpacaEnvironment.LOCAL,
        account_id=svc.account_id,
        status=ManagedOrderStatus.OPEN,
        alpaca_order_id=str(uuid.uuid4()),
    )
    svc.order_service.create(ghost)

    diff = svc.reconcile()
    found = {(r.kind, r.client_order_id or r.symbol) for r in diff.fillna("").itertuples()}
    closed_outside = [o for o in broker.engine.list_orders(status="all", limit=500) if o["side"] == "sell"]
    assert found == {
        ("missing_in_ledger", str(outside.client_order_id)),
        ("missing_in_ledger", closed_outside[0]["client_order_id"]),
        ("status", resting.client_order_id),
        ("missing_at_broker", "ghost-1"),
        ("position", "AAPL"),
    }
    position = diff[diff["kind"] == "position"].iloc[0]
    assert (position["ledger"], position["broker"]) == ("4", "3")
    status = diff[diff["kind"] == "status"].iloc[0]
    assert (status["ledger"], status["broker"]) == ("open", "canceled")
    assert list(diff.columns) == ["kind", "symbol", "client_order_id", "alpaca_order_id", "field", "ledger", "broker"]

    svc.sync()
    left = svc.reconcile()
    assert set(left["kind"]) == {"missing_at_broker"}  # only the ghost, which no sync can explain


def test_sync_needs_a_ledger(broker):
    from alpaca_nb import ConfigurationError, InMemoryOrderStore

    svc = service_for(broker, order_service=InMemoryOrderStore())
    with pytest.raises(ConfigurationError, match="ledger"):
        svc.sync_orders()


def test_fills_sync_is_paged_and_incremental(manual_broker):
    svc = service_for(manual_broker)
    for _ in range(120):
        svc.place_order_sync(user="u", order_request=market(symbol="SPY"))
    manual_broker.step(1)
    assert svc.sync_fills() >= 120
    assert Decimal(str(svc.order_service.fills()["qty"].sum())) == 120
    before = manual_broker.requests[("GET", "/v2/account/activities/FILL")]
    assert svc.sync_fills() == 0
    assert manual_broker.requests[("GET", "/v2/account/activities/FILL")] - before == 1


def test_bracket_legs_belong_to_the_user_who_placed_the_entry(svc):
    ask = svc.get_stock_quote_sync("AAPL")["ask_price"]
    entry = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL",
            qty=2,
            side="buy",
            type="market",
            order_class="bracket",
            tags=["swing"],
            take_profit={"limit_price": round(ask * 1.2, 2)},
            stop_loss={"stop_price": round(ask * 0.8, 2)},
        ),
    )
    svc.sync()
    legs = [o for o in svc.order_service.list() if o.parent_client_order_id == entry.client_order_id]
    assert len(legs) == 2
    for leg in legs:
        assert leg.user == "ana" and not leg.external
        assert "swing" in leg.tags and "external" not in leg.tags and "symbol:AAPL" in leg.tags


def test_closing_a_position_while_following_claims_the_order_the_stream_imported(svc, broker):
    follower = svc.follow()
    try:
        svc.place_order_sync(user="u", order_request=market(qty=2))
        wait_for(lambda: svc.positions()["qty"].sum() == 2)
        broker.faults.add(path="/v2/positions/AAPL", method="DELETE", delay_after=1.0)
        closing = svc.close_position_sync("AAPL")
        stored = svc.order_service.get(closing.client_order_id)
        assert stored.user == "close_position" and not stored.external
        assert "close_position" in stored.tags and "external" not in stored.tags
        events = svc.order_service.events(closing.client_order_id)
        assert "stream" in set(events["source"])  # the stream did see it first
    finally:
        follower.stop()
