"""AlpacaService against raw alpaca-py on the same local broker: placing orders, syncing 10,000.

- ``place``: ``AlpacaService.place_order_sync`` (validation, the cached asset check, the
  write-ahead intent in the ledger's journal, flushed to disk, the POST, the answer journaled)
  against ``TradingClient.submit_order(LimitOrderRequest(...))`` (the POST and alpaca-py's
  models), interleaved so both see the same machine, with the broker in its own process (as
  users run it) and inside this one. Goal: at most 1.3x.
- ``sync``: 10,000 orders created at the broker (outside alpaca_nb), then one
  ``AlpacaService.sync_orders()`` bringing them all into an empty ledger: requests and seconds.

Usage::

    python -m bench.service [--orders 300] [--sync 10000] [--broker process|thread|both] [--linger 0.5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLACE_GOAL = 1.3


@contextlib.contextmanager
def _broker(where: str):
    """A local broker without a rate limit: ``process`` (its own process, as ``make demo`` and
    every notebook run it) or ``thread`` (inside this process, sharing its GIL)."""
    from alpaca_nb.sim import LocalBroker
    from alpaca_nb.sim.home import default_keys, read_registry

    if where == "thread":
        with LocalBroker(rate_limit=None, manual_clock=True) as broker:
            yield broker.url, broker.key, broker.secret
        return
    with tempfile.TemporaryDirectory() as state:
        proc = subprocess.Popen(
            [sys.executable, "-m", "alpaca_nb.sim", "serve", "--port", "0", "--rate-limit", "0", "--state-dir", state],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            proc.stdout.readline()  # "... listening on <url>"
            key, secret = default_keys()
            yield read_registry(Path(state))["url"], key, secret
        finally:
            proc.terminate()
            proc.wait(10)


def bench_place(n: int, linger: float, where: str = "process") -> dict[str, float]:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import LimitOrderRequest

    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import Ledger

    with tempfile.TemporaryDirectory() as folder, _broker(where) as (url, key, secret):
        ledger = Ledger(Path(folder) / "ledger.duckdb", linger=linger)
        svc = AlpacaService(ledger).initialize_sync(
            AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url
        )
        raw = TradingClient(key, secret, url_override=url)
        svc.asset("AAPL")  # the asset cache is warm, as in any session after its first order
        # Resting limit orders: the broker's work is the same for both, and no cash runs out.
        ours, theirs = [], []
        for _ in range(n):
            started = time.perf_counter()
            raw.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", limit_price=1.0, time_in_force="gtc"))
            theirs.append(time.perf_counter() - started)
            started = time.perf_counter()
            svc.place_order_sync(
                user="bench",
                order_request=AlpacaOrderRequest(
                    symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
                ),
            )
            ours.append(time.perf_counter() - started)
        assert len(ledger.list()) == n  # every order is in the ledger (the journal drained into it)
    return {"alpaca_nb": statistics.median(ours) * 1000, "alpaca-py": statistics.median(theirs) * 1000}


def bench_sync(n: int) -> dict[str, float]:
    from alpaca_nb import AlpacaCredentials, AlpacaService
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.sim import LocalBroker

    with tempfile.TemporaryDirectory() as folder, LocalBroker(rate_limit=None, manual_clock=True) as broker:
        bodies = [
            {
                "symbol": "AAPL",
                "qty": "1",
                "side": "buy",
                "type": "limit",
                "limit_price": "1.00",
                "time_in_force": "gtc",
            }
            for _ in range(n)
        ]
        for start in range(0, n, 2000):
            broker.engine.submit_orders(bodies[start : start + 2000], match=False)
        svc = AlpacaService(Ledger(Path(folder) / "ledger.duckdb")).initialize_sync(
            AlpacaCredentials(broker.key, broker.secret, "local"), trading_url=broker.url, data_url=broker.url
        )
        started = time.perf_counter()
        result = svc.sync_orders()
        seconds = time.perf_counter() - started
        assert result.inserted == n, result
        started = time.perf_counter()
        again = svc.sync_orders()
        unchanged = time.perf_counter() - started
    return {
        "seconds": seconds,
        "requests": result.requests,
        "unchanged_seconds": unchanged,
        "unchanged_requests": again.requests,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="orders placed by each client")
    parser.add_argument("--sync", type=int, default=10_000, help="orders to sync into an empty ledger")
    parser.add_argument("--linger", type=float, default=0.0, help="Ledger(linger=...) seconds")
    parser.add_argument(
        "--broker",
        choices=("process", "thread", "both"),
        default="both",
        help="the local broker in its own process (as users run it), in this one, or both",
    )
    args = parser.parse_args(argv)
    for where in ("process", "thread") if args.broker == "both" else (args.broker,):
        place = bench_place(args.orders, args.linger, where)
        ratio = place["alpaca_nb"] / place["alpaca-py"]
        print(
            f"place: {args.orders} limit orders each, median per order, broker in {where} "
            f"(ledger linger={args.linger:g} s)"
        )
        print(f"  alpaca-py TradingClient.submit_order      {place['alpaca-py']:7.2f} ms")
        print(
            f"  alpaca_nb AlpacaService.place_order_sync  {place['alpaca_nb']:7.2f} ms  ({ratio:.2f}x; "
            f"goal <= {PLACE_GOAL}x)"
        )
    sync = bench_sync(args.sync)
    print(
        f"sync: {args.sync:,} orders into an empty ledger: {sync['seconds']:.2f} s in {sync['requests']} requests; "
        f"again, nothing new: {sync['unchanged_seconds']:.2f} s in {sync['unchanged_requests']} requests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
