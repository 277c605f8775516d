"""Isolation for every test and notebook run: no .env, no real account, no user's home.

Loaded before tests/ and notebooks/ (it sits at the root). Whatever the developer has in
their environment or in a ``.env`` beside the clone, the suite:

- drops every ``ALPACA_*`` variable and reads no ``.env`` (``ALPACA_NB_DOTENV=off``), so it
  always runs against a local broker;
- refuses any host but this machine, twice: alpaca_nb itself (``ALPACA_NB_LOOPBACK_ONLY=1``,
  inherited by notebook kernels and child processes) and, in this process, every socket;
- runs with ``HOME`` and pytest's temporary directories inside one private folder that is
  removed when the session ends, so nothing is left behind in the temp directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="alpaca_nb-tests-"))
_KEEP = {"ALPACA_OPENAPI_DIR"}

for _name in [n for n in os.environ if n.startswith("ALPACA_") and n not in _KEEP]:
    del os.environ[_name]
os.environ["ALPACA_NB_DOTENV"] = "off"
os.environ["ALPACA_NB_LOOPBACK_ONLY"] = "1"
os.environ["ALPACA_NB_HOME"] = str(SESSION_DIR / "alpaca_nb")
os.environ["HOME"] = str(SESSION_DIR / "home")
(SESSION_DIR / "home").mkdir()


def _loopback(address) -> bool:
    from alpaca_nb.hosts import is_loopback_host  # the rule alpaca_nb itself applies

    return not isinstance(address, tuple) or is_loopback_host(address[0])  # a str: a unix socket


class NonLoopbackConnection(AssertionError):
    """A test tried to reach a host outside this machine."""


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
        raise NonLoopbackConnection(f"tests reach only 127.0.0.1 / ::1, not {address!r}")
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
        raise NonLoopbackConnection(f"tests reach only 127.0.0.1 / ::1, not {address!r}")
    return _connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not config.option.basetemp:
        config.option.basetemp = str(SESSION_DIR / "pytest")


def pytest_unconfigure(config):
    from alpaca_nb.sim import process

    for state in SESSION_DIR.rglob("broker.json"):  # any detached local broker a test left
        try:
            process.stop(state.parent)
        except Exception:
            pass
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
