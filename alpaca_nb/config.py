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
``ALPACA_NB_TIMEOUT``   seconds before an HTTP request gives up (default 10, at most 300)
``ALPACA_NB_DOTENV``    ``off`` reads no ``.env`` at all; a path reads that file only
``ALPACA_NB_LOOPBACK_ONLY``  ``1`` refuses every host but 127.0.0.1 / localhost / ::1
=====================  ============================================================

The last two are read from the real environment only (never from ``.env``): the test suite
sets them so that no ``.env`` and no real account is ever reached from a test or notebook.

The keys are wrapped as :class:`~alpaca_nb.secret.Secret` the moment they are read, so no
mapping, frame or traceback here shows them. A URL is a host only: one with ``user:password@``
is refused, and so is a ``paper`` or ``local`` account pointed at Alpaca's live trading host
(see :mod:`alpaca_nb.hosts`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigurationError
from .hosts import check_trading_host, check_url
from .models import AlpacaCredentials, AlpacaEnvironment
from .secret import Secret, guard_url

ENV_VARS = (
    "ALPACA_API_KEY",
    "ALPACA_API_SECRET",
    "ALPACA_ENVIRONMENT",
    "ALPACA_NB_LEDGER",
    "ALPACA_NB_HOME",
    "ALPACA_TRADING_URL",
    "ALPACA_DATA_URL",
    "ALPACA_DATA_FEED",
    "ALPACA_NB_TIMEOUT",
)
SECRET_VARS = ("ALPACA_API_KEY", "ALPACA_API_SECRET")
URL_VARS = ("ALPACA_TRADING_URL", "ALPACA_DATA_URL")
FEEDS = ("iex", "sip", "delayed_sip", "boats", "overnight", "otc")


# A request's life must stay far below AlpacaService.UNPLACED_AFTER (600 s), so that an intent
# is never settled as "never placed" while its request might still land.
MAX_TIMEOUT = 300.0


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


def dotenv_path(start: Path | None = None) -> Path | None:
    """The ``.env`` to read: none when ``ALPACA_NB_DOTENV`` is off, that file when it names
    one, else the nearest from ``start`` upward."""
    switch = os.environ.get("ALPACA_NB_DOTENV", "").strip()
    if switch.lower() in ("0", "off", "no", "false", "none"):
        return None
    if switch:
        return Path(switch).expanduser() if Path(switch).expanduser().is_file() else None
    return find_dotenv(start)


def guarded(name: str, value: str) -> str:
    """``value`` as a :class:`~alpaca_nb.secret.Secret` when variable ``name`` holds one (a key,
    or a URL carrying a password), else unchanged: what every mapping of settings stores."""
    if name in SECRET_VARS:
        return Secret(value)
    return guard_url(value) if name in URL_VARS else value


def read_environment(start: Path | None = None) -> dict[str, str]:
    """Our variables from ``.env`` overlaid by the real environment (which wins).

    The keys come back as :class:`~alpaca_nb.secret.Secret` (see :func:`guarded`), so neither
    this mapping nor any frame that holds it shows them.
    """
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    path = dotenv_path(start)
    if path is not None:
        merged.update({k: guarded(k, v) for k, v in dotenv_values(path).items() if k in ENV_VARS and v})
    merged.update({k: guarded(k, v) for k, v in os.environ.items() if k in ENV_VARS and v})
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
        """Read and check the settings; raises :class:`ConfigurationError` naming the fix.

        ``env`` (default: the environment and ``.env``) may hold the keys in clear text; they
        are wrapped as :class:`~alpaca_nb.secret.Secret` first, and ``env`` itself is dropped,
        so a verbose traceback from here shows neither.
        """
        values = read_environment() if env is None else {k: guarded(k, v) for k, v in env.items() if v}
        del env  # the caller's mapping may hold the keys in clear text: keep no reference to it
        key, secret = values.get("ALPACA_API_KEY"), values.get("ALPACA_API_SECRET")
        if bool(key) != bool(secret):
            missing = "ALPACA_API_SECRET" if key else "ALPACA_API_KEY"
            raise ConfigurationError(
                f"{missing} is not set but its pair is: set both ALPACA_API_KEY and "
                "ALPACA_API_SECRET (in the environment or .env), or neither for the local broker"
            )
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
                    "use 'local' for the built-in broker, 'paper' or 'live' with your keys"
                ) from None
        if environment is not AlpacaEnvironment.LOCAL and not key:
            raise ConfigurationError(
                f"ALPACA_ENVIRONMENT={environment.value} needs ALPACA_API_KEY and ALPACA_API_SECRET: "
                "set them (in the environment or .env), or use ALPACA_ENVIRONMENT=local"
            )
        feed = values.get("ALPACA_DATA_FEED", "iex").strip().lower()
        if feed not in FEEDS:
            raise ConfigurationError(f"ALPACA_DATA_FEED={feed!r} is not one of {', '.join(FEEDS)}")
        try:
            timeout = float(values.get("ALPACA_NB_TIMEOUT", "10"))
            if not 0 < timeout <= MAX_TIMEOUT:
                raise ValueError
        except ValueError:
            raise ConfigurationError(
                f"ALPACA_NB_TIMEOUT must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
                "e.g. ALPACA_NB_TIMEOUT=10"
            ) from None
        for var in URL_VARS:
            if values.get(var):
                check_url(var, values[var])
        if values.get("ALPACA_TRADING_URL"):
            check_trading_host(environment, values["ALPACA_TRADING_URL"])
        home = home_dir(values)
        ledger = ledger_path(values)
        creds = AlpacaCredentials(key, secret, environment)
        return cls(
            credentials=creds,
            ledger_path=ledger,
            home=home,
            trading_url=(values.get("ALPACA_TRADING_URL") or "").rstrip("/") or None,
            data_url=(values.get("ALPACA_DATA_URL") or "").rstrip("/") or None,
            feed=feed,
            timeout=timeout,
        )
