"""Bulk writes into the ledger: Alpaca's orders and fills, thousands at a time.

A sync hands over raw Alpaca JSON by the page. Row-at-a-time inserts cost milliseconds each
(10,000 single-row ``executemany`` calls take seconds), so the JSON is turned into one column-wise
DataFrame, registered with DuckDB, and merged with set-based SQL: the whole batch is one
``INSERT ... SELECT`` / ``UPDATE ... FROM`` per table, inside the caller's transaction.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from ..errors import InvalidArgumentError
from ..models import managed_status
from .schema import MONEY

log = logging.getLogger("alpaca_nb")

SOURCES = ("submit", "stream", "poll", "reconcile", "sync")

# Progress of an order: a status of lower rank never overwrites one of higher rank that came
# from the broker (a late POST answer "new" must not undo a "filled" the stream already saw).
STATUS_RANK = {
    "pending": 0,
    "unresolved": 0,
    "open": 1,
    "partially_filled": 2,
    "filled": 3,
    "canceled": 3,
    "expired": 3,
    "replaced": 3,
    "rejected": 3,
}
_RANK_SQL = "CASE {col} " + " ".join(f"WHEN '{s}' THEN {r}" for s, r in STATUS_RANK.items()) + " END"

_ORDER_FIELDS = (
    "client_order_id",
    "id",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "order_class",
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "filled_qty",
    "filled_avg_price",
    "status",
    "created_at",
    "updated_at",
    "submitted_at",
    "filled_at",
    "replaces",
)


@dataclass(frozen=True)
class UpsertResult:
    """What :meth:`Ledger.upsert_from_alpaca` did: rows ``inserted`` (orders new to the ledger,
    marked external), ``updated``, ``unchanged``, the newest Alpaca ``updated_at`` seen (a sync
    cursor), and ``skipped``: orders whose client_order_id the ledger holds for another account
    or environment."""

    inserted: int
    updated: int
    unchanged: int
    latest_updated_at: datetime | None
    skipped: int = 0


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """``con.execute`` with the named parameters ``sql`` uses (DuckDB refuses extra ones)."""
    return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})


_MONEY_FIELDS = ("qty", "notional", "limit_price", "stop_price", "filled_qty", "filled_avg_price")


def _unreadable(columns: Iterable[str]) -> str:
    """SQL: does a row hold a number that cannot be stored (not a number, or beyond DECIMAL(38,9))?"""
    return "(" + " OR ".join(f"({c} IS NOT NULL AND TRY_CAST({c} AS {MONEY}) IS NULL)" for c in columns) + ")"


def _warn_unreadable(con: duckdb.DuckDBPyConnection, table: str, key: str, count: int, what: str) -> None:
    """Say which rows had a number that cannot be stored: the row is still merged, with that
    one value NULL (or, for a fill without qty or price, skipped), but never silently."""
    found = con.execute(f"SELECT {key} FROM {table} WHERE unreadable LIMIT 10").fetchall()
    log.warning(
        "%d %s(s) (%s%s) had a number that could not be read (not a number, or beyond DECIMAL(38,9)): "
        "stored without it",
        count,
        what,
        ", ".join(str(k) for (k,) in found),
        ", ..." if count > 10 else "",
    )


def check_source(source: Any) -> str:
    if source not in SOURCES:
        raise InvalidArgumentError(f"source={source!r} is not one of {', '.join(SOURCES)}", "source")
    checked: str = source  # one of SOURCES
    return checked


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    return str(value)


def as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    if hasattr(item, "model_dump"):  # an alpaca-py model
        dumped: Mapping[str, Any] = item.model_dump()
        return dumped
    raise InvalidArgumentError(
        f"expected Alpaca JSON (a dict or an alpaca-py model), got {type(item).__name__}", "orders"
    )


def orders_frame(orders: Iterable[Any]) -> pd.DataFrame:
    """Alpaca order JSON (``nested=true`` legs included) as one row per order, all strings.

    Legs are flattened; each leg's ``parent_client_order_id`` is its entry's client_order_id.
    """
    flat: list[Mapping[str, Any]] = []
    parents: list[str | None] = []
    stack: list[tuple[Mapping[str, Any], str | None]] = [(as_mapping(o), None) for o in orders]
    while stack:
        order, parent = stack.pop()
        flat.append(order)
        parents.append(parent)
        for leg in order.get("legs") or ():
            stack.append((as_mapping(leg), _plain(order.get("client_order_id"))))
    columns = {name: [_plain(o.get(name)) for o in flat] for name in _ORDER_FIELDS}
    # Alpaca sends both "type" and "order_type"; older payloads only the latter.
    columns["type"] = [
        t if t is not None else _plain(o.get("order_type")) for t, o in zip(columns["type"], flat, strict=False)
    ]
    columns["parent_client_order_id"] = parents
    frame = pd.DataFrame(columns, dtype=object)
    frame["managed_status"] = frame["status"].map(_managed_or_none)
    return frame


def _managed_or_none(status: str | None) -> str | None:
    if status is None:
        return None
    try:
        return managed_status(status).value
    except ValueError:
        log.warning("unknown Alpaca order status %r: the ledger keeps the order's previous status", status)
        return None


def upsert_orders(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    account_id: str,
    environment: str,
    source: str,
    external_user: str,
    at: datetime | None = None,
) -> UpsertResult:
    """Merge ``frame`` (from :func:`orders_frame`) into ``managed_orders`` with one event per
    change, using set-based SQL in the caller's transaction. ``at``: when the changes were seen
    (a journaled trade update is applied later), default now."""
    if frame.empty:
        return UpsertResult(0, 0, 0, None, 0)
    con.register("_orders_df", frame)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _incoming AS
            WITH raw AS (
                SELECT client_order_id, id AS alpaca_order_id, upper(symbol) AS symbol, side, type,
                       time_in_force, coalesce(nullif(order_class, ''), 'simple') AS order_class,
                       TRY_CAST(qty AS {MONEY}) AS qty, TRY_CAST(notional AS {MONEY}) AS notional,
                       TRY_CAST(limit_price AS {MONEY}) AS limit_price,
                       TRY_CAST(stop_price AS {MONEY}) AS stop_price,
                       coalesce(TRY_CAST(filled_qty AS {MONEY}), 0) AS filled_qty,
                       TRY_CAST(filled_avg_price AS {MONEY}) AS filled_avg_price,
                       status AS alpaca_status, managed_status AS status,
                       TRY_CAST(created_at AS TIMESTAMPTZ) AS alpaca_created_at,
                       TRY_CAST(updated_at AS TIMESTAMPTZ) AS alpaca_updated_at,
                       TRY_CAST(submitted_at AS TIMESTAMPTZ) AS submitted_at,
                       TRY_CAST(filled_at AS TIMESTAMPTZ) AS filled_at,
                       replaces, parent_client_order_id, {_unreadable(_MONEY_FIELDS)} AS unreadable
                FROM _orders_df WHERE client_order_id IS NOT NULL
                -- a page boundary may repeat an order: keep its newest state
                QUALIFY row_number() OVER (PARTITION BY client_order_id
                                           ORDER BY alpaca_updated_at DESC NULLS LAST) = 1),
            known AS (  -- Alpaca ids of everything a replacement may point to
                SELECT alpaca_order_id, client_order_id FROM raw
                UNION ALL
                SELECT alpaca_order_id, client_order_id FROM managed_orders
                WHERE alpaca_order_id IN (SELECT replaces FROM raw WHERE replaces IS NOT NULL))
            SELECT raw.* REPLACE (coalesce(raw.parent_client_order_id, k.client_order_id)
                                  AS parent_client_order_id)
            FROM raw LEFT JOIN (SELECT DISTINCT ON (alpaca_order_id) * FROM known) k
                 ON k.alpaca_order_id = raw.replaces""")
    finally:
        con.unregister("_orders_df")
    old_rank, new_rank = _RANK_SQL.format(col="m.status"), _RANK_SQL.format(col="i.status")
    # client_order_id is unique in the whole file; one already recorded for another account
    # or environment is left alone (and reported) rather than overwritten.
    skipped = _execute(
        con,
        """
        DELETE FROM _incoming WHERE client_order_id IN (
            SELECT client_order_id FROM managed_orders
            WHERE environment <> $env OR (account_id IS NOT NULL AND account_id <> $account))""",
        {"account": account_id, "env": environment},
    ).fetchall()[0][0]
    if skipped:
        log.warning(
            "%d order(s) skipped: their client_order_id is recorded for another account or environment in this ledger",
            skipped,
        )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _changes AS
        SELECT i.*, m.client_order_id IS NULL AS is_new, m.status AS old_status,
               m.alpaca_status AS old_alpaca_status, m.filled_qty AS old_filled_qty,
               m.filled_avg_price AS old_filled_avg_price, m.alpaca_order_id AS old_alpaca_order_id
        FROM _incoming i LEFT JOIN managed_orders m USING (client_order_id)
        WHERE m.client_order_id IS NULL OR (
            -- never attach another order to a row: a client_order_id refused as a duplicate
            -- names the broker's other order, which is not this row's (reconcile reports it)
            NOT (m.alpaca_order_id IS NOT NULL AND i.alpaca_order_id IS DISTINCT FROM m.alpaca_order_id)
            AND NOT (m.alpaca_order_id IS NULL AND (
                upper(m.symbol) <> i.symbol OR m.side <> i.side OR m.type <> i.type
                OR m.qty <> i.qty OR m.notional <> i.notional OR m.limit_price <> i.limit_price
                OR (m.stop_price <> i.stop_price AND m.type <> 'trailing_stop')) IS TRUE)
            -- never let an older answer overwrite a newer one
            AND (m.alpaca_updated_at IS NULL OR i.alpaca_updated_at IS NULL
             OR i.alpaca_updated_at >= m.alpaca_updated_at)
            AND NOT (m.alpaca_status IS NOT NULL AND i.status IS NOT NULL AND {new_rank} < {old_rank})
            AND (coalesce(i.status, m.status) IS DISTINCT FROM m.status
                 OR i.alpaca_status IS DISTINCT FROM m.alpaca_status
                 OR i.filled_qty IS DISTINCT FROM m.filled_qty
                 OR i.filled_avg_price IS DISTINCT FROM m.filled_avg_price
                 OR i.alpaca_order_id IS DISTINCT FROM m.alpaca_order_id
                 OR (m.parent_client_order_id IS NULL AND i.parent_client_order_id IS NOT NULL)))""")
    changed, inserted = con.execute("SELECT count(*), count(*) FILTER (WHERE is_new) FROM _changes").fetchall()[0]
    total, latest, unreadable = con.execute(
        "SELECT count(*), max(alpaca_updated_at), count(*) FILTER (unreadable) FROM _incoming"
    ).fetchall()[0]
    if unreadable:
        _warn_unreadable(con, "_incoming", "client_order_id", unreadable, "order")
    if changed:
        _write_order_changes(
            con, account_id=account_id, environment=environment, source=source, external_user=external_user, at=at
        )
    con.execute("DROP TABLE temp._changes")
    con.execute("DROP TABLE temp._incoming")
    return UpsertResult(inserted, changed - inserted, total - changed, latest, skipped)


def _write_order_changes(
    con: duckdb.DuckDBPyConnection,
    *,
    account_id: str,
    environment: str,
    source: str,
    external_user: str,
    at: datetime | None,
) -> None:
    params = {"account": account_id, "env": environment, "source": source, "user": external_user, "at": at}
    _execute(
        con,
        """
        INSERT INTO order_events
        SELECT (SELECT coalesce(max(id), 0) FROM order_events)
                   + row_number() OVER (ORDER BY alpaca_updated_at, client_order_id),
               client_order_id, $account, $env, coalesce($at::TIMESTAMPTZ, now()), $source,
               CASE WHEN is_new THEN 'imported'
                    WHEN coalesce(status, old_status) IS DISTINCT FROM old_status THEN 'status'
                    WHEN filled_qty IS DISTINCT FROM old_filled_qty THEN 'fill'
                    ELSE 'updated' END,
               coalesce(status, old_status, 'open'), old_status, alpaca_status, filled_qty,
               json_object('alpaca_order_id', alpaca_order_id, 'alpaca_status', alpaca_status,
                           'previous_alpaca_status', old_alpaca_status,
                           'filled_qty', filled_qty::VARCHAR,
                           'previous_filled_qty', old_filled_qty::VARCHAR,
                           'filled_avg_price', filled_avg_price::VARCHAR,
                           'alpaca_updated_at', alpaca_updated_at::VARCHAR)
        FROM _changes""",
        params,
    )
    _execute(
        con,
        """
        INSERT INTO managed_orders (client_order_id, "user", environment, account_id, alpaca_order_id,
            symbol, side, type, time_in_force, order_class, parent_client_order_id, qty, notional,
            limit_price, stop_price, filled_qty, filled_avg_price, status, alpaca_status, tags, notes,
            external, created_at, updated_at, alpaca_updated_at, submitted_at, filled_at)
        SELECT c.client_order_id, coalesce(p."user", $user), $env, $account, c.alpaca_order_id,
               c.symbol, c.side, c.type, c.time_in_force, c.order_class, c.parent_client_order_id,
               c.qty, c.notional, c.limit_price, c.stop_price, c.filled_qty, c.filled_avg_price,
               coalesce(c.status, 'open'), c.alpaca_status,
               -- A leg or replacement of a known order belongs to that order's user and tags.
               ['symbol:' || c.symbol, 'side:' || c.side, 'type:' || c.type]
                 || CASE WHEN p.client_order_id IS NULL THEN ['external']
                         ELSE list_filter(p.tags, lambda t: NOT (t LIKE 'symbol:%' OR t LIKE 'side:%'
                                                                  OR t LIKE 'type:%')) END,
               'alpaca_order_id=' || c.alpaca_order_id, coalesce(p.external, true),
               coalesce(c.alpaca_created_at, now()), coalesce($at::TIMESTAMPTZ, now()), c.alpaca_updated_at,
               c.submitted_at,
               c.filled_at
        FROM _changes AS c LEFT JOIN managed_orders AS p ON p.client_order_id = c.parent_client_order_id
        WHERE c.is_new""",
        params,
    )
    _execute(
        con,
        """
        UPDATE managed_orders AS m SET
            status = coalesce(c.status, m.status), alpaca_status = c.alpaca_status,
            alpaca_order_id = coalesce(c.alpaca_order_id, m.alpaca_order_id),
            filled_qty = c.filled_qty, filled_avg_price = c.filled_avg_price,
            parent_client_order_id = coalesce(m.parent_client_order_id, c.parent_client_order_id),
            notes = CASE WHEN c.alpaca_order_id IS NULL OR contains(m.notes, 'alpaca_order_id=')
                         THEN m.notes
                         WHEN m.notes = '' THEN 'alpaca_order_id=' || c.alpaca_order_id
                         ELSE m.notes || '; alpaca_order_id=' || c.alpaca_order_id END,
            alpaca_updated_at = coalesce(c.alpaca_updated_at, m.alpaca_updated_at),
            submitted_at = coalesce(c.submitted_at, m.submitted_at),
            filled_at = coalesce(c.filled_at, m.filled_at), updated_at = coalesce($at::TIMESTAMPTZ, now())
        FROM _changes AS c
        WHERE m.client_order_id = c.client_order_id AND NOT c.is_new""",
        {"at": at},
    )
    # Fills that arrived before their order was known get its client_order_id now.
    con.execute("""
        UPDATE fills SET client_order_id = c.client_order_id FROM _changes AS c
        WHERE fills.client_order_id IS NULL AND fills.alpaca_order_id = c.alpaca_order_id""")


# -- fills ---------------------------------------------------------------------------------------

_FILL_COLUMNS = (
    "execution_id",
    "activity_id",
    "alpaca_order_id",
    "client_order_id",
    "symbol",
    "side",
    "qty",
    "price",
    "filled_at",
    "type",
    "cum_qty",
    "leaves_qty",
    "order_qty",
)


def _fill_row(item: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """One fill from a trade update, a FILL activity or a ledger-shaped dict (None: not a fill)."""
    if "order" in item and "event" in item:  # a trade update from the stream
        if item.get("event") not in ("fill", "partial_fill") or item.get("execution_id") is None:
            return None
        order = as_mapping(item["order"])
        return (
            item["execution_id"],
            None,
            order.get("id"),
            order.get("client_order_id"),
            order.get("symbol"),
            order.get("side"),
            item.get("qty"),
            item.get("price"),
            item.get("timestamp"),
            item.get("event"),
            order.get("filled_qty"),
            None,
            order.get("qty"),
        )
    if "transaction_time" in item:  # an account activity (FILL)
        if item.get("activity_type", "FILL") != "FILL":
            return None
        activity_id = item.get("id")
        # Activity ids are "<time>::<uuid>"; the uuid names the execution.
        execution_id = str(activity_id).split("::")[-1] if activity_id is not None else None
        return (
            execution_id,
            activity_id,
            item.get("order_id"),
            None,
            item.get("symbol"),
            item.get("side"),
            item.get("qty"),
            item.get("price"),
            item.get("transaction_time"),
            item.get("type"),
            item.get("cum_qty"),
            item.get("leaves_qty"),
            None,
        )
    return tuple(item.get(name) for name in _FILL_COLUMNS[:-1]) + (None,)


def fills_frame(fills: Iterable[Any]) -> pd.DataFrame:
    """Trade updates and FILL activities as one row per execution, all strings."""
    rows = [row for row in (_fill_row(as_mapping(f)) for f in fills) if row is not None]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=False)) if rows else [[] for _ in _FILL_COLUMNS]
    return pd.DataFrame(
        {name: [_plain(v) for v in values] for name, values in zip(_FILL_COLUMNS, columns, strict=False)}, dtype=object
    )


def insert_fills(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    account_id: str,
    environment: str,
    source: str,
    at: datetime | None = None,
) -> int:
    """Add the fills of ``frame`` not yet recorded; returns how many were new (``at``: when
    they were seen, their ``recorded_at``; default now).

    A fill is already recorded when its ``execution_id`` is, or when the same order already has
    a fill with the same ``cum_qty`` (the order's filled quantity after the execution): the
    stream and the activities describe one execution by different ids on some brokers, and the
    cumulative quantity identifies it either way.
    """
    if frame.empty:
        return 0
    con.register("_fills_df", frame)
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _new_fills AS
            SELECT execution_id, activity_id, alpaca_order_id, client_order_id, upper(symbol) AS symbol,
                   lower(side) AS side, TRY_CAST(qty AS {MONEY}) AS qty, TRY_CAST(price AS {MONEY}) AS price,
                   TRY_CAST(filled_at AS TIMESTAMPTZ) AS filled_at, type,
                   TRY_CAST(cum_qty AS {MONEY}) AS cum_qty,
                   coalesce(TRY_CAST(leaves_qty AS {MONEY}),
                            TRY_CAST(order_qty AS {MONEY}) - TRY_CAST(cum_qty AS {MONEY})) AS leaves_qty,
                   {_unreadable(("qty", "price", "cum_qty", "leaves_qty"))} AS unreadable
            FROM _fills_df
            WHERE execution_id IS NOT NULL""")
    finally:
        con.unregister("_fills_df")
    bad, unreadable = con.execute(
        "SELECT count(*) FILTER (qty IS NULL OR price IS NULL OR filled_at IS NULL OR symbol IS NULL "
        "OR side NOT IN ('buy', 'sell')), count(*) FILTER (unreadable) FROM _new_fills"
    ).fetchall()[0]
    if unreadable:
        _warn_unreadable(con, "_new_fills", "execution_id", unreadable, "fill")
    if bad:
        log.warning("%d fill(s) without qty, price, time, symbol or side were skipped", bad)
    params = {"account": account_id, "env": environment, "source": source, "at": at}
    # An activity seen after the stream's copy of the same fill still lends its id (a paging token).
    _execute(
        con,
        """
        UPDATE fills SET activity_id = n.activity_id FROM _new_fills AS n
        WHERE fills.activity_id IS NULL AND n.activity_id IS NOT NULL
          AND fills.account_id = $account AND fills.environment = $env
          AND (fills.execution_id = n.execution_id
               OR (fills.alpaca_order_id = n.alpaca_order_id AND fills.cum_qty = n.cum_qty))""",
        params,
    )
    inserted: int = _execute(
        con,
        """
        INSERT INTO fills (execution_id, seq, account_id, environment, alpaca_order_id, client_order_id,
                           symbol, side, qty, price, filled_at, type, cum_qty, leaves_qty, source,
                           recorded_at, activity_id)
        SELECT n.execution_id,
               (SELECT coalesce(max(seq), 0) FROM fills) + row_number() OVER (ORDER BY n.filled_at, n.execution_id),
               $account, $env, n.alpaca_order_id, coalesce(n.client_order_id, m.client_order_id),
               n.symbol, n.side, n.qty, n.price, n.filled_at, n.type, n.cum_qty, n.leaves_qty, $source,
               coalesce($at::TIMESTAMPTZ, now()), n.activity_id
        FROM _new_fills AS n
        LEFT JOIN managed_orders AS m ON m.alpaca_order_id = n.alpaca_order_id AND n.client_order_id IS NULL
                                     AND m.environment = $env
        WHERE n.qty IS NOT NULL AND n.price IS NOT NULL AND n.filled_at IS NOT NULL
          AND n.symbol IS NOT NULL AND n.side IN ('buy', 'sell')
          AND NOT EXISTS (SELECT 1 FROM fills AS f WHERE f.execution_id = n.execution_id)
          AND NOT EXISTS (SELECT 1 FROM fills AS f
                          WHERE n.cum_qty IS NOT NULL AND f.alpaca_order_id = n.alpaca_order_id
                            AND f.cum_qty = n.cum_qty AND f.account_id = $account AND f.environment = $env)
        -- the same execution twice in one batch (by either key) goes in once
        QUALIFY row_number() OVER (PARTITION BY n.execution_id ORDER BY n.activity_id NULLS LAST) = 1
            AND (n.cum_qty IS NULL OR row_number() OVER (
                PARTITION BY n.alpaca_order_id, n.cum_qty ORDER BY n.execution_id) = 1)""",
        params,
    ).fetchall()[0][0]
    con.execute("DROP TABLE temp._new_fills")
    return inserted
