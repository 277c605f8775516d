"""Streams on loopback: event-to-callback latency, stop time and reconnect time.

One in-process local broker (with its websocket streams) on 127.0.0.1. Measured:

- **trade update latency**: from the moment the matching engine emits an event (a listener
  registered before the broker's own) to the moment the subscriber's callback runs, for
  ``--orders`` market orders placed one at a time (3 events each), through
  :mod:`alpaca_nb.stream` and through alpaca-py's ``TradingStream`` (run on its own loop thread,
  its ``run()`` being unusable in a kernel);
- **quote latency**: from a quote's market timestamp to the callback, on a real-time market
  (includes the broker publisher's 50 ms polling, so about 25 ms on average by construction);
- **stop time**: ``StreamHub.stop()`` with both connections open, against alpaca-py's
  ``stop()`` followed by the end of its thread;
- **reconnect**: from the broker dropping every websocket to the stream being live again.

Usage::

    python -m bench.stream [--orders 300] [--stops 20] [--alpaca-stops 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

TARGET_STOP = 1.0  # seconds: the bound on stopping a stream


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1e3  # noqa: E731
    return (
        f"p50 {pick(0.5):7.2f} ms  p95 {pick(0.95):7.2f} ms  p99 {pick(0.99):7.2f} ms  "
        f"max {values[-1] * 1e3:7.2f} ms  (n={len(values)})"
    )


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met")
        time.sleep(0.0005)


class _Emitted:
    """Engine listener: when each (order id, event) left the matching engine."""

    def __init__(self) -> None:
        self.at: dict[tuple[str, str], float] = {}

    def __call__(self, event: dict) -> None:
        self.at[(event["order"]["id"], event["event"])] = time.perf_counter()


def _orders(broker, emitted: _Emitted, received: dict, n: int) -> list[float]:
    """Place ``n`` market orders one at a time; latency of every event of each."""
    latencies = []
    for i in range(n):  # buy, sell, buy, ...: the account never runs out of buying power
        order = broker.engine.submit_order(
            {"symbol": "SPY", "qty": "1", "side": ("buy", "sell")[i % 2], "type": "market", "time_in_force": "day"}
        )
        key = (order["id"], "fill")
        _wait(lambda: key in received)  # noqa: B023
        for event in ("pending_new", "new", "fill"):
            k = (order["id"], event)
            latencies.append(received[k] - emitted.at[k])
    return latencies


def _alpaca_trading_stream(broker):
    from alpaca.trading.stream import TradingStream

    return TradingStream(broker.key, broker.secret, url_override=broker.url.replace("http://", "ws://") + "/stream")


def _run_on_thread(stream) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(stream._run_forever()), daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="market orders per client")
    parser.add_argument("--stops", type=int, default=20, help="StreamHub stop rounds")
    parser.add_argument("--alpaca-stops", type=int, default=1, help="alpaca-py stop rounds (~5 s each)")
    args = parser.parse_args(argv)

    from alpaca_nb.sim import LocalBroker
    from alpaca_nb.sim.api.streams import ensure_streams
    from alpaca_nb.stream import stop_all

    print(
        f"stream benchmark: loopback, {args.orders} market orders per client (3 events each), {args.stops} stop rounds"
    )
    broker = LocalBroker(seed=7, rate_limit=None)
    emitted = _Emitted()
    broker.engine.add_listener(emitted)  # before the broker's stream listener
    server = ensure_streams(broker.sim)
    failures = 0
    with broker:
        try:
            failures += _measure(broker, server, emitted, args)
        finally:
            stop_all()  # before the broker goes, so no client sees it vanish
    return 1 if failures else 0


def _measure(broker, server, emitted: _Emitted, args: argparse.Namespace) -> int:
    from alpaca_nb.live import live_quotes
    from alpaca_nb.stream import stream_hub

    failures = 0
    # -- trade updates through alpaca_nb.stream ------------------------------------------
    ours: dict = {}
    hub = stream_hub(key=broker.key, secret=broker.secret, url=broker.url)
    hub.on_trade_update(lambda u: ours.__setitem__((u.order_id, u.event), time.perf_counter()))
    ours_latency = _orders(broker, emitted, ours, args.orders)

    # -- the same through alpaca-py's TradingStream ---------------------------------------
    theirs: dict = {}
    stream = _alpaca_trading_stream(broker)

    async def on_update(update):
        theirs[(str(update.order.id), getattr(update.event, "value", update.event))] = time.perf_counter()

    stream.subscribe_trade_updates(on_update)
    thread = _run_on_thread(stream)
    _wait(lambda: sum(c.listening for c in list(server.connections)) == 2)
    theirs_latency = _orders(broker, emitted, theirs, args.orders)
    started = time.perf_counter()  # alpaca-py's stop, connected and idle, as in a notebook
    stream.stop()
    thread.join(30)
    alpaca_stops = [time.perf_counter() - started]
    print("trade update, engine -> callback")
    print(f"  alpaca_nb.stream      {_ms(ours_latency)}")
    print(f"  alpaca-py TradingStream {_ms(theirs_latency)}")

    # -- quotes on the real-time market ------------------------------------------------------
    quote_lags: list[float] = []
    quotes = live_quotes("*", hub=hub)
    hub.subscribe_quotes("*", lambda q: quote_lags.append(time.time() - q.timestamp.value / 1e9))
    time.sleep(5.0)
    quotes.stop()
    print("quote, market timestamp -> callback (real-time market, 50 ms broker polling)")
    print(f"  alpaca_nb.stream      {_ms(quote_lags)}")

    # -- reconnect ------------------------------------------------------------------------
    gaps: list = []
    hub.on_gap(gaps.append)
    server.drop_all()
    _wait(lambda: len(gaps) >= 2)
    print("reconnect after the broker drops both websockets (dropped -> live again)")
    for gap in gaps:
        print(f"  {gap.stream:<13} {(gap.end - gap.noticed).total_seconds() * 1e3:7.1f} ms ({gap.attempts} attempt)")

    # -- stop ---------------------------------------------------------------------------------
    stops = [hub.stop()]
    for _ in range(args.stops - 1):
        hub = stream_hub(key=broker.key, secret=broker.secret, url=broker.url)
        hub.on_trade_update(lambda u: None)
        hub.subscribe_quotes("SPY", lambda q: None)
        stops.append(hub.stop())
    for _ in range(args.alpaca_stops - 1):
        stream = _alpaca_trading_stream(broker)

        async def noop(update):
            pass

        stream.subscribe_trade_updates(noop)
        thread = _run_on_thread(stream)
        _wait(lambda: any(c.listening for c in list(server.connections)))
        started = time.perf_counter()
        stream.stop()
        thread.join(30)
        alpaca_stops.append(time.perf_counter() - started)
    print("stop (both connections open for alpaca_nb; until the thread has ended for alpaca-py)")
    print(f"  alpaca_nb StreamHub.stop()  {_ms(stops)}")
    print(f"  alpaca-py TradingStream.stop() + join  {_ms(alpaca_stops)}")
    worst = max(stops)
    verdict = "OK" if worst < TARGET_STOP else "FAIL"
    failures += worst >= TARGET_STOP
    print(
        f"{verdict}: slowest StreamHub stop {worst * 1e3:.1f} ms (target < {TARGET_STOP:.0f} s); "
        f"median trade-update latency {statistics.median(ours_latency) * 1e3:.2f} ms vs "
        f"alpaca-py {statistics.median(theirs_latency) * 1e3:.2f} ms"
    )
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
