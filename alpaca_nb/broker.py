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
cut-off body, other   :class:`NetworkError` too: any other failure of requests, urllib3 or
                      alpaca-py (a truncated or unreadable answer) is no definite answer
====================  ================================================================

For a request that may have changed an order, the service turns a :class:`NetworkError` into a
lookup by ``client_order_id`` and, when that cannot settle it, into
:class:`~alpaca_nb.errors.OrderOutcomeUnknownError`.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import urllib3
from alpaca.common.exceptions import APIError

from .errors import (
    AlpacaNbError,
    AuthenticationError,
    BrokerError,
    ConfigurationError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)
from .hosts import check_loopback, check_trading_host, check_url
from .models import AlpacaCredentials, AlpacaEnvironment
from .secret import guard_url

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

    # Session.request spells out its many parameters; this takes them all by keyword and passes them on.
    def request(self, method: str, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
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
    """Where the REST APIs and the streams live for one account.

    Both are ``http(s)://host[:port]`` URLs with no ``user:password@`` (refused with
    :class:`ConfigurationError`: requests would send it as a Basic login, and messages and
    tracebacks would show it). :meth:`for_environment` also refuses a paper or local account
    pointed at Alpaca's live host (:mod:`alpaca_nb.hosts`).
    """

    trading_url: str
    data_url: str

    def __post_init__(self) -> None:
        check_url("trading_url", self.trading_url)
        check_url("data_url", self.data_url)

    @property
    def trading_stream_url(self) -> str:
        return self.trading_url.replace("http", "ws", 1) + "/stream"

    def data_stream_url(self, feed: str) -> str:
        base = self.data_url.replace("http", "ws", 1)
        if "alpaca.markets" in base:
            base = base.replace("data.", "stream.data.", 1)
        return f"{base}/v2/{feed}"

    @classmethod
    def for_environment(
        cls, environment: AlpacaEnvironment, trading_url: str | None = None, data_url: str | None = None
    ) -> Endpoints:
        """Alpaca's hosts for ``environment``, or the given ones; raises :class:`ConfigurationError`
        for a URL with userinfo, a paper or local account at the live host, or (with
        ``ALPACA_NB_LOOPBACK_ONLY=1``) any host off this machine."""
        trading_url, data_url = guard_url(trading_url), guard_url(data_url)  # no password in clear here
        for name, url in (("trading_url", trading_url), ("data_url", data_url)):
            if url:
                check_url(name, url)
        default = LIVE_URL if environment is AlpacaEnvironment.LIVE else PAPER_URL
        check_trading_host(environment, trading_url or default, "trading_url")
        endpoints = cls(trading_url=(trading_url or default).rstrip("/"), data_url=(data_url or DATA_URL).rstrip("/"))
        check_loopback("trading_url", endpoints.trading_url)
        check_loopback("data_url", endpoints.data_url)
        return endpoints


class Broker:
    """alpaca-py's trading and market-data clients for one account, with timeouts and errors.

    ``max_rate_wait`` bounds how long one call may wait out Alpaca's rate limit in total.
    """

    def __init__(
        self,
        credentials: AlpacaCredentials,
        endpoints: Endpoints,
        *,
        timeout: float = 10.0,
        max_rate_wait: float = 10.0,
    ):
        from alpaca.data.historical import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        if not credentials.api_key or not credentials.api_secret:
            raise ConfigurationError(
                f"the {credentials.environment.value} environment needs ALPACA_API_KEY and ALPACA_API_SECRET"
            )
        from .config import MAX_TIMEOUT

        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
            raise InvalidArgumentError(
                f"timeout={timeout!r}: give seconds above 0 and at most {MAX_TIMEOUT:g}, e.g. timeout=10", "timeout"
            )
        self.credentials = credentials
        self.endpoints = endpoints
        self.timeout = timeout
        self.max_rate_wait = max_rate_wait
        # The keys go to alpaca-py as Secret, a str: the wire gets the characters, while the
        # header dicts that alpaca-py and requests build show <hidden> in any repr or traceback.
        self.trading = TradingClient(
            credentials.api_key, credentials.api_secret, paper=credentials.paper, url_override=endpoints.trading_url
        )
        self.data = StockHistoricalDataClient(
            credentials.api_key, credentials.api_secret, url_override=endpoints.data_url
        )
        for client in (self.trading, self.data):
            client._session = TimeoutSession(timeout)
            client._retry = 0  # rate limits are handled in call(); 504 is never blindly retried
        self.session = TimeoutSession(timeout)  # raw JSON calls (activities, fast frames)
        self.session.headers.update(
            {"APCA-API-KEY-ID": credentials.api_key, "APCA-API-SECRET-KEY": credentials.api_secret}
        )

    def __repr__(self) -> str:
        # getattr: a half-built Broker (``self`` in a verbose traceback from __init__) still prints.
        credentials, endpoints = getattr(self, "credentials", None), getattr(self, "endpoints", None)
        if credentials is None or endpoints is None:
            return "Broker(not set up)"
        return f"Broker({credentials.environment.value}, trading={endpoints.trading_url}, data={endpoints.data_url})"

    def call(self, fn: Callable[..., T], *args: Any, what: str = "request", **kwargs: Any) -> T:
        """Run one alpaca-py call with alpaca_nb's error mapping and rate-limit policy.

        Whatever fails inside alpaca-py, requests or urllib3 comes out as an
        :class:`~alpaca_nb.errors.AlpacaNbError` (see the table above); anything that is not a
        definite answer is a :class:`NetworkError`. The error is raised outside the handler, so
        it carries no ``__context__``: the failed request, its headers (the keys) and
        alpaca-py's frames are out of reach of any traceback, verbose or not.
        """
        deadline = time.monotonic() + self.max_rate_wait
        while True:
            failure: Exception | None = None
            try:
                return fn(*args, **kwargs)
            except APIError as err:
                if err.status_code == 429 and _wait_for_reset(_header(err.response, "X-RateLimit-Reset"), deadline):
                    continue
                failure = map_api_error(err, what)
            except AlpacaNbError:  # already ours (raised by a closure of ours): as it is
                raise
            except requests.Timeout:
                failure = NetworkError(
                    f"{what}: no answer within {self.timeout:g} s, so the outcome is "
                    "unknown (set ALPACA_NB_TIMEOUT to wait longer)"
                )
            except requests.ConnectionError as err:
                failure = NetworkError(f"{what}: cannot reach {_host(err)} ({_reason(err)})")
            except (
                requests.RequestException,
                urllib3.exceptions.HTTPError,
                http.client.HTTPException,
                ValueError,
                OSError,
            ) as err:  # a cut-off or garbled answer: no definite answer
                failure = NetworkError(
                    f"{what}: the answer was cut off or unreadable ({type(err).__name__}), so the outcome is unknown"
                )
            except Exception as err:
                failure = NetworkError(
                    f"{what}: unexpected {type(err).__name__} from alpaca-py "
                    f"({self._scrub(str(err))[:200]}), so the outcome is unknown"
                )
            raise failure

    def _scrub(self, text: str) -> str:
        """``text`` without the key or the secret (a third-party message may echo a header)."""
        for secret in (self.credentials.api_key, self.credentials.api_secret):
            value = str(getattr(secret, "reveal", lambda: secret)())  # noqa: B023
            if value:
                text = text.replace(value, "<hidden>")
        return text

    def get_json(self, base: str, path: str, params: dict[str, Any] | None = None, *, what: str = "request") -> Any:
        """A raw GET returning decoded JSON: for calls alpaca-py lacks (account activities).

        An answer that is not JSON (cut off, garbled) is a :class:`NetworkError`."""
        return decode_json(self.get_bytes(base, path, params, what=what), what)

    def get_bytes(self, base: str, path: str, params: dict[str, Any] | None = None, *, what: str = "request") -> bytes:
        """A raw GET returning the body, with the same errors and rate-limit policy as :meth:`call`."""
        url = f"{self.endpoints.trading_url if base == 'trading' else self.endpoints.data_url}/v2{path}"

        def get() -> bytes:
            response = self.session.get(url, params=params, allow_redirects=False)
            if response.status_code >= 400:
                raise APIError(response.text, requests.HTTPError(response=response))
            return response.content

        return self.call(get, what=what)


def decode_json(body: bytes, what: str, decode: Callable[[bytes], Any] = json.loads) -> Any:
    """``body`` decoded by ``decode``; an answer that cannot be read is no definite answer
    (:class:`NetworkError`, raised with no context)."""
    failure: NetworkError | None = None
    try:
        return decode(body or b"null")
    except Exception as err:
        failure = NetworkError(
            f"{what}: the answer was cut off or unreadable ({type(err).__name__}), so the outcome is unknown"
        )
    raise failure


def map_api_error(err: APIError, what: str) -> Exception:
    """Alpaca's error answer as an alpaca_nb exception, with Alpaca's own reason.

    Every mapped error carries ``status`` (the HTTP status) and ``code`` (Alpaca's code, or None).
    """
    status = err.status_code
    code, message = _code_and_message(err)
    mapped = _mapped(status, code, message, what, _header(err.response, "X-RateLimit-Reset"))
    vars(mapped).update(status=status, code=code)  # on every mapped error (not on every AlpacaNbError)
    return mapped


def _mapped(status: int | None, code: int | None, message: str, what: str, reset: str | None) -> Exception:
    text = f"{what}: {message}"
    if status == 401:
        return AuthenticationError(
            f"{what}: Alpaca refused the API keys (401). Check ALPACA_API_KEY / "
            "ALPACA_API_SECRET and that ALPACA_ENVIRONMENT matches them"
        )
    if status == 403:
        return OrderRejectedError(text)
    if status == 404:
        return NotFoundError(text)
    if status == 422 or (status == 400 and code is not None):
        return OrderValidationError(text, _field_in(message))
    if status == 429:
        try:
            reset_at = float(reset) if reset else None
        except ValueError:
            reset_at = None
        return RateLimitError(
            f"{what}: Alpaca's rate limit is exhausted; it resets at "
            f"{reset or 'an unknown time'} (unix seconds). Slow down or batch requests",
            reset_at,
        )
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
        if word in (
            "qty",
            "notional",
            "limit_price",
            "stop_price",
            "trail_price",
            "trail_percent",
            "symbol",
            "side",
            "type",
            "time_in_force",
            "client_order_id",
            "order_class",
            "take_profit",
            "stop_loss",
            "extended_hours",
        ):
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
