"""``alpaca-nb sync | reconcile | ledger ...`` run as a user runs them: a separate process."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest

from alpaca_nb.ledger import Ledger
from alpaca_nb.models import AlpacaEnvironment, ManagedOrder


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alpaca_nb.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def env(tmp_path):
    values = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_")}
    values["ALPACA_NB_HOME"] = str(tmp_path / "home")
    values["ALPACA_NB_LEDGER"] = str(tmp_path / "ledger.duckdb")
    return values


def test_ledger_commands_read_the_file_without_a_broker(env, tmp_path):
    ledger = Ledger(env["ALPACA_NB_LEDGER"], account_id="acct-1", environment="local")
    for cid, user, symbol in (("nb-c1", "ana", "AAPL"), ("nb-c2", "bob", "MSFT")):
        ledger.create(ManagedOrder(client_order_id=cid, user=user, symbol=symbol, side="buy", type="market",
                                   environment=AlpacaEnvironment.LOCAL, qty=1))
    ledger.create(ManagedOrder(client_order_id="nb-c3", user="ana", symbol="SPY", side="sell", type="market",
                               environment=AlpacaEnvironment.LOCAL, qty=2), new_id=True)  # still journaled

    mine = cli("ledger", "orders", "--user", "ana", env=env)
    assert mine.returncode == 0, mine.stderr
    assert "nb-c1" in mine.stdout and "nb-c3" in mine.stdout and "nb-c2" not in mine.stdout
    counted = cli("ledger", "sql", "SELECT symbol, count(*) AS n FROM managed_orders GROUP BY ALL ORDER BY 1",
                  env=env)
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
    env.update(ALPACA_ENVIRONMENT="paper", ALPACA_API_KEY=broker.key, ALPACA_API_SECRET=broker.secret,
               ALPACA_TRADING_URL=broker.url, ALPACA_DATA_URL=broker.url)
    outside = TradingClient(broker.key, broker.secret, url_override=broker.url)  # Alpaca's web app, say
    far = LimitOrderRequest(symbol="MSFT", qty=1, side="buy", limit_price=1.0, time_in_force="gtc")
    outside.submit_order(far)

    synced = cli("sync", env=env)
    assert synced.returncode == 0, synced.stderr
    assert "1 new" in synced.stdout and broker.secret not in synced.stdout
    assert cli("reconcile", env=env).stdout.strip() == "in step with the broker"

    outside.submit_order(far)                      # behind the ledger's back
    behind = cli("reconcile", env=env)
    assert behind.returncode == 1 and "missing_in_ledger" in behind.stdout
    orders = cli("ledger", "orders", "--status", "open", env=env)
    assert orders.stdout.count("MSFT") == 1 and "external" in orders.stdout
