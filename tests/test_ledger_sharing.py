"""One ledger file, several processes: nothing lost, and a clear error when a foreign process
holds the file for too long. Real processes, real file locks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from alpaca_nb.errors import InvalidArgumentError, LedgerBusyError
from alpaca_nb.ledger import Ledger
from alpaca_nb.models import ManagedOrder

REPO = Path(__file__).resolve().parents[1]

# Places ``n`` orders the way the service does (the intent row first), once ``go`` exists.
WORKER = textwrap.dedent("""
    import sys, time
    from decimal import Decimal
    from pathlib import Path
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import ManagedOrder

    path, user, n, go, linger = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), float(sys.argv[5])
    ledger = Ledger(path, account_id="acct", environment="local", busy_timeout=30, linger=linger)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    started = time.perf_counter()
    for i in range(n):
        ledger.create(ManagedOrder(client_order_id=f"{user}-{i:04d}", user=user, symbol="AAPL", side="buy",
                                   type="market", environment="local", qty=Decimal(1)))
    print(f"{user}: {n} orders in {time.perf_counter() - started:.1f} s", flush=True)
""")

# Holds the file the way a careless notebook would: a plain DuckDB connection left open.
HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def _python(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", *args], env=env, stdout=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("n, linger", [(500, 0.0), (200, 0.2)], ids=["open-close-per-call", "linger"])
def test_two_processes_placing_orders_at_once_lose_none(tmp_path, n, linger):
    """500 orders each, the file opened and closed per call (the default); and 200 each with
    ``linger``, where each process keeps the file between calls until the other one waits."""
    path = tmp_path / "shared.duckdb"
    Ledger(path)  # created and migrated up front
    go = tmp_path / "go"
    workers = [
        _python(WORKER, str(path), user, str(n), str(go), str(linger), stderr=subprocess.PIPE)
        for user in ("ana", "bob")
    ]
    assert [w.stdout.readline().strip() for w in workers] == ["ready", "ready"]
    go.touch()  # both start at once
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    ledger = Ledger(path)
    counts = ledger.sql(
        'SELECT "user", count(*) AS n, count(DISTINCT client_order_id) AS ids '
        "FROM managed_orders GROUP BY ALL ORDER BY 1"
    )
    assert counts.to_dict("list") == {"user": ["ana", "bob"], "n": [n, n], "ids": [n, n]}
    events = ledger.events(account_id=None, environment=None)
    assert len(events) == 2 * n and set(events["event"]) == {"created"}
    # They really ran side by side: in time order the writers take turns many times over.
    order = ledger.sql('SELECT "user" FROM managed_orders ORDER BY created_at')["user"].tolist()
    turns = sum(a != b for a, b in zip(order, order[1:], strict=False))
    assert turns > n // 10, f"only {turns} turns: {outputs}"


# Records when this process asks DuckDB to attach the ledger (DuckDB reads the file's headers
# then, before it takes its own lock), then records one order.
ATTACH_PROBE = textwrap.dedent("""
    import os, sys, time
    import alpaca_nb.ledger.file as ledger_file
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import ManagedOrder

    class Recording:
        def __init__(self, con):
            self.con = con
        def execute(self, sql, *args):
            if sql.startswith("ATTACH"):
                print("attach", time.time(), flush=True)
            return self.con.execute(sql, *args)
        def __getattr__(self, name):
            return getattr(self.con, name)

    ledger = Ledger(sys.argv[1], account_id="acct", environment="local", busy_timeout=30)
    plain = ledger_file._Engine.connection.__func__
    ledger_file._Engine.connection = classmethod(lambda cls: Recording(plain(cls)))
    print("ready", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.005)
    ledger.create(ManagedOrder(client_order_id="bob-1", user="bob", symbol="AAPL", side="buy",
                               type="market", environment="local", qty=1))
    print("done", flush=True)
""")


def test_no_process_attaches_while_another_alpaca_nb_process_works_on_the_file(tmp_path):
    """DuckDB reads a file's headers before it takes its lock, so an ATTACH racing another
    process's checkpoint can start from the old headers and later checkpoint over the other's
    last commit: rows vanished that way (1 run in 3 of the test above under load). alpaca_nb
    processes therefore take turns before DuckDB is asked at all: while one works on the file,
    another does not even try to attach."""
    path = tmp_path / "turns.duckdb"
    ledger = Ledger(path, account_id="acct", environment="local")
    go = tmp_path / "go"
    probe = _python(ATTACH_PROBE, str(path), str(go))
    assert probe.stdout.readline().strip() == "ready"
    with ledger.file.open(write=True) as con:  # a unit of work, held for a while
        con.execute("SELECT 1").fetchall()
        go.touch()  # the probe wants the file now ...
        time.sleep(1.0)  # ... and waits meanwhile
        released = time.time()
    out, _ = probe.communicate(timeout=60)
    assert probe.returncode == 0 and out.splitlines()[-1] == "done", out
    attaches = [float(line.split()[1]) for line in out.splitlines() if line.startswith("attach")]
    assert attaches and min(attaches) >= released, (released, attaches)
    assert [o.client_order_id for o in ledger.list()] == ["bob-1"]


def test_a_foreign_holder_past_the_bound_raises_ledger_busy_naming_it(tmp_path):
    path = tmp_path / "held.duckdb"
    ledger = Ledger(path, account_id="acct", environment="local", busy_timeout=0.5)
    holder = _python(HOLDER, str(path), "30")
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(LedgerBusyError) as caught:
            ledger.create(
                ManagedOrder(
                    client_order_id="nb-1",
                    user="ana",
                    symbol="AAPL",
                    side="buy",
                    type="market",
                    environment="local",
                    qty=1,
                )
            )
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 0.5 <= waited < 5
    message = str(caught.value)
    assert f"PID {holder.pid}" in message or f"process {holder.pid}" in message
    assert "busy_timeout" in message and "close" in message and str(path) in message
    assert caught.value.pid == holder.pid
    # Once the holder is gone the same call goes through, and nothing half-written was left.
    ledger.create(
        ManagedOrder(
            client_order_id="nb-1", user="ana", symbol="AAPL", side="buy", type="market", environment="local", qty=1
        )
    )
    assert [o.client_order_id for o in ledger.list()] == ["nb-1"]


def test_a_holder_that_lets_go_within_the_bound_is_waited_for(tmp_path):
    path = tmp_path / "brief.duckdb"
    ledger = Ledger(path, account_id="acct", environment="local", busy_timeout=10)
    holder = _python(HOLDER, str(path), "0.7")
    assert holder.stdout.readline().strip() == "holding"
    started = time.monotonic()
    ledger.set_sync_state("cursor", "x")
    assert time.monotonic() - started >= 0.3
    assert holder.wait(timeout=10) == 0
    assert ledger.sync_state("cursor") == "x"


def _order(cid: str) -> ManagedOrder:
    return ManagedOrder(
        client_order_id=cid, user="ana", symbol="AAPL", side="buy", type="market", environment="local", qty=1
    )


PLAIN_OPEN = "import sys, duckdb; duckdb.connect(sys.argv[1]).close(); print('opened')"
ALPACA_NB_CREATE = textwrap.dedent("""
    import sys, time
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import ManagedOrder
    started = time.monotonic()
    Ledger(sys.argv[1], account_id="acct", environment="local", busy_timeout=5).create(ManagedOrder(
        client_order_id="other", user="bob", symbol="AAPL", side="buy", type="market", environment="local", qty=1))
    print(f"{time.monotonic() - started:.3f}")
""")


def test_linger_keeps_the_file_but_yields_it_to_another_alpaca_nb_process(tmp_path):
    path = tmp_path / "linger.duckdb"
    ledger = Ledger(path, account_id="acct", environment="local", linger=30)
    try:
        ledger.create(_order("mine-1"))
        ledger.create(_order("mine-2"))
        # Kept after the writes: a foreign DuckDB client finds the file held ...
        foreign = _python(PLAIN_OPEN, str(path), stderr=subprocess.PIPE)
        out, err = foreign.communicate(timeout=30)
        assert foreign.returncode != 0 and "lock" in err.lower()
        # ... while another alpaca_nb process asks for it and gets it at once.
        other = _python(ALPACA_NB_CREATE, str(path))
        out, _ = other.communicate(timeout=30)
        assert other.returncode == 0 and float(out) < 3
        assert sorted(o.client_order_id for o in ledger.list()) == ["mine-1", "mine-2", "other"]
        # A lingering read-write attachment does not make ledger.sql() writable.
        ledger.create(_order("mine-3"))
        with pytest.raises(InvalidArgumentError, match="read-only"):
            ledger.sql("DELETE FROM managed_orders")
        assert len(ledger.list()) == 4
    finally:
        ledger.release()
    opened = _python(PLAIN_OPEN, str(path))
    assert opened.communicate(timeout=30)[0].strip() == "opened"


def test_linger_lets_go_after_the_idle_time(tmp_path):
    path = tmp_path / "idle.duckdb"
    ledger = Ledger(path, account_id="acct", environment="local", linger=0.2)
    ledger.create(_order("nb-1"))
    time.sleep(0.6)
    opened = _python(PLAIN_OPEN, str(path))
    assert opened.communicate(timeout=30)[0].strip() == "opened"


def test_a_connection_left_open_in_this_process_is_named(tmp_path):
    path = tmp_path / "mine.duckdb"
    ledger = Ledger(path, busy_timeout=5)
    con = duckdb.connect(str(path))
    try:
        started = time.monotonic()
        with pytest.raises(LedgerBusyError, match="this very process") as caught:
            ledger.sql("SELECT 1")
        assert time.monotonic() - started < 1  # no point waiting for ourselves
        assert caught.value.pid == os.getpid()
    finally:
        con.close()
    assert ledger.sql("SELECT 1 AS one")["one"].tolist() == [1]
