"""alpaca_nb: research and trade on Alpaca from Jupyter.

    import alpaca_nb as nb
    svc = nb.connect()            # local broker when no keys are configured
    nb.account(); nb.quotes(["AAPL", "MSFT"]); nb.orders()
    nb.OrderTicket(); nb.Blotter(); nb.QuoteBoard(["AAPL", "MSFT"])     # widgets
    nb.plots.candlestick(nb.bars("AAPL", "5Min", "2026-11-02"))           # matplotlib

Names are imported lazily so that ``import alpaca_nb`` (and the local broker's process, which
lives in :mod:`alpaca_nb.sim`) stays fast.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import session as _session

__version__ = "0.1.0"

# A library logs, the application decides where it goes: without a handler of the user's,
# nothing is printed (not even warnings through Python's last-resort handler).
logging.getLogger("alpaca_nb").addHandler(logging.NullHandler())

_LAZY = {
    "AlpacaService": "service",
    "InMemoryOrderStore": "service",
    "AlpacaCredentials": "models",
    "AlpacaEnvironment": "models",
    "AlpacaOrderRequest": "models",
    "AlpacaOrderSide": "models",
    "AlpacaOrderType": "models",
    "AlpacaTimeInForce": "models",
    "AlpacaOrderClass": "models",
    "TakeProfit": "models",
    "StopLoss": "models",
    "ManagedOrder": "models",
    "ManagedOrderStatus": "models",
    "Settings": "config",
    "LocalBroker": "sim",
    "stream_hub": "stream",
    "StreamHub": "stream",
    "Subscription": "stream",
    "TradeUpdate": "stream",
    "Gap": "stream",
    "on_trade_update": "stream",
    "subscribe_quotes": "stream",
    "subscribe_trades": "stream",
    "subscribe_bars": "stream",
    "on_gap": "stream",
    "stop_all": "stream",
    "live_quotes": "live",
    "live_bars": "live",
    "LiveQuotes": "live",
    "LiveBars": "live",
    "live_trades": "live",
    "LiveTrades": "live",
    "AlpacaNbError": "errors",
    "ConfigurationError": "errors",
    "AuthenticationError": "errors",
    "OrderValidationError": "errors",
    "OrderRejectedError": "errors",
    "RateLimitError": "errors",
    "NetworkError": "errors",
    "NotFoundError": "errors",
    "LiveTradingNotArmed": "errors",
    "LedgerBusyError": "errors",
    "BrokerError": "errors",
    "LedgerError": "errors",
    "InvalidArgumentError": "errors",
    "OrderOutcomeUnknownError": "errors",
    "LiveCaps": "guard",
    "DuplicateOrderError": "errors",
    "UnfitValueError": "errors",
    "OrderTicket": "widgets",
    "Blotter": "widgets",
    "PositionsView": "widgets",
    "QuoteBoard": "widgets",
    "PnLView": "widgets",
    "OrderView": "widgets",
}
# Submodules reachable as attributes (nb.plots.candlestick(...)) without importing them up front.
_SUBMODULES = ("analytics", "plots", "widgets", "ledger")
_FRAME_HELPERS = (
    "account",
    "positions",
    "orders",
    "quotes",
    "trades",
    "latest_bars",
    "snapshots",
    "bars",
    "historical_quotes",
    "historical_trades",
    "activities",
    "clock",
    "calendar",
    "assets",
    "portfolio_history",
)


def connect(*, environment: str | None = None, order_service: Any = None) -> AlpacaService:
    """A ready :class:`AlpacaService` for the configured environment; it becomes the default.

    Settings come from the environment and ``.env`` (see :mod:`alpaca_nb.config`); with no keys
    the local broker is found or started. Raises ``ConfigurationError`` / ``AuthenticationError``.
    """
    from .config import Settings, read_environment
    from .service import AlpacaService

    values = read_environment()
    if environment is not None:
        values["ALPACA_ENVIRONMENT"] = environment
    settings = Settings.load(values)
    service: AlpacaService = AlpacaService(order_service, settings=settings).initialize_sync(settings.credentials)
    _session.set_default(service)
    return service


def default_service() -> AlpacaService:
    """The service of the last :func:`connect`, connecting on first use."""
    service: AlpacaService = _session.default_service()  # session holds it untyped (it imports nothing)
    return service


_session.set_connector(connect)


def _frame_helper(name: str) -> Callable[..., Any]:
    def helper(*args: Any, **kwargs: Any) -> Any:
        return getattr(default_service(), name)(*args, **kwargs)

    from . import service as _service

    helper.__name__ = name
    helper.__doc__ = getattr(_service.AlpacaService, name).__doc__
    return helper


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _FRAME_HELPERS:
        value = _frame_helper(name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'alpaca_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_FRAME_HELPERS, *_SUBMODULES})


__all__ = ["connect", "default_service", *_LAZY, *_FRAME_HELPERS]

if TYPE_CHECKING:  # pragma: no cover
    from .service import AlpacaService
