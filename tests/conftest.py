"""Shared fixtures: in-process local brokers and the real alpaca-py clients pointed at them.

Every response a ``broker`` fixture served is validated against Alpaca's OpenAPI spec when the
test ends, so each test that talks to the broker also checks the wire format it saw.
"""

from __future__ import annotations

import pytest
from brokers import MANUAL_START, broker_fixture, service_for

# The root conftest.py has already dropped every ALPACA_* variable, switched .env off and
# confined sockets to this machine: tests never read the developer's settings or home.


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point ``$ALPACA_NB_HOME`` at a fresh directory: no test touches ~/.alpaca_nb."""
    monkeypatch.setenv("ALPACA_NB_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def broker(request):
    """A fresh real-time broker with in-memory state; responses checked against the spec."""
    yield from broker_fixture(request)


@pytest.fixture
def manual_broker(request):
    """A broker whose market stands still at MANUAL_START until ``broker.step(seconds)``."""
    yield from broker_fixture(request, manual_clock=True, start=MANUAL_START)


@pytest.fixture
def nyse_broker(request):
    """A manual-clock broker that follows NYSE sessions and holidays (tests may override it)."""
    yield from broker_fixture(request, market_hours="nyse", manual_clock=True, start=MANUAL_START)


@pytest.fixture
def trading(broker):
    from alpaca.trading.client import TradingClient

    return TradingClient(broker.key, broker.secret, url_override=broker.url)


@pytest.fixture
def data(broker):
    from alpaca.data.historical import StockHistoricalDataClient

    return StockHistoricalDataClient(broker.key, broker.secret, url_override=broker.url)


@pytest.fixture
def svc(broker):
    """AlpacaService on the ``broker`` fixture (local environment; its ledger is the DuckDB file
    under the test's own ``$ALPACA_NB_HOME``)."""
    return service_for(broker)
