"""One managed order at a time: ``ManagedOrder`` <-> ``managed_orders`` rows, and its events.

The single-order half of the ledger (the bulk half, for syncs, is :mod:`alpaca_nb.ledger_ingest`).
Every function works on a connection inside a unit of work opened by
:class:`~alpaca_nb.ledger_file.LedgerFile`.
"""
from __future__ import annotations

import enum
import json
from dataclasses import fields
from decimal import Decimal
from typing import Any

from .ledger_ingest import STATUS_RANK
from .models import (AlpacaEnvironment, AlpacaOrderClass, AlpacaOrderSide, AlpacaOrderType,
                     AlpacaTimeInForce, ManagedOrder, ManagedOrderStatus)

# managed_orders columns in ManagedOrder's field order (the names match).
ORDER_COLUMNS = tuple(f.name for f in fields(ManagedOrder))
_SELECT_ORDER = ", ".join('"user"' if c == "user" else c for c in ORDER_COLUMNS)
_ENUMS = {"side": AlpacaOrderSide, "type": AlpacaOrderType, "environment": AlpacaEnvironment,
          "status": ManagedOrderStatus, "time_in_force": AlpacaTimeInForce, "order_class": AlpacaOrderClass}


def env_value(value: Any) -> str | None:
    """``"local"`` / ``"paper"`` / ``"live"`` from an enum or any-case text (None stays None)."""
    if value is None:
        return None
    return AlpacaEnvironment.parse(value, "environment").value


def plain(value: Any) -> Any:
    """A value as stored and compared: enums as text, Decimals normalised, sequences as tuples."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def filters(clauses: list[str], params: list, user, status, symbol, tag) -> tuple[list[str], list]:
    """Add the WHERE clauses of the list filters (user, one or several statuses, symbol, tag)."""
    if user is not None:
        clauses.append('"user" = ?')
        params.append(user)
    if status is not None:
        statuses = [status] if isinstance(status, (str, enum.Enum)) else list(status)
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        params.extend(ManagedOrderStatus.parse(s, "status").value for s in statuses)
    if symbol is not None:
        clauses.append("symbol = ?")
        params.append(symbol.upper())
    if tag is not None:
        clauses.append("list_contains(tags, ?)")
        params.append(tag)
    return clauses, params


def order_row(order: ManagedOrder) -> dict[str, Any]:
    """The ``managed_orders`` columns of ``order`` (their names are ManagedOrder's fields)."""
    row = {name: plain(getattr(order, name)) for name in ORDER_COLUMNS}
    row["tags"] = list(order.tags)
    row["environment"] = env_value(order.environment)
    return row


def insert_order(con, row: dict[str, Any]) -> None:
    names = ", ".join('"user"' if c == "user" else c for c in row)
    con.execute(f"INSERT INTO managed_orders ({names}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


def update_order(con, row: dict[str, Any]) -> None:
    names = [c for c in row if c != "client_order_id"]
    assignments = ", ".join(f'{chr(34) + c + chr(34) if c == "user" else c} = ?' for c in names)
    con.execute(f"UPDATE managed_orders SET {assignments} WHERE client_order_id = ?",
                [row[c] for c in names] + [row["client_order_id"]])


def fetch_orders(con, where: str, params: list) -> list[ManagedOrder]:
    """The orders matching ``where``, oldest first."""
    rows = con.execute(f"SELECT {_SELECT_ORDER} FROM managed_orders WHERE {where} "
                       "ORDER BY created_at, client_order_id", params).fetchall()
    return [_to_order(row) for row in rows]


def _to_order(row: tuple) -> ManagedOrder:
    values = dict(zip(ORDER_COLUMNS, row))
    for name, kind in _ENUMS.items():
        if values[name] is not None:
            try:
                values[name] = kind(values[name])
            except ValueError:  # an external order of a kind alpaca_nb does not model: keep the text
                pass
    values["tags"] = tuple(values["tags"] or ())
    return ManagedOrder(**values)


def copy_stored(stored: ManagedOrder, order: ManagedOrder) -> None:
    """Make ``order`` (the caller's object) what the ledger holds."""
    for name in ORDER_COLUMNS:
        setattr(order, name, getattr(stored, name))


def is_stale(old: ManagedOrder, new: ManagedOrder) -> bool:
    """Is ``new`` an older picture of the order than the broker's ``old``?"""
    if old.alpaca_status is None:
        return False  # nothing from the broker yet: anything newer wins
    old_rank = STATUS_RANK[plain(old.status)]
    new_rank = STATUS_RANK[plain(new.status)]
    if old.status.is_final and plain(new.status) != plain(old.status):
        return True
    return new_rank < old_rank or (new_rank == old_rank and (new.filled_qty or 0) < (old.filled_qty or 0))


def insert_event(con, order: ManagedOrder, source: str, event: str, previous: Any,
                 changes: dict[str, tuple[Any, Any]]) -> None:
    """Append one ``order_events`` row; ``changes`` (field: (before, after)) becomes ``detail``."""
    # Ids are max + 1: every write holds the file exclusively, so none can collide.
    detail = {name: [_jsonable(a), _jsonable(b)] for name, (a, b) in changes.items()}
    con.execute("""
        INSERT INTO order_events VALUES (
            (SELECT coalesce(max(id), 0) + 1 FROM order_events), ?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)""",
                [order.client_order_id, order.account_id, env_value(order.environment), source, event,
                 plain(order.status), plain(previous), order.alpaca_status, order.filled_qty,
                 json.dumps(detail)])


def _jsonable(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
