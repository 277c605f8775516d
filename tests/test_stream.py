"""alpaca_nb.stream and alpaca_nb.live against the local broker's real websockets."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from decimal import Decimal

import aiohttp
import msgpack
import pandas as pd
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import MarketOrderRequest
from brokers import MANUAL_START, service_for
from test_sim_streams import start_broker, wait_for, ws_url

from alpaca_nb import frames, marketdata, stream_wire
from alpaca_nb.live import live_bars, live_quotes, live_trades
from alpaca_nb.sim.api.streams import streams_of
from alpaca_nb.stream import StreamHub, stream_hub
from alpaca_nb.stream_wire import Bar, Gap, Quote, Trade, TradeUpdate


@pytest.fixture
def live_broker(request):
    """A real-time broker (the market moves, the engine ticks every 100 ms)."""
    return start_broker(request)


@pytest.fixture
def manual(request):
    return start_broker(request, manual_clock=True, start=MANUAL_START)


def hub_of(broker) -> StreamHub:
    return stream_hub(key=broker.key, secret=broker.secret, url=broker.url)


@pytest.fixture(autouse=True)
def _stop_hubs():
    yield
    from alpaca_nb import stream

    stream.stop_all()


def buy(broker, symbol="AAPL", qty="1") -> dict:
    return broker.engine.submit_order(
        {"symbol": symbol, "qty": qty, "side": "buy", "type": "market", "time_in_force": "day"}
    )


def test_trade_updates_arrive_as_records_over_one_shared_connection(live_broker):
    hub = hub_of(live_broker)
    first, second = [], []

    def on_update(update):
        first.append(update)

    hub.on_trade_update(on_update)
    hub.on_trade_update(lambda u: second.append(u))
    assert hub_of(live_broker) is hub
    assert stream_hub(service_for(live_broker)) is hub  # same account and endpoints
    client = TradingClient(live_broker.key, live_broker.secret, url_override=live_broker.url)
    order = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=2, side="buy", time_in_force="day"))
    wait_for(lambda: any(u.event == "fill" for u in second), what="fill")
    assert [u.event for u in first] == [u.event for u in second] == ["pending_new", "new", "fill"]
    fill = first[-1]
    assert isinstance(fill, TradeUpdate) and fill.order_id == str(order.id) and fill.symbol == "AAPL"
    assert isinstance(fill.price, Decimal) and fill.qty == Decimal(2) and fill.position_qty == Decimal(2)
    assert isinstance(fill.timestamp, pd.Timestamp) and str(fill.timestamp.tz) == "UTC"
    assert fill.order["status"] == "filled" and fill.execution_id
    assert streams_of(live_broker.sim).opened["trading"] == 1
    assert hub.trading.opened == 1 and hub.market_data.opened == 0  # data opens only when needed


def test_resubscribing_a_function_of_the_same_name_replaces_it(live_broker):
    """What re-running a notebook cell does: same hub, same connection, one callback."""
    cell = "def on_update(u):\n    seen.append((run, u.event))\nsub = hub.on_trade_update(on_update)\n"
    seen: list = []
    namespace = {"__name__": "__main__", "seen": seen, "hub": hub_of(live_broker)}
    for run in (1, 2):
        namespace.update(run=run, hub=hub_of(live_broker))
        exec(compile(cell, "<cell>", "exec"), namespace)
    hub = namespace["hub"]
    assert [s.name for s in hub.subscriptions("trade_updates")] == ["on_update"]
    buy(live_broker)
    wait_for(lambda: any(e == "fill" for _r, e in seen), what="fill")
    assert seen == [(2, "pending_new"), (2, "new"), (2, "fill")]
    assert streams_of(live_broker.sim).opened["trading"] == 1


def test_market_data_subscriptions_share_one_connection(manual):
    hub = hub_of(manual)
    quotes, trades, bars = [], [], []
    q = hub.subscribe_quotes(["AAPL"], quotes.append)
    t = hub.subscribe_trades("aapl,msft", trades.append)
    b = hub.subscribe_bars("*", bars.append)
    assert q.live.is_set() and t.live.is_set() and b.live.is_set()
    server = streams_of(manual.sim)
    conn = next(c for c in server.connections if c.kind == "iex")
    assert conn.subs["quotes"] == {"AAPL"} and conn.subs["trades"] == {"AAPL", "MSFT"}
    assert conn.subs["bars"] == {"*"}
    manual.step(61)
    wait_for(lambda: quotes and bars and {x.symbol for x in trades} == {"AAPL", "MSFT"}, what="data")
    assert all(isinstance(x, Quote) and x.symbol == "AAPL" and 0 < x.bid_price <= x.ask_price for x in quotes)
    assert all(isinstance(x, Trade) and x.price > 0 and str(x.timestamp.tz) == "UTC" for x in trades)
    assert all(isinstance(x, Bar) and x.timestamp == MANUAL_START for x in bars)
    assert server.opened["iex"] == 1 and hub.market_data.opened == 1
    q.cancel()
    wait_for(lambda: conn.subs["quotes"] == set(), what="unsubscribed at the broker")
    t.cancel()
    b.cancel()
    wait_for(lambda: "iex" not in server.open_connections(), what="idle connection closed")
    wait_for(lambda: hub.market_data.state == "idle", what="idle client")
    assert not hub.gaps  # closing when idle is not a gap


def test_reconnects_by_itself_and_reports_the_gap(live_broker, monkeypatch):
    monkeypatch.setattr(stream_wire, "BACKOFF_FIRST", 0.5)  # room to trade while it is down
    hub = hub_of(live_broker)
    updates, gaps = [], []
    hub.on_trade_update(updates.append)
    hub.on_gap(gaps.append)
    server = streams_of(live_broker.sim)
    before = buy(live_broker)
    wait_for(lambda: any(u.order_id == before["id"] and u.event == "fill" for u in updates), what="fill")
    assert server.drop_all() == 1
    missed = buy(live_broker)  # happens while nobody listens
    wait_for(lambda: gaps, what="gap report")
    gap = gaps[0]
    assert isinstance(gap, Gap) and gap.stream == "trade_updates"
    assert gap.start == updates[-1].timestamp  # the last update received: all before it arrived
    assert gap.start < gap.noticed < gap.end and gap.attempts == 1
    submitted = pd.Timestamp(missed["submitted_at"])
    assert gap.start < submitted < gap.end  # a ledger catching up from gap.start finds it
    assert not any(u.order_id == missed["id"] for u in updates)
    seen = buy(live_broker)
    wait_for(
        lambda: any(u.order_id == seen["id"] and u.event == "fill" for u in updates), what="updates after the reconnect"
    )
    assert server.opened["trading"] == 2 and hub.trading.opened == 2 and list(hub.gaps) == gaps


def test_market_data_resubscribes_everything_after_a_drop(manual):
    hub = hub_of(manual)
    quotes, gaps = [], []
    hub.subscribe_quotes(["AAPL", "MSFT"], quotes.append)
    hub.subscribe_bars(["SPY"], lambda b: None)
    hub.on_gap(gaps.append)
    server = streams_of(manual.sim)
    server.drop_all()
    wait_for(lambda: gaps and server.opened["iex"] == 2, what="reconnected")
    conn = next(c for c in server.connections if c.kind == "iex")
    assert conn.subs["quotes"] == {"AAPL", "MSFT"} and conn.subs["bars"] == {"SPY"}
    assert gaps[0].stream == "market_data"
    manual.step(60)
    wait_for(lambda: {q.symbol for q in quotes} == {"AAPL", "MSFT"}, what="quotes after reconnect")


def test_failing_callbacks_are_reported_and_the_stream_carries_on(manual, caplog):
    hub = hub_of(manual)
    good = []

    def broken(quote):
        raise RuntimeError("bad callback")

    async def broken_async(quote):
        raise ValueError("bad async callback")

    hub.subscribe_quotes("AAPL", broken)
    hub.subscribe_quotes("AAPL", broken_async)
    hub.subscribe_quotes("AAPL", good.append)
    with caplog.at_level(logging.ERROR, logger="alpaca_nb"):
        manual.step(30)
        wait_for(lambda: good and hub.error_count >= 2 * len(good), what="deliveries")
        manual.step(30)
        wait_for(lambda: len(good) > 1, what="later deliveries")
    assert hub.market_data.state == "live" and hub.market_data.opened == 1
    kinds = {type(e.error) for e in hub.errors}
    assert kinds == {RuntimeError, ValueError}
    assert all("bad" in e.traceback and e.at.tzinfo for e in hub.errors)
    failing = {s.name: s.failures for s in hub.subscriptions("quotes")}
    assert failing["broken"] >= len(good) - 1 and failing["broken_async"] >= 1
    assert any("callback broken failed" in r.getMessage() for r in caplog.records)


def test_stop_takes_well_under_a_second(manual):
    hub = hub_of(manual)
    hub.on_trade_update(lambda u: None)
    hub.subscribe_quotes("AAPL", lambda q: None)
    server = streams_of(manual.sim)
    assert server.open_connections() == {"trading": 1, "iex": 1}
    took = hub.stop()
    assert took < 1.0 and not hub._thread.is_alive()
    wait_for(lambda: server.open_connections() == {}, what="closed at the broker")
    assert hub.stop() == 0.0  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        hub.on_trade_update(lambda u: None)
    assert hub_of(manual) is not hub  # a fresh hub for the account


def test_connection_limit_is_waited_out(manual):
    """Another client holds the key's one market-data connection: retry until it is free."""
    release = threading.Event()
    holding = threading.Event()

    async def hold():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(manual, "/v2/iex")) as ws:
                await ws.receive()
                await ws.send_bytes(msgpack.packb({"action": "auth", "key": manual.key, "secret": manual.secret}))
                await ws.receive()
                holding.set()
                await asyncio.to_thread(release.wait, 10)

    holder = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    holder.start()
    assert holding.wait(5)
    hub = hub_of(manual)
    sub = hub.subscribe_quotes("AAPL", lambda q: None, wait=0.5)
    assert not sub.live.is_set() and "connection limit exceeded (406)" in hub.market_data.last_error
    release.set()
    assert sub.wait(10) and hub.market_data.state == "live"


def test_live_quotes_frame_follows_the_contract(manual):
    hub = hub_of(manual)
    quotes = live_quotes(["AAPL", "MSFT"], hub=hub)
    empty = quotes.df
    pd.testing.assert_frame_equal(empty, frames.latest_quotes_frame({}))  # as the REST path has it
    errors: list = []
    stop = threading.Event()

    def reader():  # the notebook reading while the stream thread writes
        while not stop.is_set():
            try:
                frame = quotes.df
                assert frame.index.is_unique
            except Exception as exc:
                errors.append(exc)
            time.sleep(0.001)  # read constantly, but leave the stream thread the GIL to write

    reading = threading.Thread(target=reader, daemon=True)
    reading.start()
    try:
        # Keep the market moving until quotes arrive: the broker may take the subscription
        # after the first steps (it publishes what happens after it subscribed).
        deadline = time.monotonic() + 20
        for _ in range(5):
            manual.step(12)
        while set(quotes.df.index) != {"AAPL", "MSFT"} and time.monotonic() < deadline:
            manual.step(12)
            quotes.wait(quotes.updates + 1, timeout=0.2)
        latest = manual.market.quote("AAPL")
        while quotes.df.loc["AAPL", "bid_price"] != float(latest.bid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the broker publishes what the last step made
    finally:  # never leave the reader spinning, whatever failed
        stop.set()
        reading.join(10)
    assert errors == []
    frame = quotes.df
    assert list(frame.index) == ["AAPL", "MSFT"]
    assert frame.dtypes.equals(empty.dtypes)
    assert str(frame["timestamp"].dt.tz) == "UTC" and (frame["bid_price"] <= frame["ask_price"]).all()
    assert frame.loc["AAPL", "bid_price"] == float(latest.bid)  # the newest quote wins
    assert frame.loc["AAPL", "timestamp"].floor("us") == pd.Timestamp(latest.t)  # stream: ns
    quotes.stop()
    assert not quotes.live and hub.subscriptions("quotes") == []
    assert quotes.df.equals(frame)  # stopping keeps what it has


def test_live_bars_grow_and_a_forgotten_frame_stops_itself(manual):
    hub = hub_of(manual)
    bars = live_bars(["AAPL", "MSFT"], hub=hub)
    historical = marketdata.bars_frame({"bars": {}})  # the REST path's empty frame
    pd.testing.assert_frame_equal(bars.df, historical)  # same columns, dtypes, index
    bars.tz = "America/New_York"
    manual.step(60)
    assert bars.wait(2, timeout=5)
    manual.step(60)
    assert bars.wait(4, timeout=5)
    frame = bars.df
    assert len(frame) == 4 and set(frame.index.get_level_values("symbol")) == {"AAPL", "MSFT"}
    times = frame.loc["AAPL"].index
    assert str(times.tz) == "America/New_York" and times.is_monotonic_increasing
    assert frame["trade_count"].dtype == "int64" and frame["volume"].dtype == "float64"
    assert ((frame["low"] <= frame["open"]) & (frame["open"] <= frame["high"])).all()
    server = streams_of(manual.sim)
    conn = next(c for c in server.connections if c.kind == "iex")
    del bars, frame
    gc.collect()
    manual.step(60)  # the next bar finds the frame gone and cancels its subscription
    wait_for(lambda: hub.subscriptions("bars") == [] and conn.subs["bars"] == set(), what="auto-stop")


def test_live_trades_keep_the_latest_trades_in_order_and_call_back(manual):
    hub = hub_of(manual)
    seen: list[int] = []
    trades = live_trades("SPY", hub=hub, max_rows=5, on_update=lambda live: seen.append(live.updates))
    empty = trades.df
    assert list(empty.columns) == ["symbol", *frames.TRADE_COLUMNS] and empty.empty
    deadline = time.monotonic() + 20
    while trades.updates < 8 and time.monotonic() < deadline:
        manual.step(15)
        trades.wait(trades.updates + 1, timeout=0.5)
    frame = trades.df
    assert trades.updates >= 8 and len(frame) == 5  # only the last five are kept
    assert frame.dtypes.equals(empty.dtypes) and (frame["symbol"] == "SPY").all()
    assert frame["timestamp"].is_monotonic_increasing and str(frame["timestamp"].dt.tz) == "UTC"
    assert (frame["price"] > 0).all() and (frame["size"] > 0).all()
    last = manual.market.trade("SPY")  # the tape's latest print
    wait_for(lambda: trades.df["price"].iloc[-1] == float(last.price), what="the latest trade")
    wait_for(lambda: seen and seen[-1] == trades.updates, what="on_update after each trade")
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    trades.stop()
    assert not trades.live and hub.subscriptions("trades") == []
    with pytest.raises(ValueError, match="max_rows"):
        live_trades("SPY", hub=hub, max_rows=0)


def test_refused_keys_fail_fast_and_say_why(manual, caplog):
    hub = stream_hub(key=manual.key, secret="not-the-secret", url=manual.url)
    with caplog.at_level(logging.ERROR, logger="alpaca_nb"):
        sub = hub.on_trade_update(lambda u: None, wait=5.0)
        quotes = hub.subscribe_quotes("AAPL", lambda q: None, wait=5.0)
    assert not sub.live.is_set() and hub.trading.state == "failed"
    assert hub.market_data.state == "failed" and "auth failed (402)" in hub.market_data.last_error
    assert sum("refused for good" in r.getMessage() for r in caplog.records) == 2
    assert hub.trading.opened == 1 and hub.market_data.opened == 1  # no retry storm
    assert not quotes.live.is_set()
