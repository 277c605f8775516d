"""The ledger's write-ahead journal: intents on disk before the POST, drained into DuckDB exactly once."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from brokers import wait_for

from alpaca_nb import ManagedOrderStatus
from alpaca_nb.errors import LedgerError
from alpaca_nb.ledger import Ledger, UnfitValueError
from alpaca_nb.ledger import journal as ledger_journal
from alpaca_nb.ledger import rows as rows
from alpaca_nb.ledger.file import LedgerFile
from alpaca_nb.ledger.schema import migrate
from alpaca_nb.models import AlpacaEnvironment, ManagedOrder

ACCOUNT = "acct-1"


@pytest.fixture
def quiet(monkeypatch):
    """No background drain during the test: the test decides when the journal is drained."""
    monkeypatch.setattr(ledger_journal, "DRAIN_DELAY", 3600.0)


@pytest.fixture
def ledger(tmp_path, quiet):
    return Ledger(tmp_path / "ledger.duckdb", account_id=ACCOUNT, environment="local")


def intent(cid: str, **kw) -> ManagedOrder:
    values = dict(
        client_order_id=cid,
        user="ana",
        symbol="AAPL",
        side="buy",
        type="limit",
        environment=AlpacaEnvironment.LOCAL,
        qty=Decimal(2),
        limit_price=Decimal("10.5"),
        tags=("symbol:AAPL", "side:buy", "type:limit", "swing"),
        notes="first try",
    )
    values.update(kw)
    return ManagedOrder(**values)


def answered(order: ManagedOrder, status: str = "new", filled: str = "0") -> ManagedOrder:
    order.apply_alpaca(
        {
            "id": f"alp-{order.client_order_id}",
            "status": status,
            "filled_qty": filled,
            "filled_avg_price": "10.5" if filled != "0" else None,
            "submitted_at": "2026-11-24T15:00:00Z",
            "updated_at": "2026-11-24T15:00:01Z",
        }
    )
    return order


def batch_files(ledger: Ledger) -> list[str]:
    return sorted(p.name for p in ledger.journal.folder.iterdir() if p.name != ledger_journal.ACTIVE)


def test_a_journaled_intent_and_answer_read_back_as_if_written_directly(ledger, tmp_path):
    order = ledger.create(intent("nb-j1"), new_id=True)
    assert ledger.journal.pending() and ledger.journal.active.stat().st_size > 0
    ledger.update(answered(order), defer=True)
    journaled = datetime.now(UTC)
    time.sleep(0.05)

    direct = Ledger(tmp_path / "direct.duckdb", account_id=ACCOUNT, environment="local")
    twin = direct.create(intent("nb-j1"))
    direct.update(answered(twin))

    stored, expected = ledger.get("nb-j1"), direct.get("nb-j1")  # the read drains the journal first
    assert not ledger.journal.pending() and batch_files(ledger) == []
    for name in (
        "user",
        "status",
        "alpaca_status",
        "alpaca_order_id",
        "qty",
        "limit_price",
        "tags",
        "notes",
        "submitted_at",
        "alpaca_updated_at",
        "account_id",
        "environment",
        "external",
    ):
        assert getattr(stored, name) == getattr(expected, name), name
    assert stored.status is ManagedOrderStatus.OPEN and stored.qty == Decimal(2)
    events = ledger.events("nb-j1")
    assert list(events["event"]) == ["created", "status"] and list(events["source"]) == ["submit", "submit"]
    assert list(events["status"]) == ["pending", "open"] and events["id"].is_monotonic_increasing
    assert (events["event_at"] <= journaled).all()  # when it happened, not when it was drained


def test_a_stale_answer_from_the_journal_never_overwrites_a_newer_state(ledger):
    order = ledger.create(intent("nb-j2"), new_id=True)
    ledger.update(answered(order, "filled", "2"), source="stream")  # written directly (drains first)
    late = answered(intent("nb-j2"), "new")  # the POST's older answer
    ledger.update(late, defer=True)
    stored = ledger.get("nb-j2")
    assert stored.status is ManagedOrderStatus.FILLED and stored.filled_qty == Decimal(2)
    assert list(ledger.events("nb-j2")["event"]) == ["created", "status"]  # the stale answer changed nothing


def test_a_batch_applied_but_not_deleted_is_never_applied_twice(ledger):
    """A drainer that dies after its commit and before deleting the batch."""
    for n in range(3):
        order = ledger.create(intent(f"nb-c{n}"), new_id=True)
        ledger.update(answered(order), defer=True)
    with ledger.file.open(write=True) as con:
        applied = ledger.journal.drain_into(con)  # committed, but settle() never runs
    assert len(applied) == 1 and batch_files(ledger) == [applied[0].name]
    assert len(ledger.list()) == 3  # the next unit of work recognises the batch ...
    assert batch_files(ledger) == []  # ... deletes it ...
    assert len(ledger.events()) == 6  # ... and applied nothing twice
    ledger.create(intent("nb-c3"), new_id=True)
    ledger.list()  # a later drain forgets batches no longer on disk
    assert applied[0].name not in set(ledger.sql("SELECT name FROM journal_applied")["name"])


def test_a_batch_whose_drain_failed_is_applied_by_the_next_one(ledger):
    """A drainer that dies before its commit: the renamed batch stays and is applied once."""
    ledger.create(intent("nb-f1"), new_id=True)
    with pytest.raises(RuntimeError, match="drainer died"):
        with ledger.file.open(write=True) as con:
            ledger.journal.drain_into(con)
            raise RuntimeError("drainer died")
    assert len(batch_files(ledger)) == 1
    ledger.create(intent("nb-f2"), new_id=True)  # a newer record goes to a fresh active file
    assert [o.client_order_id for o in ledger.list()] == ["nb-f1", "nb-f2"]
    assert batch_files(ledger) == [] and len(ledger.events()) == 2


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_next_record_survives(ledger, caplog):
    ledger.journal.folder.mkdir(exist_ok=True)
    with open(ledger.journal.active, "ab") as handle:
        handle.write(b'{"kind":"intent","at":"2026-11-24T15:00:00+00:00","source":"submit","ord')
    ledger.create(intent("nb-t1"), new_id=True)  # starts on a fresh line
    with caplog.at_level(logging.WARNING, logger="alpaca_nb"):
        assert [o.client_order_id for o in ledger.list()] == ["nb-t1"]
    assert "unreadable" in caplog.text and "never sent" in caplog.text


def test_an_intent_claims_the_row_a_sync_imported_first(ledger):
    """The order reached Alpaca and a sync (another notebook) imported it as external before
    this process's journal was drained: the intent's user, tags and notes win, the broker's
    state stays."""
    mine = intent("nb-claim")
    ledger.upsert_from_alpaca(
        [
            {
                "id": "alp-claim",
                "client_order_id": "nb-claim",
                "symbol": "AAPL",
                "side": "buy",
                "type": "limit",
                "order_type": "limit",
                "time_in_force": "day",
                "order_class": "",
                "qty": "2",
                "limit_price": "10.5",
                "filled_qty": "2",
                "filled_avg_price": "10.4",
                "status": "filled",
                "created_at": "2026-11-24T15:00:00Z",
                "updated_at": "2026-11-24T15:00:02Z",
                "submitted_at": "2026-11-24T15:00:00Z",
                "filled_at": "2026-11-24T15:00:02Z",
                "legs": None,
            }
        ]
    )
    assert ledger.get("nb-claim").external
    ledger.create(mine, new_id=True)
    stored = ledger.get("nb-claim")
    assert (stored.user, stored.external, stored.status) == ("ana", False, ManagedOrderStatus.FILLED)
    assert "swing" in stored.tags and "external" not in stored.tags
    assert "first try" in stored.notes and "alpaca_order_id=alp-claim" in stored.notes
    assert stored.filled_qty == Decimal(2) and stored.filled_avg_price == Decimal("10.4")
    last = ledger.events("nb-claim").iloc[-1]
    assert last["event"] == "updated" and json.loads(last["detail"])["external"] == [True, False]


def test_the_background_thread_drains_soon_after_an_append(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_journal, "DRAIN_DELAY", 0.05)
    ledger = Ledger(tmp_path / "bg.duckdb", account_id=ACCOUNT, environment="local")
    ledger.create(intent("nb-bg"), new_id=True)
    wait_for(lambda: not ledger.journal.pending(), what="the background drain")
    ledger.release()
    con = duckdb.connect(str(ledger.path), read_only=True)  # a plain DuckDB client sees the order
    try:
        assert con.execute('SELECT "user", status FROM managed_orders').fetchall() == [("ana", "pending")]
    finally:
        con.close()


KILLED = textwrap.dedent("""
    import sys
    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import Ledger

    url, key, secret, path = sys.argv[1:5]
    svc = AlpacaService(Ledger(path)).initialize_sync(
        AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url)
    print("placing", flush=True)
    svc.place_order_sync(user="killed-kernel", tags=["mine"], order_request=AlpacaOrderRequest(
        symbol="AAPL", qty=1, side="buy", type="market"))
    print("never here", flush=True)
""")


def test_a_kernel_killed_mid_request_leaves_its_intent_and_the_next_sync_settles_it(broker, tmp_path):
    """The answer never comes back (the process is SIGKILLed while the broker holds it): the
    intent was on disk before the POST, so the order is found, attributed to its user, and
    never sent twice."""
    path = tmp_path / "shared.duckdb"
    broker.faults.add(path="/v2/orders", method="POST", delay_after=30.0)  # processed, answer held
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_API")}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, broker.url, broker.key, broker.secret, str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: broker.engine.list_orders(status="all"), what="the order at the broker")
    finally:
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
    assert "never here" not in out
    journal_text = "".join(p.read_text() for p in (path.parent / (path.name + ".journal")).glob("*.jsonl"))
    assert "killed-kernel" in journal_text  # it was in the journal ...
    assert broker.secret not in journal_text and broker.key not in journal_text  # ... with no secret

    from brokers import service_for

    svc = service_for(broker, order_service=Ledger(path))
    [order] = svc.order_service.list()  # drained on this first read
    assert order.user == "killed-kernel" and order.status is ManagedOrderStatus.PENDING
    svc.sync_orders()
    [order] = svc.order_service.list()
    assert order.user == "killed-kernel" and not order.external and "mine" in order.tags
    assert order.status in (ManagedOrderStatus.OPEN, ManagedOrderStatus.FILLED) and order.alpaca_order_id
    assert broker.requests[("POST", "/v2/orders")] == 1  # never resent


EXITS = textwrap.dedent("""
    import sys
    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import journal as ledger_journal
    from alpaca_nb.ledger import Ledger

    ledger_journal.DRAIN_DELAY = 3600  # only the drain at exit moves the journal
    url, key, secret, path = sys.argv[1:5]
    svc = AlpacaService(Ledger(path)).initialize_sync(
        AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url)
    for _ in range(20):
        svc.place_order_sync(user="leaving", order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"))
""")


def test_a_process_that_exits_drains_its_journal_first(manual_broker, tmp_path):
    path = tmp_path / "exit.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_API")}
    done = subprocess.run(
        [sys.executable, "-c", EXITS, manual_broker.url, manual_broker.key, manual_broker.secret, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    folder = path.parent / (path.name + ".journal")
    assert not any(p.stat().st_size for p in folder.glob("*.jsonl"))
    con = duckdb.connect(str(path), read_only=True)  # a foreign client sees all 20
    try:
        assert con.execute(
            "SELECT count(*), count(alpaca_order_id) FROM managed_orders WHERE status = 'open' AND \"user\" = 'leaving'"
        ).fetchall() == [(20, 20)]
    finally:
        con.close()


# -- record-level isolation: one bad record costs no other record anything ------------------------


def journal_raw(ledger: Ledger, *records: dict) -> None:
    """Append records as a process that did not check them would (an older alpaca_nb, say)."""
    ledger.journal.folder.mkdir(exist_ok=True)
    with open(ledger.journal.active, "ab") as handle:
        for record in records:
            handle.write((json.dumps(record, default=str) + "\n").encode())


def raw_intent(order: ManagedOrder) -> dict:
    order.account_id = order.account_id or ACCOUNT
    order.created_at = order.updated_at = datetime.now(UTC)
    return {
        "kind": "intent",
        "at": order.created_at.isoformat(),
        "source": "submit",
        "order": rows.order_to_json(order),
    }


def place_neighbours(ledger: Ledger, prefix: str, n: int = 8) -> None:
    """``n`` good orders, intent and answer each, journaled as the service journals them."""
    for i in range(n):
        order = ledger.create(intent(f"{prefix}{i}"), new_id=True)
        ledger.update(answered(order), defer=True)


def test_one_bad_record_costs_its_eight_neighbours_nothing(ledger, caplog):
    """An intent with notes=None (NOT NULL in the ledger) among eight good orders: before, the
    whole batch was set aside and all eight lost their rows."""
    place_neighbours(ledger, "nb-n", 4)
    journal_raw(ledger, raw_intent(intent("nb-none", notes=None)))
    place_neighbours(ledger, "nb-m", 4)
    with caplog.at_level(logging.ERROR, logger="alpaca_nb"):
        stored = ledger.list()
    assert sorted(o.client_order_id for o in stored) == [f"nb-m{i}" for i in range(4)] + [f"nb-n{i}" for i in range(4)]
    assert all(o.status is ManagedOrderStatus.OPEN and o.notes.startswith("first try") for o in stored)
    assert len(ledger.events()) == 16  # created + status, each
    health = ledger.health()
    [kept] = health.set_aside
    assert not health.ok and kept.client_order_id == "nb-none" and kept.kind == "intent"
    assert "notes is None" in kept.error and kept.attempts == 1
    assert json.loads(kept.record)["order"]["client_order_id"] == "nb-none"  # the record itself, to retry
    assert kept.id.endswith(".jsonl:9")  # its batch file and line
    assert "nb-none" in caplog.text and "set aside" in caplog.text
    assert not ledger.journal.pending() and batch_files(ledger) == []  # nothing left as a .failed file
    assert list(health.frame()["client_order_id"]) == ["nb-none"]


def test_an_oversized_value_is_set_aside_alone_and_never_stored_as_null(ledger):
    """Before: qty 1e9 overflowed DECIMAL(18,9); in a large batch it was stored as NULL, in a
    small one it cost the whole batch. Now 1e9 fits, and a value beyond DECIMAL(38,9) is set
    aside alone with its reason."""
    place_neighbours(ledger, "nb-o", 8)
    journal_raw(
        ledger,
        raw_intent(intent("nb-1e9", qty=Decimal("1e9"), limit_price=Decimal("9999999.99"))),
        raw_intent(intent("nb-1e30", qty=Decimal("1e30"))),
    )
    assert len(ledger.list()) == 9
    assert ledger.get("nb-1e9").qty == Decimal("1000000000")
    assert ledger.get("nb-1e9").limit_price == Decimal("9999999.99")
    assert ledger.get("nb-1e30") is None
    assert ledger.sql("SELECT count(*) AS n FROM managed_orders WHERE qty IS NULL")["n"][0] == 0
    [kept] = ledger.health().set_aside
    assert kept.client_order_id == "nb-1e30" and "qty" in kept.error and "DECIMAL(38,9)" in kept.error

    # Written directly, or journaled by create(new_id=True), an order that cannot fit is refused
    # before anything is written or sent.
    with pytest.raises(UnfitValueError, match="qty") as refused:
        ledger.create(intent("nb-huge", qty=Decimal("1e30")))
    assert refused.value.column == "qty" and isinstance(refused.value, LedgerError)
    with pytest.raises(UnfitValueError, match="notes"):
        ledger.create(intent("nb-none", notes=None), new_id=True)
    assert not ledger.journal.pending() and ledger.get("nb-huge") is None


def test_a_record_duckdb_refuses_is_found_one_by_one_and_set_aside_alone(ledger, caplog):
    """A record that passes every check in Python but that DuckDB refuses (text it cannot
    encode) loses the whole transaction: the drain falls back to one record at a time, finds it,
    and applies everything else in one go again."""
    place_neighbours(ledger, "nb-s", 4)
    journal_raw(ledger, raw_intent(intent("nb-surrogate", notes="half a \ud800 character")))
    place_neighbours(ledger, "nb-t", 4)
    with caplog.at_level(logging.WARNING, logger="alpaca_nb"):
        assert len(ledger.list()) == 8
    assert "one at a time" in caplog.text
    [kept] = ledger.health().set_aside
    assert kept.client_order_id == "nb-surrogate" and "surrogate" in kept.error
    events = ledger.sql("SELECT count(*) AS n, count(DISTINCT id) AS ids FROM order_events")
    assert events.to_dict("records") == [{"n": 16, "ids": 16}]  # no half-applied attempt left behind


def test_a_record_set_aside_is_retried_and_leaves_once_it_applies(ledger):
    """Later drains retry what is due; ledger.drain() retries everything now. A record that
    applies leaves journal_rejects; one that fails again stays, with one more attempt."""
    now = datetime.now(UTC)
    fine_later = raw_intent(intent("nb-later"))  # say a bug, since fixed, refused it
    fine_due = raw_intent(intent("nb-due"))
    still_bad = raw_intent(intent("nb-bad", notes=None))
    with ledger.file.open(write=True) as con:
        for key, record, retry_after in (
            ("old.jsonl:1", fine_later, now + timedelta(hours=1)),
            ("old.jsonl:2", fine_due, now - timedelta(seconds=1)),
            ("old.jsonl:3", still_bad, now - timedelta(seconds=1)),
        ):
            con.execute(
                "INSERT INTO journal_rejects VALUES (?, 'intent', ?, ?, 'a bug', 3, ?, ?, ?)",
                [key, record["order"]["client_order_id"], json.dumps(record), now, now, retry_after],
            )
    ledger.create(intent("nb-new"), new_id=True)  # a new record: the drain retries what is due
    assert sorted(o.client_order_id for o in ledger.list()) == ["nb-due", "nb-new"]
    left = {item.id: item for item in ledger.health().set_aside}
    assert set(left) == {"old.jsonl:1", "old.jsonl:3"}
    assert left["old.jsonl:3"].attempts == 4 and "notes is None" in left["old.jsonl:3"].error
    assert left["old.jsonl:3"].retry_after > now + timedelta(seconds=1)  # backs off
    assert left["old.jsonl:1"].attempts == 3  # not due: not tried

    assert ledger.drain() is False  # the journal was empty, but every record is retried
    assert ledger.get("nb-later").user == "ana"
    [left] = ledger.health().set_aside
    assert left.id == "old.jsonl:3" and left.attempts == 5


def test_failed_batches_of_older_versions_are_applied_record_by_record(tmp_path, quiet):
    """A version-3 ledger with .failed batches (an older alpaca_nb set them aside whole): opening
    it with this one applies every record that can be, the 1e9 quantity included, and sets
    aside only the one that cannot."""
    path = tmp_path / "v3.duckdb"
    with LedgerFile(path).open(write=True) as con:
        migrate(con, target=3)
    folder = path.parent / (path.name + ".journal")
    folder.mkdir()
    records = [raw_intent(intent(f"nb-v{i}")) for i in range(7)]
    records.insert(3, raw_intent(intent("nb-big", qty=Decimal("1000000000"))))
    records.insert(5, raw_intent(intent("nb-none", notes=None)))
    failed = folder / "01796300000000000000-0badf00d.failed"
    failed.write_text("".join(json.dumps(r) + "\n" for r in records))

    ledger = Ledger(path, account_id=ACCOUNT, environment="local")
    assert ledger.journal.pending()  # a .failed batch is work to do
    stored = {o.client_order_id: o for o in ledger.list()}
    assert len(stored) == 8 and "nb-none" not in stored and stored["nb-big"].qty == Decimal("1e9")
    assert not failed.exists() and not ledger.journal.pending()
    [kept] = ledger.health().set_aside
    assert kept.id == f"{failed.name}:6" and kept.client_order_id == "nb-none"


def test_one_unfit_trade_update_is_split_out_of_its_record(ledger):
    order = ledger.create(intent("nb-tu2"), new_id=True)
    ledger.update(answered(order), defer=True)

    def fill(n: int, price: str) -> dict:
        return {
            "event": "partial_fill",
            "timestamp": f"2026-11-24T15:00:0{n}Z",
            "execution_id": f"exec-{n}",
            "price": price,
            "qty": "1",
            "position_qty": str(n),
            "order": {
                "id": "alp-nb-tu2",
                "client_order_id": "nb-tu2",
                "symbol": "AAPL",
                "side": "buy",
                "type": "limit",
                "time_in_force": "day",
                "order_class": "",
                "qty": "2",
                "limit_price": "10.5",
                "filled_qty": str(n),
                "filled_avg_price": "10.4",
                "status": "partially_filled",
                "created_at": "2026-11-24T15:00:00Z",
                "updated_at": f"2026-11-24T15:00:0{n}Z",
                "legs": None,
            },
        }

    ledger.apply_trade_updates([fill(1, "10.4"), fill(2, "1e40")], defer=True)
    assert list(ledger.fills()["execution_id"]) == ["exec-1"]
    [kept] = ledger.health().set_aside
    assert kept.id.endswith("/2") and kept.kind == "trade_updates" and "price" in kept.error
    assert [u["execution_id"] for u in json.loads(kept.record)["updates"]] == ["exec-2"]


def test_records_of_an_unknown_kind_and_unreadable_files_are_reported_not_dropped(ledger):
    journal_raw(ledger, {"kind": "from_the_future", "at": "2026-11-24T15:00:00+00:00", "source": "submit"})
    (ledger.journal.folder / "00000000000000000001-0000dead.jsonl").mkdir()  # a batch that cannot be read
    ledger.create(intent("nb-k"), new_id=True)
    assert [o.client_order_id for o in ledger.list()] == ["nb-k"]
    health = ledger.health()
    [kept] = health.set_aside
    assert "unknown kind 'from_the_future'" in kept.error
    assert [p.name for p in health.failed_batches] == ["00000000000000000001-0000dead.unreadable"]
    assert "NOT OK" in str(health) and "from_the_future" in str(health)


def test_appends_racing_with_drains_land_exactly_once(ledger):
    """Four threads journal intents and answers while another drains over and over: every
    rotation happens under an append's feet, and nothing is lost or applied twice."""
    import threading

    def place(worker: int) -> None:
        for n in range(150):
            order = ledger.create(intent(f"nb-r{worker}-{n}"), new_id=True)
            ledger.update(answered(order), defer=True)

    stop = threading.Event()
    drains = []

    def drain() -> None:
        while not stop.is_set():
            drains.append(ledger.drain())
            time.sleep(0.005)

    workers = [threading.Thread(target=place, args=(w,)) for w in range(4)]
    drainer = threading.Thread(target=drain)
    drainer.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    stop.set()
    drainer.join(120)
    assert sum(drains) > 1  # drained while appending
    counts = ledger.sql(
        "SELECT count(*) AS orders, count(DISTINCT client_order_id) AS ids, "
        "count(*) FILTER (WHERE status = 'open') AS open FROM managed_orders"
    )
    assert counts.to_dict("records") == [{"orders": 600, "ids": 600, "open": 600}]
    events = ledger.sql("SELECT event, count(*) AS n FROM order_events GROUP BY ALL ORDER BY 1")
    assert events.to_dict("records") == [{"event": "created", "n": 600}, {"event": "status", "n": 600}]
    assert ledger.sql("SELECT count(DISTINCT id) = count(*) AS unique_ids FROM order_events")["unique_ids"][0]
    assert not ledger.journal.pending() and batch_files(ledger) == []


def test_journaled_trade_updates_carry_when_they_arrived(ledger):
    order = ledger.create(intent("nb-tu"), new_id=True)
    ledger.update(answered(order), defer=True)
    fill = {
        "event": "fill",
        "timestamp": "2026-11-24T15:00:03Z",
        "execution_id": "exec-tu-1",
        "price": "10.4",
        "qty": "2",
        "position_qty": "2",
        "order": {
            "id": "alp-nb-tu",
            "client_order_id": "nb-tu",
            "symbol": "AAPL",
            "side": "buy",
            "type": "limit",
            "order_type": "limit",
            "time_in_force": "day",
            "order_class": "",
            "qty": "2",
            "limit_price": "10.5",
            "filled_qty": "2",
            "filled_avg_price": "10.4",
            "status": "filled",
            "created_at": "2026-11-24T15:00:00Z",
            "updated_at": "2026-11-24T15:00:03Z",
            "submitted_at": "2026-11-24T15:00:00Z",
            "filled_at": "2026-11-24T15:00:03Z",
            "legs": None,
        },
    }
    assert ledger.apply_trade_updates([fill], defer=True) is None
    arrived = datetime.now(UTC)
    time.sleep(0.1)
    stored = ledger.get("nb-tu")  # drained now, 0.1 s later
    assert stored.status is ManagedOrderStatus.FILLED and stored.updated_at <= arrived
    last = ledger.events("nb-tu").iloc[-1]
    assert last["source"] == "stream" and last["event"] == "status" and last["event_at"] <= arrived
    [recorded] = ledger.fills()["recorded_at"]
    assert recorded <= arrived
