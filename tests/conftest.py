"""Shared fixtures: in-process local brokers and the real alpaca-py clients pointed at them.

Every response a ``broker`` fixture served is validated against Alpaca's OpenAPI spec when the
test ends, so each test that talks to the broker also checks the wire format it saw.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

# Tests never read the developer's real settings or data directory.
for _name in ("ALPACA_API_KEY", "ALPACA_API_SECRET", "ALPACA_ENVIRONMENT", "ALPACA_NB_LEDGER"):
    os.environ.pop(_name, None)

MANUAL_START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point ``$ALPACA_NB_HOME`` at a fresh directory: no test touches ~/.alpaca_nb."""
    monkeypatch.setenv("ALPACA_NB_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def validate_recorded(broker) -> None:
    from openapi_check import validate_response

    for method, path, status, body in broker.responses:
        if path.startswith("/v2/"):
            validate_response(method, path, status, body)


def _broker(request, **kwargs):
    from alpaca_nb.sim import LocalBroker

    broker = LocalBroker(record=True, rate_limit=None, **kwargs).start()
    try:
        yield broker
    finally:
        broker.stop()
    if request.node.rep_call.passed if hasattr(request.node, "rep_call") else True:
        validate_recorded(broker)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def broker(request):
    """A fresh real-time broker with in-memory state; responses checked against the spec."""
    yield from _broker(request)


@pytest.fixture
def manual_broker(request):
    """A broker whose market stands still at MANUAL_START until ``broker.step(seconds)``."""
    yield from _broker(request, manual_clock=True, start=MANUAL_START)


@pytest.fixture
def nyse_broker(request):
    """A manual-clock broker that follows NYSE sessions and holidays (tests may override it)."""
    yield from _broker(request, market_hours="nyse", manual_clock=True, start=MANUAL_START)


def broker_fixture(request, **kwargs):
    """For test modules that need a broker fixture of their own: yields a started, checked broker."""
    yield from _broker(request, **kwargs)


@pytest.fixture
def trading(broker):
    from alpaca.trading.client import TradingClient

    return TradingClient(broker.key, broker.secret, url_override=broker.url)


@pytest.fixture
def data(broker):
    from alpaca.data.historical import StockHistoricalDataClient

    return StockHistoricalDataClient(broker.key, broker.secret, url_override=broker.url)


def service_for(broker, environment: str = "local", **kwargs):
    """An AlpacaService initialized against an in-process broker."""
    from alpaca_nb import AlpacaCredentials, AlpacaService

    return AlpacaService(**kwargs).initialize_sync(
        AlpacaCredentials(broker.key, broker.secret, environment),
        trading_url=broker.url, data_url=broker.url)


@pytest.fixture
def svc(broker):
    """AlpacaService on the ``broker`` fixture (local environment, in-memory order store)."""
    return service_for(broker)
