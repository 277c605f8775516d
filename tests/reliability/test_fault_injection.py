"""The local broker's fault injection itself, seen on the wire with plain clients (requests and
an aiohttp websocket): each fault does exactly what alpaca_nb/sim/faults.py says, so the tests
that rely on them (test_faulted_orders.py, test_sigkill.py, test_stream_faults.py) test what
they claim to."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import pytest
import requests
from brokers import MANUAL_START

from alpaca_nb.sim import LocalBroker

ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "limit_price": "1", "time_in_force": "gtc"}
MARKET = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}


@pytest.fixture
def sim():
    with LocalBroker(rate_limit=None, manual_clock=True, start=MANUAL_START) as broker:
        broker.headers = {"APCA-API-KEY-ID": broker.key, "APCA-API-SECRET-KEY": broker.secret}
        yield broker


def post_order(sim, **kwargs) -> tuple[str, requests.Response]:
    cid = str(uuid.uuid4())
    answer = requests.post(
        f"{sim.url}/v2/orders",
        json={**ORDER, "client_order_id": cid},
        headers=sim.headers,
        timeout=kwargs.pop("timeout", 5),
    )
    return cid, answer


def lookup(sim, cid: str) -> requests.Response:
    return requests.get(
        f"{sim.url}/v2/orders:by_client_order_id", params={"client_order_id": cid}, headers=sim.headers, timeout=5
    )


@pytest.mark.parametrize("mode, message", [(True, "IncompleteRead"), ("chunked", "ended prematurely")])
def test_a_cut_off_body_breaks_the_read_after_the_order_took_effect(sim, mode, message):
    sim.faults.add(path="/v2/orders", method="POST", cut_body=mode)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match=message):
        post_order(sim)
    [order] = sim.engine.list_orders(status="all")
    assert lookup(sim, order["client_order_id"]).status_code == 200
    assert sim.faults.fired == {f"cut_body:{'chunked' if mode == 'chunked' else 'length'}": 1}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_processing_answers_an_error_for_an_order_that_exists(sim, status):
    sim.faults.add(path="/v2/orders", method="POST", status_after=status)
    cid, answer = post_order(sim)
    assert answer.status_code == status and answer.json()["code"] == status * 100000
    assert lookup(sim, cid).json()["client_order_id"] == cid


@pytest.mark.parametrize("status", [429, 500, 503, 504, 401, 403, 400])
def test_the_lookup_by_client_order_id_can_be_refused_on_its_own(sim, status):
    cid, answer = post_order(sim)
    assert answer.status_code == 200
    sim.faults.add(path="/v2/orders:by_client_order_id", status=status, times=2)
    for _ in range(2):
        refused = lookup(sim, cid)
        assert refused.status_code == status and set(refused.json()) == {"code", "message"}
    if status == 429:
        reset = int(refused.headers["X-RateLimit-Reset"])
        assert refused.headers["X-RateLimit-Remaining"] == "0" and reset >= time.time() + 30
    assert lookup(sim, cid).status_code == 200  # used up: the next one is answered
    assert sim.requests[("POST", "/v2/orders")] == 1 and not sim.faults


def test_a_request_held_past_its_clients_timeout_still_lands(sim):
    sim.faults.add(path="/v2/orders", method="POST", delay=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_order(sim, timeout=0.2)
    deadline = time.monotonic() + 10
    while not sim.engine.list_orders(status="all") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sim.engine.list_orders(status="all")) == 1


def test_fault_rules_over_http_for_a_broker_in_another_process(sim):
    url = f"{sim.url}/_sim/faults"
    bad = requests.post(
        url, json={"rest": [{"path": "/v2/account", "cut_body": "sideways"}]}, headers=sim.headers, timeout=5
    )
    assert bad.status_code == 422 and "cut_body" in bad.json()["message"] and not sim.faults
    assert requests.post(
        url,
        json={"rest": [{"path": "/v2/account", "status": 503}], "stream": [{"kind": "duplicate", "times": 2}]},
        headers=sim.headers,
        timeout=5,
    ).json() == {"added": 2}
    assert requests.get(f"{sim.url}/v2/account", headers=sim.headers, timeout=5).status_code == 503
    assert requests.get(url, headers=sim.headers, timeout=5).json() == {
        "fired": {"status:503": 1},
        "rules": 0,
        "stream_rules": 1,
    }
    assert requests.post(url, json={}, timeout=5).status_code == 401  # keys required
    requests.delete(url, headers=sim.headers, timeout=5)
    assert sim.faults.pending_stream() == 0


def _trade_updates(sim, rules: list[tuple[str, dict]], orders: int) -> list[tuple]:
    """Listen on /stream, add ``rules``, place ``orders`` market orders (each filled by a step);
    returns (event, order number) per frame received, then ("closed",) if the broker hung up."""

    async def listen() -> list[tuple]:
        got: list[tuple] = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(sim.url.replace("http", "ws") + "/stream") as ws:
                await ws.send_str(json.dumps({"action": "auth", "key": sim.key, "secret": sim.secret}))
                await ws.receive()
                await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
                await ws.receive()
                for kind, options in rules:
                    sim.faults.add_stream(kind, **options)
                for n in range(orders):
                    await asyncio.to_thread(
                        requests.post,
                        f"{sim.url}/v2/orders",
                        headers=sim.headers,
                        json={**MARKET, "client_order_id": f"o{n}"},
                    )
                    await asyncio.to_thread(sim.step, 1)
                while True:
                    try:
                        msg = await asyncio.wait_for(ws.receive(), 0.5)
                    except TimeoutError:
                        return got
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        return got + [("closed",)]
                    data = json.loads(msg.data)["data"]
                    got.append((data["event"], data["order"]["client_order_id"]))

    return asyncio.run(listen())


CLEAN = [("pending_new", "o0"), ("new", "o0"), ("fill", "o0"), ("pending_new", "o1"), ("new", "o1"), ("fill", "o1")]


@pytest.mark.parametrize(
    "rules, expected",
    [
        ([], CLEAN),
        ([("duplicate", {"event": "fill", "times": 2})], CLEAN[:3] + [CLEAN[2]] + CLEAN[3:] + [CLEAN[5]]),
        ([("reorder", {"hold": 3, "flush_after": 10})], CLEAN[2::-1] + CLEAN[3:]),
        ([("drop", {"event": "fill"})], CLEAN[:3] + [("closed",)]),
        ([("drop_before", {"event": "fill"})], CLEAN[:2] + [("closed",)]),
    ],
    ids=["none", "duplicate", "reorder", "drop", "drop-before"],
)
def test_trade_update_faults(sim, rules, expected):
    assert _trade_updates(sim, rules, 2) == expected
