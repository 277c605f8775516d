"""The ledger's journal: an order's intent safe on disk in a fraction of a millisecond.

A unit of work on the DuckDB file costs about 15 ms (attach, one transaction, detach and
checkpoint: see :mod:`alpaca_nb.ledger.file`), five times Alpaca's own round trip, and placing
an order writes twice (the intent before the POST, the answer after it). The journal takes
both off the order path: each is appended to a file beside the ledger as one JSON line. The
intent is flushed to the disk (``fdatasync``) before the call returns, about 0.2 ms, so the
POST still leaves only once its intent is durable: a kernel killed mid-request, or a machine
that loses power, leaves the intent in the journal, and the next sync settles it. Answers and
trade updates, which Alpaca can always tell again, go to the OS (they survive a killed kernel)
without waiting for the disk.

**Every reader sees every record.** Any unit of work on the ledger, in this process or in
another, first moves what the journal holds into DuckDB (*drains* it), so the journal is
invisible to ``Ledger`` users. A background thread drains it
:data:`DRAIN_DELAY` seconds after an append, and at exit, so that the file stays short and
plain DuckDB clients (which know nothing of the journal) see new orders within a moment.

**Layout**, in the folder ``<ledger>.journal`` beside the file::

    active.jsonl          appended to by every process; each append is one write() under an
                          exclusive flock held for microseconds
    <ns>-<hex>.jsonl      a batch being drained: the drainer renames active.jsonl under that
                          flock (an appender holding a descriptor to the renamed file notices
                          by its inode and reopens), applies it, commits, then deletes it

**Crash safety.** Only the holder of the DuckDB file drains, so batches are applied one drainer
at a time. A batch's name is recorded in ``journal_applied`` in the same transaction that
applies it: a drainer that dies after the commit but before deleting the batch leaves a file
the next drain recognises and deletes without applying twice; one that dies before the commit
leaves a file the next drain applies. A line cut short by a crash mid-append (its caller never
got to the POST) is skipped with a warning; the next append starts on a fresh line.

**One bad record costs nothing else.** A record that cannot be applied (a value that does not
fit its column, a field missing, an intent naming another order's ``client_order_id``, a
statement DuckDB refuses) is set aside *alone*, with its reason, in the table
``journal_rejects``, in the same transaction that applies the rest of its batch; later drains
retry it (see :mod:`alpaca_nb.ledger.replay` for how the culprit is found and
:mod:`alpaca_nb.ledger.rejects` for the retries). Every other record lands. ``<name>.failed``
batches, which older versions set aside whole, are picked up and applied the same way, record
by record. A batch file that cannot even be read is renamed ``<name>.unreadable`` and reported
(:meth:`~alpaca_nb.ledger.Ledger.health` lists both kinds of set-aside).

An intent is checked before it is appended (:func:`~alpaca_nb.ledger.rows.check_order`): an
order that the ledger could not record is refused before it can be sent.

Without ``fcntl`` (Windows) there is no journal: the ledger writes DuckDB directly.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ..errors import LedgerBusyError
from . import ingest, rejects, replay, rows
from .file import LedgerFile

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux / macOS
    fcntl = None  # type: ignore[assignment]  # no flock here: then there is no journal (for_file)

log = logging.getLogger("alpaca_nb")

DRAIN_DELAY = 0.25  # seconds after an append before the background thread drains
EXIT_TIMEOUT = 2.0  # seconds the drain at exit waits for a file another process holds
ACTIVE = "active.jsonl"
LEGACY_FAILED = ".failed"  # a batch an older alpaca_nb set aside whole: applied record by record
UNREADABLE = ".unreadable"  # a batch file that could not be read at all


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value"):  # an enum
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Journal:
    """The journal of one ledger file, shared by every :class:`~alpaca_nb.ledger.Ledger` on that
    file in this process (:meth:`for_file`)."""

    _registry: dict[tuple[int, str], Journal] = {}
    _registry_lock = threading.Lock()

    def __init__(self, file: LedgerFile):
        self.file = file
        self.folder = file.path.with_name(file.path.name + ".journal")
        self.active = self.folder / ACTIVE
        self._lock = threading.Lock()  # one append at a time in this process
        self._fd: int | None = None
        self._wake = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def for_file(cls, file: LedgerFile) -> Journal | None:
        """This process's journal of ``file`` (None where there is no flock: no journal)."""
        if fcntl is None:  # pragma: no cover - not on Linux / macOS
            return None
        key = (os.getpid(), str(file.path))  # a forked child starts its own
        with cls._registry_lock:
            journal = cls._registry.get(key)
            if journal is None:
                journal = cls._registry[key] = Journal(file)
            return journal

    def __repr__(self) -> str:
        return f"Journal({str(self.folder)!r})"

    # -- appending --------------------------------------------------------------------------------

    def intent(self, order: Any, source: str) -> None:
        """Journal a new order (its ``client_order_id`` generated for it): see rows.intent_change.

        Raises :class:`~alpaca_nb.ledger.rows.UnfitValueError` (nothing journaled) for an order
        the ledger could not record.
        """
        rows.check_order(order)
        self._append({"kind": "intent", "at": _now(), "source": source, "order": rows.order_to_json(order)}, sync=True)

    def update(self, order: Any, source: str) -> None:
        """Journal an order's new state: applied as :meth:`Ledger.update` would."""
        self._append({"kind": "update", "at": _now(), "source": source, "order": rows.order_to_json(order)})

    def trade_updates(
        self, updates: list[Mapping[str, Any]], *, account_id: str, environment: str, source: str
    ) -> None:
        """Journal trade updates: applied as :meth:`Ledger.apply_trade_updates` would."""
        self._append(
            {
                "kind": "trade_updates",
                "at": _now(),
                "source": source,
                "account_id": account_id,
                "environment": environment,
                "updates": [dict(ingest.as_mapping(u)) for u in updates],
            }
        )

    def _append(self, record: dict[str, Any], sync: bool = False) -> None:
        """Append one record; ``sync`` waits for the disk (fdatasync), else for the OS page cache.

        An intent is synced: it is the one record nothing else can rebuild (user, tags, notes
        of an order about to be sent). Answers and trade updates survive a killed kernel in the
        page cache, and what a power cut loses of them the next sync fetches from Alpaca again.
        """
        line = (json.dumps(record, default=_json_default, separators=(",", ":")) + "\n").encode()
        with self._lock:
            while True:
                fd = self._open_active()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if self._is_active(fd):
                        size = os.fstat(fd).st_size
                        if size and os.pread(fd, 1, size - 1) != b"\n":
                            line = b"\n" + line  # a crash cut the last line short: start a fresh one
                        written = os.write(fd, line)
                        if written != len(line):  # pragma: no cover - a full disk
                            raise OSError(f"the ledger journal {self.active} took {written} of {len(line)} bytes")
                        if sync:
                            os.fdatasync(fd)
                        break
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)  # drained (renamed) since it was opened: open the new one
                self._fd = None
        self.schedule_drain()

    def _open_active(self) -> int:
        if self._fd is None:
            flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
            try:
                self._fd = os.open(self.active, flags)
            except FileNotFoundError:
                self.folder.mkdir(exist_ok=True)
                try:
                    self._fd = os.open(self.active, flags | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:  # another process created it this instant
                    self._fd = os.open(self.active, flags)
                else:
                    _sync_folder(self.folder)  # the new file's name is on disk before its first record
        return self._fd

    def _is_active(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.active).st_ino
        except FileNotFoundError:
            return False

    # -- draining ---------------------------------------------------------------------------------

    def pending(self) -> bool:
        """Does the journal hold anything not yet in DuckDB (from any process)?"""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return False
        for name in names:
            if name != ACTIVE and name.endswith((".jsonl", LEGACY_FAILED)):
                return True
        try:
            return os.stat(self.active).st_size > 0
        except FileNotFoundError:
            return False

    def _batches(self) -> list[Path]:
        """Batch files waiting (and older versions' ``.failed`` ones), oldest first."""
        try:
            found = [p for p in self.folder.iterdir() if p.name != ACTIVE and p.suffix in (".jsonl", LEGACY_FAILED)]
        except FileNotFoundError:
            return []
        return sorted(found, key=lambda p: p.stem)

    def backlog(self) -> int:
        """How many records the journal holds that are not in DuckDB yet (all processes')."""
        count = 0
        for path in [self.active, *self._batches()]:
            try:
                with open(path, "rb") as handle:
                    count += sum(1 for line in handle if line.strip())
            except OSError:
                continue
        return count

    def unreadable(self) -> list[Path]:
        """Batch files that could not be read (see the module's docstring)."""
        try:
            return sorted(p for p in self.folder.iterdir() if p.suffix == UNREADABLE)
        except FileNotFoundError:
            return []

    def drain_into(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        refused: dict[str, str] | None = None,
        one_by_one: bool = False,
        retry_all: bool = False,
    ) -> list[Path]:
        """Apply every journaled record to the ledger inside the caller's write transaction, and
        retry the records set aside earlier that are due (all of them with ``retry_all``).

        A record that cannot be applied is set aside alone (``journal_rejects``). ``refused``
        names records that failed in DuckDB earlier in this drain (key: why), ``one_by_one``
        applies one record per statement: :meth:`drain` sets both after a failure (raised here
        as :class:`~alpaca_nb.ledger.replay.BatchFailed` / ``RecordFailed``, after which the
        transaction must be rolled back).

        Returns the batch files applied: the caller deletes them with :meth:`settle` once its
        transaction has committed.
        """
        self._rotate()
        batches = self._batches()
        names = [p.name for p in batches]
        applied = {name for (name,) in con.execute("SELECT name FROM journal_applied").fetchall()}
        # A batch recorded here but no longer on disk was deleted after its commit: forget it.
        con.execute("DELETE FROM journal_applied WHERE NOT list_contains(?, name)", [names])
        now = datetime.now(UTC)
        entries = [replay.retried(key, raw) for key, raw in rejects.due(con, now, everything=retry_all)]
        todo: list[tuple[Path, int]] = []
        for batch in batches:
            if batch.name in applied:
                continue  # applied by a drainer that stopped before deleting it
            try:
                found = list(replay.read_batch(batch))
            except OSError as err:
                self._set_unreadable(batch, err)
                continue
            entries.extend(found)
            todo.append((batch, len(found)))
        good, refused_now = replay.prepare(entries, refused or {})
        refused_now.extend(replay.apply(con, good, one_by_one=one_by_one))
        failed = {entry.key for entry, _ in refused_now}
        for entry, why in refused_now:
            rejects.set_aside(con, entry.key, entry.raw, entry.record, why, now)
            log.error(
                "ledger journal: record %s (%s %s) could not be applied and is set aside: %s. The other "
                "records are applied; later drains retry it; ledger.health() lists it",
                entry.key,
                entry.kind or "?",
                rejects.describe(entry.record)[1] or "",
                why,
            )
        back = sorted({entry.key for entry in good if entry.retry} - failed)
        if back:
            rejects.resolved(con, back)
            log.warning(
                "ledger journal: %d record(s) set aside earlier applied on a retry: %s", len(back), ", ".join(back)
            )
        for batch, count in todo:
            con.execute("INSERT INTO journal_applied VALUES (?, ?, now())", [batch.name, count])
        return [p for p in batches if p.exists()]

    def _set_unreadable(self, batch: Path, err: OSError) -> None:
        kept = batch.with_suffix(UNREADABLE)
        try:
            batch.rename(kept)
        except OSError:
            kept = batch
        log.error(
            "ledger journal: %s cannot be read (%s); kept as %s and left out. Its orders are at the "
            "broker if they were placed, and a sync imports them; ledger.health() lists the file",
            batch.name,
            err,
            kept,
        )

    @staticmethod
    def settle(batches: list[Path]) -> None:
        """Delete applied batches (after the transaction that applied them committed)."""
        for batch in batches:
            try:
                batch.unlink()
            except FileNotFoundError:
                pass

    def drain(self, timeout: float | None = None, *, retry_all: bool = False) -> bool:
        """Move the journal into DuckDB now; True if anything was moved.

        Records set aside earlier are retried when due (all of them with ``retry_all``).
        Raises :class:`~alpaca_nb.errors.LedgerBusyError` if another process holds the file
        for longer than ``timeout`` (default: the ledger's ``busy_timeout``).
        """
        file = self.file if timeout is None else LedgerFile(self.file.path, timeout, self.file.linger)
        refused: dict[str, str] = {}
        one_by_one = False
        while retry_all or self.pending():
            try:
                with file.open(write=True) as con:
                    batches = self.drain_into(con, refused=refused, one_by_one=one_by_one, retry_all=retry_all)
            except replay.BatchFailed as failed:
                # DuckDB refused a statement and lost the transaction: find the record to blame.
                log.warning(
                    "ledger journal: a batch of records failed (%s); applying them one at a time to "
                    "find the one to set aside",
                    failed,
                )
                one_by_one = True
                continue
            except replay.RecordFailed as failed:
                refused[failed.key] = failed.reason
                one_by_one = False  # the rest may well go in together again
                continue
            self.settle(batches)
            return bool(batches)
        return False

    def _rotate(self) -> None:
        """Turn active.jsonl into a batch (called by the drainer, who holds the DuckDB file)."""
        try:
            fd = os.open(self.active, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size and self._is_active(fd):
                os.rename(self.active, self.folder / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.jsonl")
                # The new name is on disk before the batch is recorded as applied under it: a
                # rename lost to a power cut would otherwise bring the batch back under a new name.
                _sync_folder(self.folder)
        finally:
            os.close(fd)  # closing drops the flock

    # -- the background drainer -------------------------------------------------------------------

    def schedule_drain(self) -> None:
        """Have the background thread drain the journal :data:`DRAIN_DELAY` seconds from now."""
        with self._wake:
            if self._due is not None and self._thread is not None:
                return  # a drain is already due
            self._due = time.monotonic() + DRAIN_DELAY
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alpaca_nb-ledger-journal", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due is None:
                    if not self._wake.wait(timeout=5.0) and self._due is None:
                        self._thread = None
                        return  # idle: the next append starts another
                delay = self._due - time.monotonic()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
                self._due = None
            try:
                self.drain()
            except LedgerBusyError as err:
                log.info("ledger journal: %s; retrying in a second", err)
                with self._wake:
                    self._due = self._due or time.monotonic() + 1.0
            except Exception:
                log.exception("ledger journal: draining %s failed; the records stay in the journal", self.folder)
                with self._wake:
                    self._due = self._due or time.monotonic() + 5.0


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _drain_all_at_exit(journals: Callable[[], list[Journal]]) -> None:
    for journal in journals():
        try:
            journal.drain(timeout=EXIT_TIMEOUT)
        except Exception as err:
            log.warning(
                "ledger journal %s: not drained at exit (%s); the next use of the ledger applies it",
                journal.folder,
                err,
            )


atexit.register(
    _drain_all_at_exit, lambda: [j for (pid, _), j in list(Journal._registry.items()) if pid == os.getpid()]
)
