"""The local broker's websocket streams, driven by alpaca-py's own TradingStream and StockDataStream.

alpaca-py's ``run()`` calls ``asyncio.run`` and its ``stop()`` waits up to 5 s, so each client
runs its ``_run_forever()`` on a loop thread of its own here and is stopped by cancelling it.
Protocol details the clients never exercise (errors, the connection limit, timeouts) are
checked with a bare aiohttp websocket.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import msgpack
import pytest
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockTradesRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest
from alpaca.trading.stream import TradingStream
from brokers import MANUAL_START, validate_recorded

from alpaca_nb.sim import LocalBroker
from alpaca_nb.sim.api.streams import ensure_streams, streams_of
from alpaca_nb.sim.market.assets import PROFILES

ALL_EVENTS = {
    "accepted",
    "new",
    "pending_new",
    "partial_fill",
    "fill",
    "canceled",
    "pending_cancel",
    "expired",
    "done_for_day",
    "replaced",
    "pending_replace",
    "rejected",
}
NYSE_PREOPEN = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # Tuesday 09:00 New York


def start_broker(request, **kwargs) -> LocalBroker:
    broker = LocalBroker(record=True, rate_limit=None, **kwargs)
    ensure_streams(broker.sim)  # a no-op once the broker installs its streams itself
    broker.start()

    def finish() -> None:
        from alpaca_nb import stream

        stream.stop_all()  # clients first, so that none of them sees the broker go away
        broker.stop()
        if getattr(request.node, "rep_call", None) is None or request.node.rep_call.passed:
            validate_recorded(broker)

    request.addfinalizer(finish)
    return broker


@pytest.fixture
def stream_broker(request):
    return start_broker(request, manual_clock=True, start=MANUAL_START)


@pytest.fixture
def nyse_broker(request):
    return start_broker(request, manual_clock=True, start=NYSE_PREOPEN, market_hours="nyse")


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what} not met within {timeout} s")


class OnThread:
    """An alpaca-py stream client's ``_run_forever()`` on its own event-loop thread."""

    def __init__(self, stream):
        self.stream = stream
        self.loop = asyncio.new_event_loop()
        self.task = self.loop.create_task(stream._run_forever())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:  # close the socket and let websockets' own tasks finish before the loop goes
            self.loop.run_until_complete(self.stream.close())
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(5)
        assert not self.thread.is_alive()


def ws_url(broker, path: str) -> str:
    return broker.url.replace("http://", "ws://") + path


def trading_stream(broker, got: list) -> OnThread:
    stream = TradingStream(broker.key, broker.secret, url_override=ws_url(broker, "/stream"))

    async def on_update(update):
        got.append(update)

    stream.subscribe_trade_updates(on_update)
    runner = OnThread(stream)
    server = streams_of(broker.sim)
    wait_for(lambda: any(c.listening for c in list(server.connections)), what="listening")
    return runner


def event(update) -> str:
    return getattr(update.event, "value", update.event)


def cheap_symbol(broker, budget=30_000):
    """A symbol whose displayed ask is a whole order we can afford, plus its quote."""
    for symbol in sorted(PROFILES):
        q = broker.market.quote(symbol)
        if 1_000 < float(q.ask) * (q.ask_size + 1) < budget:
            return symbol, q
    raise AssertionError("no affordable symbol")


# -- trading stream ------------------------------------------------------------------------------
def test_trading_stream_sends_every_event_type_in_engine_order(nyse_broker):
    broker = nyse_broker
    client = TradingClient(broker.key, broker.secret, url_override=broker.url)
    emitted: list[dict] = []
    broker.engine.add_listener(emitted.append)
    got: list = []
    runner = trading_stream(broker, got)
    try:
        a = client.submit_order(
            LimitOrderRequest(symbol="AAPL", qty=1, side="buy", limit_price=1, time_in_force="day")
        )  # accepted (closed)
        broker.step(1801)  # 09:30:01: new
        a2 = client.replace_order_by_id(a.id, ReplaceOrderRequest(limit_price=2))  # pending_replace, replaced
        c = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", limit_price=1, time_in_force="day"))
        client.cancel_order_by_id(c.id)  # pending_cancel, canceled
        symbol, q = cheap_symbol(broker)
        client.submit_order(
            MarketOrderRequest(symbol=symbol, qty=q.ask_size + 1, side="buy", time_in_force="day")
        )  # partial_fill
        broker.step(60)  # fill
        broker.clock.set(datetime(2026, 11, 24, 20, 59, 59, tzinfo=UTC))
        broker.engine.tick()
        symbol, q = cheap_symbol(broker)
        client.submit_order(
            LimitOrderRequest(
                symbol=symbol, qty=q.ask_size + 1, side="buy", limit_price=float(q.ask), time_in_force="gtc"
            )
        )
        broker.step(2)  # close: a2 expired, gtc done_for_day
        q = broker.market.quote("MSFT")
        client.submit_order(
            LimitOrderRequest(
                symbol="MSFT",
                qty=int(100_000 / float(q.ask)),
                side="buy",
                limit_price=float(q.ask),
                time_in_force="day",
            )
        )
        broker.engine.update_configurations({"max_margin_multiplier": "1"})
        broker.clock.set(datetime(2026, 11, 25, 14, 30, 1, tzinfo=UTC))
        broker.engine.tick()  # next open: rejected (cash account)
        wait_for(lambda: len(got) >= len(emitted), what="every event streamed")
        time.sleep(0.1)  # nothing extra may follow
    finally:
        runner.stop()
    assert {e["event"] for e in emitted} == ALL_EVENTS
    assert [(event(u), str(u.order.id)) for u in got] == [(e["event"], e["order"]["id"]) for e in emitted]
    by_event = {event(u): u for u in got}
    assert by_event["replaced"].order.replaced_by == a2.id
    fill = by_event["fill"]
    assert fill.price > 0 and fill.qty > 0 and fill.position_qty >= fill.qty and fill.execution_id
    assert by_event["rejected"].order.status == "rejected"
    assert all(u.timestamp.tzinfo is not None for u in got)


async def _talk(url: str, *messages: dict | str, receive: int = 1) -> list:
    """Connect, send each message (dicts as JSON text), return what came back."""
    replies = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            for message in messages:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(json.dumps(message).encode())
            for _ in range(receive):
                msg = await asyncio.wait_for(ws.receive(), 3)
                replies.append(
                    json.loads(msg.data)
                    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                    else msg.type.name
                )
    return replies


def test_trading_stream_refuses_bad_keys_and_accepts_text_or_binary(stream_broker):
    url = ws_url(stream_broker, "/stream")
    auth = {"action": "authenticate", "data": {"key_id": stream_broker.key, "secret_key": "wrong"}}
    refused = asyncio.run(_talk(url, auth, receive=2))
    assert refused == [
        {"stream": "authorization", "data": {"action": "authenticate", "status": "unauthorized"}},
        "CLOSE",
    ]
    good = dict(auth, data={"key_id": stream_broker.key, "secret_key": stream_broker.secret})
    listen = {"action": "listen", "data": {"streams": ["trade_updates", "account_updates"]}}
    replies = asyncio.run(_talk(url, json.dumps(good), listen, "not json", receive=3))
    assert replies[0]["data"]["status"] == "authorized"
    assert replies[1] == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    assert replies[2]["stream"] == "error"
    early = asyncio.run(_talk(url, listen, receive=2))
    assert early[0]["data"] == {"action": "listen", "status": "unauthorized"} and early[1] == "CLOSE"


def test_trading_stream_client_reconnects_after_the_broker_drops_it(stream_broker):
    broker = stream_broker
    got: list = []
    runner = trading_stream(broker, got)
    server = streams_of(broker.sim)
    try:
        assert server.drop_all() == 1
        # alpaca-py waits about a second, then reconnects and listens again by itself
        wait_for(
            lambda: server.opened["trading"] == 2 and any(c.listening for c in list(server.connections)),
            timeout=10,
            what="reconnected",
        )
        order = broker.engine.submit_order(
            {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
        )
        wait_for(lambda: any(event(u) == "fill" for u in got), what="fill after reconnect")
    finally:
        runner.stop()
    assert {str(u.order.id) for u in got} == {order["id"]}


# -- market-data stream --------------------------------------------------------------------------
def test_stock_data_stream_gets_the_markets_trades_quotes_and_bars(stream_broker):
    broker = stream_broker
    stream = StockDataStream(broker.key, broker.secret, url_override=ws_url(broker, "/v2/iex"), feed=DataFeed.IEX)
    got: dict[str, list] = {"trades": [], "quotes": [], "bars": []}

    async def on_trade(t):
        got["trades"].append(t)

    async def on_quote(q):
        got["quotes"].append(q)

    async def on_bar(b):
        got["bars"].append(b)

    stream.subscribe_trades(on_trade, "AAPL")
    stream.subscribe_quotes(on_quote, "AAPL", "MSFT")
    stream.subscribe_bars(on_bar, "*")
    runner = OnThread(stream)
    server = streams_of(broker.sim)
    try:
        wait_for(lambda: any(getattr(c, "subs", {}).get("bars") for c in list(server.connections)), what="subscribed")
        t0 = broker.clock.now()
        broker.step(120)
        t1 = broker.clock.now()
        wait_for(
            lambda: got["bars"] and got["trades"] and len({q.symbol for q in got["quotes"]}) == 2, what="market data"
        )
        time.sleep(0.2)
    finally:
        runner.stop()
    # exactly the trades the REST API reports for the same two minutes, in order
    rest = StockHistoricalDataClient(broker.key, broker.secret, url_override=broker.url)
    expected = rest.get_stock_trades(StockTradesRequest(symbol_or_symbols="AAPL", start=t0, end=t1, feed=DataFeed.IEX))[
        "AAPL"
    ]
    assert [(t.id, t.price, t.size) for t in got["trades"]] == [(t.id, t.price, t.size) for t in expected]
    assert all(t0 <= t.timestamp <= t1 for t in got["trades"])
    assert all(0 < q.bid_price <= q.ask_price and t0 <= q.timestamp <= t1 for q in got["quotes"])
    minute = t0.replace(second=0, microsecond=0)
    assert {b.timestamp for b in got["bars"]} <= {minute, minute + timedelta(minutes=1)}
    assert len({b.symbol for b in got["bars"]}) > 10  # "*": every symbol that traded
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in got["bars"])


async def _data_session(url: str, script) -> list:
    """Run ``script(send, receive)`` on a raw msgpack connection; return the close state."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:

            async def send(msg):
                if isinstance(msg, str):
                    await ws.send_str(msg)
                else:
                    await ws.send_bytes(msg if isinstance(msg, bytes) else msgpack.packb(msg))

            async def receive():
                msg = await asyncio.wait_for(ws.receive(), 3)
                if msg.type is aiohttp.WSMsgType.BINARY:
                    return msgpack.unpackb(msg.data)
                return msg.type.name

            return await script(send, receive)


def test_data_stream_protocol_and_alpacas_error_codes(stream_broker):
    broker = stream_broker
    server = streams_of(broker.sim)
    server.symbol_limit = 3
    url = ws_url(broker, "/v2/sip")
    auth = {"action": "auth", "key": broker.key, "secret": broker.secret}

    async def script(send, receive):
        seen = [await receive()]
        await send({"action": "subscribe", "trades": ["AAPL"]})
        seen.append(await receive())  # 401
        await send(auth)
        seen.append(await receive())
        await send(auth)
        seen.append(await receive())  # 403
        await send(b"\xc1 not msgpack")
        seen.append(await receive())  # 400
        await send('{"action": "auth"}')
        seen.append(await receive())  # 400: msgpack only
        await send(
            {
                "action": "subscribe",
                "trades": ["AAPL"],
                "quotes": ["MSFT", "*"],
                "dailyBars": ["SPY"],
                "statuses": ["*"],
            }
        )
        seen.append(await receive())
        await send({"action": "subscribe", "trades": ["a b c"]})
        seen.append(await receive())  # 400: bad symbol
        await send({"action": "subscribe", "orderbooks": ["AAPL"]})
        seen.append(await receive())  # 410
        await send({"action": "subscribe", "quotes": ["NVDA", "TSLA", "AMD"]})
        seen.append(await receive())  # 405
        await send({"action": "unsubscribe", "quotes": ["*"], "trades": ["AAPL"]})
        seen.append(await receive())
        second = await _data_session(url, second_connection)
        return seen, second

    async def second_connection(send, receive):
        await receive()
        await send(auth)
        return [await receive(), await receive()]

    seen, second = asyncio.run(_data_session(url, script))
    assert seen[0] == [{"T": "success", "msg": "connected"}]
    assert seen[1] == [{"T": "error", "code": 401, "msg": "not authenticated"}]
    assert seen[2] == [{"T": "success", "msg": "authenticated"}]
    assert seen[3] == [{"T": "error", "code": 403, "msg": "already authenticated"}]
    assert seen[4] == seen[5] == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
    assert seen[6] == [
        {
            "T": "subscription",
            "trades": ["AAPL"],
            "quotes": ["*", "MSFT"],
            "bars": [],
            "updatedBars": [],
            "dailyBars": ["SPY"],
            "statuses": ["*"],
            "lulds": [],
            "corrections": ["AAPL"],
            "cancelErrors": ["AAPL"],
        }
    ]
    assert seen[7] == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
    assert seen[8] == [{"T": "error", "code": 410, "msg": "invalid subscribe action for this feed"}]
    assert seen[9] == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
    assert seen[10][0]["quotes"] == ["MSFT"] and seen[10][0]["trades"] == []  # 405 changed nothing
    # one connection per key and feed, as at Alpaca: the second is refused and closed
    assert second == [[{"T": "error", "code": 406, "msg": "connection limit exceeded"}], "CLOSE"]


def test_data_stream_refuses_bad_keys_and_slow_authentication(stream_broker):
    server = streams_of(stream_broker.sim)
    server.auth_timeout = 0.3
    url = ws_url(stream_broker, "/v2/iex")

    async def bad_keys(send, receive):
        await receive()
        await send({"action": "auth", "key": stream_broker.key, "secret": "nope"})
        return [await receive(), await receive()]

    async def silent(send, receive):
        await receive()
        return [await receive(), await receive()]

    assert asyncio.run(_data_session(url, bad_keys)) == [[{"T": "error", "code": 402, "msg": "auth failed"}], "CLOSE"]
    assert asyncio.run(_data_session(url, silent)) == [[{"T": "error", "code": 404, "msg": "auth timeout"}], "CLOSE"]


def test_data_timestamps_are_msgpack_timestamps_and_delayed_sip_lags(stream_broker):
    broker = stream_broker
    auth = {"action": "auth", "key": broker.key, "secret": broker.secret}

    async def collect(send, receive, minutes=1):
        await receive()
        await send(auth)
        await receive()
        await send({"action": "subscribe", "trades": ["AAPL"], "dailyBars": ["AAPL"]})
        await receive()
        await asyncio.to_thread(broker.step, 60 * minutes)
        out = []
        while not any(m["T"] == "d" for m in out):
            out.extend(await receive())
        return out

    async def raw(send, receive):
        return await collect(send, receive)

    async def raw_bytes(url):
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                await ws.receive()
                await ws.send_bytes(msgpack.packb(auth))
                await ws.receive()
                await ws.send_bytes(msgpack.packb({"action": "subscribe", "trades": ["AAPL"]}))
                await ws.receive()
                await asyncio.to_thread(broker.step, 20 * 60)
                return (await asyncio.wait_for(ws.receive(), 3)).data

    before = broker.clock.now()
    msgs = asyncio.run(_data_session(ws_url(broker, "/v2/iex"), raw))
    trades = [m for m in msgs if m["T"] == "t"]
    assert trades and all(isinstance(m["t"], msgpack.Timestamp) for m in msgs)
    assert all(m["t"].to_datetime() >= before for m in trades)
    daily = next(m for m in msgs if m["T"] == "d")
    assert daily["S"] == "AAPL" and daily["n"] >= len(trades)
    # on the wire: msgpack's Timestamp extension (fixext 8 = 0xd7, type -1 = 0xff), not a string
    frame = asyncio.run(raw_bytes(ws_url(broker, "/v2/delayed_sip")))
    delayed = msgpack.unpackb(frame)
    assert delayed and frame.count(b"\xd7\xff") >= len(delayed)
    assert max(m["t"].to_datetime() for m in delayed) <= broker.clock.now() - timedelta(minutes=15)
