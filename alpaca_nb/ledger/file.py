"""The ledger's DuckDB file, opened for one unit of work at a time.

DuckDB lets one process at a time open a database file, and a second process cannot open it
at all (not even read-only) while another holds it. A ledger shared by two notebooks and a
stream thread therefore never keeps the file open between calls: each call attaches the file,
does its work in one transaction, and detaches it again. Waiting for the file is bounded; past
the bound :class:`~alpaca_nb.errors.LedgerBusyError` names the process that holds it.

Opening a DuckDB database from scratch costs 15-20 ms (most of it building the catalog of
built-in functions), which would dominate every small write. So each process keeps one
in-memory DuckDB connection for its whole life (the *engine*) and ``ATTACH``es / ``DETACH``es
the ledger file on it: attaching costs a millisecond or two, and detaching checkpoints the
write-ahead log into the file (5-10 ms after a write) and releases the file lock, which is
what other processes wait for. ``linger`` trades some of that sharing for speed: see
:class:`LedgerFile`.

**Taking turns.** DuckDB's own file lock is not enough between processes that attach and
detach all the time: DuckDB reads the file's headers *before* it takes its lock, so a process
whose ``ATTACH`` starts while another one is checkpointing can read the old headers, get the
lock a moment later, and work on (then checkpoint over) a state without the other's last
commit: that commit is lost without any error (seen with DuckDB 2.0, a few rows in a thousand
when two processes write at once; see ``tests/test_ledger_sharing.py``). So alpaca_nb processes
take turns on a side file first: ``<ledger>.lock`` is held with ``flock`` (exclusive to write,
shared to read) from before ``ATTACH`` until after ``DETACH``, and DuckDB never reads headers
another alpaca_nb process is writing. A foreign program (a DuckDB CLI, a plain
``duckdb.connect``) does not take turns: while it holds the file alpaca_nb waits for DuckDB's
lock as before, and it should not write while alpaca_nb does.

**Errors.** No raw DuckDB error leaves a unit of work: a file held by another process past the
bound is :class:`~alpaca_nb.errors.LedgerBusyError`; anything else DuckDB raises while
attaching, working or letting go is a :class:`~alpaca_nb.errors.LedgerError` that names the
file and keeps DuckDB's words. A file that exists but cannot be read yet (DuckDB says "not a
valid DuckDB database file" or "Could not read enough bytes": another program is creating or
rewriting it this instant) is retried for up to :data:`UNREADABLE_GRACE` seconds within the
bounded wait before it is reported. alpaca_nb itself never exposes a half-built file: a new
ledger is built under a temporary name and linked into place whole
(:meth:`LedgerFile.create`).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from ..errors import LedgerBusyError, LedgerError

try:  # the fairness courtesy below needs flock; without it (Windows) waiting still works
    import fcntl
except ImportError:  # pragma: no cover - not on Linux / macOS
    fcntl = None  # type: ignore[assignment]  # no flock here: checked before each use

log = logging.getLogger("alpaca_nb")

ALIAS = "ledger"  # the catalog name the file is attached under; SQL may use it or not (USE)
UNREADABLE_GRACE = 1.0  # seconds a file DuckDB cannot read yet is retried (one being created)
_UNREADABLE = ("not a valid DuckDB database", "Could not read enough bytes", "Could not read from file")
_HOLDER = re.compile(r"held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


class _Engine:
    """The process's in-memory DuckDB connection and the lock that serialises its use.

    DuckDB connections are not safe to share across ``fork()``: a child process builds its
    own engine the first time it needs one.
    """

    _lock = threading.RLock()
    _lock_pid = os.getpid()
    _connection: duckdb.DuckDBPyConnection | None = None
    _pid: int | None = None
    # A write's attachment kept for a while (LedgerFile.linger): (path, True), its deadline.
    held: tuple[str, bool] | None = None
    held_until = 0.0
    turn: io.BufferedRandom | None = (
        None  # the open <ledger>.lock whose flock gives this process its turn (see _take_turn)
    )
    _reaper: threading.Thread | None = None

    @classmethod
    def lock(cls) -> threading.RLock:
        if cls._lock_pid != os.getpid():  # forked: the parent's lock may be held by a thread
            cls._lock, cls._lock_pid = threading.RLock(), os.getpid()  # that does not exist here
            cls.held, cls._reaper = None, None  # the parent's attachment is not ours
            cls.turn = None  # nor its turn (the parent lets go of it; closing it here would not)
            _session.__init__()  # type: ignore[misc]  # a fresh session: _session is a _Session, never a subclass
        return cls._lock

    @classmethod
    def keep(cls, path: str, linger: float) -> None:
        """Keep the current read-write attachment of ``path`` (called with the lock held)."""
        cls.held, cls.held_until = (path, True), time.monotonic() + linger
        if cls._reaper is None or not cls._reaper.is_alive():
            cls._reaper = threading.Thread(target=cls._reap, name="alpaca_nb-ledger-linger", daemon=True)
            cls._reaper.start()

    @classmethod
    def release(cls) -> None:
        """Let go of a kept attachment (called with the lock held)."""
        if cls.held is not None and cls._pid == os.getpid():
            cls.held = None
            assert cls._connection is not None  # it is set, for this pid, whenever something is held
            _detach(cls._connection)

    @classmethod
    def _reap(cls) -> None:
        # Lets a kept attachment go when it has been idle long enough or another process waits;
        # ends when nothing is kept.
        while True:
            time.sleep(_REAP_EVERY)
            lock = cls.lock()
            if not lock.acquire(blocking=False):
                continue  # in use: not idle
            try:
                if cls.held is None:
                    cls._reaper = None
                    return
                if time.monotonic() >= cls.held_until or _someone_waits(Path(cls.held[0])):
                    cls.release()
            finally:
                lock.release()

    @classmethod
    def connection(cls) -> duckdb.DuckDBPyConnection:
        if cls._connection is None or cls._pid != os.getpid():
            con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
            # Timestamps come back in the session time zone: make that UTC, whatever the machine.
            con.execute("SET TimeZone = 'UTC'")
            cls._connection, cls._pid = con, os.getpid()
        return cls._connection


def _release_at_exit() -> None:
    lock = _Engine.lock()
    if lock.acquire(timeout=5):
        try:
            _Engine.release()
        finally:
            lock.release()


atexit.register(_release_at_exit)


class _Session(threading.local):
    """Which file this thread has attached, so that nested units of work share it."""

    path: str | None = None
    depth: int = 0
    write: bool = False


_session = _Session()


class LedgerFile:
    """One DuckDB file, attached for the length of a ``with`` block.

    >>> with LedgerFile(path).open(write=True) as con:
    ...     con.execute("INSERT INTO ...")

    ``open(write=True)`` runs the block in a transaction (committed at the end, rolled back on
    an error). A block nested in another on the same thread shares the outer block's
    attachment and transaction. ``busy_timeout`` bounds the wait for a file another process
    holds; after it :class:`LedgerBusyError` is raised.

    ``linger`` (seconds, default 0: let go at once) keeps the file attached after a write for
    that long, so that a burst of writes pays for attaching and checkpointing once instead of
    every time (a write then costs about a quarter). The file is let go as soon as another
    alpaca_nb process waits for it, after ``linger`` seconds without a call, and at exit; a
    foreign process (a DuckDB CLI, a plain ``duckdb.connect``) may find it held for up to
    ``linger`` seconds.
    """

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 10.0, linger: float = 0.0):
        self.path = Path(path).expanduser().resolve()
        self.busy_timeout = float(busy_timeout)
        self.linger = float(linger)

    def __repr__(self) -> str:
        return f"LedgerFile({str(self.path)!r})"

    @contextlib.contextmanager
    def open(self, *, write: bool, read_only_file: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Attach the file for the block; ``write`` runs it in one transaction.

        ``read_only_file`` makes sure the file itself is attached read-only (so that any write
        is refused), even when a lingering read-write attachment could have served the block.
        """
        try:
            with self._open(write, read_only_file) as con:
                yield con
        except duckdb.InterruptException:
            raise KeyboardInterrupt from None  # Ctrl-C landed in DuckDB: it is still Ctrl-C
        except RuntimeError as err:
            if str(err) == "Query interrupted":  # how DuckDB's Python client reports it mid-ATTACH
                raise KeyboardInterrupt from None
            raise
        except duckdb.Error as err:
            raise _ledger_error(self.path, err) from err

    @contextlib.contextmanager
    def _open(self, write: bool, read_only_file: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.busy_timeout
        lock = _Engine.lock()
        if not lock.acquire(timeout=self.busy_timeout):
            raise _busy_error(
                f"the ledger {self.path} stayed busy in this process (another thread's ledger work) "
                f"for more than {self.busy_timeout:g} s: wait for it to finish, or raise busy_timeout",
                self.path,
                os.getpid(),
            )
        try:
            if _session.depth:
                yield self._nested(write)
                return
            con = _Engine.connection()
            held = _Engine.held
            if held is not None and (held != (str(self.path), True) or read_only_file or _someone_waits(self.path)):
                _Engine.release()  # another file, a read-only block, or another process wants it
                held = None
            if held is None:
                self._attach(con, write and not read_only_file, deadline)
            read_write = held is not None or (write and not read_only_file)
            _session.path, _session.write, _session.depth = str(self.path), write, 1
            try:
                # A read on a read-write attachment runs in a transaction it rolls back.
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT" if write else "ROLLBACK")
            finally:
                _session.path, _session.depth = None, 0
                if self.linger > 0 and read_write and not _someone_waits(self.path):
                    _Engine.keep(str(self.path), self.linger)
                else:
                    _Engine.held = None
                    _detach(con)
        finally:
            lock.release()

    def create(self, build: Callable[[duckdb.DuckDBPyConnection], object]) -> bool:
        """Create the file whole if it does not exist: ``build(con)`` fills a copy under a
        temporary name in one transaction, and the copy is linked into place only complete, so
        that no process ever attaches a half-written ledger. False if the file existed (or
        another process created it first)."""
        if self.path.exists():
            return False
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}-{random.getrandbits(32):08x}.creating")
        try:
            with LedgerFile(temporary, self.busy_timeout).open(write=True) as con:
                build(con)
            try:
                os.link(temporary, self.path)  # atomic, and never replaces a file that appeared meanwhile
            except FileExistsError:
                return False
            except OSError:  # pragma: no cover - a file system without hard links
                if self.path.exists():
                    return False
                os.replace(temporary, self.path)
            return True
        finally:
            for leftover in (temporary, *(_side_file(temporary, end) for end in (".wal", ".lock", ".wait"))):
                try:
                    leftover.unlink()
                except FileNotFoundError:
                    pass

    @property
    def nested(self) -> bool:
        """Is this thread inside a unit of work on this file already?"""
        return bool(_session.depth) and _session.path == str(self.path)

    def release(self) -> None:
        """Let go of the file now if a lingering attachment of it is kept."""
        lock = _Engine.lock()
        with lock:
            if _Engine.held is not None and _Engine.held[0] == str(self.path) and not _session.depth:
                _Engine.release()

    def _nested(self, write: bool) -> duckdb.DuckDBPyConnection:
        if _session.path != str(self.path):
            raise LedgerError(
                f"ledger work on {self.path} was started inside work on {_session.path}: "
                "finish one before starting the other"
            )
        if write and not _session.write:
            raise LedgerError("a ledger write was started inside a read-only ledger block")
        return _Engine.connection()

    # -- the file lock ----------------------------------------------------------------------------

    def _attach(self, con: duckdb.DuckDBPyConnection, write: bool, deadline: float) -> None:
        _yield_to_waiters(self.path)
        _Engine.turn = _take_turn(self.path, write, deadline, self.busy_timeout)
        try:
            self._attach_file(con, write, deadline)
        except BaseException:
            _end_turn()
            raise

    def _attach_file(self, con: duckdb.DuckDBPyConnection, write: bool, deadline: float) -> None:
        mode = "" if write else " (READ_ONLY)"
        sql = f"ATTACH '{_quote(self.path)}' AS {ALIAS}{mode}"
        delay, waiting = 0.0005, None
        unreadable_until = min(deadline, time.monotonic() + UNREADABLE_GRACE)
        try:
            while True:
                try:
                    con.execute(sql)
                    con.execute(f"USE {ALIAS}")
                    return
                except duckdb.Error as err:
                    message = str(err)
                    if "Unique file handle conflict" in message:
                        raise _busy_error(
                            f"the ledger {self.path} is open in this very process through another DuckDB "
                            "connection (e.g. duckdb.connect(...)): close that connection (con.close()) "
                            "and use ledger.sql(...) for queries instead",
                            self.path,
                            os.getpid(),
                        ) from None
                    now = time.monotonic()
                    if any(text in message for text in _UNREADABLE):
                        # Being created or rewritten by another program this instant: wait a
                        # moment for it, then say what is wrong.
                        _detach_quietly(con)
                        if now >= unreadable_until:
                            raise LedgerError(
                                f"the ledger {self.path} cannot be read ({' '.join(message.split())}). If "
                                "another program is writing it, retry when it is done; otherwise it is not "
                                "a DuckDB file or it is damaged: move it aside (alpaca_nb starts a new "
                                "ledger) and keep it for inspection"
                            ) from None
                    elif "Could not set lock" not in message and "Conflicting lock" not in message:
                        raise
                    elif now >= deadline:
                        raise _busy(self.path, message, self.busy_timeout) from None
                    if waiting is None:
                        waiting = _announce_waiting(self.path)
                    time.sleep(min(delay * random.uniform(0.5, 1.5), max(deadline - now, 0)))
                    delay = min(delay * 1.5, _POLL_CAP)
        finally:
            if waiting is not None:
                waiting.close()  # closing the descriptor drops the shared flock


def _detach(con: duckdb.DuckDBPyConnection) -> None:
    # DETACH checkpoints the write-ahead log into the file and releases DuckDB's lock; then this
    # process's turn ends. The turn ends even if DETACH fails: the attachment is gone either way.
    try:
        con.execute("USE memory")
        con.execute(f"DETACH {ALIAS}")
    finally:
        _end_turn()


def _detach_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """After a failed ATTACH: make sure nothing is left attached under the alias."""
    try:
        con.execute("USE memory")
        con.execute(f"DETACH DATABASE IF EXISTS {ALIAS}")
    except duckdb.Error:
        pass


def _ledger_error(path: Path, err: duckdb.Error) -> LedgerError:
    """A DuckDB error met while working on ``path``, as the LedgerError alpaca_nb raises."""
    message = " ".join(str(err).split())
    return LedgerError(
        f"the ledger {path} could not be used: DuckDB said {type(err).__name__}: {message}. "
        "If this persists, run `alpaca-nb ledger health` and report it with that output"
    )


def _busy_error(message: str, path: Path, pid: int | None) -> LedgerBusyError:
    return LedgerBusyError(message, path, pid)


def _busy(path: Path, message: str, timeout: float) -> LedgerBusyError:
    found = _HOLDER.search(message)
    pid = int(found["pid"]) if found else None
    who = f"process {pid} ({found['exe']})" if found else "another process"
    return _busy_error(
        f"the ledger {path} is busy: {who} has held it for more than {timeout:g} s. DuckDB lets one "
        "process open a file at a time and alpaca_nb holds it only for a moment per call, so a holder "
        "this long is usually a plain duckdb.connect() on the file left open (close it: con.close()), a "
        "DuckDB CLI, or a very long query. Stop or close that, then retry; or wait longer with "
        f"Ledger(path, busy_timeout=...).",
        path,
        pid,
    )


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


# -- fairness between alpaca_nb processes --------------------------------------------------------
# DuckDB takes its file lock without queueing: a waiter polls, and a busy writer that releases
# and re-takes the file within a millisecond could keep it from ever getting a turn. A waiter
# therefore holds a shared flock on a small side file (``<ledger>.wait``) while it waits, and
# polls often; before taking the ledger, a process probes that side file and, while someone is
# waiting, steps aside (up to _COURTESY seconds) until the waiter has had its turn. Two busy
# writers thus take turns instead of one starving the other.
_REAP_EVERY = 0.01
_POLL_CAP = 0.002  # a failed attach costs ~0.3 ms: polling this often is cheap
_COURTESY = 0.2


def _side_file(path: Path, suffix: str = ".wait") -> Path:
    return path.with_name(path.name + suffix)


def _take_turn(path: Path, write: bool, deadline: float, timeout: float) -> io.BufferedRandom | None:
    """Hold ``<ledger>.lock`` (exclusive to write, shared to read) until the deadline: the
    open file whose flock is this process's turn, or None where flock is not available (a
    read-only folder, Windows): then DuckDB's lock alone decides, as before."""
    if fcntl is None:
        return None
    try:
        handle = open(_side_file(path, ".lock"), "a+b")
    except OSError:
        return None
    delay, waiting = 0.0005, None
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), (fcntl.LOCK_EX if write else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    holder = _turn_holder(handle)
                    handle.close()
                    raise _busy_error(
                        f"the ledger {path} is busy: {f'process {holder}' if holder else 'another alpaca_nb process'} "
                        f"has held it for more than {timeout:g} s. alpaca_nb holds it only for a moment per call, "
                        "so a holder this long is stuck in a very long query or paused (a debugger, a stopped "
                        "job). Let it finish or stop it, then retry; or wait longer with "
                        "Ledger(path, busy_timeout=...).",
                        path,
                        holder,
                    ) from None
                if waiting is None:
                    waiting = _announce_waiting(path)
                time.sleep(min(delay * random.uniform(0.5, 1.5), max(deadline - now, 0)))
                delay = min(delay * 1.5, _POLL_CAP)
                continue
            except OSError:  # a file system without flock: DuckDB's lock alone decides
                handle.close()
                return None
            if write:  # say who holds it, for the error a waiter may have to raise
                with contextlib.suppress(OSError):
                    os.ftruncate(handle.fileno(), 0)
                    os.pwrite(handle.fileno(), f"{os.getpid()}\n".encode(), 0)
            return handle
    finally:
        if waiting is not None:
            waiting.close()


def _turn_holder(handle: io.BufferedRandom) -> int | None:
    try:
        text = os.pread(handle.fileno(), 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _end_turn() -> None:
    handle, _Engine.turn = _Engine.turn, None
    if handle is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)  # explicit: a forked child may share the descriptor
        handle.close()


def _announce_waiting(path: Path) -> io.BufferedRandom | None:
    if fcntl is None:
        return None
    try:
        handle = open(_side_file(path), "a+b")
    except OSError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        return handle
    except OSError:  # someone is probing this instant: announce on the next poll
        handle.close()
        return None


def _someone_waits(path: Path) -> bool:
    """Does another process wait for ``path`` (hold the side file's shared lock)?"""
    if fcntl is None or not _side_file(path).exists():
        return False
    try:
        with open(_side_file(path), "a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
            except BlockingIOError:
                return True
    except OSError:
        return False


def _yield_to_waiters(path: Path) -> None:
    if fcntl is None or not _side_file(path).exists():
        return
    try:
        with open(_side_file(path), "a+b") as handle:
            until = time.monotonic() + _COURTESY
            while time.monotonic() < until:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return  # nobody waits (closing the handle drops the probe's lock)
                except BlockingIOError:
                    time.sleep(0.002)
    except OSError:
        pass
