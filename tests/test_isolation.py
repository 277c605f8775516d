"""The suite never reaches a real account: a .env with paper keys beside the tests changes nothing.

Issue 9, finding 1: the notebooks' kernels found a ``.env`` in the clone and went for Alpaca's
paper API. The root conftest.py switches ``.env`` off (``ALPACA_NB_DOTENV=off``), drops every
``ALPACA_*`` variable and refuses every host but this machine (``ALPACA_NB_LOOPBACK_ONLY=1``);
child processes and notebook kernels inherit all three.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from alpaca_nb import ConfigurationError
from alpaca_nb.config import Settings, read_environment

PAPER_DOTENV = (
    "ALPACA_API_KEY=PKDOTENVKEY000000000\nALPACA_API_SECRET=dotenvsecret000000000000000000\nALPACA_ENVIRONMENT=paper\n"
)


def test_the_suite_runs_with_dotenv_off_and_loopback_only():
    assert os.environ["ALPACA_NB_DOTENV"] == "off" and os.environ["ALPACA_NB_LOOPBACK_ONLY"] == "1"
    assert not [
        n
        for n in os.environ
        if n.startswith("ALPACA_")
        and n not in ("ALPACA_NB_DOTENV", "ALPACA_NB_LOOPBACK_ONLY", "ALPACA_NB_HOME", "ALPACA_OPENAPI_DIR")
    ]
    home = Path(os.environ["HOME"]).resolve()
    assert home != Path("/root") and "alpaca_nb-tests-" in str(home)


def test_a_dotenv_with_paper_keys_in_the_working_directory_is_not_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(PAPER_DOTENV)
    monkeypatch.chdir(tmp_path)
    assert read_environment() == {k: v for k, v in os.environ.items() if k in ("ALPACA_NB_HOME",)}
    assert Settings.load().environment.value == "local"


def test_a_dotenv_is_read_when_the_switch_is_not_set(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(PAPER_DOTENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALPACA_NB_DOTENV")
    assert read_environment()["ALPACA_ENVIRONMENT"] == "paper"  # users keep their .env
    monkeypatch.setenv("ALPACA_NB_DOTENV", str(tmp_path / ".env"))
    assert read_environment()["ALPACA_API_KEY"] == "PKDOTENVKEY000000000"


def test_a_notebook_like_child_beside_a_paper_dotenv_connects_to_the_local_broker(tmp_path):
    """What a notebook kernel in the clone does: import, connect, look at the account."""
    (tmp_path / ".env").write_text(PAPER_DOTENV)
    code = (
        "import alpaca_nb as nb; svc = nb.connect(); print(svc.environment.value, "
        "svc.broker.endpoints.trading_url); nb.account()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    try:
        assert done.returncode == 0, done.stderr[-2000:]
        environment, url = done.stdout.split()[:2]
        assert environment == "local" and url.startswith("http://127.0.0.1:")
    finally:
        from alpaca_nb.sim import process

        process.stop(Path(os.environ["ALPACA_NB_HOME"]) / "sim")


def test_even_if_dotenv_were_read_no_host_outside_this_machine_is_reached(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(PAPER_DOTENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALPACA_NB_DOTENV")
    import alpaca_nb as nb

    with pytest.raises(ConfigurationError, match="LOOPBACK_ONLY"):
        nb.connect()


def test_the_socket_guard_is_installed_and_tells_loopback_from_the_rest():
    """Checked without sending anything anywhere: the guard's own address test."""
    guard = socket.socket.connect
    assert guard.__name__ == "_guarded_connect"
    loopback = guard.__globals__["_loopback"]
    assert loopback(("127.0.0.1", 80)) and loopback(("::1", 80, 0, 0)) and loopback(("localhost", 80))
    assert loopback("/tmp/some.sock")  # unix sockets stay on this machine
    assert not loopback(("192.0.2.1", 80)) and not loopback(("paper-api.alpaca.markets", 443))
