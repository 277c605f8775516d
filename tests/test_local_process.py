"""The local broker as a process: the CLI, connect() from two processes, restarts, reset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from alpaca_nb.sim import LOCAL_KEY, LOCAL_SECRET
from alpaca_nb.sim.home import read_registry


def run_python(code: str, env: dict, timeout: float = 60) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def sim_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alpaca_nb.sim", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def home_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    env["ALPACA_NB_HOME"] = str(tmp_path / "home")
    yield env
    sim_cli("stop", env=env)  # never leave a detached broker behind


def get(url: str, path: str, key: str = LOCAL_KEY, secret: str = LOCAL_SECRET):
    req = urllib.request.Request(f"{url}{path}", headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_cli_prints_its_url_once_listening_and_stops_cleanly(tmp_path, home_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpaca_nb.sim", "--port", "0", "--seed", "3", "--state-dir", str(tmp_path / "s")],
        env=home_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("alpaca_nb local broker listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        assert get(url, "/v2/account")["status"] == "ACTIVE"
        assert get(url, "/healthz")["seed"] == 3
        with pytest.raises(urllib.error.HTTPError) as info:
            get(url, "/v2/account", key="nope", secret="nope")
        assert info.value.code == 401 and json.loads(info.value.read())["code"] == 40110000
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert read_registry(tmp_path / "s") is None


def test_cli_keys_come_from_flags(tmp_path, home_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpaca_nb.sim", "--key", "k1", "--secret", "s1", "--state-dir", str(tmp_path / "s")],
        env=home_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        assert get(url, "/v2/account", "k1", "s1")["status"] == "ACTIVE"
        with pytest.raises(urllib.error.HTTPError):
            get(url, "/v2/account")
    finally:
        proc.terminate()
        proc.wait(10)


CONNECT_AND_BUY = """
    import alpaca_nb as nb
    svc = nb.connect()
    order = svc.place_order_sync(user="p{n}", order_request=nb.AlpacaOrderRequest(
        symbol="AAPL", qty={n}, side="buy", type="market"))
    print(svc.account_id, svc.broker.endpoints.trading_url, order.alpaca_order_id)
"""

LIST_ORDERS = """
    import alpaca_nb as nb
    orders = nb.orders(status="all")   # a module-level helper connects on first use
    print(nb.default_service().account_id, ",".join(sorted(orders["id"])))
"""


def test_two_processes_share_one_local_account_that_survives_a_restart(home_env):
    first = run_python(CONNECT_AND_BUY.format(n=1), home_env).split()
    second = run_python(CONNECT_AND_BUY.format(n=2), home_env).split()
    assert first[0] == second[0], "both processes must reach the same account"
    assert first[1] == second[1], "both processes must reach the same broker"
    placed = sorted([first[2], second[2]])

    assert "stopped" in sim_cli("stop", env=home_env).stdout
    assert "not running" in sim_cli("status", env=home_env).stdout

    after = run_python(LIST_ORDERS, home_env).split()  # starts the broker again
    assert after[0] == first[0]
    assert after[1].split(",") == placed

    assert "reset" in sim_cli("reset", env=home_env).stdout
    fresh = run_python(LIST_ORDERS, home_env).split()
    assert len(fresh) == 1 or fresh[1] == "", "a reset account has no orders"


def test_start_and_status_report_the_background_broker(home_env):
    started = sim_cli("start", env=home_env)
    assert started.returncode == 0 and "running at http://127.0.0.1:" in started.stdout
    status = sim_cli("status", env=home_env)
    assert status.returncode == 0 and "running at" in status.stdout
    again = sim_cli("start", env=home_env)  # idempotent: the same broker
    assert again.stdout.split()[3] == started.stdout.split()[3]
    deadline = time.monotonic() + 5
    assert "stopped" in sim_cli("stop", env=home_env).stdout and time.monotonic() < deadline
