"""The ledger's schema and the migrations that build it.

``schema_version`` holds one row per migration applied. Opening a ledger applies, in order and
in one transaction, every migration the file has not had yet; a file written by a newer
alpaca_nb (a version this code does not know) is refused rather than misread.

Tables (every row carries ``account_id`` and ``environment``, so one file holds several
accounts and environments side by side; money and quantities are ``DECIMAL(38,9)`` (:data:`MONEY`:
29 digits before the point, 9 after; version 4 widened them from ``DECIMAL(18,9)``); times are
``TIMESTAMPTZ`` in UTC):

``managed_orders``  one row per order, unique ``client_order_id``: who placed it (``user``),
                    what was asked (symbol, side, type, time_in_force, order_class, qty,
                    notional, limit_price, stop_price), what Alpaca says (alpaca_order_id,
                    alpaca_status, filled_qty, filled_avg_price, Alpaca's own timestamps), the
                    managed ``status``, ``parent_client_order_id`` (bracket legs point to their
                    entry, a replacement to the order it replaced), ``tags`` (VARCHAR[]),
                    ``notes``, ``external`` (placed outside alpaca_nb, imported by a sync).
``order_events``    append-only history: one row per change of an order, with the ``source``
                    that saw it (submit, stream, poll, reconcile, sync), the status before and
                    after, and a JSON ``detail`` of the fields that changed.
``fills``           one row per execution, unique ``execution_id``: order ids, symbol, side,
                    qty, price, ``filled_at``, the order's ``cum_qty`` / ``leaves_qty`` after it,
                    and the ``source`` it first came from. ``seq`` orders fills that share a time.
``sync_state``      small key/value memory per account and environment (e.g. the last sync
                    cursor).
``journal_applied`` bookkeeping of the write-ahead journal (:mod:`alpaca_nb.ledger.journal`):
                    the batches last applied, until the next drain sees their files gone.
``journal_rejects`` journal records that could not be applied, each set aside alone with its
                    reason and retried by later drains (:mod:`alpaca_nb.ledger.rejects`).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from ..errors import LedgerError

#: Money and quantities: 29 digits before the point and 9 after.
MONEY = "DECIMAL(38,9)"
#: The largest magnitude a :data:`MONEY` column holds (anything below 10**29 once rounded to 9 places).
MONEY_LIMIT = 10**29 - 1
_MONEY_V1 = "DECIMAL(18,9)"  # what versions 1-3 stored: below 10**9, too small for some orders


def _v1_core(con: duckdb.DuckDBPyConnection) -> None:
    """The seed's three tables."""
    con.execute(f"""
        CREATE TABLE managed_orders (
            client_order_id VARCHAR PRIMARY KEY,
            "user" VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            account_id VARCHAR,
            alpaca_order_id VARCHAR,
            symbol VARCHAR NOT NULL,
            side VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            time_in_force VARCHAR,
            order_class VARCHAR,
            parent_client_order_id VARCHAR,
            qty {_MONEY_V1},
            notional {_MONEY_V1},
            limit_price {_MONEY_V1},
            stop_price {_MONEY_V1},
            filled_qty {_MONEY_V1} NOT NULL DEFAULT 0,
            filled_avg_price {_MONEY_V1},
            status VARCHAR NOT NULL,
            alpaca_status VARCHAR,
            tags VARCHAR[] NOT NULL DEFAULT [],
            notes VARCHAR NOT NULL DEFAULT '',
            external BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )""")
    con.execute(f"""
        CREATE TABLE order_events (
            id BIGINT NOT NULL,  -- assigned in order under the file lock; no index to maintain
            client_order_id VARCHAR NOT NULL,
            account_id VARCHAR,
            environment VARCHAR NOT NULL,
            event_at TIMESTAMPTZ NOT NULL,
            source VARCHAR NOT NULL,
            event VARCHAR NOT NULL,
            status VARCHAR,
            previous_status VARCHAR,
            alpaca_status VARCHAR,
            filled_qty {_MONEY_V1},
            detail JSON
        )""")
    con.execute(f"""
        CREATE TABLE fills (
            execution_id VARCHAR PRIMARY KEY,
            seq BIGINT NOT NULL,
            account_id VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            alpaca_order_id VARCHAR,
            client_order_id VARCHAR,
            symbol VARCHAR NOT NULL,
            side VARCHAR NOT NULL,
            qty {_MONEY_V1} NOT NULL,
            price {_MONEY_V1} NOT NULL,
            filled_at TIMESTAMPTZ NOT NULL,
            type VARCHAR,
            cum_qty {_MONEY_V1},
            leaves_qty {_MONEY_V1},
            source VARCHAR NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL
        )""")


def _v2_sync(con: duckdb.DuckDBPyConnection) -> None:
    """What sync and reconcile need: Alpaca's own order timestamps (so an older answer never
    overwrites a newer one), the activity id of a fill (the activities' paging token), and a
    place for sync cursors."""
    for column in ("alpaca_updated_at", "submitted_at", "filled_at"):
        con.execute(f"ALTER TABLE managed_orders ADD COLUMN {column} TIMESTAMPTZ")
    con.execute("ALTER TABLE fills ADD COLUMN activity_id VARCHAR")
    con.execute("""
        CREATE TABLE sync_state (
            account_id VARCHAR NOT NULL,
            environment VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value VARCHAR,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (account_id, environment, key)
        )""")


def _v3_journal(con: duckdb.DuckDBPyConnection) -> None:
    """The journal batches applied but not yet deleted (see :mod:`alpaca_nb.ledger.journal`)."""
    con.execute(
        "CREATE TABLE journal_applied (name VARCHAR NOT NULL, records INTEGER NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )


_MONEY_COLUMNS = {
    "managed_orders": ("qty", "notional", "limit_price", "stop_price", "filled_qty", "filled_avg_price"),
    "order_events": ("filled_qty",),
    "fills": ("qty", "price", "cum_qty", "leaves_qty"),
}


def _v4_isolation(con: duckdb.DuckDBPyConnection) -> None:
    """Record-level isolation. ``DECIMAL(18,9)`` stops below 10**9, which a crypto quantity (or
    an order validation let through) can reach: an intent holding one made its whole journal
    batch fail, and a sync's ``TRY_CAST`` stored NULL. Money columns widen to :data:`MONEY`, and
    ``journal_rejects`` keeps a record that still cannot be applied, alone, with its reason."""
    for table, columns in _MONEY_COLUMNS.items():
        for column in columns:
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {MONEY}")
    con.execute("""
        CREATE TABLE journal_rejects (
            id VARCHAR PRIMARY KEY,          -- '<batch file>:<line>' where the record was first met
            kind VARCHAR,                    -- intent, update, trade_updates (or what the record says)
            client_order_id VARCHAR,         -- the order it concerns, when it names one
            record VARCHAR NOT NULL,         -- the journal line itself (JSON text), to apply on retry
            error VARCHAR NOT NULL,          -- why the last attempt failed
            attempts INTEGER NOT NULL,
            first_failed_at TIMESTAMPTZ NOT NULL,
            last_failed_at TIMESTAMPTZ NOT NULL,
            retry_after TIMESTAMPTZ NOT NULL  -- drains before then leave it alone
        )""")


#: Every migration, in order: ``MIGRATIONS[n - 1]`` brings a file from version n-1 to n.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1_core, _v2_sync, _v3_journal, _v4_isolation]
LATEST = len(MIGRATIONS)


class SchemaTooNewError(LedgerError, RuntimeError):
    """The file was written by a newer alpaca_nb than this one."""


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version: 0 for an empty file."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name = 'schema_version'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    version: int = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    return version


def migrate(con: duckdb.DuckDBPyConnection, target: int = LATEST) -> tuple[int, int]:
    """Apply the missing migrations up to ``target`` inside the caller's transaction.

    Returns ``(version before, version after)``. Raises :class:`SchemaTooNewError` when the file
    is newer than this code.
    """
    before = current_version(con)
    if before > LATEST:
        raise SchemaTooNewError(
            f"this ledger has schema version {before} but this alpaca_nb knows only up to {LATEST}: "
            "upgrade alpaca_nb to open it"
        )
    if before == 0:
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    for version in range(before + 1, target + 1):
        MIGRATIONS[version - 1](con)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [version])
    return before, max(before, target)
