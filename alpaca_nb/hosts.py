"""Which host an account may be sent to: one rule, checked by ``Settings.load`` and ``Endpoints``.

- A URL is ``http(s)://host[:port]`` with no ``user:password@``: Alpaca takes its keys from
  ``ALPACA_API_KEY`` / ``ALPACA_API_SECRET``, and a password in a URL would end up in messages,
  logs and tracebacks. Messages show a refused URL with its userinfo masked.
- A ``paper`` or ``local`` account never goes to Alpaca's live trading host. Every
  ``*.alpaca.markets`` trading host but ``paper-api.alpaca.markets`` moves real money, so such
  a pairing is refused instead of running unguarded under a "paper" label. A ``live`` account
  may point anywhere (tests point it at a local broker to exercise the live guard).
- With ``ALPACA_NB_LOOPBACK_ONLY=1`` (the test suite sets it) only this machine may be reached.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .models import AlpacaEnvironment
from .secret import has_userinfo, without_userinfo

ALPACA_DOMAIN = "alpaca.markets"
PAPER_TRADING_HOST = "paper-api.alpaca.markets"


def check_url(name: str, url: str) -> None:
    """Raise :class:`ConfigurationError` unless ``url`` is an http(s) URL without userinfo.

    ``name`` is what the user set (``ALPACA_TRADING_URL``, ``trading_url``), named in the message.
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{name} must be an http(s) URL (host only), got {without_userinfo(url)!r}: "
            "e.g. https://paper-api.alpaca.markets or http://127.0.0.1:8765"
        )
    if has_userinfo(url):
        raise ConfigurationError(
            f"{name} must not carry a user name or password, got {without_userinfo(url)!r}: "
            "give the host only and put the keys in ALPACA_API_KEY / ALPACA_API_SECRET"
        )
    if not _host(url):
        raise ConfigurationError(
            f"{name} names no host, got {without_userinfo(url)!r}: "
            "e.g. https://paper-api.alpaca.markets or http://127.0.0.1:8765"
        )


def is_live_trading_host(url: str) -> bool:
    """``url`` is an Alpaca host where orders move real money (any but the paper host)."""
    host = _host(url)
    return (host == ALPACA_DOMAIN or host.endswith("." + ALPACA_DOMAIN)) and host != PAPER_TRADING_HOST


def check_trading_host(environment: AlpacaEnvironment, url: str, name: str = "ALPACA_TRADING_URL") -> None:
    """Refuse a ``paper`` or ``local`` account pointed at Alpaca's live trading host."""
    if environment is not AlpacaEnvironment.LIVE and is_live_trading_host(url):
        raise ConfigurationError(
            f"{name}={without_userinfo(url)!r} is Alpaca's live trading host, but ALPACA_ENVIRONMENT is "
            f"{environment.value!r}{' (the default when keys are set)' if environment.value == 'paper' else ''}: "
            "orders there move real money with no live guard. Use "
            f"https://{PAPER_TRADING_HOST} for paper trading, or set ALPACA_ENVIRONMENT=live "
            "(and arm the live guard) to trade real money"
        )


def loopback_only() -> bool:
    """``ALPACA_NB_LOOPBACK_ONLY`` is set (read from the real environment only, never ``.env``)."""
    return os.environ.get("ALPACA_NB_LOOPBACK_ONLY", "").strip().lower() in ("1", "true", "yes", "on")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def check_loopback(name: str, url: str) -> None:
    """With ``ALPACA_NB_LOOPBACK_ONLY=1``, refuse ``url`` unless its host is on this machine."""
    if loopback_only() and not is_loopback_host(_host(url)):
        raise ConfigurationError(
            f"ALPACA_NB_LOOPBACK_ONLY is set, so only this machine may be reached, not {_host(url)!r} ({name}): "
            "unset it to reach Alpaca, or point ALPACA_TRADING_URL / ALPACA_DATA_URL at a local broker"
        )


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""
