"""The local broker's keys and request budget, as alpaca-py and raw HTTP see them."""

from __future__ import annotations

import time

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockLatestQuoteRequest
from alpaca.trading.client import TradingClient

from alpaca_nb.sim import LOCAL_KEY, LOCAL_SECRET, LocalBroker


@pytest.mark.parametrize("key, secret", [("wrong", LOCAL_SECRET), (LOCAL_KEY, "wrong"), ("", "")])
def test_wrong_keys_are_a_401_that_alpaca_py_raises_as_api_error(broker, key, secret):
    trading = TradingClient(key, secret, url_override=broker.url) if key else None
    data = StockHistoricalDataClient(key or "x", secret or "y", url_override=broker.url)
    started = time.monotonic()
    if trading is not None:
        with pytest.raises(APIError) as info:
            trading.get_account()
        assert info.value.status_code == 401 and info.value.code == 40110000
    with pytest.raises(APIError) as info:
        data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))
    assert info.value.status_code == 401
    assert time.monotonic() - started < 5, "a refusal must be immediate, not retried"


def test_missing_headers_are_a_401(broker):
    answer = requests.get(f"{broker.url}/v2/account", timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"code": 40110000, "message": "request is not authorized"}


def test_explicit_keys_replace_the_local_pair():
    with LocalBroker(key="k-1", secret="s-1") as broker:
        assert TradingClient("k-1", "s-1", url_override=broker.url).get_account().status == "ACTIVE"
        with pytest.raises(APIError):
            TradingClient(LOCAL_KEY, LOCAL_SECRET, url_override=broker.url).get_account()


def test_environment_keys_are_the_default(monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", "env-key")
    monkeypatch.setenv("ALPACA_API_SECRET", "env-secret")
    with LocalBroker() as broker:
        assert broker.key == "env-key"
        assert TradingClient("env-key", "env-secret", url_override=broker.url).get_account()


def test_rate_limit_answers_429_with_alpacas_headers():
    headers = {"APCA-API-KEY-ID": LOCAL_KEY, "APCA-API-SECRET-KEY": LOCAL_SECRET}
    with LocalBroker(rate_limit=3) as broker:
        answers = [requests.get(f"{broker.url}/v2/clock", headers=headers, timeout=5) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert all(a.headers["X-RateLimit-Limit"] == "3" for a in answers)
        reset = int(answers[-1].headers["X-RateLimit-Reset"])
        assert time.time() < reset <= time.time() + 62
        assert answers[-1].json()["code"] == 42910000
        # The budget is per key: another key is refused for its keys, not for the budget.
        other = requests.get(
            f"{broker.url}/v2/clock", timeout=5, headers={"APCA-API-KEY-ID": "x", "APCA-API-SECRET-KEY": "y"}
        )
        assert other.status_code == 401


def test_healthz_identifies_the_broker_without_keys(broker):
    info = requests.get(f"{broker.url}/healthz", timeout=5).json()
    assert info["service"] == "alpaca_nb.sim" and info["market_hours"] == "continuous"


def test_unknown_route_is_an_alpaca_style_404(broker):
    answer = requests.get(
        f"{broker.url}/v2/nothing-here",
        timeout=5,
        headers={"APCA-API-KEY-ID": broker.key, "APCA-API-SECRET-KEY": broker.secret},
    )
    assert answer.status_code == 404 and answer.json()["code"] == 40410000
