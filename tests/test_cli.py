"""``alpaca-nb sync | reconcile | ledger ...`` run as a user runs them: a separate process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest
from brokers import wait_for

from alpaca_nb.cli import main
from alpaca_nb.ledger import Ledger
from alpaca_nb.ledger import rows as ledger_rows
from alpaca_nb.models import AlpacaEnvironment, ManagedOrder


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alpaca_nb.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(tmp_path):
    values = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    values["ALPACA_NB_HOME"] = str(tmp_path / "home")
    values["ALPACA_NB_LEDGER"] = str(tmp_path / "ledger.duckdb")
    return values


def test_ledger_commands_read_the_file_without_a_broker(env, tmp_path):
    ledger = Ledger(env["ALPACA_NB_LEDGER"], account_id="acct-1", environment="local")
    for cid, user, symbol in (("nb-c1", "ana", "AAPL"), ("nb-c2", "bob", "MSFT")):
        ledger.create(
            ManagedOrder(
                client_order_id=cid,
                user=user,
                symbol=symbol,
                side="buy",
                type="market",
                environment=AlpacaEnvironment.LOCAL,
                qty=1,
            )
        )
    ledger.create(
        ManagedOrder(
            client_order_id="nb-c3",
            user="ana",
            symbol="SPY",
            side="sell",
            type="market",
            environment=AlpacaEnvironment.LOCAL,
            qty=2,
        ),
        new_id=True,
    )  # still journaled

    mine = cli("ledger", "orders", "--user", "ana", env=env)
    assert mine.returncode == 0, mine.stderr
    assert "nb-c1" in mine.stdout and "nb-c3" in mine.stdout and "nb-c2" not in mine.stdout
    counted = cli("ledger", "sql", "SELECT symbol, count(*) AS n FROM managed_orders GROUP BY ALL ORDER BY 1", env=env)
    assert counted.stdout.split() == ["symbol", "n", "AAPL", "1", "MSFT", "1", "SPY", "1"]
    history = cli("ledger", "events", "nb-c2", env=env)
    assert "created" in history.stdout and "pending" in history.stdout
    out = tmp_path / "orders.csv"
    assert cli("ledger", "export", str(out), env=env).stdout.strip() == str(out)
    assert out.read_text().count("\n") == 4  # a header and three orders
    assert cli("ledger", "path", env=env).stdout.strip() == env["ALPACA_NB_LEDGER"]
    assert "empty" in cli("ledger", "drain", env=env).stdout
    assert "(no rows)" in cli("ledger", "fills", env=env).stdout
    refused = cli("ledger", "sql", "DELETE FROM managed_orders", env=env)
    assert refused.returncode != 0 and "read-only" in refused.stderr


def test_sync_and_reconcile_against_the_configured_broker(env, broker):
    env.update(
        ALPACA_ENVIRONMENT="paper",
        ALPACA_API_KEY=broker.key,
        ALPACA_API_SECRET=broker.secret,
        ALPACA_TRADING_URL=broker.url,
        ALPACA_DATA_URL=broker.url,
    )
    outside = TradingClient(broker.key, broker.secret, url_override=broker.url)  # Alpaca's web app, say
    far = LimitOrderRequest(symbol="MSFT", qty=1, side="buy", limit_price=1.0, time_in_force="gtc")
    outside.submit_order(far)

    synced = cli("sync", env=env)
    assert synced.returncode == 0, synced.stderr
    assert "1 new" in synced.stdout and broker.secret not in synced.stdout
    assert cli("reconcile", env=env).stdout.strip() == "in step with the broker"

    outside.submit_order(far)  # behind the ledger's back
    behind = cli("reconcile", env=env)
    assert behind.returncode == 1 and "missing_in_ledger" in behind.stdout
    orders = cli("ledger", "orders", "--status", "open", env=env)
    assert orders.stdout.count("MSFT") == 1 and "external" in orders.stdout


# -- health, and errors as one line -------------------------------------------------------------


def test_ledger_health_lists_what_is_set_aside_and_exits_1(env):
    ledger = Ledger(env["ALPACA_NB_LEDGER"], account_id="acct-1", environment="local")
    ledger.create(
        ManagedOrder(
            client_order_id="nb-ok",
            user="ana",
            symbol="AAPL",
            side="buy",
            type="market",
            environment=AlpacaEnvironment.LOCAL,
            qty=1,
        )
    )
    clean = cli("ledger", "health", env=env)
    assert clean.returncode == 0 and clean.stdout.strip().endswith("ok"), clean.stderr
    assert "schema version" in clean.stdout and env["ALPACA_NB_LEDGER"] in clean.stdout

    # A record an older alpaca_nb journaled without checking it: notes=None, which the ledger cannot hold.
    bad = ManagedOrder(
        client_order_id="nb-none",
        user="ana",
        symbol="AAPL",
        side="buy",
        type="market",
        environment=AlpacaEnvironment.LOCAL,
        qty=1,
        notes=None,
        account_id="acct-1",
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    ledger.journal.folder.mkdir(exist_ok=True)
    with open(ledger.journal.active, "a") as handle:
        handle.write(
            json.dumps(
                {
                    "kind": "intent",
                    "at": datetime.now(UTC).isoformat(),
                    "source": "submit",
                    "order": ledger_rows.order_to_json(bad),
                }
            )
            + "\n"
        )
    sick = cli("ledger", "health", env=env)
    assert sick.returncode == 1, sick.stderr
    assert "nb-none" in sick.stdout and "notes is None" in sick.stdout and "NOT OK" in sick.stdout
    drained = cli("ledger", "drain", env=env)
    assert drained.returncode == 0 and "1 record(s) still set aside" in drained.stdout


def test_errors_are_one_line_on_stderr_with_exit_2_and_tracebacks_only_when_asked(env, monkeypatch, capsys):
    Ledger(env["ALPACA_NB_LEDGER"])
    refused = cli("ledger", "sql", "SELEC 1", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        refused.stderr.startswith("alpaca-nb: error: the ledger refused this SQL") and "syntax error" in refused.stderr
    )
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr

    env_paper = {**env, "ALPACA_ENVIRONMENT": "paper"}  # no keys: a configuration error
    unset = cli("sync", env=env_paper)
    assert unset.returncode == 2 and len(unset.stderr.strip().splitlines()) == 1
    assert "ALPACA_API_KEY" in unset.stderr and "ConfigurationError" in unset.stderr

    for debug_env, args in (
        (env, ("--debug", "ledger", "sql", "SELEC 1")),
        ({**env, "ALPACA_NB_DEBUG": "1"}, ("ledger", "sql", "SELEC 1")),
    ):
        verbose = cli(*args, env=debug_env)
        assert verbose.returncode == 2 and "Traceback" in verbose.stderr
        assert verbose.stderr.strip().splitlines()[-1].startswith("alpaca-nb: error:")
    monkeypatch.setenv("ALPACA_NB_LEDGER", env["ALPACA_NB_LEDGER"])
    assert main(["ledger", "--debug", "path"]) == 0  # --debug anywhere, in process too
    assert main(["ledger", "sql", "SELECT * FROM nowhere"]) == 2
    assert "alpaca-nb: error:" in capsys.readouterr().err


HOLDER = "import sys, time, duckdb; con = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


def test_ctrl_c_while_waiting_for_a_busy_ledger_is_one_line_and_exit_130(env):
    Ledger(env["ALPACA_NB_LEDGER"])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, env["ALPACA_NB_LEDGER"]], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        waiting = subprocess.Popen(
            [sys.executable, "-m", "alpaca_nb.cli", "ledger", "orders"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        side = Path(env["ALPACA_NB_LEDGER"] + ".wait")  # where a waiter says it waits
        wait_for(side.exists, what="the CLI waiting for the ledger")
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert waiting.returncode == 130 and err.strip() == "alpaca-nb: interrupted" and out == "", err
