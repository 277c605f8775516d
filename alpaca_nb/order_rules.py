"""The rules of the order paths that are not a request's shape: who, tags, notes, ids in URLs,
and what makes two records the same order.

Every function raises :class:`~alpaca_nb.errors.InvalidArgumentError` (or its subclass
:class:`~alpaca_nb.errors.OrderValidationError`) naming the argument and the fix, before
anything is sent::

    check_notes(None)              # InvalidArgumentError: notes must be a string ...
    order_id_path("../positions")  # InvalidArgumentError: order id must be a UUID ...
    order_differences(managed, alpaca_json)   # [("symbol", "AAPL", "MSFT")] or []
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from .errors import InvalidArgumentError, OrderValidationError

MAX_USER = 64
MAX_TAG = 100
MAX_TAGS = 50
MAX_NOTES = 10_000


def _text_ok(value: str) -> bool:
    """Printable-or-whitespace text that UTF-8 can hold (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_user(user: Any) -> str:
    """``user``: a non-empty string of at most 64 characters naming who places the order."""
    if not isinstance(user, str) or not user.strip():
        raise OrderValidationError(
            "user must be a non-empty string naming who places the order, e.g. user='ana'", "user"
        )
    if len(user.strip()) > MAX_USER or not user.strip().isprintable() or not _text_ok(user):
        raise OrderValidationError(f"user must be printable text of at most {MAX_USER} characters", "user")
    return user.strip()


def check_tags(tags: Any) -> tuple[str, ...]:
    """``tags``: any iterable of non-empty strings, e.g. ``["momentum", "week-48"]``, as a tuple;
    None means no tags. A string alone is refused (a list is meant). One rule for
    :class:`~alpaca_nb.models.AlpacaOrderRequest` and ``place_order(tags=...)``."""
    if tags is None:
        return ()
    if isinstance(tags, (str, bytes, bytearray, Mapping)) or not isinstance(tags, Iterable):
        raise OrderValidationError(
            f"tags={tags!r} is not valid: give a list of strings, e.g. tags=['momentum'] (or None)", "tags"
        )
    items = tuple(tags)  # once: a generator can be read only once
    if len(items) > MAX_TAGS:
        raise OrderValidationError(f"at most {MAX_TAGS} tags per order", "tags")
    for tag in items:
        if (
            not isinstance(tag, str)
            or not tag.strip()
            or len(tag) > MAX_TAG
            or not tag.isprintable()
            or not _text_ok(tag)
        ):
            raise OrderValidationError(
                f"tags holds {tag!r}: every tag is printable text of 1 to {MAX_TAG} characters, e.g. tags=['momentum']",
                "tags",
            )
    return items


def check_notes(notes: Any) -> str:
    """``notes``: a string of at most 10,000 characters; None means no notes (``""``)."""
    if notes is None:
        return ""
    if not isinstance(notes, str):
        raise OrderValidationError(f"notes must be a string (use '' for no notes), not {type(notes).__name__}", "notes")
    if len(notes) > MAX_NOTES:
        raise OrderValidationError(f"notes take at most {MAX_NOTES:,} characters", "notes")
    if not _text_ok(notes):
        raise OrderValidationError("notes must be valid text (this has a lone surrogate: half a character)", "notes")
    return notes


def append_note(notes: str, note: str) -> str:
    """``notes`` with ``note`` added after a ``; ``."""
    return f"{notes}; {note}" if notes else note


def is_uuid(value: Any) -> bool:
    """Is ``value`` a UUID in its canonical text form (how Alpaca writes order ids)?"""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def order_id_path(order_id: Any, argument: str = "order_id") -> str:
    """An Alpaca order id, checked to be a UUID, ready for a URL path (never ``../positions``)."""
    if not is_uuid(order_id):
        raise InvalidArgumentError(
            f"{argument} must be an Alpaca order id (a UUID like '61e69015-8549-4bfd-b9c3-01e75843f47d'), "
            f"got {order_id!r}: pass the ManagedOrder, or its alpaca_order_id",
            argument,
        )
    return quote(order_id.lower(), safe="-")


def symbol_path(value: Any, argument: str = "symbol") -> str:
    """A ticker checked by :func:`alpaca_nb.params.symbol` (ASCII, Alpaca's grammar), upper-cased
    and quoted for a URL path (``BTC/USD`` stays one segment)."""
    from .params import symbol

    return quote(symbol(value, argument), safe=".-")


def _number(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value)).lower()


def order_differences(order: Any, other: Any) -> list[tuple[str, Any, Any]]:
    """What makes ``order`` and ``other`` two different orders: ``(field, order's, other's)``
    for each of symbol, side, type, qty or notional and the limit / stop prices that differ.

    Each side is a :class:`~alpaca_nb.models.ManagedOrder`, an
    :class:`~alpaca_nb.models.AlpacaOrderRequest` or Alpaca's order JSON. A trailing stop's
    ``stop_price`` moves with the market, so it is not compared; a value one side lacks (an
    order imported without a price) is not a difference.
    """

    def get(record: Any, name: str) -> Any:
        if isinstance(record, Mapping):
            if name == "type":
                return record.get("type") or record.get("order_type")
            return record.get(name)
        return getattr(record, name, None)

    found: list[tuple[str, Any, Any]] = []
    for name in ("symbol", "side", "type"):
        mine, theirs = _text(get(order, name)), _text(get(other, name))
        if mine and theirs and mine != theirs:
            found.append((name, mine, theirs))
    trailing = "trailing_stop" in (_text(get(order, "type")), _text(get(other, "type")))
    for name in ("qty", "notional", "limit_price", "stop_price"):
        if name == "stop_price" and trailing:
            continue
        ours, others = _number(get(order, name)), _number(get(other, name))
        if ours is not None and others is not None and ours != others:
            found.append((name, format(ours.normalize(), "f"), format(others.normalize(), "f")))
    return found


def is_duplicate_client_order_id(err: Exception) -> bool:
    """Is ``err`` the broker's refusal of a ``client_order_id`` it already holds?"""
    text = str(err).lower()
    return "client_order_id" in text and ("unique" in text or "duplicate" in text or "already" in text)
