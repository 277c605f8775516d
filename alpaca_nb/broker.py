"""The one module that talks to alpaca-py.

alpaca-py sets no request timeout and retries every 429 / 504 three times with 3 s sleeps, the
order POST included. Here every client gets a timeout, alpaca-py's retry is switched off, and
:meth:`Broker.call` maps every failure onto :mod:`alpaca_nb.errors`:

====================  ================================================================
401                   :class:`AuthenticationError`
403                   :class:`OrderRejectedError` with Alpaca's reason
404                   :class:`NotFoundError`
422                   :class:`OrderValidationError` with Alpaca's message
429                   a bounded wait honouring ``X-RateLimit-Reset``, then :class:`RateLimitError`
5xx, timeout, reset   :class:`NetworkError` (no definite answer: never blindly resubmit)
====================  ================================================================
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import requests
from alpaca.common.exceptions import APIError

from .errors import (AuthenticationError, BrokerError, NetworkError, NotFoundError,
                     OrderRejectedError, OrderValidationError, RateLimitError)
from .models import AlpacaCredentials, AlpacaEnvironment

log = logging.getLogger("alpaca_nb")
T = TypeVar("T")

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"


class TimeoutSession(requests.Session):
    """A ``requests`` session that applies a default timeout (alpaca-py passes none).

    It also reads the environment's proxy and CA-bundle settings (``HTTPS_PROXY``,
    ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ...) once per host instead of on every request:
    ``requests`` otherwise scans the whole environment each time, about half a millisecond,
    a third of a local order's round trip. Settings changed after the first request to a host
    apply to new sessions (a new ``connect()``).
    """

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.trust_env = False  # the environment is read once per host, below
        self._environment: dict[str, dict[str, Any]] = {}

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        origin = "/".join(str(url).split("/", 3)[:3])
        found = self._environment.get(origin)
        if found is None:
            with requests.Session() as reader:  # trust_env: what requests would read for this host
                found = reader.merge_environment_settings(origin, {}, None, None, None)
            self._environment[origin] = found
        kwargs["proxies"] = {**found["proxies"], **(kwargs.get("proxies") or {})}
        for name in ("verify", "cert"):
            if kwargs.get(name) is None and found[name] is not None:
                kwargs[name] = found[name]
        return super().request(method, url, **kwargs)


@dataclass(frozen=True)
class Endpoints:
    """Where the REST APIs and the streams live for one account."""

    trading_url: str
    data_url: str

    @property
    def trading_stream_url(self) -> str:
        return self.trading_url.replace("http", "ws", 1) + "/stream"

    def data_stream_url(self, feed: str) -> str:
        base = self.data_url.replace("http", "ws", 1)
        if "alpaca.markets" in base:
            base = base.replace("data.", "stream.data.", 1)
        return f"{base}/v2/{feed}"

    @classmethod
    def for_environment(cls, environment: AlpacaEnvironment, trading_url: str | None = None,
                        data_url: str | None = None) -> Endpoints:
        default = LIVE_URL if environment is AlpacaEnvironment.LIVE else PAPER_URL
        return cls(trading_url=(trading_url or default).rstrip("/"),
                   data_url=(data_url or DATA_URL).rstrip("/"))


class Broker:
    """alpaca-py's trading and market-data clients for one account, with timeouts and errors.

    ``max_rate_wait`` bounds how long one call may wait out Alpaca's rate limit in total.
    """

    def __init__(self, credentials: AlpacaCredentials, endpoints: Endpoints, *,
                 timeout: float = 10.0, max_rate_wait: float = 10.0):
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        self.credentials = credentials
        self.endpoints = endpoints
        self.timeout = timeout
        self.max_rate_wait = max_rate_wait
        self.trading = TradingClient(credentials.api_key, credentials.api_secret,
                                     paper=credentials.paper, url_override=endpoints.trading_url)
        self.data = StockHistoricalDataClient(credentials.api_key, credentials.api_secret,
                                              url_override=endpoints.data_url)
        for client in (self.trading, self.data):
            client._session = TimeoutSession(timeout)
            client._retry = 0  # rate limits are handled in call(); 504 is never blindly retried
        self.session = TimeoutSession(timeout)  # raw JSON calls (activities, fast frames)
        self.session.headers.update({"APCA-API-KEY-ID": credentials.api_key,
                                     "APCA-API-SECRET-KEY": credentials.api_secret})

    def __repr__(self) -> str:
        return (f"Broker({self.credentials.environment.value}, trading={self.endpoints.trading_url}, "
                f"data={self.endpoints.data_url})")

    def call(self, fn: Callable[..., T], *args: Any, what: str = "request", **kwargs: Any) -> T:
        """Run one alpaca-py call with alpaca_nb's error mapping and rate-limit policy."""
        deadline = time.monotonic() + self.max_rate_wait
        while True:
            try:
                return fn(*args, **kwargs)
            except APIError as err:
                status = err.status_code
                if status == 429:
                    reset = _header(err.response, "X-RateLimit-Reset")
                    if _wait_for_reset(reset, deadline):
                        continue
                raise map_api_error(err, what) from None
            except requests.Timeout:
                raise NetworkError(f"{what}: no answer within {self.timeout:g} s "
                                   "(set ALPACA_NB_TIMEOUT to wait longer)") from None
            except requests.ConnectionError as err:
                raise NetworkError(f"{what}: cannot reach {_host(err)} ({_reason(err)})") from None

    def get_json(self, base: str, path: str, params: dict | None = None, *, what: str = "request") -> Any:
        """A raw GET returning decoded JSON: for calls alpaca-py lacks (account activities)."""
        return json.loads(self.get_bytes(base, path, params, what=what) or b"null")

    def get_bytes(self, base: str, path: str, params: dict | None = None, *, what: str = "request") -> bytes:
        """A raw GET returning the body, with the same errors and rate-limit policy as :meth:`call`."""
        url = f"{self.endpoints.trading_url if base == 'trading' else self.endpoints.data_url}/v2{path}"

        def get() -> bytes:
            response = self.session.get(url, params=params, allow_redirects=False)
            if response.status_code >= 400:
                raise APIError(response.text, requests.HTTPError(response=response))
            return response.content

        return self.call(get, what=what)


def map_api_error(err: APIError, what: str) -> Exception:
    """Alpaca's error answer as an alpaca_nb exception, with Alpaca's own reason."""
    status = err.status_code
    code, message = _code_and_message(err)
    text = f"{what}: {message}"
    if status == 401:
        return AuthenticationError(f"{what}: Alpaca refused the API keys (401). Check ALPACA_API_KEY / "
                                   "ALPACA_API_SECRET and that ALPACA_ENVIRONMENT matches them")
    if status == 403:
        return OrderRejectedError(text)
    if status == 404:
        return NotFoundError(text)
    if status == 422 or (status == 400 and code is not None):
        return OrderValidationError(text, _field_in(message))
    if status == 429:
        reset = _header(err.response, "X-RateLimit-Reset")
        return RateLimitError(f"{what}: Alpaca's rate limit is exhausted; it resets at "
                              f"{reset or 'an unknown time'} (unix seconds). Slow down or batch requests",
                              float(reset) if reset else None)
    if status is not None and status >= 500:
        return NetworkError(f"{what}: Alpaca answered {status} ({message}); the outcome is unknown")
    return BrokerError(text, status, code)


def _code_and_message(err: APIError) -> tuple[int | None, str]:
    try:
        body = json.loads(str(err))
        return body.get("code"), str(body.get("message", body))
    except (ValueError, AttributeError):
        return None, (str(err)[:200] or "no message")


def _field_in(message: str) -> str | None:
    for word in message.replace(":", " ").replace(",", " ").split():
        if word in ("qty", "notional", "limit_price", "stop_price", "trail_price", "trail_percent",
                    "symbol", "side", "type", "time_in_force", "client_order_id", "order_class",
                    "take_profit", "stop_loss", "extended_hours"):
            return word
    return None


def _header(response: Any, name: str) -> str | None:
    return None if response is None else response.headers.get(name)


def _wait_for_reset(reset: str | None, deadline: float) -> bool:
    """Sleep until Alpaca's reset time if that fits before ``deadline``; False when it does not."""
    try:
        wait = max(0.05, float(reset) - time.time()) if reset else 1.0
    except ValueError:
        wait = 1.0
    if time.monotonic() + wait > deadline:
        return False
    log.info("rate limited by Alpaca: waiting %.1f s for the reset", wait)
    time.sleep(wait)
    return True


def _host(err: requests.ConnectionError) -> str:
    request = getattr(err, "request", None)
    url = getattr(request, "url", None) or "the broker"
    return url.split("/v2")[0]


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return type(err).__name__
