"""Every fault the local broker can inject, through AlpacaService: the caller gets the order
(recorded once) or one typed error, and after a sync the ledger and the broker agree.

The promise under test (RELIABILITY.md): a request that may have changed state and got no
definite answer raises :class:`OrderOutcomeUnknownError` naming its ``client_order_id``, never
one of the "not placed" errors; a definite refusal before processing raises a "not placed"
error and nothing is at the broker; nothing is ever sent twice. Then 1,000 orders with a
seeded mix of faults on more than 10% of the requests: 0 duplicates, 0 lost, 0 "not placed"
orders at the broker, and ``reconcile()`` empty after one sync.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from brokers import MANUAL_START
from faultkit import (
    Intent,
    audit,
    broker_orders,
    place,
    place_again,
    reconcile_rows,
    service,
    unknown_names_its_id,
    wait_until,
)

from alpaca_nb import AlpacaOrderRequest, ManagedOrderStatus
from alpaca_nb.errors import (
    AlpacaNbError,
    AuthenticationError,
    NetworkError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)
from alpaca_nb.sim import LocalBroker

TIMEOUT = 2.0  # the client's timeout in these tests (ample for an unfaulted request)
SLOW = TIMEOUT + 0.8  # a delay that outlasts it
POST = {"path": "/v2/orders", "method": "POST"}
LOOKUP = {"path": "/v2/orders:by_client_order_id", "method": "GET"}
EVERY_TIME = 20  # "the lookup is refused on every attempt" (however many the service makes)

# What the caller must see.
PLACED = "placed"  # the order, resolved by the lookup
UNKNOWN_THERE = "unknown, at broker"  # OrderOutcomeUnknownError; the order exists
UNKNOWN_ABSENT = "unknown, absent"  # OrderOutcomeUnknownError; the request never took effect
UNKNOWN_LATE = "unknown, lands late"  # OrderOutcomeUnknownError; the request takes effect later


def _cases() -> list:
    cases = []
    refusals = {
        400: OrderValidationError,
        401: AuthenticationError,
        403: OrderRejectedError,
        404: NotFoundError,
        422: OrderValidationError,
        429: RateLimitError,
    }
    for status, error in refusals.items():
        cases.append(pytest.param([{**POST, "status": status}], error, id=f"refused-{status}"))
    for status in (500, 502, 503, 504):
        cases.append(pytest.param([{**POST, "status": status}], UNKNOWN_ABSENT, id=f"{status}-before-processing"))
    cases.append(pytest.param([{**POST, "delay": SLOW}], UNKNOWN_LATE, id="timeout-before-processing"))
    after = {f"{s}-after-processing": {"status_after": s} for s in (500, 502, 503, 504)}
    after.update(
        {
            "answer-lost": {"drop_after": True},
            "cut-off-body": {"cut_body": True},
            "cut-off-chunked-body": {"cut_body": "chunked"},
            "timeout-after-processing": {"delay_after": SLOW},
        }
    )
    for name, rule in after.items():
        cases.append(pytest.param([{**POST, **rule}], PLACED, id=name))
    lookup_faults = {f"lookup-{s}": {"status": s} for s in (429, 500, 502, 503, 504, 401, 403, 400, 404)}
    lookup_faults.update({"lookup-cut-off": {"cut_body": True}, "lookup-lost": {"drop_after": True}})
    for name, rule in lookup_faults.items():
        cases.append(
            pytest.param(
                [{**POST, **after["answer-lost"]}, {**LOOKUP, **rule, "times": EVERY_TIME}],
                UNKNOWN_THERE,
                id=f"answer-lost+{name}-every-time",
            )
        )
    cases.append(
        pytest.param(
            [{**POST, **after["timeout-after-processing"]}, {**LOOKUP, "delay": SLOW}],
            PLACED,
            id="timeout-after-processing+lookup-timeout-once",
        )
    )
    for name in ("cut-off-body", "503-after-processing"):
        post = after[name]
        for lookup in ("lookup-429", "lookup-503"):
            cases.append(
                pytest.param(
                    [{**POST, **post}, {**LOOKUP, **lookup_faults[lookup], "times": 1}],
                    PLACED,
                    id=f"{name}+{lookup}-once",
                )
            )
    cases.append(
        pytest.param(
            [{**POST, "drop_after": True}, {**LOOKUP, "status": 429, "reset_in": 0.3}],
            PLACED,
            id="answer-lost+lookup-429-short-reset",
        )
    )
    return cases


def fault_broker() -> LocalBroker:
    """An in-process broker with no rate limit and a market that stands still (statuses stay
    put between a sync and the reconcile that checks it)."""
    return LocalBroker(rate_limit=None, manual_clock=True, start=MANUAL_START)


def fast(svc):
    """The same lookups after a lost answer, with shorter pauses between them: a faster suite."""
    svc.LOOKUP_RETRIES = (0.05, 0.1)
    return svc


def resting_buy(n: int = 0, client_order_id: str | None = None) -> AlpacaOrderRequest:
    return AlpacaOrderRequest(
        symbol="AAPL",
        qty=1,
        side="buy",
        type="limit",
        limit_price=f"{1 + (n % 500) / 100:.2f}",
        time_in_force="gtc",
        client_order_id=client_order_id,
    )


def _record(figures, broker, intents, resolved: int) -> None:
    figures.add("orders", len(intents))
    figures.add("requests", broker.requests["total"])
    figures.add("requests_faulted", sum(broker.faults.fired.values()))
    figures.merge("faults_by_kind", broker.faults.fired)
    figures.add("unknown_outcomes", sum(1 for i in intents if i.first_outcome == "unknown"))
    figures.add("unknown_then_resolved", resolved)


@pytest.mark.parametrize("rules, expected", _cases())
def test_a_faulted_placement_gives_the_order_or_a_typed_error_and_a_sync_settles_it(
    rules, expected, tmp_path, reliability_figures
):
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        for rule in rules:
            broker.faults.add(**rule)
        intent = place(svc, Intent(0, "ana", resting_buy()))
        assert isinstance(intent.error, AlpacaNbError) or intent.error is None, repr(intent.error)
        fired = sum(broker.faults.fired.values())
        assert fired >= len(rules) or expected is PLACED, f"only {fired} of the faults fired"
        broker.faults.clear()
        if expected == UNKNOWN_LATE:  # the held request takes effect after the caller gave up
            assert wait_until(lambda: broker_orders(broker)), "the delayed order never landed"
        at_broker = broker_orders(broker)
        assert broker.requests[("POST", "/v2/orders")] == 1  # never sent twice
        [row] = svc.order_service.list()
        if expected == PLACED:
            assert intent.outcome == "placed", repr(intent.error)
            assert [o["client_order_id"] for o in at_broker] == [row.client_order_id]
            assert row.alpaca_order_id == at_broker[0]["id"] and row.status is ManagedOrderStatus.OPEN
        elif isinstance(expected, type):  # a definite "not placed"
            assert intent.outcome == "not_placed" and isinstance(intent.error, expected), repr(intent.error)
            assert not isinstance(intent.error, NetworkError)
            assert at_broker == [] and row.status is ManagedOrderStatus.REJECTED
        else:
            assert intent.outcome == "unknown", f"expected OrderOutcomeUnknownError, got {intent.error!r}"
            assert unknown_names_its_id(intent) and intent.client_order_id == row.client_order_id
            assert row.status is ManagedOrderStatus.UNRESOLVED
            assert len(at_broker) == (0 if expected == UNKNOWN_ABSENT else 1)

        svc.sync()
        assert reconcile_rows(svc) == []
        found = audit(svc.order_service.list(), [intent], broker_orders(broker))
        assert not found.problems()
        resolved = 0
        if intent.outcome == "unknown":
            if expected == UNKNOWN_ABSENT:  # once it can no longer land, a sync settles it
                [row] = svc.order_service.list()
                assert row.status is ManagedOrderStatus.UNRESOLVED  # too early to say
                svc.UNPLACED_AFTER = 0.0
                svc.sync()
            [row] = svc.order_service.list()
            assert row.status is (
                ManagedOrderStatus.REJECTED if expected == UNKNOWN_ABSENT else ManagedOrderStatus.OPEN
            )
            resolved = 1
        found = audit(svc.order_service.list(), [intent], broker_orders(broker))
        assert not found.problems(allow_unresolved=False)
        assert reconcile_rows(svc) == []
        _record(reliability_figures, broker, [intent], resolved)


@pytest.mark.parametrize(
    "lookup", [{"status": 429}, {"status": 503}, {"drop_after": True}], ids=["lookup-429", "lookup-503", "lookup-lost"]
)
def test_placing_again_after_an_unknown_outcome_returns_the_order_never_a_second(lookup, tmp_path, reliability_figures):
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        broker.faults.add(**POST, cut_body=True)
        broker.faults.add(**LOOKUP, **lookup, times=EVERY_TIME)
        intent = place(svc, Intent(0, "ana", resting_buy()))
        assert intent.outcome == "unknown" and unknown_names_its_id(intent), repr(intent.error)
        broker.faults.clear()
        place_again(svc, intent)  # what the error says to do
        assert intent.outcome == "placed", repr(intent.error)
        [order] = broker_orders(broker)
        assert order["client_order_id"] == intent.client_order_id
        assert broker.requests[("POST", "/v2/orders")] == 1
        [row] = svc.order_service.list()
        assert row.alpaca_order_id == order["id"] and row.user == "ana"
        svc.sync()
        assert reconcile_rows(svc) == []
        _record(reliability_figures, broker, [intent], 1)


def test_placing_again_an_order_that_never_landed_sends_it_once_under_the_same_id(tmp_path):
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        broker.faults.add(**POST, status=503)  # refused before processing
        intent = place(svc, Intent(0, "ana", resting_buy()))
        assert intent.outcome == "unknown", repr(intent.error)
        place_again(svc, intent)
        assert intent.outcome == "placed", repr(intent.error)
        [order] = broker_orders(broker)
        assert order["client_order_id"] == intent.client_order_id
        place_again(svc, intent)  # and again: still the same one
        assert len(broker_orders(broker)) == 1
        svc.sync()
        assert reconcile_rows(svc) == []


# -- replace and cancel ------------------------------------------------------------------------

PATCH = {"path": "/v2/orders/*", "method": "PATCH"}


@pytest.mark.parametrize(
    "rules, expected",
    [
        pytest.param([{**PATCH, "status": 422}], OrderValidationError, id="refused-422"),
        pytest.param([{**PATCH, "status": 503}], UNKNOWN_ABSENT, id="503-before-processing"),
        pytest.param([{**PATCH, "status_after": 503}], PLACED, id="503-after-processing"),
        pytest.param([{**PATCH, "cut_body": True}], PLACED, id="cut-off-body"),
        pytest.param([{**PATCH, "drop_after": True}], PLACED, id="answer-lost"),
        pytest.param(
            [{**PATCH, "drop_after": True}, {**LOOKUP, "status": 429, "times": EVERY_TIME}],
            UNKNOWN_THERE,
            id="answer-lost+lookup-429-every-time",
        ),
    ],
)
def test_a_faulted_replace_gives_the_new_order_or_a_typed_error_and_a_sync_settles_it(
    rules, expected, tmp_path, reliability_figures
):
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        original = svc.place_order_sync(user="ana", order_request=resting_buy(), tags=["intent:0"])
        for rule in rules:
            broker.faults.add(**rule)
        error = None
        try:
            new = svc.replace_order_sync(original, limit_price="1.50")
        except AlpacaNbError as err:
            error = err
        broker.faults.clear()
        patches = sum(n for key, n in broker.requests.items() if key[0] == "PATCH")
        assert patches == 1  # never sent twice
        if expected == PLACED:
            assert error is None, repr(error)
            assert new.alpaca_order_id and new.parent_client_order_id == original.client_order_id
        elif isinstance(expected, type):
            assert isinstance(error, expected), repr(error)
        else:
            assert isinstance(error, OrderOutcomeUnknownError) and error.client_order_id, repr(error)
            assert error.client_order_id in str(error)
        svc.UNPLACED_AFTER = 0.0 if expected == UNKNOWN_ABSENT else svc.UNPLACED_AFTER
        svc.sync()
        assert reconcile_rows(svc) == []
        at_broker = {o["client_order_id"]: o for o in broker_orders(broker)}
        rows = {r.client_order_id: r for r in svc.order_service.list()}
        assert set(at_broker) <= set(rows)  # every broker order on record
        for cid, row in rows.items():
            assert row.user == "ana" and not row.external
            if cid in at_broker:
                assert row.alpaca_order_id == at_broker[cid]["id"]
            else:
                assert row.status is ManagedOrderStatus.REJECTED  # settled as never placed
        reliability_figures.add("replaces", 1)
        reliability_figures.merge("faults_by_kind", broker.faults.fired)


@pytest.mark.parametrize(
    "rule",
    [{"status": 503}, {"status_after": 503}, {"drop_after": True}, {"delay_after": SLOW}],
    ids=["503-before", "503-after", "answer-lost", "timeout-after"],
)
def test_a_faulted_cancel_raises_a_typed_error_and_a_sync_records_what_happened(rule, tmp_path, reliability_figures):
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        order = svc.place_order_sync(user="ana", order_request=resting_buy())
        broker.faults.add(path="/v2/orders/*", method="DELETE", **rule)
        with pytest.raises(NetworkError):  # no definite answer: never "not placed" errors
            svc.cancel_order_sync(order)
        broker.faults.clear()
        svc.sync()
        assert reconcile_rows(svc) == []
        [row] = svc.order_service.list()
        [at_broker] = broker_orders(broker)
        expected = "new" if "status" in rule else "canceled"
        assert at_broker["status"] == expected
        assert row.status is (ManagedOrderStatus.OPEN if expected == "new" else ManagedOrderStatus.CANCELED)
        reliability_figures.merge("faults_by_kind", broker.faults.fired)


# -- 1,000 orders, more than 10% of the requests faulted ------------------------------------------

ORDERS = 1000
FAULT_SHARE = 0.15  # of orders given a fault plan; with the lookups, ~20% of all requests fault


def _plans() -> dict[str, list[list[dict]]]:
    """The fault plans an order may draw, by family: one or two rules, of every kind the
    broker can inject."""
    before = [[{**POST, "status": s}] for s in (400, 401, 403, 404, 422, 429, 500, 502, 503, 504)]
    afters = [{"status_after": s} for s in (500, 502, 503, 504)] + [
        {"drop_after": True},
        {"cut_body": True},
        {"cut_body": "chunked"},
    ]
    lookups = [{"status": s} for s in (429, 500, 502, 503, 504, 401, 403, 400, 404)] + [
        {"cut_body": True},
        {"drop_after": True},
        {"status": 429, "reset_in": 0.2},
    ]
    return {
        "refused before processing": before,
        "no answer after processing": [[{**POST, **after}] for after in afters],
        "no answer, then the lookup faulted": [
            [{**POST, **after}, {**LOOKUP, **lookup, "times": times}]
            for after in afters
            for lookup in lookups
            for times in (1, 3)
        ],
        "timeouts": [[{**POST, "delay": SLOW}], [{**POST, "delay_after": SLOW}]],
    }


FAMILY_WEIGHTS = {
    "refused before processing": 3,
    "no answer after processing": 3,
    "no answer, then the lookup faulted": 3,
    "timeouts": 1,
}


def _draw_plan(rng: random.Random, plans: dict[str, list[list[dict]]]) -> list[dict]:
    if rng.random() >= FAULT_SHARE:
        return []
    family = rng.choices(list(FAMILY_WEIGHTS), weights=list(FAMILY_WEIGHTS.values()))[0]
    return rng.choice(plans[family])


def _request(n: int, rng: random.Random) -> AlpacaOrderRequest:
    symbol = rng.choice(["AAPL", "MSFT", "SPY", "F"])
    if rng.random() < 0.15:  # fills when the clock steps: fills and positions get reconciled too
        return AlpacaOrderRequest(symbol=symbol, qty=1, side="buy", type="market")
    return AlpacaOrderRequest(
        symbol=symbol,
        qty=rng.choice([1, 2, 3]),
        side="buy",
        type="limit",
        limit_price=f"{1 + (n % 400) / 100:.2f}",
        time_in_force="gtc",
    )


def test_1000_orders_with_faulted_requests_lose_and_duplicate_nothing(tmp_path, reliability_figures):
    rng = random.Random(9_2026)
    plans = _plans()
    with fault_broker() as broker:
        svc = fast(service(broker, tmp_path / "ledger.duckdb", timeout=TIMEOUT))
        intents = [Intent(n, f"user-{n % 7}", _request(n, rng)) for n in range(ORDERS)]
        chosen = [_draw_plan(rng, plans) for _ in intents]
        retry = [rng.random() < 0.5 for _ in intents]
        before = broker.requests["total"]

        def run(n: int) -> None:
            for rule in chosen[n]:
                broker.faults.add(**rule)
            place(svc, intents[n])
            if intents[n].outcome == "unknown" and retry[n]:
                place_again(svc, intents[n])  # as the error's message says

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run, range(ORDERS)))
        requests = broker.requests["total"] - before
        fired = dict(broker.faults.fired)
        broker.faults.clear()
        unknown = [i for i in intents if i.first_outcome == "unknown"]
        time.sleep(SLOW)  # requests held past their caller's timeout land meanwhile
        broker.step(60)  # the market moves: market orders fill

        svc.sync()  # one sync
        assert reconcile_rows(svc) == []
        at_broker = broker_orders(broker)
        found = audit(svc.order_service.list(), intents, at_broker)
        assert not found.problems(), found.problems()
        others = [repr(i.error) for i in intents if "other" in (i.first_outcome, i.outcome)]
        assert others == []  # only the order, "unknown" or a definite "not placed"
        assert sum(fired.values()) >= 0.10 * requests, (fired, requests)
        assert all(unknown_names_its_id(i) for i in intents if i.outcome == "unknown")

        svc.UNPLACED_AFTER = 0.0  # nothing can land any more
        svc.sync()
        found = audit(svc.order_service.list(), intents, broker_orders(broker))
        assert not found.problems(allow_unresolved=False), found.problems(allow_unresolved=False)
        assert reconcile_rows(svc) == []

        reliability_figures.add("orders", ORDERS)
        reliability_figures.add("requests", requests)
        reliability_figures.add("requests_faulted", sum(fired.values()))
        reliability_figures.merge("faults_by_kind", fired)
        reliability_figures.add("unknown_outcomes", len(unknown))
        reliability_figures.add("unknown_then_resolved", len(unknown))
        reliability_figures.add("duplicates", len(found.duplicates) + len(found.foreign))
        reliability_figures.add("lost", len(found.lost))
        reliability_figures.add("not_placed_but_at_broker", len(found.not_placed_but_there))
        reliability_figures.add("untyped_errors", len(found.untyped))
        reliability_figures.record(
            "bulk_run",
            {
                "orders": ORDERS,
                "requests": requests,
                "requests_faulted": sum(fired.values()),
                "outcomes": dict(found.outcomes),
                "at_broker": len(at_broker),
                "placed_again_after_unknown": sum(1 for i in intents if i.retried),
            },
        )
