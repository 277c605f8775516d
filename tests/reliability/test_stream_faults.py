"""The trade_updates stream misbehaving under ``svc.follow()``: dropped mid-fill, events lost,
sent twice, sent out of order. The ledger must end exactly where the broker is: every fill once,
every order at its final status and filled quantity, and ``reconcile()`` empty.

The faults are the local broker's (``broker.faults.add_stream``, see alpaca_nb/sim/faults.py);
the follower is the real one (alpaca_nb/sync.py over alpaca_nb/stream.py), reconnecting and
catching up by a REST sync on its own.
"""

from __future__ import annotations

import random
import time

import pytest
from brokers import MANUAL_START, wait_for
from faultkit import reconcile_rows, service

from alpaca_nb import AlpacaOrderRequest, ManagedOrderStatus
from alpaca_nb.sim import LocalBroker

SCENARIOS = {
    "dropped-mid-fill": [("drop", {"event": "partial_fill"})],
    "dropped-before-a-partial-fill": [("drop_before", {"event": "partial_fill"})],
    "dropped-before-the-last-fill": [("drop_before", {"event": "fill", "times": 2})],
    "every-event-twice": [("duplicate", {"times": 1000})],
    "out-of-order": [("reorder", {"hold": 3, "times": 6}), ("reorder", {"hold": 5, "times": 2})],
    "fill-before-new": [("reorder", {"hold": 3, "event": "pending_new", "times": 3})],
}


def _mixed(seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    rules = []
    for _ in range(12):
        kind = rng.choice(["drop", "drop_before", "duplicate", "duplicate", "reorder", "reorder"])
        options = {"event": rng.choice([None, "new", "partial_fill", "fill", "canceled"])}
        if kind == "reorder":
            options["hold"] = rng.randint(2, 5)
        rules.append((kind, options))
    return rules


SCENARIOS.update({f"mixed-{seed}": _mixed(seed) for seed in (1, 2)})


def _listening(broker) -> bool:
    return any(c.kind == "trading" and c.listening for c in list(broker.streams.connections))


def _broker_fills(svc) -> dict[str, str]:
    """The broker's FILL activities: execution id -> quantity."""
    activities, token = [], None
    while True:
        params = {"direction": "asc", "page_size": 100, **({"page_token": token} if token else {})}
        page = svc.broker.get_json("trading", "/account/activities/FILL", params, what="fills")
        activities += page
        if len(page) < 100:
            return {a["id"].split("::", 1)[1]: a["qty"] for a in activities}
        token = page[-1]["id"]


def _in_step(svc, broker, orders) -> bool:
    """The ledger exactly where the broker is (what the test waits for, then asserts)."""
    fills = svc.order_service.fills()
    if sorted(fills["execution_id"]) != sorted(_broker_fills(svc)):
        return False
    for order in orders:
        row = svc.order_service.get(order.client_order_id)
        theirs = broker.engine.get_order(row.alpaca_order_id) if row.alpaca_order_id else None
        if theirs is None or row.alpaca_status != theirs["status"]:
            return False
    return reconcile_rows(svc) == []


@pytest.mark.parametrize("rules", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_the_follower_ends_exactly_in_step_whatever_the_stream_does(rules, tmp_path, reliability_figures):
    with LocalBroker(rate_limit=None, manual_clock=True, start=MANUAL_START) as broker:
        svc = service(broker, tmp_path / "ledger.duckdb")
        follower = svc.follow()
        try:
            wait_for(lambda: _listening(broker), what="the follower listening")
            for kind, options in rules:
                broker.faults.add_stream(kind, **options)
            big = svc.place_order_sync(
                user="ana",
                tags=["big"],
                order_request=AlpacaOrderRequest(symbol="F", qty=2500, side="buy", type="market"),
            )  # fills over many steps
            small = [
                svc.place_order_sync(
                    user="bo", order_request=AlpacaOrderRequest(symbol=symbol, qty=2, side="buy", type="market")
                )
                for symbol in ("AAPL", "SPY", "MSFT")
            ]
            resting = svc.place_order_sync(
                user="cy",
                order_request=AlpacaOrderRequest(
                    symbol="AAPL", qty=1, side="buy", type="limit", limit_price=5, time_in_force="gtc"
                ),
            )
            for step in range(40):
                broker.step(1)
                time.sleep(0.03)  # let the stream deliver (or drop) between steps
                if step == 5:
                    svc.cancel_order_sync(resting)
                if step == 10:  # a sell while the stream may be down: positions move
                    small.append(
                        svc.place_order_sync(
                            user="bo",
                            order_request=AlpacaOrderRequest(symbol="AAPL", qty=1, side="sell", type="market"),
                        )
                    )
            assert broker.engine.get_order(big.alpaca_order_id)["status"] == "filled"
            orders = [big, *small, resting]
            wait_for(lambda: _in_step(svc, broker, orders), timeout=30, what="the ledger in step")
            fired = {k: v for k, v in broker.faults.fired.items() if k.startswith("stream:")}
        finally:
            follower.stop()
            svc.streams.stop()
        # What "in step" means, spelled out:
        ledger = svc.order_service
        fills = ledger.fills()
        broker_fills = _broker_fills(svc)
        assert fills["execution_id"].is_unique and len(fills) == len(broker_fills)  # each fill once
        for order in orders:
            row = ledger.get(order.client_order_id)
            theirs = broker.engine.get_order(row.alpaca_order_id)
            assert row.alpaca_status == theirs["status"]
            assert row.filled_qty == type(row.filled_qty)(theirs["filled_qty"])
            mine = fills[fills["client_order_id"] == row.client_order_id]["qty"].sum()
            assert mine == float(theirs["filled_qty"])
        assert ledger.get(big.client_order_id).status is ManagedOrderStatus.FILLED
        assert ledger.get(resting.client_order_id).status is ManagedOrderStatus.CANCELED
        assert reconcile_rows(svc) == []
        assert fired, "no stream fault fired"
        if fired.get("stream:drop") or fired.get("stream:drop_before"):
            assert follower.catch_ups >= 2  # reconnected, and caught up by a sync
        reliability_figures.merge("faults_by_kind", fired)
        reliability_figures.add("stream_fills_checked", len(broker_fills))
        reliability_figures.add("stream_follower_catch_ups", follower.catch_ups)
