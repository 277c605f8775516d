"""One exception tree for everything alpaca_nb raises.

Messages say what happened and what to do about it; none ever contains a key or a secret.
Catch :class:`AlpacaNbError` to handle them all.
"""
from __future__ import annotations


class AlpacaNbError(Exception):
    """Base of every alpaca_nb error."""


class ConfigurationError(AlpacaNbError):
    """Settings are missing or inconsistent; the message names the variable and the fix."""


class AuthenticationError(AlpacaNbError):
    """Alpaca refused the keys (HTTP 401)."""


class OrderValidationError(AlpacaNbError, ValueError):
    """An order request is invalid. Raised before anything is sent, or for Alpaca's 422.

    ``field`` names the offending field when one is to blame.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class OrderRejectedError(AlpacaNbError):
    """Alpaca refused the order (HTTP 403: buying power, available quantity, shorting)."""


class NotFoundError(AlpacaNbError, LookupError):
    """The order, position or asset does not exist (HTTP 404)."""


class RateLimitError(AlpacaNbError):
    """Alpaca's request budget stayed exhausted beyond the bounded wait (HTTP 429)."""

    def __init__(self, message: str, reset_at: float | None = None):
        super().__init__(message)
        self.reset_at = reset_at


class NetworkError(AlpacaNbError, ConnectionError):
    """No definite answer: connection refused or reset, timeout, or a 5xx."""


class BrokerError(AlpacaNbError):
    """Any other error answer from Alpaca; ``status`` and ``code`` are Alpaca's."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class LiveTradingNotArmed(AlpacaNbError):
    """A live order was attempted before ``arm_live(...)`` or beyond its caps."""


class LedgerBusyError(AlpacaNbError):
    """Another process holds the ledger file longer than the bounded wait.

    ``path`` is the file, ``pid`` the process holding it (when DuckDB said which).
    """

    def __init__(self, message: str, path: object = None, pid: int | None = None):
        super().__init__(message)
        self.path = path
        self.pid = pid
