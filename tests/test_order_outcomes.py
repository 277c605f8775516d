"""Unknown stays unknown, ids stay ids: issue 9's findings 3, 4, 5, 7, 10 and 12 on the order paths.

Each test drives the real alpaca-py client against the local broker with an injected fault,
then checks both what the caller saw and what the broker and the ledger hold.
"""

from __future__ import annotations

import uuid

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import MarketOrderRequest
from brokers import wait_for

from alpaca_nb import (
    AlpacaNbError,
    AlpacaOrderRequest,
    AuthenticationError,
    InvalidArgumentError,
    ManagedOrderStatus,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)

LOOKUP = "/v2/orders:by_client_order_id"
NOT_PLACED = (OrderRejectedError, OrderValidationError, AuthenticationError, RateLimitError, NotFoundError)


def market(symbol="AAPL", qty=1, side="buy", **kw):
    return AlpacaOrderRequest(symbol=symbol, qty=qty, side=side, type="market", **kw)


def at_broker(broker) -> list[dict]:
    return broker.engine.list_orders(status="all")


def posted(broker) -> int:
    return broker.requests[("POST", "/v2/orders")]


@pytest.mark.parametrize("refusal", [429, 401, 403, 400, 500, 503])
def test_a_lost_answer_and_a_refused_lookup_is_unknown_never_not_placed(svc, broker, refusal):
    broker.faults.add(path="/v2/orders", method="POST", drop_after=True)
    broker.faults.add(path=LOOKUP, status=refusal, times=3)  # the first lookup and both retries
    with pytest.raises(OrderOutcomeUnknownError) as info:
        svc.place_order_sync(user="ana", order_request=market())
    err = info.value
    assert not isinstance(err, NOT_PLACED)
    [placed] = at_broker(broker)  # the order is at the broker...
    assert err.client_order_id == placed["client_order_id"] and err.client_order_id in str(err)
    assert "UNKNOWN" in str(err) and "sync" in str(err)
    row = svc.order_service.get(err.client_order_id)
    assert row.status is ManagedOrderStatus.UNRESOLVED  # ...and the row says so, not "pending"
    # Placing again with the same client_order_id returns that order: never a duplicate.
    again = svc.place_order_sync(user="ana", order_request=market(client_order_id=err.client_order_id))
    assert again.alpaca_order_id == placed["id"] and len(at_broker(broker)) == 1
    assert svc.order_service.get(err.client_order_id).status is not ManagedOrderStatus.UNRESOLVED


def test_a_lookup_refused_once_is_retried_and_settles_the_order(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", drop_after=True)
    broker.faults.add(path=LOOKUP, status=503)
    order = svc.place_order_sync(user="ana", order_request=market())
    assert order.alpaca_order_id == at_broker(broker)[0]["id"] and posted(broker) == 1


@pytest.mark.parametrize("cut", [True, "chunked"])
def test_a_cut_off_answer_is_looked_up_not_raised_raw(svc, broker, cut):
    broker.faults.add(path="/v2/orders", method="POST", cut_body=cut)
    order = svc.place_order_sync(user="ana", order_request=market())
    [placed] = at_broker(broker)
    assert order.alpaca_order_id == placed["id"] and posted(broker) == 1


def test_a_cut_off_answer_with_the_lookup_refused_is_unknown(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", cut_body=True)
    broker.faults.add(path=LOOKUP, status=429, times=3)
    with pytest.raises(OrderOutcomeUnknownError, match="cut off"):
        svc.place_order_sync(user="ana", order_request=market())
    assert len(at_broker(broker)) == 1


def test_a_5xx_after_the_order_took_effect_is_looked_up(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", status_after=503)
    order = svc.place_order_sync(user="ana", order_request=market())
    assert order.alpaca_order_id == at_broker(broker)[0]["id"]


def test_a_cut_off_body_on_a_read_is_a_typed_error(svc, broker):
    broker.faults.add(path="/v2/account", cut_body=True)
    with pytest.raises(AlpacaNbError, match="cut off"):
        svc.get_account_sync()


@pytest.mark.parametrize(
    "bad",
    [
        "../positions",
        "../orders",
        "..",
        "",
        "x/../../positions",
        "61e69015-8549-4bfd-b9c3-01e75843f47d/../../positions",
        42,
        None,
    ],
)
def test_ids_never_steer_a_request_to_another_path(svc, broker, bad):
    svc.place_order_sync(user="ana", order_request=market(qty=3))
    wait_for(lambda: broker.engine.positions(), what="a position")
    resting = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    before = dict(broker.requests)
    with pytest.raises(InvalidArgumentError) as info:
        svc.cancel_order_sync(bad)
    assert info.value.argument == "order" and "UUID" in str(info.value)
    assert dict(broker.requests) == before  # nothing was sent
    assert broker.engine.positions() and svc.sync_order_status_sync(resting).status is ManagedOrderStatus.OPEN


@pytest.mark.parametrize("bad", ["../orders", "AAPL/../../orders", "ıntc", "", 7])
def test_close_position_takes_only_a_ticker(svc, broker, bad):
    before = dict(broker.requests)
    with pytest.raises(InvalidArgumentError) as info:
        svc.close_position_sync(bad)
    assert info.value.argument == "symbol" and dict(broker.requests) == before


def test_cancel_by_client_order_id_of_a_recorded_order(svc, broker):
    resting = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    svc.cancel_order_sync(resting.client_order_id)
    assert svc.sync_order_status_sync(resting).status is ManagedOrderStatus.CANCELED


def test_none_means_no_notes_and_no_tags(svc, broker):
    order = svc.place_order_sync(user="ana", order_request=market(), notes=None, tags=None)
    stored = svc.order_service.get(order.client_order_id)
    assert stored.alpaca_order_id and stored.notes.startswith("alpaca_order_id=")
    assert stored.tags == ("symbol:AAPL", "side:buy", "type:market")


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"notes": 123}, "notes"),
        ({"notes": b"x"}, "notes"),
        ({"notes": ["x"]}, "notes"),
        ({"notes": "x" * 20_000}, "notes"),
        ({"notes": "half a \ud800"}, "notes"),
        ({"tags": ["\udfff"]}, "tags"),
        ({"tags": "momentum"}, "tags"),
        ({"tags": 5}, "tags"),
        ({"tags": [1]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"user": None}, "user"),
        ({"user": " "}, "user"),
        ({"user": b"ana"}, "user"),
    ],
)
def test_bad_user_tags_or_notes_are_refused_before_anything_is_sent_or_recorded(svc, broker, kwargs, argument):
    args = {"user": "ana", **kwargs}
    before = posted(broker)
    with pytest.raises(InvalidArgumentError) as info:
        svc.place_order_sync(order_request=market(), **args)
    assert info.value.argument == argument
    assert posted(broker) == before and svc.order_service.list() == []


@pytest.mark.parametrize("status", [401, 429, 403])
def test_a_refused_replace_is_recorded_as_not_placed_never_left_pending(svc, broker, status):
    resting = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    broker.faults.add(path=f"/v2/orders/{resting.alpaca_order_id}", method="PATCH", status=status)
    with pytest.raises(NOT_PLACED):
        svc.replace_order_sync(resting, limit_price=2)
    [new] = [o for o in svc.order_service.list() if o.parent_client_order_id == resting.client_order_id]
    assert new.status is ManagedOrderStatus.REJECTED


def test_a_replace_whose_answer_is_lost_is_looked_up(svc, broker):
    resting = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    broker.faults.add(path=f"/v2/orders/{resting.alpaca_order_id}", method="PATCH", cut_body=True)
    new = svc.replace_order_sync(resting, limit_price=2)
    assert new.alpaca_order_id and new.status is ManagedOrderStatus.OPEN
    assert svc.order_service.get(resting.client_order_id).status is ManagedOrderStatus.REPLACED


def test_replace_numbers_go_out_in_plain_notation(svc, broker):
    resting = svc.place_order_sync(
        user="ana",
        order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    new = svc.replace_order_sync(resting, qty="1E+1")
    assert new.qty == 10 and broker.engine.get_order(new.alpaca_order_id)["qty"] == "10"


def test_a_client_order_id_used_at_the_broker_never_grafts_another_order_onto_a_row(svc, broker):
    theirs = TradingClient(broker.key, broker.secret, url_override=broker.url).submit_order(
        MarketOrderRequest(symbol="MSFT", qty=5, side="sell", time_in_force="day", client_order_id="mine-1")
    )
    with pytest.raises(OrderValidationError, match="another order") as info:
        svc.place_order_sync(user="ana", order_request=market(client_order_id="mine-1"))
    assert info.value.field == "client_order_id"
    row = svc.order_service.get("mine-1")
    assert (row.symbol, row.side.value, row.qty, row.status) == ("AAPL", "buy", 1, ManagedOrderStatus.REJECTED)
    svc.sync()  # the next sync must not attach the broker's MSFT order to the AAPL row
    row = svc.order_service.get("mine-1")
    assert row.alpaca_order_id is None and row.symbol == "AAPL" and row.status is ManagedOrderStatus.REJECTED
    differences = svc.reconcile()
    mine = differences[differences["client_order_id"] == "mine-1"]
    assert {"symbol", "side", "qty"} <= set(mine["field"]) and set(mine["kind"]) == {"order"}
    assert str(theirs.id) in set(mine["alpaca_order_id"])


def test_reconcile_compares_what_defines_an_order(svc, broker):
    placed = svc.place_order_sync(user="ana", order_request=market(qty=2))
    svc.sync()
    assert svc.reconcile().empty
    from alpaca_nb.ledger import Ledger

    ledger: Ledger = svc.order_service
    with ledger._open(write=True) as con:  # a row edited behind the toolkit's back
        con.execute(
            "UPDATE managed_orders SET qty = 7, side = 'sell' WHERE client_order_id = ?", [placed.client_order_id]
        )
    diff = svc.reconcile()
    assert set(diff["field"]) >= {"qty", "side"} and set(diff["kind"]) == {"order"}


def test_an_intent_is_not_settled_while_its_request_might_still_land(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", status=504)  # refused, nothing at the broker
    with pytest.raises(OrderOutcomeUnknownError):
        svc.place_order_sync(user="ana", order_request=market())
    [row] = svc.order_service.list()
    assert svc.UNPLACED_AFTER >= 300  # far beyond any request's life
    svc.sync()
    assert svc.order_service.get(row.client_order_id).status is ManagedOrderStatus.UNRESOLVED
    # Settled later (here: at once), and then it lands after all: the next sync records it.
    svc.UNPLACED_AFTER = 0.0
    assert svc.sync().settled == 1
    assert svc.order_service.get(row.client_order_id).status is ManagedOrderStatus.REJECTED
    TradingClient(broker.key, broker.secret, url_override=broker.url).submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day", client_order_id=row.client_order_id)
    )
    svc.sync()
    landed = svc.order_service.get(row.client_order_id)
    assert landed.alpaca_order_id and landed.status is not ManagedOrderStatus.REJECTED
    assert landed.user == "ana" and svc.reconcile().empty


def test_unknown_outcome_error_is_a_network_error_for_old_callers(svc, broker):
    from alpaca_nb import NetworkError

    broker.faults.add(path="/v2/orders", method="POST", status=504)
    with pytest.raises(NetworkError):
        svc.place_order_sync(user="ana", order_request=market(client_order_id=f"t-{uuid.uuid4().hex}"))


# -- an answer that arrives whole but cannot be read (finding 8: every failure is typed) ---------


def test_a_garbled_order_answer_is_looked_up(svc, broker):
    broker.faults.add(path="/v2/orders", method="POST", cut_body="garbled")
    order = svc.place_order_sync(user="ana", order_request=market())
    assert order.alpaca_order_id == at_broker(broker)[0]["id"] and posted(broker) == 1


@pytest.mark.parametrize(
    "path, call",
    [
        ("/v2/orders", lambda svc: svc.orders(status="all")),
        ("/v2/account/activities", lambda svc: svc.activities()),
        ("/v2/stocks/bars", lambda svc: svc.bars("AAPL", "1Min", "2026-11-24T14:30Z", "2026-11-24T15:00Z")),
        ("/v2/account", lambda svc: svc.get_account_sync()),
    ],
)
def test_a_garbled_answer_to_a_read_is_a_network_error(svc, broker, path, call):
    from alpaca_nb import NetworkError

    broker.faults.add(path=path, cut_body="garbled")
    with pytest.raises(NetworkError, match="cut off or unreadable") as info:
        call(svc)
    assert info.value.__context__ is None and info.value.__cause__ is None
