"""The default service: the account :func:`alpaca_nb.connect` connected last.

``nb.orders()``, ``nb.bars(...)``, the widgets and ``stream_hub()`` use it when no service is
given. It lives here, apart from the package root and from the service, so that everything that
needs it imports this small module and nothing imports back: the root registers how to connect
(:func:`set_connector`), and the first use without a service connects that way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_default: Any = None
_lock = threading.Lock()
_connector: Callable[[], Any] | None = None


def set_connector(connect: Callable[[], Any]) -> None:
    """How :func:`default_service` connects on first use (the root's ``connect``)."""
    global _connector
    _connector = connect


def set_default(service: Any) -> None:
    """Make ``service`` the default (``None``: none, the next use connects again)."""
    global _default
    with _lock:
        _default = service


def current() -> Any:
    """The default service, or None if nothing has connected yet."""
    with _lock:
        return _default


def default_service() -> Any:
    """The service of the last :func:`alpaca_nb.connect`, connecting on first use."""
    service = current()
    if service is not None:
        return service
    if _connector is None:  # pragma: no cover - the package root registers it on import
        raise RuntimeError("alpaca_nb.session: no connector registered (import alpaca_nb first)")
    return _connector()
