"""The DuckDB ledger: what a call costs, syncing 10,000 orders, P&L over 1,000,000 fills.

Three measurements on a fresh ledger file in a temporary directory:

- ``calls``: the cost of one ledger call, which opens (attaches) the file, works in one
  transaction and closes (detaches) it again so other processes can have it: ``create``,
  ``update``, ``get`` and an empty open/close, against opening DuckDB from scratch each time;
  then the same calls with ``Ledger(linger=0.5)``, which keeps the file between calls.
- ``journal``: what placing an order records through the write-ahead journal (the intent,
  synced to disk, and the answer: ``create(new_id=True)``, ``update(defer=True)``), and moving
  ``--journaled`` such pairs into DuckDB in one drain.
- ``settle``: settling ``--journaled`` pending intents as never placed, as a sync does for intents
  the broker never saw: one ``update`` (one transaction) each, as before issue 9, against
  ``update(defer=True)`` each and one drain, as ``sync_orders()`` does now.
- ``sync``: :meth:`Ledger.upsert_from_alpaca` with 10,000 Alpaca order JSON objects, as one
  ``sync_orders()`` would hand over (new to the ledger, then all changed, then unchanged).
- ``pnl``: 1,000,000 fills over 50 symbols and 20 days (whole shares, buys and sells at random,
  so positions flip long and short), attached to 333,334 managed orders of 5 users; then
  :func:`analytics.pnl` by symbol (FIFO realized + unrealized; the goal is under a second),
  :func:`analytics.positions`, ``pnl(by="user")`` and :func:`analytics.daily_pnl` (which match
  every lot), and :func:`analytics.lots` (one million lots as a DataFrame).

Best of ``--rounds`` is reported. The run fails when P&L by symbol takes 1 s or more, or the
10,000-order upsert 2 s or more. Usage::

    python -m bench.ledger [--fills 1000000] [--orders 10000] [--journaled 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

PNL_GOAL = 1.0  # seconds for P&L by symbol over the fills
SYNC_GOAL = 2.0  # seconds for upserting the orders
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def _best(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def _order_json(i: int, status: str = "new", filled: str = "0", at: datetime = T0) -> dict:
    stamp = at.isoformat().replace("+00:00", "Z")
    return {
        "id": f"ord-{i:08d}",
        "client_order_id": f"cid-{i:08d}",
        "symbol": f"S{i % 50:02d}",
        "side": "buy" if i % 2 else "sell",
        "type": "limit",
        "order_type": "limit",
        "time_in_force": "day",
        "order_class": "",
        "qty": "100",
        "notional": None,
        "limit_price": "101.25",
        "stop_price": None,
        "filled_qty": filled,
        "filled_avg_price": "101.2" if filled != "0" else None,
        "status": status,
        "created_at": stamp,
        "updated_at": stamp,
        "submitted_at": stamp,
        "filled_at": None,
        "extended_hours": False,
        "legs": None,
        "asset_class": "us_equity",
    }


def bench_calls(folder: Path, n: int = 200, linger: float = 0.0) -> dict[str, float]:
    """Median milliseconds of one call of each kind."""
    import duckdb

    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import ManagedOrder

    ledger = Ledger(folder / f"calls-{linger}.duckdb", account_id="acct", environment="local", linger=linger)
    timings: dict[str, list[float]] = {"create": [], "update": [], "get": []}
    if not linger:
        timings.update({"open+close": [], "duckdb.connect+close": []})

    def timed(name, fn):
        started = time.perf_counter()
        fn()
        timings[name].append((time.perf_counter() - started) * 1000)

    for i in range(n):
        order = ManagedOrder(
            client_order_id=f"nb-{i}",
            user="ana",
            symbol="AAPL",
            side="buy",
            type="limit",
            environment="local",
            qty=Decimal(10),
            limit_price=Decimal("190.5"),
        )
        timed("create", lambda: ledger.create(order))  # noqa: B023
        order.apply_alpaca({"id": f"A{i}", "status": "new", "filled_qty": "0"})
        timed("update", lambda: ledger.update(order))  # noqa: B023
        timed("get", lambda: ledger.get(f"nb-{i}"))  # noqa: B023

        if linger:
            continue

        def empty():
            with ledger.file.open(write=False):
                pass

        timed("open+close", empty)
        timed("duckdb.connect+close", lambda: duckdb.connect(str(ledger.path)).close())
    ledger.release()
    return {name: statistics.median(values) for name, values in timings.items()}


def bench_journal(folder: Path, n: int, rounds: int) -> dict[str, float]:
    """Median ms of journaling an intent and an answer; best seconds of draining ``n`` pairs."""
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.ledger import journal as ledger_journal
    from alpaca_nb.models import ManagedOrder

    ledger_journal.DRAIN_DELAY = 3600.0  # only the timed drain moves the journal
    intents, answers, drains = [], [], []
    for r in range(rounds):
        ledger = Ledger(folder / f"journal-{r}.duckdb", account_id="acct", environment="local")
        for i in range(n):
            order = ManagedOrder(
                client_order_id=f"nb-{r}-{i}",
                user="ana",
                symbol="AAPL",
                side="buy",
                type="limit",
                environment="local",
                qty=Decimal(10),
                limit_price=Decimal("190.5"),
            )
            started = time.perf_counter()
            ledger.create(order, new_id=True)
            intents.append(time.perf_counter() - started)
            order.apply_alpaca({"id": f"A{r}-{i}", "status": "new", "filled_qty": "0"})
            started = time.perf_counter()
            ledger.update(order, defer=True)
            answers.append(time.perf_counter() - started)
        started = time.perf_counter()
        ledger.drain()
        drains.append(time.perf_counter() - started)
        if len(ledger.events()) != 2 * n:
            raise AssertionError("the drain lost or doubled records")
    ledger_journal.DRAIN_DELAY = 0.25
    return {
        "intent": statistics.median(intents) * 1000,
        "answer": statistics.median(answers) * 1000,
        "drain": min(drains),
    }


def bench_settle(folder: Path, n: int, rounds: int) -> dict[str, float]:
    """Best seconds of settling ``n`` pending intents one transaction each, and in one batch."""
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.ledger import journal as ledger_journal
    from alpaca_nb.models import ManagedOrder, ManagedOrderStatus

    ledger_journal.DRAIN_DELAY = 3600.0  # only the timed drain moves the journal
    best: dict[str, float] = {}
    for way in ("one transaction each", "journaled, one drain"):
        times = []
        for r in range(rounds):
            ledger = Ledger(folder / f"settle-{way[:3]}-{r}.duckdb", account_id="acct", environment="local")
            for i in range(n):
                ledger.create(
                    ManagedOrder(
                        client_order_id=f"nb-{r}-{i}",
                        user="ana",
                        symbol="AAPL",
                        side="buy",
                        type="market",
                        environment="local",
                        qty=Decimal(1),
                    ),
                    new_id=True,
                )
            pending = ledger.list(status="pending")
            started = time.perf_counter()
            for order in pending:
                order.status = ManagedOrderStatus.REJECTED
                order.notes = "never reached the broker"
                ledger.update(order, source="sync", defer=way.startswith("journaled"))
            ledger.drain()
            times.append(time.perf_counter() - started)
            if len(ledger.list(status="rejected")) != n:
                raise AssertionError("settling lost an intent")
        best[way] = min(times)
    ledger_journal.DRAIN_DELAY = 0.25
    return best


def bench_sync(folder: Path, n: int, rounds: int) -> dict[str, float]:
    from alpaca_nb.ledger import Ledger

    new = [_order_json(i) for i in range(n)]
    later = T0 + timedelta(minutes=5)
    changed = [_order_json(i, "filled", "100", later) for i in range(n)]
    out = {"new": [], "changed": [], "unchanged": []}
    for r in range(rounds):
        ledger = Ledger(folder / f"sync-{r}.duckdb", account_id="acct", environment="local")
        for name, orders in (("new", new), ("changed", changed), ("unchanged", changed)):
            started = time.perf_counter()
            result = ledger.upsert_from_alpaca(orders)
            out[name].append(time.perf_counter() - started)
            expected = {"new": (n, 0, 0), "changed": (0, n, 0), "unchanged": (0, 0, n)}[name]
            got = (result.inserted, result.updated, result.unchanged)
            if got != expected:
                raise AssertionError(f"upsert {name}: {got} != {expected}")
    return {name: min(values) for name, values in out.items()}


def build_fills(folder: Path, n: int) -> tuple[object, dict[str, float]]:
    """A ledger with ``n`` fills (3 per order) and their managed orders; setup timings."""
    import numpy as np

    from alpaca_nb.ledger import Ledger

    ledger = Ledger(folder / "fills.duckdb", account_id="acct", environment="local")
    setup: dict[str, float] = {}
    orders = (n + 2) // 3
    started = time.perf_counter()
    for first in range(0, orders, 10_000):  # as a sync would: pages of orders, 5 users
        batch = [_order_json(i, "filled", "100") for i in range(first, min(first + 10_000, orders))]
        ledger.upsert_from_alpaca(batch, external_user=f"user{(first // 10_000) % 5}")
    setup["orders"] = time.perf_counter() - started

    rng = np.random.default_rng(7)
    order_of = np.arange(n) // 3
    symbols = np.char.add("S", np.char.zfill((order_of % 50).astype(str), 2))
    sides = np.where(rng.random(n) < 0.5, "buy", "sell")
    qty = rng.integers(1, 100, n).astype(str)
    price = (rng.integers(1_000, 20_000, n) / 100).astype(str)
    seconds = np.sort(rng.integers(0, 86_400 * 20, n))
    stamps = (np.datetime64(T0.replace(tzinfo=None), "s") + seconds).astype(str)
    fills = [
        {
            "execution_id": f"x{i:08d}",
            "alpaca_order_id": f"ord-{o:08d}",
            "symbol": s,
            "side": sd,
            "qty": q,
            "price": p,
            "filled_at": t + "Z",
        }
        for i, (o, s, sd, q, p, t) in enumerate(
            zip(
                order_of.tolist(),
                symbols.tolist(),
                sides.tolist(),
                qty.tolist(),
                price.tolist(),
                stamps.tolist(),
                strict=False,
            )
        )
    ]
    started = time.perf_counter()
    recorded = ledger.record_fills(fills, source="sync")
    setup["fills"] = time.perf_counter() - started
    if recorded != n:
        raise AssertionError(f"recorded {recorded} of {n} fills")
    return ledger, setup


def bench_pnl(ledger, rounds: int) -> dict[str, tuple[float, int]]:
    from alpaca_nb import analytics

    marks = {f"S{i:02d}": 100.0 + i for i in range(50)}
    out = {}
    for name, fn in (
        ("pnl by symbol", lambda: analytics.pnl(ledger, marks)),
        ("positions", lambda: analytics.positions(ledger, marks)),
        ("pnl by user", lambda: analytics.pnl(ledger, marks, by="user")),
        ("daily_pnl", lambda: analytics.daily_pnl(ledger)),
        ("lots (DataFrame)", lambda: analytics.lots(ledger, marks)),
    ):
        seconds, frame = _best(fn, rounds)
        out[name] = (seconds, len(frame))
    by_symbol = analytics.pnl(ledger, marks)["realized_pnl"].sum()
    by_lots = analytics.pnl(ledger, marks, by="user")["realized_pnl"].sum()
    if abs(by_symbol - by_lots) > 1e-3:
        raise AssertionError(f"realized P&L differs: {by_symbol} by symbol, {by_lots} from the lots")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n")[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--journaled", type=int, default=300, help="orders journaled, then drained at once")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (the best is reported)")
    args = parser.parse_args(argv)
    print(
        f"ledger benchmark: {args.orders:,} orders, {args.fills:,} fills, best of {args.rounds}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        calls = bench_calls(folder)
        print("  one call (median ms; each opens and closes the file):")
        for name, ms in calls.items():
            print(f"    {name:22s} {ms:6.2f} ms")
        kept = bench_calls(folder, linger=0.5)
        print("  one call with Ledger(linger=0.5) (median ms; the file stays attached between calls):")
        for name, ms in kept.items():
            print(f"    {name:22s} {ms:6.2f} ms")
        journal = bench_journal(folder, args.journaled, args.rounds)
        print(
            f"  the journal: an intent {journal['intent']:.2f} ms (synced to disk), an answer "
            f"{journal['answer']:.2f} ms (median); {args.journaled:,} of each drained into DuckDB in "
            f"{journal['drain'] * 1000:.0f} ms"
        )
        settle = bench_settle(folder, args.journaled, args.rounds)
        print(f"  settling {args.journaled:,} intents as never placed:")
        for name, seconds in settle.items():
            print(f"    {name:22s} {seconds:6.3f} s")
        sync = bench_sync(folder, args.orders, args.rounds)
        print(f"  upsert_from_alpaca of {args.orders:,} orders:")
        for name, seconds in sync.items():
            print(f"    {name:22s} {seconds:6.3f} s")
        ledger, setup = build_fills(folder, args.fills)
        print(
            f"  setup: {(args.fills + 2) // 3:,} orders upserted in {setup['orders']:.1f} s, "
            f"{args.fills:,} fills recorded in {setup['fills']:.1f} s"
        )
        pnl = bench_pnl(ledger, args.rounds)
        print(f"  analytics over {args.fills:,} fills:")
        for name, (seconds, rows) in pnl.items():
            print(f"    {name:22s} {seconds:6.3f} s  ({rows:,} rows)")
    print(f"  load average {os.getloadavg()[0]:.1f} at the end")
    failed = []
    if pnl["pnl by symbol"][0] >= PNL_GOAL:
        failed.append(f"P&L by symbol took {pnl['pnl by symbol'][0]:.2f} s (goal < {PNL_GOAL:g} s)")
    if max(sync.values()) >= SYNC_GOAL:
        failed.append(f"upsert took {max(sync.values()):.2f} s (goal < {SYNC_GOAL:g} s)")
    for line in failed:
        print(f"  FAILED: {line}")
    if not failed:
        print(
            f"  P&L by symbol over {args.fills:,} fills in {pnl['pnl by symbol'][0]:.2f} s (goal < {PNL_GOAL:g} s); "
            f"{args.orders:,} orders upserted in at most {max(sync.values()):.2f} s (goal < {SYNC_GOAL:g} s)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
