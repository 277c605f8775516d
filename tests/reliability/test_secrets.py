"""The secrets scan: the API key and secret appear nowhere a user, a log or a file could show them.

An in-process local broker runs with distinctive keys, and a paper account connects to it as a
user would (``Settings.load`` from variables). Then every place a key could leak is searched for
the key, the secret, a wrong secret the scan itself sent, and the Basic form ``key:secret``:

- verbose tracebacks (``traceback.TracebackException(..., capture_locals=True)``: what
  ``%xmode Verbose`` shows) of an instance of every class in :mod:`alpaca_nb.errors`, each
  provoked for real (wrong keys, faults injected at the broker, a closed port, a held ledger
  file...), with the whole ``__cause__`` / ``__context__`` chain, every ``__dict__`` on it, and
  any plain text reachable from the exception object;
- every log record at DEBUG (alpaca_nb's, alpaca-py's, urllib3's, the root's) and all output;
- ``repr`` / ``str`` / ``vars`` of every public object, and the plain text reachable from them;
- the ledger file (every table, as text) and the journal files beside it, every file under the
  data directory;
- the outputs stored in the executed example notebooks.

Secrets found must be 0. The count of places scanned and of secrets found go to the reliability
figures (``secrets_scanned``, ``secrets_found``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from brokers import wait_for

import alpaca_nb.errors as errors_module
from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService, InMemoryOrderStore, Settings
from alpaca_nb.errors import (
    AlpacaNbError,
    AuthenticationError,
    BrokerError,
    ConfigurationError,
    DuplicateOrderError,
    InvalidArgumentError,
    LedgerBusyError,
    LedgerError,
    LiveTradingNotArmed,
    NetworkError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
    UnfitValueError,
)
from alpaca_nb.ledger import Ledger
from alpaca_nb.secret import Secret
from alpaca_nb.sim import LOCAL_KEY, LOCAL_SECRET, LocalBroker

KEY = "PKTESTKEY0123456789"
SECRET = "SECRETsecret0123456789abcdef"
WRONG_SECRET = "WRONGsecret0123456789abcdef"  # sent on purpose for the 401: it must not show either
NEEDLES = {
    "the key": KEY,
    "the secret": SECRET,
    "the wrong secret": WRONG_SECRET,
    "key:secret in Basic form": base64.b64encode(f"{KEY}:{SECRET}".encode()).decode(),
}
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
LOGGERS = ("", "alpaca_nb", "alpaca_nb.sim", "alpaca", "urllib3", "requests", "websockets", "aiohttp", "asyncio")


# -- the scan ----------------------------------------------------------------------------------


@dataclass
class Scan:
    """Texts looked at and the needles found in them (by where, never the needle itself)."""

    needles: dict[str, str] = field(default_factory=lambda: dict(NEEDLES))
    scanned: int = 0
    found: list[str] = field(default_factory=list)

    def text(self, where: str, text: str | bytes) -> None:
        self.scanned += 1
        for name, needle in self.needles.items():
            if (needle.encode() if isinstance(text, bytes) else needle) in text:
                self.found.append(f"{name} in {where}")

    def exception(self, where: str, err: BaseException) -> None:
        """The verbose traceback, each chained exception's str/repr/args/__dict__, and every
        plain string or bytes reachable from the exception object."""
        self.text(f"{where}: verbose traceback", verbose_traceback(err))
        for n, link in enumerate(chain(err)):
            label = f"{where}: chain[{n}] {type(link).__name__}"
            self.text(f"{label} str/repr/args", f"{link}\n{link!r}\n{link.args!r}")
            self.text(f"{label} __dict__", repr(vars(link)))
        for path, value in clear_text_reachable(err, masked_too=True):
            self.text(f"{where}: {path}", value)

    def object(self, where: str, obj: Any, *, inside: bool = True) -> None:
        """``repr`` and ``str`` of ``obj``; with ``inside``, also ``vars`` and the plain text
        reachable from it (not for the broker's side, which must hold the keys to check them)."""
        self.text(f"repr({where})", repr(obj))
        self.text(f"str({where})", str(obj))
        if not inside:
            return
        if hasattr(obj, "__dict__"):
            self.text(f"vars({where})", repr(vars(obj)))
        for path, value in clear_text_reachable(obj, where):
            self.text(path, value)

    def logs(self, where: str, caplog, capfd) -> None:
        self.text(f"{where}: log text", caplog.text)
        for record in caplog.records:
            self.text(
                f"{where}: log record {record.name}", f"{record.getMessage()}\n{record.args!r}\n{record.exc_text or ''}"
            )
        out, err = capfd.readouterr()
        self.text(f"{where}: stdout", out)
        self.text(f"{where}: stderr", err)

    def assert_clean(self, figures) -> None:
        figures.add("secrets_scanned", self.scanned)
        figures.add("secrets_found", len(self.found))
        assert self.scanned > 0
        assert not self.found, "secrets found:\n  " + "\n  ".join(self.found)


def verbose_traceback(err: BaseException) -> str:
    """``%xmode Verbose``: every frame's locals and the __cause__/__context__ chain. This
    file's own frames are left out (their locals are the scan's, not alpaca_nb's)."""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.TracebackException(type(err), err, tb, capture_locals=True).format())


def chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [err]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo += [link.__cause__, link.__context__]


_SKIP = (type, type(sys), type(len), type(lambda: 0), type(sys._getframe()), type(None))


def clear_text_reachable(
    root: Any, name: str | None = None, depth: int = 12, masked_too: bool = False
) -> Iterator[tuple[str, Any]]:
    """Every plain ``str`` / ``bytes`` reachable from ``root`` through attributes, mappings and
    sequences, with its path. A :class:`Secret` only ever shows a mask, so it counts only with
    ``masked_too``: an exception has no business keeping the keys at all (a caller could
    ``.reveal()`` them from a request kept in its ``__context__``)."""
    seen: set[int] = set()
    todo: list[tuple[Any, str, int]] = [(root, name or type(root).__name__, 0)]
    while todo:
        obj, path, level = todo.pop()
        if id(obj) in seen or isinstance(obj, _SKIP) or isinstance(obj, (int, float, complex)):
            continue
        seen.add(id(obj))
        if isinstance(obj, Secret):
            if masked_too:
                yield f"{path} (a Secret)", obj.reveal()
            continue
        if isinstance(obj, (str, bytes, bytearray, memoryview)):
            yield path, obj if isinstance(obj, (str, bytes)) else bytes(obj)
            continue
        if level >= depth:
            continue
        if isinstance(obj, dict):
            items = [(f"{path}[{k!r}]", v) for k, v in obj.items()] + [(f"{path}.keys()", list(obj))]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            items = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        else:
            items = []
            if isinstance(obj, BaseException):
                items += [
                    (f"{path}.__cause__", obj.__cause__),
                    (f"{path}.__context__", obj.__context__),
                    (f"{path}.args", obj.args),
                ]
            try:
                attrs = vars(obj)
            except TypeError:
                attrs = {
                    name: getattr(obj, name, None)
                    for name in getattr(type(obj), "__slots__", ())
                    if isinstance(name, str)
                }
            items += [(f"{path}.{k}", v) for k, v in attrs.items()]
        todo += [(v, p, level + 1) for p, v in items]


# -- the account the scan runs against ----------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_broker():
    """A local broker that accepts only the scan's keys (no rate limit: 429s are injected)."""
    with LocalBroker(key=KEY, secret=SECRET, rate_limit=None) as local:
        yield local


@dataclass
class Account:
    broker: LocalBroker
    home: Path

    @property
    def url(self) -> str:
        return self.broker.url

    def variables(self, **extra: str) -> dict[str, str]:
        return {
            "ALPACA_API_KEY": KEY,
            "ALPACA_API_SECRET": SECRET,
            "ALPACA_ENVIRONMENT": "paper",
            "ALPACA_TRADING_URL": self.url,
            "ALPACA_DATA_URL": self.url,
            "ALPACA_NB_HOME": str(self.home),
            **extra,
        }

    def connect(self, **extra: str) -> AlpacaService:
        """A paper account on the scan's broker, set up as a user would: Settings from variables."""
        settings = Settings.load(self.variables(**extra))
        return AlpacaService(settings=settings).initialize_sync(settings.credentials)


@pytest.fixture
def account(keyed_broker, caplog):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    keyed_broker.faults.clear()
    yield Account(keyed_broker, Path(os.environ["ALPACA_NB_HOME"]))
    keyed_broker.faults.clear()


def buy(qty: float = 1, symbol: str = "AAPL") -> AlpacaOrderRequest:
    return AlpacaOrderRequest(symbol=symbol, qty=qty, side="buy", type="market", time_in_force="day")


# -- every error class, provoked for real ------------------------------------------------------


def _wrong_secret(acct: Account) -> None:
    AlpacaService(InMemoryOrderStore()).initialize_sync(
        AlpacaCredentials(KEY, WRONG_SECRET, "paper"), trading_url=acct.url, data_url=acct.url
    )


def _refused_keys_mid_session(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/account", status=401)
    svc.get_account_sync()


def _rejected_order(acct: Account) -> None:
    acct.connect().place_order_sync("scan", buy(10_000_000))  # far beyond the buying power: 403


def _injected_403(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/orders", method="POST", status=403)
    svc.place_order_sync("scan", buy())


def _unknown_order_id(acct: Account) -> None:
    acct.connect().cancel_order_sync(str(uuid.uuid4()))


def _refused_by_alpaca_422(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/orders", method="POST", status=422)
    svc.place_order_sync("scan", buy())


def _refused_before_sending(acct: Account) -> None:
    acct.connect().place_order_sync("scan", buy(-5))


def _path_in_order_id(acct: Account) -> None:
    acct.connect().cancel_order_sync("../positions")


def _rate_limited(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/account", status=429)  # resets in 60 s: beyond the bounded wait
    svc.get_account_sync()


def _timeout(acct: Account) -> None:
    svc = acct.connect(ALPACA_NB_TIMEOUT="0.3")
    acct.broker.faults.add(path="/v2/account", delay=2)
    svc.get_account_sync()


def _connection_refused(acct: Account) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    settings = Settings.load(acct.variables(ALPACA_TRADING_URL=closed, ALPACA_DATA_URL=closed))
    AlpacaService(settings=settings).initialize_sync(settings.credentials)


def _server_error(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/account", status=503)
    svc.get_account_sync()


def _cut_off_body(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/positions", cut_body=True)
    svc.get_positions_sync()


def _outcome_unknown(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/orders", method="POST", drop_after=True)
    acct.broker.faults.add(path="/v2/orders:by_client_order_id", status=500, times=50)
    svc.place_order_sync("scan", buy())


def _other_broker_answer(acct: Account) -> None:
    svc = acct.connect()
    acct.broker.faults.add(path="/v2/account", status=409)
    svc.get_account_sync()


def _bad_timeout_setting(acct: Account) -> None:
    Settings.load(acct.variables(ALPACA_NB_TIMEOUT="soon"))


def _password_in_url(acct: Account) -> None:
    Settings.load(acct.variables(ALPACA_TRADING_URL=f"http://{KEY}:{SECRET}@127.0.0.1:{acct.broker.port}"))


def _paper_at_the_live_host(acct: Account) -> None:
    Settings.load(acct.variables(ALPACA_TRADING_URL="https://api.alpaca.markets"))


def _live_unarmed(acct: Account) -> None:
    acct.connect(ALPACA_ENVIRONMENT="live").place_order_sync("scan", buy())


def _unreadable_ledger(acct: Account) -> None:
    path = acct.home / "garbage.duckdb"
    path.write_bytes(b"this is not a DuckDB file\0" * 4096)
    Ledger(path).list()


def _ledger_held_by_another_process(acct: Account) -> None:
    path = acct.home / "held.duckdb"
    Ledger(path).list()  # created and migrated
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        Ledger(path, busy_timeout=0.3).list()
    finally:
        holder.stdin.close()
        holder.wait(30)


def _duplicate_in_the_ledger(acct: Account) -> None:
    svc = acct.connect()
    placed = svc.place_order_sync("scan", buy())
    svc.order_service.create(placed)  # recorded already


def _value_too_big_for_the_ledger(acct: Account) -> None:
    from decimal import Decimal

    svc = acct.connect()
    placed = svc.place_order_sync("scan", buy())
    placed.client_order_id, placed.alpaca_order_id = f"nb-{uuid.uuid4().hex}", None
    placed.qty = Decimal("1e40")
    svc.order_service.create(placed)


# (name, the error class it must raise, how)
SCENARIOS: list[tuple[str, type[AlpacaNbError], Callable[[Account], None]]] = [
    ("401 wrong secret", AuthenticationError, _wrong_secret),
    ("401 mid-session", AuthenticationError, _refused_keys_mid_session),
    ("403 buying power", OrderRejectedError, _rejected_order),
    ("403 injected", OrderRejectedError, _injected_403),
    ("404 unknown order", NotFoundError, _unknown_order_id),
    ("422 injected", OrderValidationError, _refused_by_alpaca_422),
    ("bad qty before sending", OrderValidationError, _refused_before_sending),
    ("path in an order id", InvalidArgumentError, _path_in_order_id),
    ("429", RateLimitError, _rate_limited),
    ("timeout", NetworkError, _timeout),
    ("connection refused", NetworkError, _connection_refused),
    ("503", NetworkError, _server_error),
    ("cut-off body", NetworkError, _cut_off_body),
    ("POST lost, lookup 500", OrderOutcomeUnknownError, _outcome_unknown),
    ("409", BrokerError, _other_broker_answer),
    ("bad ALPACA_NB_TIMEOUT with keys set", ConfigurationError, _bad_timeout_setting),
    ("password in ALPACA_TRADING_URL", ConfigurationError, _password_in_url),
    ("paper at the live host", ConfigurationError, _paper_at_the_live_host),
    ("live order unarmed", LiveTradingNotArmed, _live_unarmed),
    ("unreadable ledger file", LedgerError, _unreadable_ledger),
    ("ledger held by another process", LedgerBusyError, _ledger_held_by_another_process),
    ("client_order_id recorded twice", DuplicateOrderError, _duplicate_in_the_ledger),
    ("qty beyond the ledger's columns", UnfitValueError, _value_too_big_for_the_ledger),
]


def test_the_scenarios_provoke_every_error_class():
    classes = {obj for obj in vars(errors_module).values() if isinstance(obj, type) and issubclass(obj, AlpacaNbError)}
    provoked = {expected for _, expected, _ in SCENARIOS}
    # AlpacaNbError itself is never raised bare: every scenario's error is one.
    assert classes - provoked == {AlpacaNbError}, "add a scenario for each new error class"


@pytest.mark.parametrize("name, expected, provoke", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_no_error_shows_a_key_in_its_verbose_traceback_or_the_logs(
    name, expected, provoke, account, caplog, capfd, reliability_figures
):
    try:
        provoke(account)
    except BaseException as err:
        caught = err
    else:
        raise AssertionError(f"{name}: nothing was raised")
    scan = Scan()
    scan.exception(name, caught)
    scan.logs(name, caplog, capfd)
    assert isinstance(caught, expected), f"{name}: expected {expected.__name__}, got {caught!r}"
    scan.assert_clean(reliability_figures)


# -- a whole session: objects, logs, the ledger and its journal ---------------------------------


def test_a_session_shows_no_key_in_objects_logs_ledger_or_journal(account, caplog, capfd, reliability_figures):
    svc = account.connect()
    updates: list = []
    hub = svc.streams
    hub.on_trade_update(updates.append)
    order = svc.place_order_sync("scan", buy(), tags=["scan"])
    wait_for(lambda: svc.sync_order_status_sync(order).status.value == "filled", what="the order filled")
    wait_for(lambda: updates, what="a trade update")
    svc.get_positions_sync()
    svc.sync()
    svc.reconcile()

    scan = Scan()
    ledger = svc.order_service
    # The journal as it lies on disk before it is moved into DuckDB, then every file after.
    for path in sorted(p for p in account.home.rglob("*") if p.is_file()):
        scan.text(f"file {path.relative_to(account.home)} (before the drain)", path.read_bytes())
    public = {
        "service": svc,
        "broker": svc.broker,
        "settings": svc.settings,
        "credentials": svc.settings.credentials,
        "endpoints": svc.broker.endpoints,
        "trading client": svc.broker.trading,
        "data client": svc.broker.data,
        "session": svc.broker.session,
        "ledger": ledger,
        "stream hub": hub,
        "order": order,
    }
    for where, obj in public.items():
        scan.object(where, obj)
    scan.object("local broker", account.broker, inside=False)
    scan.object("local broker.sim", account.broker.sim, inside=False)
    hub.stop(1)

    ledger.drain()
    tables = ledger.sql("SELECT table_name FROM information_schema.tables")["table_name"].tolist()
    assert "managed_orders" in tables
    for table in tables:
        scan.text(f"ledger table {table}", ledger.sql(f'SELECT * FROM "{table}"').to_csv())
    for path in sorted(p for p in account.home.rglob("*") if p.is_file()):
        scan.text(f"file {path.relative_to(account.home)}", path.read_bytes())
    assert any("connected" in r.getMessage() for r in caplog.records)  # the DEBUG capture was on
    scan.logs("session", caplog, capfd)
    scan.assert_clean(reliability_figures)


# -- the executed example notebooks ------------------------------------------------------------

ALPACA_KEY_SHAPE = re.compile(r"\b[PA]K[A-Z0-9]{18}\b")


def test_the_executed_notebooks_store_no_key(reliability_figures):
    """The notebooks ran against a local broker with its local keys: neither those, nor the
    scan's keys, nor anything shaped like an Alpaca key id is in any stored output."""
    scan = Scan(needles={**NEEDLES, "the local key": LOCAL_KEY, "the local secret": LOCAL_SECRET})
    outputs = 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for n, cell in enumerate(notebook["cells"]):
            for output in cell.get("outputs", []):
                outputs += 1
                texts = [
                    output.get("text", ""),
                    *output.get("traceback", []),
                    *(v for k, v in output.get("data", {}).items() if not k.startswith("image/")),
                ]
                text = "\n".join(
                    t if isinstance(t, str) else json.dumps(t) if not isinstance(t, list) else "".join(t) for t in texts
                )
                scan.text(f"{path.name} cell {n}", text)
                if ALPACA_KEY_SHAPE.search(text):
                    scan.found.append(f"an Alpaca-shaped key id in {path.name} cell {n}")
    assert outputs > 0, "the notebooks hold no stored outputs: run make notebooks"
    scan.assert_clean(reliability_figures)
