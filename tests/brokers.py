"""Shared test support: in-process brokers whose responses are checked against the OpenAPI spec.

Test modules import from here (``from brokers import ...``), never from ``conftest``: two
conftest modules (tests/ and notebooks/) would shadow each other under that name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MANUAL_START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def validate_recorded(broker) -> None:
    from openapi_check import validate_response

    for method, path, status, body in broker.responses:
        if path.startswith("/v2/"):
            validate_response(method, path, status, body)


def broker_fixture(request, **kwargs):
    """Yields a started in-process broker (no rate limit, responses recorded); when the test
    passed, every response it served is validated against Alpaca's OpenAPI spec."""
    from alpaca_nb.sim import LocalBroker

    broker = LocalBroker(record=True, rate_limit=None, **kwargs).start()
    try:
        yield broker
    finally:
        broker.stop()
    if request.node.rep_call.passed if hasattr(request.node, "rep_call") else True:
        validate_recorded(broker)


def service_for(broker, environment: str = "local", **kwargs):
    """An AlpacaService initialized against an in-process broker."""
    from alpaca_nb import AlpacaCredentials, AlpacaService

    return AlpacaService(**kwargs).initialize_sync(
        AlpacaCredentials(broker.key, broker.secret, environment), trading_url=broker.url, data_url=broker.url
    )


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it gives something (not None, False or an empty collection);
    returns that. A generous timeout costs nothing when things work and absorbs a loaded CI."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value is not None and value is not False and not (isinstance(value, (list, tuple, dict, set)) and not value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s")
        time.sleep(interval)
