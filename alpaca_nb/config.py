"""Settings from the environment and a ``.env`` file; secrets masked everywhere.

The real environment wins over ``.env``; ``.env`` is looked for from the working directory
upward. alpaca-py reads no environment variables: everything it needs comes from here.

Variables (all optional; ``.env.example`` documents them):

=====================  ============================================================
``ALPACA_API_KEY``      Alpaca key id (paper or live)
``ALPACA_API_SECRET``   Alpaca secret key
``ALPACA_ENVIRONMENT``  ``local`` (default without keys), ``paper`` (default with), ``live``
``ALPACA_NB_LEDGER``    ledger file (default ``$ALPACA_NB_HOME/ledger.duckdb``)
``ALPACA_NB_HOME``      per-user data directory (default ``~/.alpaca_nb``)
``ALPACA_TRADING_URL``  override the trading REST host (``https://paper-api.alpaca.markets``)
``ALPACA_DATA_URL``     override the market data REST host (``https://data.alpaca.markets``)
``ALPACA_DATA_FEED``    market data feed: ``iex`` (default) or ``sip``
``ALPACA_NB_TIMEOUT``   seconds before an HTTP request gives up (default 10)
=====================  ============================================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import ConfigurationError
from .models import AlpacaCredentials, AlpacaEnvironment

ENV_VARS = ("ALPACA_API_KEY", "ALPACA_API_SECRET", "ALPACA_ENVIRONMENT", "ALPACA_NB_LEDGER",
            "ALPACA_NB_HOME", "ALPACA_TRADING_URL", "ALPACA_DATA_URL", "ALPACA_DATA_FEED",
            "ALPACA_NB_TIMEOUT")
FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "otc")


def home_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    raw = env.get("ALPACA_NB_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".alpaca_nb"


def ledger_path(env: Mapping[str, str]) -> Path:
    """``ALPACA_NB_LEDGER``, else ``ALPACA_NB_HOME``/ledger.duckdb (``~/.alpaca_nb``)."""
    raw = env.get("ALPACA_NB_LEDGER")
    return Path(raw).expanduser() if raw else home_dir(env) / "ledger.duckdb"


def find_dotenv(start: Path | None = None) -> Path | None:
    """The nearest ``.env`` from ``start`` (default: the working directory) upward."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


def read_environment(start: Path | None = None) -> dict[str, str]:
    """Our variables from ``.env`` overlaid by the real environment (which wins)."""
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    path = find_dotenv(start)
    if path is not None:
        merged.update({k: v for k, v in dotenv_values(path).items() if k in ENV_VARS and v})
    merged.update({k: v for k, v in os.environ.items() if k in ENV_VARS and v})
    return merged


@dataclass(frozen=True)
class Settings:
    """Everything alpaca_nb needs to connect; ``repr`` never shows the secret."""

    credentials: AlpacaCredentials
    ledger_path: Path
    home: Path
    trading_url: str | None = None
    data_url: str | None = None
    feed: str = "iex"
    timeout: float = 10.0
    source: str = field(default="environment", compare=False)

    @property
    def environment(self) -> AlpacaEnvironment:
        return self.credentials.environment

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and check the settings; raises :class:`ConfigurationError` naming the fix."""
        values = read_environment() if env is None else {k: v for k, v in env.items() if v}
        key, secret = values.get("ALPACA_API_KEY"), values.get("ALPACA_API_SECRET")
        if bool(key) != bool(secret):
            missing = "ALPACA_API_SECRET" if key else "ALPACA_API_KEY"
            raise ConfigurationError(
                f"{missing} is not set but its pair is: set both ALPACA_API_KEY and "
                "ALPACA_API_SECRET (in the environment or .env), or neither for the local broker")
        raw_env = values.get("ALPACA_ENVIRONMENT", "").strip().lower()
        if not raw_env:
            environment = AlpacaEnvironment.PAPER if key else AlpacaEnvironment.LOCAL
        else:
            try:
                environment = AlpacaEnvironment(raw_env)
            except ValueError:
                choices = ", ".join(e.value for e in AlpacaEnvironment)
                raise ConfigurationError(
                    f"ALPACA_ENVIRONMENT={raw_env!r} is not one of {choices}: "
                    "use 'local' for the built-in broker, 'paper' or 'live' with your keys") from None
        if environment is not AlpacaEnvironment.LOCAL and not key:
            raise ConfigurationError(
                f"ALPACA_ENVIRONMENT={environment.value} needs ALPACA_API_KEY and ALPACA_API_SECRET: "
                "set them (in the environment or .env), or use ALPACA_ENVIRONMENT=local")
        feed = values.get("ALPACA_DATA_FEED", "iex").strip().lower()
        if feed not in FEEDS:
            raise ConfigurationError(f"ALPACA_DATA_FEED={feed!r} is not one of {', '.join(FEEDS)}")
        try:
            timeout = float(values.get("ALPACA_NB_TIMEOUT", "10"))
            if not timeout > 0:
                raise ValueError
        except ValueError:
            raise ConfigurationError(
                "ALPACA_NB_TIMEOUT must be a positive number of seconds, e.g. ALPACA_NB_TIMEOUT=10") from None
        for var in ("ALPACA_TRADING_URL", "ALPACA_DATA_URL"):
            url = values.get(var)
            if url and not url.startswith(("http://", "https://")):
                raise ConfigurationError(f"{var} must be an http(s) URL (host only), got {url!r}")
        home = home_dir(values)
        ledger = ledger_path(values)
        creds = AlpacaCredentials(api_key=key or "", api_secret=secret or "", environment=environment)
        return cls(credentials=creds, ledger_path=ledger, home=home,
                   trading_url=(values.get("ALPACA_TRADING_URL") or "").rstrip("/") or None,
                   data_url=(values.get("ALPACA_DATA_URL") or "").rstrip("/") or None,
                   feed=feed, timeout=timeout)
