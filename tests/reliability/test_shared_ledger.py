"""Three processes share one ledger file, each following the account's trade updates while
orders fill: no raw DuckDB error ever, every fill recorded exactly once, reads work throughout.

Every process sees every fill (they follow the same account), so each journals the same trade
updates and each drains the shared journal: the ledger must store each execution once, whoever
applies it first, while the others read and write the same file between their turns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from alpaca_nb.ledger import Ledger

PROCESSES = 3
ORDERS_EACH = 6

# One notebook: once ``go`` exists, opens the (new) ledger, follows the stream, places market
# orders, reads the ledger after each, waits until its own fills are in, and reports every error.
NOTEBOOK = textwrap.dedent("""
    import json, logging, sys, time
    from pathlib import Path
    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import Ledger

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)   # anything logged shows on stderr
    url, key, secret, path, user, n, go = sys.argv[1:8]
    errors, reads = [], 0

    def read(ledger):
        global reads
        try:
            ledger.list(user=user)
            ledger.fills()
            ledger.sql("SELECT count(*) FROM fills")
            reads += 3
        except Exception as err:
            errors.append(f"read: {type(err).__module__}.{type(err).__name__}: {err}")

    print("ready", flush=True)
    while not Path(go).exists():          # all three create the new ledger file at the same moment
        time.sleep(0.002)
    svc = AlpacaService(Ledger(path)).initialize_sync(
        AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url)
    ledger = svc.order_service
    follower = svc.follow()
    placed = []
    for i in range(int(n)):
        try:
            order = svc.place_order_sync(user=user, order_request=AlpacaOrderRequest(
                symbol=("AAPL", "MSFT", "SPY")[i % 3], qty=1 + i % 2, side="buy", type="market"))
            placed.append(order.client_order_id)
        except Exception as err:
            errors.append(f"place: {type(err).__module__}.{type(err).__name__}: {err}")
        read(ledger)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:    # until the stream has brought every fill of mine
        try:
            mine = ledger.sql("SELECT count(DISTINCT client_order_id) AS n FROM fills "
                              "WHERE list_contains(?, client_order_id)", [placed])["n"][0]
        except Exception as err:
            errors.append(f"wait: {type(err).__module__}.{type(err).__name__}: {err}")
            mine = -1
        if mine == len(placed):
            break
        time.sleep(0.05)
    follower.stop()
    errors.extend(f"follower: {type(e).__module__}.{type(e).__name__}: {e}" for e in follower.errors)
    print(json.dumps({"placed": placed, "errors": errors, "reads": reads, "applied": follower.applied}), flush=True)
""")


def test_three_processes_following_one_ledger_never_see_a_raw_duckdb_error(broker, tmp_path, reliability_figures):
    path = tmp_path / "shared.duckdb"
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_API")}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                NOTEBOOK,
                broker.url,
                broker.key,
                broker.secret,
                str(path),
                f"nb{n}",
                str(ORDERS_EACH),
                str(go),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        assert [child.stdout.readline().strip() for child in children] == ["ready"] * PROCESSES
        go.touch()  # all three open, place, fill and read at once
        outputs = [child.communicate(timeout=120) for child in children]
    finally:
        for child in children:
            child.kill()
    reports = []
    for child, (out, err) in zip(children, outputs, strict=False):
        assert child.returncode == 0, err[-3000:]
        # No raw DuckDB error anywhere: not raised, not logged, not even as the cause of another.
        assert "duckdb" not in err.lower() and "Traceback" not in err, err[-3000:]
        report = json.loads(out.strip().splitlines()[-1])
        assert report["errors"] == [], report["errors"]
        assert len(report["placed"]) == ORDERS_EACH and report["reads"] == 3 * ORDERS_EACH
        assert report["applied"] >= ORDERS_EACH  # each saw (at least) its own fills on the stream
        reports.append(report)

    ledger = Ledger(path)
    executions = broker.engine.activities(activity_types=["FILL"], page_size=100)
    fills = ledger.fills(account_id=None, environment=None)
    assert len(executions) == len(fills) == PROCESSES * ORDERS_EACH  # every fill, once
    assert fills["execution_id"].is_unique
    orders = ledger.sql('SELECT client_order_id, "user", status, qty, filled_qty FROM managed_orders')
    assert sorted(orders["client_order_id"]) == sorted(cid for r in reports for cid in r["placed"])
    assert set(orders["status"]) == {"filled"} and (orders["qty"] == orders["filled_qty"]).all()
    by_order = fills.groupby("client_order_id")["qty"].sum()
    assert (by_order.reindex(orders["client_order_id"]).to_numpy() == orders["qty"].to_numpy()).all()
    assert ledger.health().ok
    reliability_figures.record(
        "shared_ledger",
        {
            "processes": PROCESSES,
            "orders": len(orders),
            "fills": len(fills),
            "reads": sum(r["reads"] for r in reports),
            "duckdb_errors": 0,
        },
    )
