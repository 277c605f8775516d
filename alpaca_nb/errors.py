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


class InvalidArgumentError(AlpacaNbError, ValueError):
    """An argument is invalid (type, value, format); raised before any request is sent.

    ``argument`` names the offending argument; the message says what would be accepted.
    """

    def __init__(self, message: str, argument: str | None = None):
        super().__init__(message)
        self.argument = argument


class OrderValidationError(InvalidArgumentError):
    """An order request is invalid. Raised before anything is sent, or for Alpaca's 422.

    ``field`` (also ``argument``) names the offending field when one is to blame.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field)
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


class OrderOutcomeUnknownError(NetworkError):
    """A request that may have changed an order got no definite answer, and the lookup by
    ``client_order_id`` could not settle it (lost answer, cut-off body, 5xx after sending, a
    refused or rate-limited lookup). The order may exist at the broker: it is NOT "not placed".

    ``client_order_id`` names it; the ledger row stays ``unresolved`` until
    ``sync_order_status(order)`` or ``sync()`` settles it. Placing again with the same
    ``client_order_id`` returns the existing order, never a second one.
    """

    def __init__(self, message: str, client_order_id: str | None = None, order: object = None):
        super().__init__(message)
        self.client_order_id = client_order_id
        self.order = order


class BrokerError(AlpacaNbError):
    """Any other error answer from Alpaca; ``status`` and ``code`` are Alpaca's."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class LiveTradingNotArmed(AlpacaNbError):
    """A live order was attempted before ``arm_live(...)`` or beyond its caps."""


class LedgerError(AlpacaNbError):
    """The ledger file could not be read or written (the message says why and what to do)."""


class LedgerBusyError(LedgerError):
    """Another process holds the ledger file longer than the bounded wait.

    ``path`` is the file, ``pid`` the process holding it (when DuckDB said which).
    """

    def __init__(self, message: str, path: object = None, pid: int | None = None):
        super().__init__(message)
        self.path = path
        self.pid = pid


class DuplicateOrderError(LedgerError, ValueError):
    """The ledger already records an order under this ``client_order_id``.

    Raised by :meth:`~alpaca_nb.ledger.Ledger.create` and
    :class:`~alpaca_nb.service.InMemoryOrderStore` (and set aside, for a journaled intent that
    names another order's id). ``client_order_id`` names it; the order on record is
    ``ledger.get(client_order_id)``.
    """

    def __init__(self, message: str, client_order_id: str | None = None):
        super().__init__(message)
        self.client_order_id = client_order_id


class UnfitValueError(LedgerError, ValueError):
    """A value does not fit its ledger column, so the order is not written at all (never
    stored as NULL). ``column`` names the column, ``client_order_id`` the order."""

    def __init__(self, message: str, column: str | None = None, client_order_id: str | None = None):
        super().__init__(message)
        self.column = column
        self.client_order_id = client_order_id
