"""Journal records that could not be applied: set aside one at a time, with their reason, and retried.

A journal batch holds every process's records from a fraction of a second: intents, answers and
the stream's trade updates of many orders. One record in it that cannot be applied (a value
that does not fit its column, a field missing from a hand-edited line, an intent naming another
order's ``client_order_id``, a statement DuckDB refuses) must cost no other record anything. The
drainer (:mod:`alpaca_nb.ledger.journal`) therefore sets such a record aside *alone*, in the
``journal_rejects`` table, in the same transaction that applies the rest of its batch:

    id               where the record was first met: ``<batch file>:<line>`` (``/<n>`` for the
                     n-th trade update of a record split up because only that update was unfit)
    kind, client_order_id
    record           the journal line itself (JSON text), applied again on every retry
    error            why the last attempt failed
    attempts, first_failed_at, last_failed_at, retry_after

Later drains retry it, oldest first and before newer records, once ``retry_after`` has passed
(1 s after the first failure, doubling to at most :data:`RETRY_MAX`); ``ledger.drain()``
retries every one at once. A record that applies on a retry leaves the table (and the log
says so); one that fails again stays, with its new reason. Nothing leaves the journal without
either landing in the ledger or landing here: :meth:`~alpaca_nb.ledger.Ledger.health` and
``alpaca-nb ledger health`` list what is here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd

RETRY_FIRST = 1.0  # seconds before the first retry
RETRY_MAX = 600.0  # the longest wait between two retries


class SetAside(NamedTuple):
    """One journal record that could not be applied (a row of ``journal_rejects``)."""

    id: str
    kind: str | None
    client_order_id: str | None
    error: str
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    retry_after: datetime
    record: str


def retry_delay(attempts: int) -> float:
    """Seconds to wait before retrying a record that has failed ``attempts`` times."""
    delay: float = RETRY_FIRST * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX)


def describe(record: Any) -> tuple[str | None, str | None]:
    """``(kind, client_order_id)`` of a journal record, as far as it says."""
    if not isinstance(record, dict):
        return None, None
    kind = record.get("kind") if isinstance(record.get("kind"), str) else None
    order: Any = record.get("order")  # parsed JSON: checked below
    if not isinstance(order, dict):
        updates = record.get("updates")
        first = updates[0] if isinstance(updates, list) and updates and isinstance(updates[0], dict) else {}
        order = first.get("order") if isinstance(first.get("order"), dict) else {}
    cid = order.get("client_order_id")
    return kind, cid if isinstance(cid, str) else None


def set_aside(con: duckdb.DuckDBPyConnection, key: str, raw: str, record: Any, error: str, now: datetime) -> None:
    """Keep ``record`` (the journal line ``raw``) under ``key`` with its reason, or count one
    more failed attempt of a record kept already."""
    kind, cid = describe(record)
    found = con.execute("SELECT attempts FROM journal_rejects WHERE id = ?", [key]).fetchall()
    attempts = found[0][0] + 1 if found else 1
    retry_after = now + timedelta(seconds=retry_delay(attempts))
    if found:
        con.execute(
            "UPDATE journal_rejects SET error = ?, attempts = ?, last_failed_at = ?, retry_after = ? WHERE id = ?",
            [error, attempts, now, retry_after, key],
        )
    else:
        con.execute(
            "INSERT INTO journal_rejects VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            [key, kind, cid, raw, error, now, now, retry_after],
        )


def resolved(con: duckdb.DuckDBPyConnection, keys: list[str]) -> None:
    """Forget records that applied on a retry."""
    if keys:
        con.execute("DELETE FROM journal_rejects WHERE list_contains(?, id)", [keys])


def due(con: duckdb.DuckDBPyConnection, now: datetime, everything: bool = False) -> list[tuple[str, str]]:
    """``(id, record)`` of the records to retry now (all of them with ``everything``), oldest first."""
    where = "true" if everything else "retry_after <= ?"
    return con.execute(
        f"SELECT id, record FROM journal_rejects WHERE {where} ORDER BY first_failed_at, id",
        [] if everything else [now],
    ).fetchall()


def listing(con: duckdb.DuckDBPyConnection) -> tuple[SetAside, ...]:
    """Every record set aside, oldest first."""
    found = con.execute(
        f"SELECT {', '.join(SetAside._fields)} FROM journal_rejects ORDER BY first_failed_at, id"
    ).fetchall()
    return tuple(SetAside(*row) for row in found)


@dataclass(frozen=True)
class LedgerHealth:
    """What :meth:`~alpaca_nb.ledger.Ledger.health` found.

    ``set_aside``: journal records that could not be applied (each with its reason; retried by
    later drains). ``journal_backlog``: journal records not yet moved into the file (a few are
    normal while orders are placed; they stay when the file could not be drained).
    ``failed_batches``: journal files that could not be read at all. ``ok`` is True when
    nothing is set aside and no file failed.

    >>> health = ledger.health()
    >>> health.ok, health.frame()        # one row per record set aside
    """

    path: Path
    schema_version: int
    set_aside: tuple[SetAside, ...]
    journal_backlog: int
    failed_batches: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        return not self.set_aside and not self.failed_batches

    def frame(self) -> pd.DataFrame:
        """``set_aside`` as a DataFrame (columns: the fields of :class:`SetAside`)."""
        return pd.DataFrame(list(self.set_aside), columns=list(SetAside._fields))

    def __str__(self) -> str:
        lines = [
            f"ledger {self.path} (schema version {self.schema_version})",
            f"journal backlog: {self.journal_backlog} record(s) not yet in the file",
            f"set aside: {len(self.set_aside)} record(s) that could not be applied",
        ]
        for item in self.set_aside:
            lines.append(
                f"  {item.id}: {item.kind or '?'} {item.client_order_id or '(no client_order_id)'}, "
                f"{item.attempts} attempt(s), last {item.last_failed_at:%Y-%m-%d %H:%M:%S}Z: {item.error}"
            )
        for path in self.failed_batches:
            lines.append(f"unreadable journal file: {path}")
        lines.append(
            "ok"
            if self.ok
            else "NOT OK: the records above are not in the ledger yet; later drains retry "
            "them (alpaca-nb ledger drain retries now). Their orders are at the broker if they were "
            "placed, and a sync imports those."
        )
        return "\n".join(lines)


def record_text(record: Any) -> str:
    """A journal record as one JSON line's text (for a record split out of a bigger one)."""
    return json.dumps(record, separators=(",", ":"), default=str)
