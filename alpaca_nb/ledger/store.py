"""The managed-order ledger: every order alpaca_nb places, kept in a DuckDB file.

    ledger = Ledger("~/.alpaca_nb/ledger.duckdb")          # or Ledger() for $ALPACA_NB_LEDGER
    ledger.create(order)                                     # the intent, before the POST
    ledger.update(order)                                     # the broker's answer
    ledger.upsert_from_alpaca(pages, account_id=..., environment="paper")   # a sync
    ledger.record_fills(activities, source="sync", account_id=..., environment="paper")
    ledger.sql("SELECT symbol, count(*) FROM managed_orders GROUP BY ALL")
    where, values = ledger.scope_where()                     # this ledger's scope, for SQL
    with ledger.reading() as read:                           # several queries, one state of the file
        read.sql(f"SELECT ... FROM fills WHERE {where}", values, frames={"_marks": marks})

It implements the service's ``OrderStore`` protocol (``create``, ``update``, ``get``, ``list``)
and what sync and reconcile need. Schema: :mod:`alpaca_nb.ledger.schema`.

**Sharing.** The file is not held between calls: each call attaches it, works in one
transaction and lets go (see :mod:`alpaca_nb.ledger.file`), so two notebooks and a stream thread
can use one ledger. A call waits up to ``busy_timeout`` seconds for a file another process
holds, then raises :class:`~alpaca_nb.errors.LedgerBusyError` naming that process. A write
costs about 15 ms this way; ``Ledger(..., linger=0.5)`` keeps the file between calls until
another alpaca_nb process asks for it (about 5 ms a write).

**The journal.** What lies on the order path (the intent before the POST, the answer after
it, the stream's trade updates) is appended to a journal beside the file instead, in a
fraction of a millisecond (``create(..., new_id=True)``, ``update(..., defer=True)``,
``apply_trade_updates(..., defer=True)``), and moved into DuckDB in batches: by a background
thread, at exit, and at the start of every unit of work here, so every read sees it. See
:mod:`alpaca_nb.ledger.journal`.

**Nothing lost, nothing NULL.** Every row is checked before it is written: a value that does
not fit its column raises :class:`~alpaca_nb.ledger.rows.UnfitValueError` (a direct write) or,
for a journaled record, sets that record aside alone with its reason, to be retried by later
drains, while every other record lands. :meth:`Ledger.health` (``alpaca-nb ledger health``)
reports what is set aside. Errors are all :class:`~alpaca_nb.errors.LedgerError`
(:class:`~alpaca_nb.errors.LedgerBusyError`, :class:`DuplicateOrderError`,
:class:`UnfitValueError`), or :class:`~alpaca_nb.errors.InvalidArgumentError` for a bad
argument (an SQL query DuckDB refuses included); never a raw DuckDB error.

**Scope.** One file holds several accounts and environments; every row carries both. A ledger
opened with ``account_id=`` / ``environment=`` (or narrowed with :meth:`Ledger.scoped`) reads
only that account and environment by default, and writes with them when a call does not say.
Every reading method takes ``account_id=`` / ``environment=``: leave them out for the ledger's
scope, pass a value for another, pass ``None`` for all. :meth:`Ledger.sql` is raw SQL over the
whole file: filter on ``account_id`` / ``environment`` yourself, or with
:meth:`Ledger.scope_where`.

Secrets never go in the ledger: it holds orders, fills and sync cursors, never keys.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ..errors import DuplicateOrderError, InvalidArgumentError, LedgerError, UnfitValueError
from ..models import AlpacaEnvironment, ManagedOrder
from . import ingest, rejects, rows
from .file import LedgerFile
from .ingest import UpsertResult
from .journal import Journal
from .rejects import LedgerHealth, SetAside
from .schema import LATEST, current_version, migrate

log = logging.getLogger("alpaca_nb")

__all__ = [
    "Ledger",
    "LedgerRead",
    "UpsertResult",
    "SCOPE",
    "default_ledger_path",
    "DuplicateOrderError",
    "UnfitValueError",
    "LedgerHealth",
    "SetAside",
]


class _Scope(enum.Enum):
    LEDGER = "the ledger's own scope"


#: The default of every ``account_id=`` / ``environment=`` argument: the ledger's own scope.
SCOPE = _Scope.LEDGER

# Inside Ledger, ``list`` names its method: the types of lists are spelled here.
_Strings = list[str]
_Values = list[Any]

TABLES = ("managed_orders", "order_events", "fills", "sync_state")
# Every table of the file (what a frame handed to LedgerRead.sql may not be named).
_ALL_TABLES = (*TABLES, "schema_version", "journal_applied", "journal_rejects")


def default_ledger_path() -> Path:
    """``ALPACA_NB_LEDGER``, else ``$ALPACA_NB_HOME/ledger.duckdb`` (``~/.alpaca_nb``), read from
    the environment and ``.env`` as :class:`~alpaca_nb.config.Settings` reads them."""
    from ..config import ledger_path, read_environment

    return ledger_path(read_environment())


def _migrate(file: LedgerFile) -> None:
    """Bring the file to the current schema; a current file is only read (no write, no checkpoint).

    A new file is built whole under a temporary name and linked into place, so that another
    process starting at the same moment never attaches it half-written.
    """
    if file.create(migrate):
        log.info("ledger %s: created (schema %d)", file.path, LATEST)
        return
    if file.path.exists():
        with file.open(write=False) as con:
            if current_version(con) == LATEST:
                return
    with file.open(write=True) as con:
        before, after = migrate(con)
    if before != after:
        log.info("ledger %s: schema %d -> %d", file.path, before, after)


class LedgerRead:
    """One read of the ledger file, from :meth:`Ledger.reading`: every query run through it sees
    the same state of the file (no write lands in between). Valid inside the ``with`` block only."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con

    def sql(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        frames: Mapping[str, pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """Run read-only SQL over the whole ledger file and return a DataFrame, as
        :meth:`Ledger.sql` does; ``frames`` are DataFrames the query may read as tables, by
        name (``{"_marks": marks}``: ``... JOIN _marks USING (symbol)``), for this query only.

        A query DuckDB refuses, or a frame name that is not an identifier or is one of the
        ledger's tables, raises :class:`~alpaca_nb.errors.InvalidArgumentError`.
        """
        con = self._con
        if con is None:
            raise LedgerError("this read of the ledger is over: use it inside its `with ledger.reading()` block")
        frames = dict(frames or {})
        for name in frames:
            if not isinstance(name, str) or not name.isidentifier() or name.lower() in _ALL_TABLES:
                raise InvalidArgumentError(
                    f"frames: {name!r} cannot name a frame: give an identifier that is not a ledger table", "frames"
                )
        for name, frame in frames.items():
            con.register(name, frame)
        try:
            return rows.frame(_user_query(con, query, params if params is not None else []))
        finally:
            for name in frames:
                con.unregister(name)


class Ledger:
    """Managed orders, their history and their fills in one DuckDB file.

    ``Ledger(path, account_id=None, environment=None, busy_timeout=10.0, linger=0.0)``:
    ``path`` defaults to :func:`default_ledger_path`; the file and its folder are created and
    migrated to the current schema on first use. ``account_id`` / ``environment`` set the
    default scope (None: all). Raises :class:`~alpaca_nb.errors.LedgerBusyError` when another
    process holds the file for longer than ``busy_timeout`` seconds, and
    :class:`~alpaca_nb.errors.LedgerError` when the file is not a ledger it can read (another
    program's file, a damaged one, one written by a newer alpaca_nb). ``linger`` > 0 keeps the
    file attached that many seconds after a write (see :class:`~alpaca_nb.ledger_file.LedgerFile`):
    a write costs about 4 ms instead of 15, and another alpaca_nb process that wants the file
    still gets it at once.
    """

    file: LedgerFile  # the DuckDB file, taken turns on (see alpaca_nb.ledger.file)

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        account_id: str | None = None,
        environment: AlpacaEnvironment | str | None = None,
        busy_timeout: float = 10.0,
        linger: float = 0.0,
        _file: LedgerFile | None = None,
    ) -> None:
        # Set first, so that a Ledger whose opening failed part way still has a repr (tracebacks
        # with locals show it; before the file is known, repr says "<not opened>").
        if _file is not None:
            self.file = _file
        self.journal: Journal | None = None
        self.account_id = account_id
        self.environment: str | None = None
        self.environment = rows.env_value(environment)  # may raise: the attributes above exist
        if _file is None:
            target = Path(path).expanduser() if path is not None else default_ledger_path()
            target.parent.mkdir(parents=True, exist_ok=True)
            _file = LedgerFile(target, busy_timeout, linger)
            self.file = _file
            _migrate(_file)
        self.file = _file
        self.journal = Journal.for_file(_file)
        if self.journal is not None and not self.file.nested and self.journal.pending():
            self.journal.schedule_drain()  # left by a process that stopped: move it into DuckDB soon

    @property
    def path(self) -> Path:
        return self.file.path

    def __repr__(self) -> str:
        file = getattr(self, "file", None)
        where = repr(str(file.path)) if file is not None else "<not opened>"
        scope = ", ".join(
            f"{k}={v!r}"
            for k, v in (
                ("account_id", getattr(self, "account_id", None)),
                ("environment", getattr(self, "environment", None)),
            )
            if v
        )
        return f"Ledger({where}{', ' + scope if scope else ''})"

    def scoped(
        self, account_id: str | None | _Scope = SCOPE, environment: AlpacaEnvironment | str | None | _Scope = SCOPE
    ) -> Ledger:
        """The same file seen through another default scope (no reopening, no migration)."""
        account, env = self._scope(account_id, environment)
        return Ledger(account_id=account, environment=env, _file=self.file)

    def release(self) -> None:
        """Let go of the file now (only matters with ``linger``: e.g. before opening the file
        with another DuckDB client)."""
        self.file.release()

    def schema_version(self) -> int:
        with self._open(write=False) as con:
            return current_version(con)

    def drain(self) -> bool:
        """Move the write-ahead journal into the DuckDB file now, and retry every record set
        aside (see :meth:`health`); True if the journal held anything.

        Never needed for reading through the ledger (every call drains first); useful before
        opening the file with another DuckDB client. See :mod:`alpaca_nb.ledger.journal`.
        """
        return self.journal.drain(retry_all=True) if self.journal is not None else False

    def health(self) -> LedgerHealth:
        """What the ledger could not take in: journal records set aside (each with its reason,
        retried by later drains), journal files that could not be read, and the journal's
        backlog, with the file's path and schema version. ``health().ok`` is False when
        anything is set aside; ``print(health)`` explains.

        >>> ledger.health().ok
        True

        Drains the journal first, as every read does (retrying the records set aside that are
        due); if that fails (the file is busy), the report still comes, from what the file holds.
        """
        try:
            self._drain_if_pending()
        except LedgerError as err:
            log.warning("ledger health: the journal could not be drained first (%s)", err)
        with self.file.open(write=False) as con:
            version = current_version(con)
            set_aside = rejects.listing(con) if version >= 4 else ()
        journal = self.journal
        return LedgerHealth(
            self.path,
            version,
            set_aside,
            journal.backlog() if journal else 0,
            tuple(journal.unreadable()) if journal else (),
        )

    @contextlib.contextmanager
    def _open(self, *, write: bool, read_only_file: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One unit of work on the file, after whatever the journal holds has been moved in."""
        self._drain_if_pending()
        with self.file.open(write=write, read_only_file=read_only_file) as con:
            yield con

    def _drain_if_pending(self) -> None:
        if self.journal is not None and not self.file.nested and self.journal.pending():
            self.journal.drain()

    # -- scope ------------------------------------------------------------------------------------

    def _scope(self, account_id: Any, environment: Any) -> tuple[str | None, str | None]:
        account = self.account_id if account_id is SCOPE else account_id
        env = self.environment if environment is SCOPE else rows.env_value(environment)
        return account, env

    def _where(self, account_id: Any, environment: Any, prefix: str = "") -> tuple[_Strings, _Values]:
        account, env = self._scope(account_id, environment)
        clauses: _Strings = []
        params: _Values = []
        if account is not None:
            clauses.append(f"{prefix}account_id = ?")
            params.append(account)
        if env is not None:
            clauses.append(f"{prefix}environment = ?")
            params.append(env)
        return clauses, params

    def scope_where(self, account_id: Any = SCOPE, environment: Any = SCOPE) -> tuple[str, list[Any]]:
        """The SQL condition that keeps a scope's rows of any ledger table, and its ``?`` values:
        for :meth:`sql` and :meth:`reading`, which read the whole file. ``account_id`` /
        ``environment`` as in every reading method (left out: the ledger's scope; None: all);
        ``("true", [])`` when the scope is everything.

        >>> where, values = ledger.scope_where()
        >>> ledger.sql(f"SELECT symbol, sum(qty) FROM fills WHERE {where} GROUP BY ALL", values)
        """
        clauses, params = self._where(account_id, environment)
        return " AND ".join(clauses) or "true", params

    def _write_scope(self, account_id: Any, environment: Any) -> tuple[str, str]:
        account, env = self._scope(account_id, environment)
        if account is None or env is None:
            raise InvalidArgumentError(
                "say which account and environment these rows belong to: pass account_id= and "
                "environment=, or open the ledger with them (Ledger(path, account_id=..., environment=...))",
                "account_id" if account is None else "environment",
            )
        return account, env

    # -- the OrderStore protocol ------------------------------------------------------------------

    def create(self, order: ManagedOrder, *, source: str = "submit", new_id: bool = False) -> ManagedOrder:
        """Record a new managed order (the write-ahead intent) and its ``created`` event.

        Fills in ``account_id`` / ``environment`` from the ledger's scope when the order has
        none, and ``created_at`` / ``updated_at``. Raises :class:`DuplicateOrderError` (a
        ``LedgerError`` and a ``ValueError``; ``.client_order_id`` names it) if the
        ``client_order_id`` is already recorded, and :class:`UnfitValueError` (nothing written)
        if a field does not fit its column (``notes=None``, a quantity beyond ``DECIMAL(38,9)``).

        ``new_id=True`` says the ``client_order_id`` was generated for this order, so it cannot
        be on record: the intent is then appended to the journal and on disk in about 0.2 ms
        (instead of a 15 ms DuckDB write) and no duplicate check is made (it is still checked
        for fit). This is how :class:`~alpaca_nb.service.AlpacaService` records what it places.
        """
        ingest.check_source(source)
        if order.account_id is None:
            order.account_id = self.account_id
        now = datetime.now(UTC)
        order.created_at = order.created_at or now
        order.updated_at = now
        if new_id and self.journal is not None:
            self.journal.intent(order, source)
            return order
        change = rows.intent_change(None, order, source)
        assert change is not None  # a new order always changes something (None only for one on record)
        rows.check_order(order)
        with self._open(write=True) as con:
            # Looked up inside the write transaction, under the file lock: nobody can record it meanwhile.
            if con.execute(
                "SELECT count(*) FROM managed_orders WHERE client_order_id = ?", [order.client_order_id]
            ).fetchall()[0][0]:
                raise DuplicateOrderError(
                    f"client_order_id {order.client_order_id!r} is already recorded: "
                    f"ledger.get({order.client_order_id!r}) returns that order",
                    order.client_order_id,
                )
            rows.write_changes(con, [change])
        return order

    def update(self, order: ManagedOrder, *, source: str = "submit", defer: bool = False) -> ManagedOrder:
        """Write ``order``'s current state and, when something changed, one event.

        An answer older than what the ledger holds never wins: once the broker reported a
        further-along status (say ``filled``, from the stream) a later ``open`` for the same
        order keeps the stored status, quantity and price. ``order`` is refreshed from the
        stored row and returned. An order the ledger does not know is recorded.

        ``defer=True`` appends the change to the journal instead (about 0.2 ms, on disk before
        the call returns); it is applied, by the same rules, before any later read of the
        ledger. ``order`` is then returned as given.
        """
        ingest.check_source(source)
        if order.account_id is None:
            order.account_id = self.account_id
        if defer and self.journal is not None:
            self.journal.update(order, source)
            return order
        with self._open(write=True) as con:
            stored = rows.fetch_orders(con, "client_order_id = ?", [order.client_order_id])
            change = rows.update_change(stored[0] if stored else None, order, source)
            if change is not None:
                rows.write_changes(con, [change])
        return order

    def get(self, client_order_id: str, *, account_id: Any = SCOPE, environment: Any = SCOPE) -> ManagedOrder | None:
        """The managed order with this ``client_order_id`` (within scope), or None."""
        clauses, params = self._where(account_id, environment)
        with self._open(write=False) as con:
            found = rows.fetch_orders(con, " AND ".join(["client_order_id = ?", *clauses]), [client_order_id, *params])
        return found[0] if found else None

    def by_alpaca_id(
        self, alpaca_order_id: str, *, account_id: Any = SCOPE, environment: Any = SCOPE
    ) -> ManagedOrder | None:
        """The managed order Alpaca knows as ``alpaca_order_id``, or None."""
        clauses, params = self._where(account_id, environment)
        with self._open(write=False) as con:
            found = rows.fetch_orders(con, " AND ".join(["alpaca_order_id = ?", *clauses]), [alpaca_order_id, *params])
        return found[0] if found else None

    def list(
        self,
        user: str | None = None,
        *,
        status: str | Sequence[str] | None = None,
        symbol: str | None = None,
        tag: str | None = None,
        account_id: Any = SCOPE,
        environment: Any = SCOPE,
    ) -> list[ManagedOrder]:
        """Managed orders, oldest first, filtered by user, managed status (one or several),
        symbol and tag.

        >>> ledger.list(status=["pending", "unresolved"])   # what the next sync must settle
        """
        clauses, params = self._where(account_id, environment)
        clauses, params = rows.filters(clauses, params, user, status, symbol, tag)
        with self._open(write=False) as con:
            return rows.fetch_orders(con, " AND ".join(clauses) or "true", params)

    # -- frames -----------------------------------------------------------------------------------

    def orders(
        self,
        user: str | None = None,
        *,
        status: str | Sequence[str] | None = None,
        symbol: str | None = None,
        tag: str | None = None,
        account_id: Any = SCOPE,
        environment: Any = SCOPE,
    ) -> pd.DataFrame:
        """``managed_orders`` as a DataFrame, oldest first: one row per order, filtered by user,
        managed status (one or several: ``status=("open", "partially_filled")``), symbol and tag,
        as :meth:`list` filters. DECIMAL columns as float64, text as ``string``, times as
        ``datetime64[ns, UTC]``, ``tags`` as lists. What the blotter shows.

        >>> ledger.orders("ana", status=["pending", "open"], symbol="AAPL")
        """
        clauses, params = self._where(account_id, environment)
        clauses, params = rows.filters(clauses, params, user, status, symbol, tag)
        return self._frame(
            f"SELECT * FROM managed_orders WHERE {' AND '.join(clauses) or 'true'} "
            "ORDER BY created_at, client_order_id",
            params,
        )

    def events(
        self, client_order_id: str | None = None, *, account_id: Any = SCOPE, environment: Any = SCOPE
    ) -> pd.DataFrame:
        """The history of one order (or of every order in scope), oldest first.

        Columns: ``id, client_order_id, account_id, environment, event_at, source`` (submit,
        stream, poll, reconcile, sync), ``event`` (created, imported, status, fill, updated),
        ``status``, ``previous_status``, ``alpaca_status``, ``filled_qty``, ``detail`` (JSON text).
        """
        clauses, params = self._where(account_id, environment)
        if client_order_id is not None:
            clauses.insert(0, "client_order_id = ?")
            params.insert(0, client_order_id)
        return self._frame(f"SELECT * FROM order_events WHERE {' AND '.join(clauses) or 'true'} ORDER BY id", params)

    def fills(self, *, symbol: str | None = None, account_id: Any = SCOPE, environment: Any = SCOPE) -> pd.DataFrame:
        """Recorded fills in time order: ``execution_id, seq, account_id, environment,
        alpaca_order_id, client_order_id, symbol, side, qty, price, filled_at, type, cum_qty,
        leaves_qty, source, recorded_at, activity_id``."""
        clauses, params = self._where(account_id, environment)
        if symbol is not None:
            clauses.append("symbol = ?")
            params.append(symbol.upper())
        return self._frame(
            f"SELECT * FROM fills WHERE {' AND '.join(clauses) or 'true'} ORDER BY filled_at, seq", params
        )

    @staticmethod
    def orders_frame(orders: Iterable[ManagedOrder]) -> pd.DataFrame:
        """Orders of any order store (e.g. ``InMemoryOrderStore().list()``) with the columns of
        :meth:`orders` (not read from any file), oldest first (by ``created_at``, then
        ``client_order_id``)."""
        frame = pd.DataFrame([rows.order_row(o) for o in orders], columns=list(rows.ORDER_COLUMNS))
        return frame.sort_values(["created_at", "client_order_id"], kind="stable")

    def _frame(self, query: str, params: _Values | None = None) -> pd.DataFrame:
        with self._open(write=False) as con:
            return rows.frame(con.execute(query, params or []))

    # -- sync -------------------------------------------------------------------------------------

    def upsert_from_alpaca(
        self,
        orders: Iterable[Any],
        *,
        account_id: Any = SCOPE,
        environment: Any = SCOPE,
        source: str = "sync",
        external_user: str = "external",
    ) -> UpsertResult:
        """Merge Alpaca order JSON (a page of ``GET /v2/orders``, ``nested=true`` legs included)
        into the ledger in one transaction.

        Orders the ledger does not know are inserted as ``external`` (placed outside alpaca_nb)
        under ``external_user``; known ones are updated unless the ledger already holds a newer
        state (by Alpaca's ``updated_at`` and the order's progress); every insert and change
        writes one ``order_events`` row with ``source``. A replacement's
        ``parent_client_order_id`` points to the order it ``replaces``; a leg's to its entry.
        10,000 orders take well under a second.
        """
        ingest.check_source(source)
        account, env = self._write_scope(account_id, environment)
        frame = ingest.orders_frame(orders)
        with self._open(write=True) as con:
            return ingest.upsert_orders(
                con, frame, account_id=account, environment=env, source=source, external_user=external_user
            )

    def record_fills(
        self, fills: Iterable[Any], *, source: str, account_id: Any = SCOPE, environment: Any = SCOPE
    ) -> int:
        """Store fills not seen before; returns how many were new.

        ``fills`` are FILL account activities (``id, order_id, symbol, side, qty, price,
        transaction_time, cum_qty, leaves_qty, type``) and/or trade updates (``event`` fill or
        partial_fill, ``execution_id, price, qty, timestamp, order``). One execution reported by
        both is stored once: by ``execution_id``, or by its order and cumulative quantity.
        """
        ingest.check_source(source)
        account, env = self._write_scope(account_id, environment)
        frame = ingest.fills_frame(fills)
        with self._open(write=True) as con:
            return ingest.insert_fills(con, frame, account_id=account, environment=env, source=source)

    def apply_trade_updates(
        self,
        updates: Iterable[Any],
        *,
        account_id: Any = SCOPE,
        environment: Any = SCOPE,
        source: str = "stream",
        defer: bool = False,
    ) -> tuple[UpsertResult, int] | None:
        """Trade updates from the stream in one transaction: their orders through
        :meth:`upsert_from_alpaca`, their fills through :meth:`record_fills`. Returns both results.

        ``defer=True`` journals them (see :meth:`update`) and returns None: how
        :meth:`~alpaca_nb.service.AlpacaService.follow` keeps up with a burst of fills.
        """
        ingest.check_source(source)
        account, env = self._write_scope(account_id, environment)
        updates = [ingest.as_mapping(u) for u in updates]
        if defer and self.journal is not None:
            self.journal.trade_updates(updates, account_id=account, environment=env, source=source)
            return None
        orders = ingest.orders_frame(u["order"] for u in updates if u.get("order"))
        fills = ingest.fills_frame(updates)
        with self._open(write=True) as con:
            result = ingest.upsert_orders(
                con, orders, account_id=account, environment=env, source=source, external_user="external"
            )
            return result, ingest.insert_fills(con, fills, account_id=account, environment=env, source=source)

    def sync_state(self, key: str, *, account_id: Any = SCOPE, environment: Any = SCOPE) -> str | None:
        """The value last stored under ``key`` for this account and environment, or None."""
        account, env = self._write_scope(account_id, environment)
        with self._open(write=False) as con:
            found = con.execute(
                "SELECT value FROM sync_state WHERE account_id = ? AND environment = ? AND key = ?", [account, env, key]
            ).fetchall()
        return found[0][0] if found else None

    def set_sync_state(self, key: str, value: str | None, *, account_id: Any = SCOPE, environment: Any = SCOPE) -> None:
        """Store ``value`` (a string, e.g. an RFC 3339 cursor) under ``key`` for this account."""
        account, env = self._write_scope(account_id, environment)
        with self._open(write=True) as con:
            con.execute("INSERT OR REPLACE INTO sync_state VALUES (?, ?, ?, ?, now())", [account, env, key, value])

    # -- SQL and export ---------------------------------------------------------------------------

    def sql(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        frames: Mapping[str, pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """Run read-only SQL over the whole ledger file and return a DataFrame.

        >>> ledger.sql("SELECT symbol, sum(qty * price) FROM fills WHERE account_id = ? GROUP BY ALL", [acct])

        Tables: ``managed_orders``, ``order_events``, ``fills``, ``sync_state``,
        ``schema_version``, ``journal_rejects``; ``frames`` adds DataFrames as tables for this
        query (see :meth:`LedgerRead.sql`), :meth:`scope_where` gives the condition of a scope.
        Writes are refused (the file is attached read-only). A query DuckDB refuses raises
        :class:`~alpaca_nb.errors.InvalidArgumentError` with DuckDB's reason. Several queries
        that must see one state of the file: :meth:`reading`.
        """
        with self.reading() as read:
            return read.sql(query, params, frames=frames)

    @contextlib.contextmanager
    def reading(self) -> Iterator[LedgerRead]:
        """One read-only unit of work on the file: the queries run through the
        :class:`LedgerRead` it yields all see the same state (the journal drained first, no
        write in between: writers, and other threads of this process, wait until the block ends;
        keep it short).

        >>> with ledger.reading() as read:
        ...     n = read.sql("SELECT count(*) AS n FROM fills")["n"][0]
        ...     last = read.sql("SELECT * FROM fills ORDER BY filled_at DESC LIMIT 1")
        """
        with self._open(write=False, read_only_file=True) as con:
            read = LedgerRead(con)
            try:
                yield read
            finally:
                read._con = None

    def export(
        self,
        path: str | os.PathLike[str],
        what: str = "managed_orders",
        *,
        format: str | None = None,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        account_id: Any = SCOPE,
        environment: Any = SCOPE,
    ) -> Path:
        """Write a table (within scope) or the result of a SELECT to Parquet or CSV.

        ``format`` is ``"parquet"`` or ``"csv"``; by default it follows the file's suffix.
        ``params`` fill the SELECT's ``?`` / ``$name`` placeholders. Returns the path written.
        Raises :class:`~alpaca_nb.errors.InvalidArgumentError` for a SELECT DuckDB refuses or a
        path it cannot write.

        >>> ledger.export("fills.parquet", "fills")
        >>> ledger.export("big.csv", "SELECT * FROM fills WHERE qty > ?", params=[100])
        """
        target = Path(path).expanduser().resolve()
        fmt = (format or target.suffix.lstrip(".")).lower()
        if fmt not in ("parquet", "csv"):
            raise InvalidArgumentError(f"format={fmt!r}: use 'parquet' or 'csv' (or a .parquet / .csv path)", "format")
        if what in TABLES:
            if params is not None:
                raise InvalidArgumentError(
                    "params= fill a SELECT's placeholders; a table is exported as it is", "params"
                )
            clauses, params = self._where(account_id, environment)
            query = f"SELECT * FROM {what} WHERE {' AND '.join(clauses) or 'true'}"
        else:
            query, params = what, params if params is not None else []
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._open(write=False, read_only_file=True) as con:
            try:
                _user_query(
                    con,
                    f"COPY ({query}) TO '{str(target).replace(chr(39), chr(39) * 2)}' ({options})",
                    params,
                    argument="what",
                )
            except duckdb.IOException as err:
                raise InvalidArgumentError(f"could not write {target}: {' '.join(str(err).split())}", "path") from None
        return target


# DuckDB errors that say the query itself is wrong (the caller's to fix), not the file.
_QUERY_ERRORS = tuple(
    getattr(duckdb, name)
    for name in (
        "ParserException",
        "BinderException",
        "CatalogException",
        "PermissionException",
        "ConversionException",
        "InvalidInputException",
        "NotImplementedException",
        "OutOfRangeException",
        "TypeMismatchException",
        "ConstraintException",
        "SyntaxException",
        "DataError",
        "ProgrammingError",
    )
    if hasattr(duckdb, name)
)


def _user_query(
    con: duckdb.DuckDBPyConnection,
    query: str,
    params: Sequence[Any] | Mapping[str, Any],
    argument: str = "query",
) -> duckdb.DuckDBPyConnection:
    """Run SQL the caller wrote; DuckDB refusing it is an InvalidArgumentError with DuckDB's reason."""
    try:
        return con.execute(query, params)
    except _QUERY_ERRORS as err:
        raise InvalidArgumentError(f"the ledger refused this SQL: {' '.join(str(err).split())}", argument) from None
