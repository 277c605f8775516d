"""The DuckDB ledger: the OrderStore protocol, every status transition with its event and
source, sync upserts, fills deduplication, scoping, migrations, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

from alpaca_nb.errors import InvalidArgumentError, LedgerError
from alpaca_nb.ledger import DuplicateOrderError, Ledger, UnfitValueError
from alpaca_nb.ledger.file import LedgerFile
from alpaca_nb.ledger.schema import LATEST, SchemaTooNewError, migrate
from alpaca_nb.models import ManagedOrder, ManagedOrderStatus

ACCOUNT = "acct-1"
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.duckdb", account_id=ACCOUNT, environment="local")


def intent(cid: str, user: str = "ana", symbol: str = "AAPL", side: str = "buy", qty: str = "10", **kw) -> ManagedOrder:
    return ManagedOrder(
        client_order_id=cid,
        user=user,
        symbol=symbol,
        side=side,
        type=kw.pop("type", "limit"),
        environment=kw.pop("environment", "local"),
        qty=Decimal(qty),
        limit_price=kw.pop("limit_price", Decimal("190.50")),
        tags=kw.pop("tags", (f"symbol:{symbol}", f"side:{side}", "type:limit")),
        **kw,
    )


def alpaca(
    cid: str,
    oid: str,
    status: str,
    filled: str = "0",
    avg: str | None = None,
    at: int = 0,
    symbol: str = "AAPL",
    side: str = "buy",
    qty: str = "10",
    **extra,
) -> dict:
    """An order as Alpaca's JSON has it (numbers as strings), updated ``at`` seconds after T0."""
    stamp = (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z")
    return {
        "id": oid,
        "client_order_id": cid,
        "symbol": symbol,
        "side": side,
        "type": "limit",
        "order_type": "limit",
        "time_in_force": "day",
        "order_class": "",
        "qty": qty,
        "notional": None,
        "limit_price": "190.5",
        "stop_price": None,
        "filled_qty": filled,
        "filled_avg_price": avg,
        "status": status,
        "created_at": T0.isoformat(),
        "submitted_at": T0.isoformat(),
        "updated_at": stamp,
        "filled_at": stamp if status == "filled" else None,
        "legs": None,
        **extra,
    }


def history(ledger: Ledger, cid: str) -> list[tuple]:
    events = ledger.events(cid)
    return list(
        zip(events["source"], events["event"], events["previous_status"].fillna("-"), events["status"], strict=False)
    )


# -- the OrderStore protocol and every transition -------------------------------------------------


def test_intent_then_answers_pending_open_partially_filled_filled(ledger):
    order = ledger.create(intent("nb-1"))
    assert order.created_at is not None and order.account_id == ACCOUNT
    assert ledger.get("nb-1").status is ManagedOrderStatus.PENDING

    order.apply_alpaca(alpaca("nb-1", "A1", "new"))
    ledger.update(order)  # the POST's answer
    ledger.upsert_from_alpaca([alpaca("nb-1", "A1", "partially_filled", "4", "190.4", at=1)], source="stream")
    ledger.upsert_from_alpaca([alpaca("nb-1", "A1", "partially_filled", "7", "190.45", at=2)], source="stream")
    ledger.upsert_from_alpaca([alpaca("nb-1", "A1", "filled", "10", "190.47", at=3)], source="poll")

    stored = ledger.get("nb-1")
    assert stored.status is ManagedOrderStatus.FILLED and stored.alpaca_status == "filled"
    assert stored.filled_qty == Decimal("10") and stored.filled_avg_price == Decimal("190.47")
    assert stored.alpaca_order_id == "A1" and "alpaca_order_id=A1" in stored.notes
    assert stored.tags == ("symbol:AAPL", "side:buy", "type:limit")
    assert history(ledger, "nb-1") == [
        ("submit", "created", "-", "pending"),
        ("submit", "status", "pending", "open"),
        ("stream", "status", "open", "partially_filled"),
        ("stream", "fill", "partially_filled", "partially_filled"),
        ("poll", "status", "partially_filled", "filled"),
    ]
    detail = json.loads(ledger.events("nb-1")["detail"].iloc[-1])
    assert detail["previous_filled_qty"].startswith("7") and detail["filled_qty"].startswith("10")
    assert ledger.by_alpaca_id("A1").client_order_id == "nb-1"


def test_canceled_and_rejected(ledger):
    order = ledger.create(intent("nb-c"))
    order.apply_alpaca(alpaca("nb-c", "AC", "new"))
    ledger.update(order)
    ledger.upsert_from_alpaca([alpaca("nb-c", "AC", "pending_cancel", at=1)], source="poll")
    assert ledger.get("nb-c").status is ManagedOrderStatus.OPEN  # pending_cancel is still open
    ledger.upsert_from_alpaca([alpaca("nb-c", "AC", "canceled", at=2)], source="stream")
    assert ledger.get("nb-c").status is ManagedOrderStatus.CANCELED
    assert history(ledger, "nb-c")[-1] == ("stream", "status", "open", "canceled")

    refused = ledger.create(intent("nb-r"))
    refused.status = ManagedOrderStatus.REJECTED  # what the service does on a 403 / 422
    refused.notes = "rejected: insufficient buying power"
    ledger.update(refused)
    stored = ledger.get("nb-r")
    assert stored.status is ManagedOrderStatus.REJECTED and stored.alpaca_order_id is None
    assert history(ledger, "nb-r") == [
        ("submit", "created", "-", "pending"),
        ("submit", "status", "pending", "rejected"),
    ]


def test_replaced_links_the_new_order_to_its_parent(ledger):
    old = ledger.create(intent("nb-old"))
    old.apply_alpaca(alpaca("nb-old", "A-old", "new"))
    ledger.update(old)
    # PATCH /v2/orders/A-old: Alpaca answers with a new order that replaces the old one.
    ledger.upsert_from_alpaca(
        [
            alpaca("nb-old", "A-old", "replaced", at=5, replaced_by="A-new"),
            alpaca("nb-new", "A-new", "new", at=5, replaces="A-old", qty="20"),
        ],
        source="sync",
    )
    assert ledger.get("nb-old").status is ManagedOrderStatus.REPLACED
    new = ledger.get("nb-new")
    assert new.parent_client_order_id == "nb-old" and new.qty == Decimal(20)
    assert history(ledger, "nb-old")[-1] == ("sync", "status", "open", "replaced")

    # The replacement of the replacement, arriving alone: its parent is found in the ledger.
    ledger.upsert_from_alpaca([alpaca("nb-3", "A-3", "new", at=9, replaces="A-new")], source="sync")
    assert ledger.get("nb-3").parent_client_order_id == "nb-new"


def test_unresolved_is_resolved_by_the_next_sync(ledger):
    order = ledger.create(intent("nb-u"))
    order.status = ManagedOrderStatus.UNRESOLVED  # the POST timed out, the lookup failed
    ledger.update(order)
    assert [o.client_order_id for o in ledger.list(status=["pending", "unresolved"])] == ["nb-u"]

    result = ledger.upsert_from_alpaca([alpaca("nb-u", "A-u", "filled", "10", "190.1", at=4)], source="sync")
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    stored = ledger.get("nb-u")
    assert stored.status is ManagedOrderStatus.FILLED and stored.alpaca_order_id == "A-u"
    assert not stored.external and stored.user == "ana"
    assert history(ledger, "nb-u") == [
        ("submit", "created", "-", "pending"),
        ("submit", "status", "pending", "unresolved"),
        ("sync", "status", "unresolved", "filled"),
    ]
    assert ledger.list(status=["pending", "unresolved"]) == []


def test_an_older_answer_never_overwrites_a_newer_state(ledger):
    order = ledger.create(intent("nb-race"))
    # The stream reports the fill before the POST's own answer ("new") comes back.
    ledger.upsert_from_alpaca([alpaca("nb-race", "A-r", "filled", "10", "190.2", at=2)], source="stream")
    order.apply_alpaca(alpaca("nb-race", "A-r", "new"))
    returned = ledger.update(order)
    assert returned.status is ManagedOrderStatus.FILLED and returned.filled_qty == Decimal(10)
    assert ledger.get("nb-race").status is ManagedOrderStatus.FILLED
    # A sync page fetched before the fill (older updated_at) changes nothing either.
    result = ledger.upsert_from_alpaca([alpaca("nb-race", "A-r", "new", at=1)], source="sync")
    assert result.unchanged == 1 and ledger.get("nb-race").status is ManagedOrderStatus.FILLED
    assert [e for e in history(ledger, "nb-race") if e[3] == "open"] == []


def test_create_refuses_a_duplicate_and_update_records_what_it_does_not_know(ledger):
    ledger.create(intent("nb-d"))
    with pytest.raises(DuplicateOrderError, match="already recorded") as refused:
        ledger.create(intent("nb-d", user="bob"))
    # One specific error (the service catches exactly it), in the alpaca_nb tree and still a ValueError.
    assert refused.value.client_order_id == "nb-d"
    assert isinstance(refused.value, LedgerError) and isinstance(refused.value, ValueError)
    assert ledger.get("nb-d").user == "ana"
    with pytest.raises(UnfitValueError, match="user") as unfit:  # not reported as a duplicate
        ledger.create(intent("nb-u", user=None))
    assert not isinstance(unfit.value, DuplicateOrderError) and unfit.value.column == "user"
    stray = intent("nb-stray")
    ledger.update(stray)
    assert ledger.get("nb-stray") is not None
    assert len(ledger.list()) == 2


# -- sync: external orders, legs, pages, volume ---------------------------------------------------


def test_upsert_imports_external_orders_with_legs_and_seed_tags(ledger):
    bracket = alpaca("web-1", "W1", "filled", "5", "100", symbol="SPY", qty="5", order_class="bracket")
    bracket["legs"] = [
        alpaca("web-1-tp", "W1tp", "new", symbol="SPY", side="sell", qty="5"),
        alpaca("web-1-sl", "W1sl", "held", symbol="SPY", side="sell", qty="5"),
    ]
    page = [
        bracket,
        alpaca("web-2", "W2", "canceled", symbol="MSFT"),
        alpaca("web-2", "W2", "canceled", symbol="MSFT"),
    ]  # repeated at a page boundary
    result = ledger.upsert_from_alpaca(page)
    assert (result.inserted, result.updated, result.unchanged) == (4, 0, 0)
    assert result.latest_updated_at == T0

    spy = ledger.get("web-1")
    assert spy.external and spy.user == "external" and spy.notes == "alpaca_order_id=W1"
    assert spy.tags == ("symbol:SPY", "side:buy", "type:limit", "external")
    assert str(spy.order_class) == "bracket"
    legs = {o.client_order_id: o for o in ledger.list(symbol="SPY") if o.parent_client_order_id}
    assert set(legs) == {"web-1-tp", "web-1-sl"}
    assert all(leg.parent_client_order_id == "web-1" for leg in legs.values())
    assert legs["web-1-sl"].status is ManagedOrderStatus.OPEN  # held maps to open
    assert history(ledger, "web-2") == [("sync", "imported", "-", "canceled")]
    assert [o.client_order_id for o in ledger.list(tag="external", status="canceled")] == ["web-2"]

    again = ledger.upsert_from_alpaca(page)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert len(ledger.events()) == 4


def test_upsert_of_ten_thousand_orders_is_one_quick_batch(ledger):
    orders = [alpaca(f"bulk-{i}", f"B{i}", "new", symbol=("AAPL", "MSFT", "SPY")[i % 3]) for i in range(10_000)]
    started = time.perf_counter()
    first = ledger.upsert_from_alpaca(orders)
    inserted_in = time.perf_counter() - started
    for i, order in enumerate(orders):
        if i % 2:
            order.update(
                status="filled",
                filled_qty="10",
                filled_avg_price="190.5",
                updated_at=(T0 + timedelta(seconds=60)).isoformat(),
            )
    started = time.perf_counter()
    second = ledger.upsert_from_alpaca(orders, source="poll")
    updated_in = time.perf_counter() - started
    assert first.inserted == 10_000 and (second.updated, second.unchanged) == (5_000, 5_000)
    counts = ledger.sql("SELECT status, count(*) AS n FROM managed_orders GROUP BY ALL ORDER BY status")
    assert counts.to_dict("list") == {"status": ["filled", "open"], "n": [5_000, 5_000]}
    assert len(ledger.events()) == 15_000
    # The goal is 1-2 s on a quiet machine; the bound leaves room for a busy test runner.
    assert inserted_in < 10 and updated_in < 10, (inserted_in, updated_in)


# -- fills ----------------------------------------------------------------------------------------


def trade_update(event: str, execution_id: str, qty: str, price: str, filled: str, at: int) -> dict:
    order = alpaca("nb-f", "A-f", "filled" if filled == "10" else "partially_filled", filled, price, at=at)
    return {
        "event": event,
        "execution_id": execution_id,
        "qty": qty,
        "price": price,
        "timestamp": order["updated_at"],
        "position_qty": filled,
        "order": order,
    }


def activity(activity_id: str, qty: str, price: str, cum: str, at: int) -> dict:
    return {
        "id": activity_id,
        "activity_type": "FILL",
        "transaction_time": alpaca("x", "x", "new", at=at)["updated_at"],
        "type": "fill" if cum == "10" else "partial_fill",
        "price": price,
        "qty": qty,
        "side": "buy",
        "symbol": "AAPL",
        "leaves_qty": str(10 - int(cum)),
        "order_id": "A-f",
        "cum_qty": cum,
        "order_status": "filled",
    }


def test_a_fill_from_the_stream_and_from_the_activities_is_stored_once(ledger):
    ledger.create(intent("nb-f"))
    first = trade_update("partial_fill", "exec-1", "4", "190.1", "4", at=1)
    second = trade_update("fill", "exec-2", "6", "190.2", "10", at=2)
    orders, fills = ledger.apply_trade_updates([first, second, second])  # a duplicate delivery
    assert fills == 2 and orders.updated == 1
    assert ledger.get("nb-f").status is ManagedOrderStatus.FILLED

    # The activities describe the same two executions: one under the same uuid, one under another.
    page = [
        activity("20261124150001000::exec-1", "4", "190.1", "4", at=1),
        activity("20261124150002000::other-uuid", "6", "190.2", "10", at=2),
    ]
    assert ledger.record_fills(page, source="sync") == 0
    assert ledger.record_fills(page, source="sync") == 0
    stored = ledger.fills()
    assert list(stored["execution_id"]) == ["exec-1", "exec-2"]
    assert list(stored["source"]) == ["stream", "stream"]
    assert list(stored["client_order_id"]) == ["nb-f", "nb-f"]
    assert list(stored["qty"]) == [4.0, 6.0] and list(stored["leaves_qty"]) == [6.0, 0.0]
    # The activity ids (the activities' paging token) are kept on the stream's rows.
    assert list(stored["activity_id"]) == [a["id"] for a in page]


def test_activities_first_then_the_order_gets_its_fills_linked(ledger):
    page = [
        activity("20261124150001000::e1", "4", "190.1", "4", at=1),
        activity("20261124150002000::e2", "6", "190.2", "10", at=2),
    ]
    assert ledger.record_fills(page, source="sync") == 2
    assert ledger.fills()["client_order_id"].isna().all()  # the order is not known yet
    ledger.upsert_from_alpaca([alpaca("nb-late", "A-f", "filled", "10", "190.16", at=2)])
    assert list(ledger.fills()["client_order_id"]) == ["nb-late", "nb-late"]
    assert list(ledger.fills()["execution_id"]) == ["e1", "e2"]


# -- scope ----------------------------------------------------------------------------------------


def test_accounts_and_environments_side_by_side(tmp_path):
    everything = Ledger(tmp_path / "l.duckdb")
    paper = everything.scoped(account_id="P", environment="paper")
    local = everything.scoped(account_id="L", environment="local")
    paper.create(intent("p-1", environment="paper"))
    local.create(intent("l-1"))
    local.create(intent("l-2", user="bob"))
    paper.upsert_from_alpaca([alpaca("p-ext", "PX", "new")])
    paper.record_fills([activity("t::pf", "1", "10", "1", at=1)], source="sync")
    local.record_fills([activity("t::lf", "1", "10", "1", at=1)], source="sync")

    assert {o.client_order_id for o in paper.list()} == {"p-1", "p-ext"}
    assert {o.client_order_id for o in local.list()} == {"l-1", "l-2"}
    assert [o.client_order_id for o in local.list("bob")] == ["l-2"]
    assert len(everything.list()) == 4
    assert len(local.list(account_id=None)) == 2  # None: every local account
    assert len(local.list(account_id=None, environment=None)) == 4  # every account, every environment
    assert len(local.list(account_id="P", environment="paper")) == 2  # another scope on demand
    assert local.get("p-1") is None and paper.get("p-1").account_id == "P"
    assert everything.get("p-1").environment.value == "paper"
    assert list(paper.fills()["execution_id"]) == ["pf"] and len(everything.fills()) == 2
    assert set(local.events()["client_order_id"]) == {"l-1", "l-2"}
    assert set(local.orders()["account_id"]) == {"L"}
    with pytest.raises(InvalidArgumentError, match="which account"):
        everything.record_fills([], source="sync")
    # A client_order_id already recorded for another account is not taken over by a sync.
    clash = paper.upsert_from_alpaca(
        [alpaca("l-1", "PX-clash", "filled", "10", "1", at=3), alpaca("p-new", "PN", "new", at=3)]
    )
    assert (clash.inserted, clash.skipped) == (1, 1)
    assert local.get("l-1").status.value == "pending" and local.get("l-1").alpaca_order_id is None

    paper.set_sync_state("orders_cursor", "2026-11-24T15:00:00Z")
    assert paper.sync_state("orders_cursor") == "2026-11-24T15:00:00Z"
    assert local.sync_state("orders_cursor") is None
    paper.set_sync_state("orders_cursor", "2026-11-24T16:00:00Z")
    assert paper.sync_state("orders_cursor") == "2026-11-24T16:00:00Z"


# -- schema, SQL, export --------------------------------------------------------------------------


def test_an_old_file_is_migrated_when_opened(tmp_path):
    path = tmp_path / "old.duckdb"
    with LedgerFile(path).open(write=True) as con:  # a ledger written by version 1
        assert migrate(con, target=1) == (0, 1)
        con.execute("""INSERT INTO managed_orders (client_order_id, "user", environment, account_id, symbol,
                       side, type, qty, limit_price, status, created_at, updated_at) VALUES
                       ('nb-v1', 'ana', 'paper', 'P', 'AAPL', 'buy', 'limit', 999999999.123456789, 190.5,
                        'filled', now(), now())""")
    ledger = Ledger(path, account_id="P", environment="paper")
    assert ledger.schema_version() == LATEST == 4
    old = ledger.get("nb-v1")
    assert old.status is ManagedOrderStatus.FILLED and old.user == "ana"
    assert old.qty == Decimal("999999999.123456789") and old.limit_price == Decimal("190.5")  # kept exactly
    ledger.set_sync_state("k", "v")  # a version-2 table
    assert ledger.sync_state("k") == "v"
    assert ledger.sql("SELECT count(*) AS n FROM journal_applied")["n"][0] == 0  # version 3
    assert ledger.sql("SELECT count(*) AS n FROM journal_rejects")["n"][0] == 0  # version 4 ...
    money = ledger.sql(
        "SELECT DISTINCT data_type FROM duckdb_columns() WHERE database_name = 'ledger' AND data_type LIKE 'DECIMAL%'"
    )["data_type"].tolist()
    assert money == ["DECIMAL(38,9)"]  # ... widened every money column
    assert ledger.sql("SELECT list(version ORDER BY version) AS v FROM schema_version")["v"][0].tolist() == [1, 2, 3, 4]
    Ledger(path)  # opening again changes nothing
    assert ledger.sql("SELECT count(*) AS n FROM schema_version")["n"][0] == 4

    with LedgerFile(path).open(write=True) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(SchemaTooNewError, match="upgrade alpaca_nb") as refused:
        Ledger(path)
    assert isinstance(refused.value, LedgerError)


def test_sql_is_read_only_and_export_writes_parquet_and_csv(ledger, tmp_path):
    ledger.create(intent("nb-e1"))
    ledger.create(intent("nb-e2", symbol="MSFT"))
    frame = ledger.sql("SELECT symbol, qty, created_at FROM managed_orders ORDER BY symbol")
    assert list(frame["symbol"]) == ["AAPL", "MSFT"] and frame["qty"].dtype == "float64"
    assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
    with pytest.raises(InvalidArgumentError, match="read-only") as refused:
        ledger.sql("DELETE FROM managed_orders")
    assert refused.value.argument == "query" and not isinstance(refused.value, duckdb.Error)
    with pytest.raises(InvalidArgumentError, match="no_such_table"):
        ledger.sql("SELECT * FROM no_such_table")
    assert len(ledger.list()) == 2

    parquet = ledger.export(tmp_path / "out" / "orders.parquet")
    back = duckdb.sql(f"SELECT client_order_id, qty, tags FROM read_parquet('{parquet}') ORDER BY 1").fetchall()
    assert back == [
        ("nb-e1", Decimal("10.000000000"), ["symbol:AAPL", "side:buy", "type:limit"]),
        ("nb-e2", Decimal("10.000000000"), ["symbol:MSFT", "side:buy", "type:limit"]),
    ]
    csv = ledger.export(tmp_path / "events.txt", "order_events", format="csv")
    assert list(pd.read_csv(csv)["client_order_id"]) == ["nb-e1", "nb-e2"]
    query = ledger.export(
        tmp_path / "q.csv", "SELECT symbol, count(*) AS n FROM managed_orders GROUP BY ALL ORDER BY 1"
    )
    assert pd.read_csv(query).to_dict("list") == {"symbol": ["AAPL", "MSFT"], "n": [1, 1]}
    chosen = ledger.export(
        tmp_path / "p.csv", "SELECT client_order_id FROM managed_orders WHERE symbol = $s", params={"s": "MSFT"}
    )
    assert list(pd.read_csv(chosen)["client_order_id"]) == ["nb-e2"]
    with pytest.raises(ValueError, match="parquet"):
        ledger.export(tmp_path / "x.json")
    with pytest.raises(ValueError, match="placeholders"):
        ledger.export(tmp_path / "t.csv", "fills", params=[1])


def test_text_columns_are_string_dtype_with_rows_or_without(ledger):
    empty = ledger.orders()
    ledger.create(intent("nb-s1"))
    full = ledger.orders()
    for frame in (empty, full, ledger.events(), ledger.fills(), ledger.sql("SELECT NULL::VARCHAR AS nothing")):
        text = [c for c in ("client_order_id", "symbol", "parent_client_order_id", "detail", "nothing") if c in frame]
        assert text and all(str(frame[c].dtype) == "string" for c in text), frame.dtypes
    assert list(empty.dtypes) == list(full.dtypes)


# -- the public face for what sits on top (analytics, widgets) -------------------------------------


def test_orders_filters_by_user_statuses_symbol_and_tag_oldest_first(ledger):
    ledger.create(intent("nb-o1", created_at=T0))
    ledger.create(intent("nb-o2", user="bob", symbol="MSFT", created_at=T0 + timedelta(seconds=1)))
    ledger.create(intent("nb-o3", created_at=T0 + timedelta(seconds=2), tags=("symbol:AAPL", "momentum")))
    ledger.upsert_from_alpaca([alpaca("nb-o1", "A-1", "filled", "10", "190.4", at=5)])
    ledger.upsert_from_alpaca([alpaca("nb-o3", "A-3", "new", at=5)])

    assert list(ledger.orders()["client_order_id"]) == ["nb-o1", "nb-o2", "nb-o3"]
    ana = ledger.orders("ana")
    assert list(ana["client_order_id"]) == ["nb-o1", "nb-o3"] and set(ana["user"]) == {"ana"}
    working = ledger.orders(status=["pending", "open"])
    assert list(zip(working["client_order_id"], working["status"], strict=True)) == [
        ("nb-o2", "pending"),
        ("nb-o3", "open"),
    ]
    filled = ledger.orders(status="filled")
    assert list(filled["client_order_id"]) == ["nb-o1"]
    assert filled["filled_qty"].tolist() == [10.0] and filled["filled_avg_price"].tolist() == [190.4]
    assert list(ledger.orders(symbol="MSFT")["client_order_id"]) == ["nb-o2"]
    assert list(ledger.orders(tag="momentum")["client_order_id"]) == ["nb-o3"]
    assert ledger.orders("ana", status="pending").empty
    assert list(ledger.orders(account_id="another")["client_order_id"]) == []


def test_orders_frame_gives_any_stores_orders_the_columns_of_orders(ledger):
    later = intent("nb-m2", symbol="MSFT", created_at=T0 + timedelta(seconds=1))
    first = intent("nb-m1", created_at=T0, account_id=ACCOUNT)
    frame = Ledger.orders_frame([later, first])  # no file read: any order store's orders
    assert sorted(frame.columns) == sorted(ledger.orders().columns)
    assert list(frame["client_order_id"]) == ["nb-m1", "nb-m2"]  # oldest first
    assert list(frame["symbol"]) == ["AAPL", "MSFT"] and list(frame["status"]) == ["pending", "pending"]
    assert frame["qty"].tolist() == [10.0, 10.0] and frame["limit_price"].tolist() == [190.5, 190.5]
    assert Ledger.orders_frame([]).empty and list(Ledger.orders_frame([]).columns) == list(frame.columns)


def test_scope_where_selects_the_rows_of_a_scope(tmp_path):
    everything = Ledger(tmp_path / "s.duckdb")
    paper = everything.scoped(account_id="P", environment="paper")
    local = everything.scoped(account_id="L", environment="local")
    paper.record_fills([activity("t::p1", "2", "10", "2", at=1)], source="sync")
    local.record_fills(
        [activity("t::l1", "3", "11", "3", at=1), activity("t::l2", "4", "12", "7", at=2)], source="sync"
    )

    assert paper.scope_where() == ("account_id = ? AND environment = ?", ["P", "paper"])
    assert everything.scope_where() == ("true", [])
    assert local.scope_where(account_id=None) == ("environment = ?", ["local"])
    assert local.scope_where(account_id="P", environment="paper") == paper.scope_where()

    def shares(scoped: Ledger, **scope: object) -> float:
        where, values = scoped.scope_where(**scope)
        return float(scoped.sql(f"SELECT coalesce(sum(qty), 0) AS q FROM fills WHERE {where}", values)["q"][0])

    assert (shares(paper), shares(local), shares(everything)) == (2.0, 7.0, 9.0)
    assert shares(local, account_id=None, environment=None) == 9.0
    with pytest.raises(InvalidArgumentError):
        local.scope_where(environment="moon")


def test_reading_runs_several_queries_on_one_state_with_frames_as_tables(ledger, tmp_path):
    ledger.record_fills(
        [activity("t::r1", "4", "190.1", "4", at=1), activity("t::r2", "6", "190.2", "10", at=2)], source="sync"
    )
    marks = pd.DataFrame({"symbol": ["AAPL", "MSFT"], "mark": [191.0, 400.0]})
    where, values = ledger.scope_where()
    with ledger.reading() as read:
        count = read.sql(f"SELECT count(*) AS n FROM fills WHERE {where}", values)["n"][0]
        valued = read.sql(
            f"SELECT f.execution_id, f.qty * (m.mark - f.price) AS gain FROM fills f JOIN _marks m USING (symbol) "
            f"WHERE {where} ORDER BY f.filled_at",
            values,
            frames={"_marks": marks},
        )
    assert count == 2
    assert list(valued["execution_id"]) == ["r1", "r2"]
    assert valued["gain"].round(6).tolist() == [3.6, 4.8]
    with pytest.raises(LedgerError, match="over"):
        read.sql("SELECT 1")  # only inside its block
    # the frame was for that query only; Ledger.sql takes frames too
    with pytest.raises(InvalidArgumentError, match="_marks"):
        ledger.sql("SELECT * FROM _marks")
    assert ledger.sql("SELECT sum(mark) AS s FROM _m", frames={"_m": marks})["s"][0] == 591.0
    with pytest.raises(InvalidArgumentError, match="ledger table") as refused:
        ledger.sql("SELECT 1", frames={"fills": marks})  # a frame may not hide a table
    assert refused.value.argument == "frames"
    with pytest.raises(InvalidArgumentError, match="read-only"):
        with ledger.reading() as read:
            read.sql("DELETE FROM fills")
    assert len(ledger.fills()) == 2


def test_no_secret_columns_and_the_file_is_free_between_calls(ledger):
    columns = ledger.sql("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'ledger'")
    assert set(columns["table_name"]) == {
        "managed_orders",
        "order_events",
        "fills",
        "sync_state",
        "schema_version",
        "journal_applied",
        "journal_rejects",
    }
    assert not columns["column_name"].str.contains("api_key|secret|password", case=False).any()
    ledger.create(intent("nb-free"))
    # Between calls nothing holds the file: a plain DuckDB connection opens it read-write.
    con = duckdb.connect(str(ledger.path))
    assert con.execute("SELECT count(*) FROM managed_orders").fetchall() == [(1,)]
    con.close()


def test_threads_share_one_ledger(ledger):
    def place(user: str) -> None:
        for i in range(25):
            order = ledger.create(intent(f"{user}-{i}", user=user))
            order.apply_alpaca(alpaca(order.client_order_id, f"A-{user}-{i}", "new"))
            ledger.update(order, source="stream" if user == "stream" else "submit")

    threads = [threading.Thread(target=place, args=(name,)) for name in ("ana", "bob", "stream")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = ledger.sql(
        'SELECT "user", count(*) AS n, count(alpaca_order_id) AS placed FROM managed_orders GROUP BY ALL ORDER BY 1'
    )
    assert counts.to_dict("list") == {"user": ["ana", "bob", "stream"], "n": [25] * 3, "placed": [25] * 3}
    assert len(ledger.events()) == 150


def test_the_default_path_follows_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPACA_NB_HOME", str(tmp_path / "home"))
    assert Ledger().path == (tmp_path / "home" / "ledger.duckdb").resolve()
    monkeypatch.setenv("ALPACA_NB_LEDGER", str(tmp_path / "elsewhere" / "mine.duckdb"))
    ledger = Ledger()
    assert ledger.path == (tmp_path / "elsewhere" / "mine.duckdb").resolve() and ledger.path.exists()


# -- a ledger that cannot be opened, and two that are created at once ----------------------------


def test_a_file_that_is_not_a_ledger_raises_a_ledger_error_and_the_half_built_ledger_has_a_repr(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(LedgerError, match="cannot be read") as refused:
        Ledger(path, account_id="acct-1", environment="local")
    assert not isinstance(refused.value, duckdb.Error) and str(path) in str(refused.value)
    # A traceback with locals (%xmode Verbose, capture_locals) shows the half-built Ledger.
    shown = traceback.TracebackException.from_exception(refused.value, capture_locals=True)
    frames = [frame.locals for frame in shown.stack if frame.locals and "self" in frame.locals]
    assert any(f"Ledger('{path}', account_id='acct-1'" in f["self"] for f in frames)
    assert not any("repr() failed" in value for f in frames for value in f.values())
    assert repr(Ledger.__new__(Ledger)) == "Ledger(<not opened>)"


# Creates the same new ledger as the parent does, while the parent is half way through building it.
RIVAL = textwrap.dedent("""
    import sys
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import ManagedOrder
    ledger = Ledger(sys.argv[1], account_id="acct-1", environment="local")
    ledger.create(ManagedOrder(client_order_id="rival-1", user="rival", symbol="AAPL", side="buy",
                               type="market", environment="local", qty=1))
    print(len(ledger.list()))
""")


def test_a_new_ledger_appears_whole_even_when_two_processes_create_it_at_once(tmp_path, monkeypatch):
    """Before: a process opening the file while another was creating it could read it half
    written and fail with a raw duckdb.IOException. Now a new file is built under another name
    and linked into place whole: the first to finish wins, the other opens the winner's."""
    from alpaca_nb.ledger import store as ledger_module

    path = tmp_path / "new.duckdb"
    seen = {}

    def build_while_a_rival_creates(con):
        seen["visible while building"] = path.exists()
        rival = subprocess.run(
            [sys.executable, "-c", RIVAL, str(path)], capture_output=True, text=True, timeout=60, env={**os.environ}
        )
        seen["rival"] = (rival.returncode, rival.stdout.strip(), rival.stderr[-1000:])
        return migrate(con)

    monkeypatch.setattr(ledger_module, "migrate", build_while_a_rival_creates)
    ledger = Ledger(path, account_id="acct-1", environment="local")
    assert seen["visible while building"] is False
    assert seen["rival"][:2] == (0, "1"), seen["rival"]
    assert [o.client_order_id for o in ledger.list()] == ["rival-1"]  # the rival's file, kept
    assert ledger.schema_version() == LATEST
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.duckdb")) == []


def test_health_of_a_clean_ledger(ledger):
    ledger.create(intent("nb-h"))
    health = ledger.health()
    assert health.ok and health.set_aside == () and health.failed_batches == ()
    assert health.schema_version == LATEST and health.path == ledger.path and health.journal_backlog == 0
    assert health.frame().empty and "ok" in str(health).splitlines()[-1]


def test_a_number_a_sync_cannot_store_is_reported_never_silently_null(ledger, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="alpaca_nb"):
        ledger.upsert_from_alpaca(
            [alpaca("ext-1", "X1", "new", qty="1e40"), alpaca("ext-2", "X2", "new", qty="1e12")], source="sync"
        )
        added = ledger.record_fills(
            [
                {
                    "id": "20261124::e-1",
                    "order_id": "X1",
                    "symbol": "AAPL",
                    "side": "buy",
                    "qty": "1",
                    "price": "1e35",
                    "transaction_time": T0.isoformat(),
                    "activity_type": "FILL",
                }
            ],
            source="sync",
        )
    assert "ext-1" in caplog.text and "could not be read" in caplog.text and "e-1" in caplog.text
    assert ledger.get("ext-1").status is ManagedOrderStatus.OPEN and ledger.get("ext-1").qty is None
    assert ledger.get("ext-2").qty == Decimal("1e12")  # fits DECIMAL(38,9): stored exactly
    assert added == 0 and "ext-2" not in caplog.text
