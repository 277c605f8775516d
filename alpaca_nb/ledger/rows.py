"""One managed order at a time: ``ManagedOrder`` <-> ``managed_orders`` rows, and its events.

The single-order half of the ledger (the bulk half, for syncs, is :mod:`alpaca_nb.ledger.ingest`).
Every function works on a connection inside a unit of work opened by
:class:`~alpaca_nb.ledger_file.LedgerFile`.

**Every row is checked before it is written** (:func:`check_order`): a value that does not fit
its column (text where a number belongs, a number beyond ``DECIMAL(38,9)``, a missing user or
``notes=None`` where the column needs a value) raises :class:`UnfitValueError` naming the
column, and nothing of the order is written. DuckDB would otherwise refuse the whole statement
(every order in it) or, reading JSON, store NULL without a word.

Errors (both are :class:`~alpaca_nb.errors.LedgerError` and ``ValueError``):
:class:`DuplicateOrderError` (the ``client_order_id`` is recorded for another order) and
:class:`UnfitValueError`.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import DuplicateOrderError, LedgerError, UnfitValueError  # noqa: F401 (re-exported)
from ..models import (
    AlpacaEnvironment,
    AlpacaOrderClass,
    AlpacaOrderSide,
    AlpacaOrderType,
    AlpacaTimeInForce,
    ManagedOrder,
    ManagedOrderStatus,
)
from .ingest import STATUS_RANK
from .schema import MONEY as _MONEY
from .schema import MONEY_LIMIT

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

log = logging.getLogger("alpaca_nb")

# managed_orders columns in ManagedOrder's field order (the names match).
ORDER_COLUMNS = tuple(f.name for f in fields(ManagedOrder))
_SELECT_ORDER = ", ".join('"user"' if c == "user" else c for c in ORDER_COLUMNS)
_DECIMALS = {f.name for f in fields(ManagedOrder) if "Decimal" in str(f.type)}
_TIMES = {f.name for f in fields(ManagedOrder) if "datetime" in str(f.type)}
_ENUMS: dict[str, type[enum.Enum]] = {
    "side": AlpacaOrderSide,
    "type": AlpacaOrderType,
    "environment": AlpacaEnvironment,
    "status": ManagedOrderStatus,
    "time_in_force": AlpacaTimeInForce,
    "order_class": AlpacaOrderClass,
}


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


def filters(
    clauses: list[str], params: list[Any], user: str | None, status: Any, symbol: str | None, tag: str | None
) -> tuple[list[str], list[Any]]:
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


def frame(result: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """A query result as a DataFrame with the dtypes of every other alpaca_nb frame, whether
    it holds values, only nulls, or no rows: text as pandas ``string``, times as
    ``datetime64[ns, UTC]`` (DuckDB gives microseconds)."""
    table = result.df()
    for position, (_name, kind, *_rest) in enumerate(result.description):
        dtype = str(table.dtypes.iloc[position])
        # (pandas takes a Series in isetitem; its stubs list scalars and arrays only)
        if str(kind) in ("VARCHAR", "JSON") and dtype != "string":
            table.isetitem(position, table.iloc[:, position].astype("string"))  # type: ignore[arg-type]
        elif dtype.startswith("datetime64[us"):
            wanted = dtype.replace("[us", "[ns")  # datetime64[ns, <its zone>]: a name known at run time
            table.isetitem(position, table.iloc[:, position].astype(wanted))  # type: ignore[call-overload]
    return table


def fetch_orders(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[ManagedOrder]:
    """The orders matching ``where``, oldest first."""
    rows = con.execute(
        f"SELECT {_SELECT_ORDER} FROM managed_orders WHERE {where} ORDER BY created_at, client_order_id", params
    ).fetchall()
    return [_to_order(row) for row in rows]


def _to_order(row: tuple[Any, ...]) -> ManagedOrder:
    values = dict(zip(ORDER_COLUMNS, row, strict=False))
    for name, kind in _ENUMS.items():
        if values[name] is not None:
            try:
                values[name] = kind(values[name])
            except ValueError:  # an external order of a kind alpaca_nb does not model: keep the text
                pass
    values["tags"] = tuple(values["tags"] or ())
    return ManagedOrder(**values)


# -- what fits a managed_orders row ---------------------------------------------------------------

_TEXT_REQUIRED = ("client_order_id", "user", "symbol")
_TEXT_OPTIONAL = ("alpaca_order_id", "account_id", "alpaca_status", "parent_client_order_id")
_ALWAYS = ("created_at", "updated_at")  # filled in by create() / update(): None only before that


def money_problem(value: Any) -> str | None:
    """Why ``value`` does not fit a ``DECIMAL(38,9)`` column (None: it fits, or is None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        return f"a {type(value).__name__} where a number belongs"
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except ArithmeticError:
        return f"{value!r} is not a number"
    if not number.is_finite():
        return f"{value!r} is not a finite number"
    if abs(number) > MONEY_LIMIT:
        return f"{value} is beyond the column's {MONEY_LIMIT:.0e} (DECIMAL(38,9))"
    return None


def check_order(order: ManagedOrder, *, complete: bool = True) -> ManagedOrder:
    """``order`` if every field fits its ``managed_orders`` column, else :class:`UnfitValueError`.

    ``complete=False`` lets ``created_at`` / ``updated_at`` be missing (a journaled answer gets
    them when it is applied).
    """
    cid = getattr(order, "client_order_id", None)

    def unfit(column: str, why: str) -> UnfitValueError:
        return UnfitValueError(
            f"order {cid!r} cannot be recorded: {column} is {why}", column, cid if isinstance(cid, str) else None
        )

    for name in _TEXT_REQUIRED:
        value = getattr(order, name)
        if not isinstance(value, str) or not value:
            raise unfit(name, f"{value!r}; it must be non-empty text")
    for name in _TEXT_OPTIONAL:
        value = getattr(order, name)
        if value is not None and not isinstance(value, str):
            raise unfit(name, f"a {type(value).__name__}; it must be text or None")
    for name, kind in _ENUMS.items():
        value = getattr(order, name)
        if value is None and name in ("time_in_force", "order_class"):
            continue
        text = value.value if isinstance(value, enum.Enum) else value
        if not isinstance(text, str):
            raise unfit(name, f"{value!r}; it must be text")
        if name in ("environment", "status"):
            try:
                kind(text)
            except ValueError:
                raise unfit(name, f"{text!r}, not one of {', '.join(k.value for k in kind)}") from None
    for name in _DECIMALS:
        value = getattr(order, name)
        if value is None and name == "filled_qty":
            raise unfit(name, "None; it must be a number (0 before any fill)")
        why = money_problem(value)
        if why is not None or isinstance(value, str):
            raise unfit(name, why or f"text ({value!r}); it must be a Decimal")
    for name in _TIMES:
        value = getattr(order, name)
        if value is None and complete and name in _ALWAYS:
            raise unfit(name, "None; it must be a time")
        if value is not None and not isinstance(value, datetime):
            raise unfit(name, f"a {type(value).__name__}; it must be a datetime")
    if not isinstance(order.tags, (tuple, list)) or not all(isinstance(t, str) for t in order.tags):
        raise unfit("tags", f"{order.tags!r}; they must be a list of text")
    if not isinstance(order.notes, str):
        raise unfit("notes", f"{order.notes!r}; it must be text ('' for none)")
    if not isinstance(order.external, bool):
        raise unfit("external", f"{order.external!r}; it must be True or False")
    return order


def same_order(a: ManagedOrder, b: ManagedOrder) -> bool:
    """Do ``a`` and ``b`` describe one order (who placed it and what was asked)?"""
    return all(plain(getattr(a, name)) == plain(getattr(b, name)) for name in _DEFINING)


_DEFINING = (
    "user",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "order_class",
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "environment",
)


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


# -- writing: what changes, then one batch of statements -----------------------------------------

# What update_change() compares to decide whether an order changed, and what its event reports.
TRACKED = (
    "status",
    "alpaca_status",
    "alpaca_order_id",
    "filled_qty",
    "filled_avg_price",
    "parent_client_order_id",
    "notes",
    "tags",
    "user",
)
_BROKER_FIELDS = ("status", "alpaca_status", "filled_qty", "filled_avg_price")


@dataclass
class Change:
    """One order's new row (``order``; ``stored``: it replaces a row already in the file) and
    the ``order_events`` row that records the change (without its id)."""

    order: ManagedOrder
    stored: bool
    event: dict[str, Any]


def event_values(
    order: ManagedOrder,
    source: str,
    event: str,
    previous: Any,
    changes: dict[str, tuple[Any, Any]],
    at: datetime | None,
) -> dict[str, Any]:
    """An ``order_events`` row but its id, JSON-ready; ``changes`` (field: (before, after))
    becomes ``detail``; ``at`` None means now."""
    detail = {name: [_jsonable(a), _jsonable(b)] for name, (a, b) in changes.items()}
    return {
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "environment": env_value(order.environment),
        "event_at": at.isoformat() if at else None,
        "source": source,
        "event": event,
        "status": plain(order.status),
        "previous_status": plain(previous),
        "alpaca_status": order.alpaca_status,
        "filled_qty": _jsonable(order.filled_qty),
        "detail": json.dumps(detail),
    }


def intent_change(
    old: ManagedOrder | None, order: ManagedOrder, source: str, at: datetime | None = None
) -> Change | None:
    """The change a journaled intent makes (its ``client_order_id`` was generated for it).

    A sync or the stream may have imported the order (as ``external``) before its intent was
    applied: the intent then claims that row (user, tags, notes) and keeps what the broker said.
    None when the same order is already recorded (an intent applied on a retry, after its
    answer recorded the row); :class:`DuplicateOrderError` when the id is recorded for another
    alpaca_nb order.
    """
    if old is None:
        return Change(order, False, event_values(order, source, "created", None, {}, at))
    if not old.external:
        if same_order(old, order):
            log.debug("ledger journal: intent %s is already recorded", order.client_order_id)
            return None
        raise DuplicateOrderError(
            f"client_order_id {order.client_order_id!r} is already recorded for another order "
            f"({old.user}: {plain(old.side)} {old.qty if old.qty is not None else '$' + str(old.notional)} "
            f"{old.symbol}, {plain(old.status)}); this intent ({order.user}: {plain(order.side)} "
            f"{order.symbol}) is not applied",
            order.client_order_id,
        )
    claimed = ManagedOrder(**{name: getattr(old, name) for name in ORDER_COLUMNS})
    claimed.user, claimed.external = order.user, False
    claimed.tags = tuple(dict.fromkeys((*order.tags, *(t for t in old.tags if t != "external"))))
    claimed.notes = "; ".join(n for n in (order.notes, old.notes) if n)
    claimed.parent_client_order_id = order.parent_client_order_id or old.parent_client_order_id
    claimed.created_at = min(filter(None, (order.created_at, old.created_at)))
    claimed.updated_at = at or datetime.now(UTC)
    changes = {
        name: (getattr(old, name), getattr(claimed, name))
        for name in ("user", "tags", "notes")
        if plain(getattr(old, name)) != plain(getattr(claimed, name))
    }
    changes["external"] = (True, False)
    return Change(claimed, True, event_values(claimed, source, "updated", old.status, changes, at))


def update_change(
    old: ManagedOrder | None, order: ManagedOrder, source: str, at: datetime | None = None
) -> Change | None:
    """The change ``order``'s state makes to the stored ``old`` (see :meth:`Ledger.update`);
    None when nothing changed. ``order`` is brought to what the ledger will hold."""
    if old is None:
        log.warning("ledger: update() of unrecorded order %s: recording it", order.client_order_id)
        order.created_at = order.created_at or at or datetime.now(UTC)
        order.updated_at = at or datetime.now(UTC)
        return Change(order, False, event_values(order, source, "created", None, {}, at))
    if is_stale(old, order):
        log.debug("ledger: kept %s %s over an older %s", order.client_order_id, old.status, order.status)
        for name in _BROKER_FIELDS:
            setattr(order, name, getattr(old, name))
        order.alpaca_order_id = order.alpaca_order_id or old.alpaca_order_id
    changes = {
        name: (getattr(old, name), getattr(order, name))
        for name in TRACKED
        if plain(getattr(old, name)) != plain(getattr(order, name))
    }
    if not changes:
        copy_stored(old, order)
        return None
    order.updated_at = at or datetime.now(UTC)
    order.created_at = old.created_at
    event = "status" if "status" in changes else "fill" if "filled_qty" in changes else "updated"
    return Change(order, True, event_values(order, source, event, old.status, changes, at))


def write_changes(con: duckdb.DuckDBPyConnection, changes: list[Change], *, checked: bool = False) -> None:
    """Write the rows and events of ``changes`` (in order) in three statements at most.

    Raises :class:`UnfitValueError`, before any statement, when a row does not fit (``checked``:
    the caller has made sure they do).
    """
    if not changes:
        return
    if not checked:
        for change in changes:
            check_order(change.order)
    final: dict[str, ManagedOrder] = {}
    replaced = set()
    for change in changes:
        final[change.order.client_order_id] = change.order
        if change.stored:
            replaced.add(change.order.client_order_id)
    if replaced:
        con.execute("DELETE FROM managed_orders WHERE list_contains(?, client_order_id)", [sorted(replaced)])
    insert_orders(con, list(final.values()))
    insert_events(con, [change.event for change in changes])


# A few rows go in as plain parameters (one order: 2 ms); many as one JSON parameter, which
# DuckDB parses far faster than it binds thousands of separate ones (300 orders: 10 ms, not 75).
_FEW = 4


def _json_rows(columns: dict[str, str]) -> str:
    struct = ", ".join(f'"{name}": "{kind}"' for name, kind in columns.items())
    select = ", ".join(f'r."{name}"' for name in columns)
    return f"SELECT {select} FROM (SELECT unnest(from_json(?::JSON, '[{{{struct}}}]')) AS r)"


_ORDER_TYPES = {
    name: (
        "VARCHAR[]"
        if name == "tags"
        else "BOOLEAN"
        if name == "external"
        else _MONEY
        if name in _DECIMALS
        else "TIMESTAMPTZ"
        if name in _TIMES
        else "VARCHAR"
    )
    for name in ORDER_COLUMNS
}
_INSERT_ORDERS_INTO = f"INSERT INTO managed_orders ({', '.join(chr(34) + c + chr(34) for c in ORDER_COLUMNS)})"
_INSERT_ORDERS = f"{_INSERT_ORDERS_INTO} {_json_rows(_ORDER_TYPES)}"
_EVENT_TYPES = {
    "n": "BIGINT",
    "client_order_id": "VARCHAR",
    "account_id": "VARCHAR",
    "environment": "VARCHAR",
    "event_at": "TIMESTAMPTZ",
    "source": "VARCHAR",
    "event": "VARCHAR",
    "status": "VARCHAR",
    "previous_status": "VARCHAR",
    "alpaca_status": "VARCHAR",
    "filled_qty": _MONEY,
    "detail": "VARCHAR",
}
_INSERT_EVENTS = f"""
    INSERT INTO order_events
    SELECT (SELECT coalesce(max(id), 0) FROM order_events) + n, client_order_id,
           account_id, environment, coalesce(event_at::TIMESTAMPTZ, now()), source, event, status,
           previous_status, alpaca_status, filled_qty::{_MONEY}, detail
    FROM ({{rows}})"""  # rows: a SELECT of the _EVENT_TYPES columns


def insert_orders(con: duckdb.DuckDBPyConnection, orders: list[ManagedOrder]) -> None:
    """Insert ``orders`` as ``managed_orders`` rows."""
    if len(orders) > _FEW:
        con.execute(_INSERT_ORDERS, [json.dumps([order_to_json(order) for order in orders])])
    elif orders:
        marks = f"({', '.join('?' * len(ORDER_COLUMNS))})"
        values = [value for order in orders for value in order_row(order).values()]
        con.execute(f"{_INSERT_ORDERS_INTO} VALUES {', '.join([marks] * len(orders))}", values)


def insert_events(con: duckdb.DuckDBPyConnection, events: list[dict[str, Any]]) -> None:
    """Append ``order_events`` rows (dicts of :func:`event_values`), numbered in order."""
    # Ids are max + 1...: every write holds the file exclusively, so none can collide.
    numbered = [{"n": n, **event} for n, event in enumerate(events, 1)]
    if len(events) > _FEW:
        con.execute(_INSERT_EVENTS.format(rows=_json_rows(_EVENT_TYPES)), [json.dumps(numbered)])
    elif events:
        marks = f"({', '.join('?' * len(_EVENT_TYPES))})"
        rows = f"SELECT * FROM (VALUES {', '.join([marks] * len(events))}) AS v({', '.join(_EVENT_TYPES)})"
        con.execute(_INSERT_EVENTS.format(rows=rows), [value for event in numbered for value in event.values()])


# -- ManagedOrder as JSON (the journal's form) ----------------------------------------------------


def order_to_json(order: ManagedOrder) -> dict[str, Any]:
    """``order`` as JSON-ready values (enums, Decimals and times as text): the journal's form,
    written on the order path, hence one pass without :func:`plain`."""
    row: dict[str, Any] = {}
    for name in ORDER_COLUMNS:
        value = getattr(order, name)
        if value is None or value.__class__ in (str, bool):
            row[name] = value
        elif isinstance(value, enum.Enum):
            row[name] = value.value
        elif name in _TIMES:
            row[name] = value.isoformat()
        elif name == "tags":
            row[name] = list(value)
        else:
            row[name] = str(value)  # a Decimal
    row["environment"] = env_value(order.environment)
    return row


def order_from_json(values: dict[str, Any]) -> ManagedOrder:
    """The inverse of :func:`order_to_json`."""
    values = dict(values)
    for name in _DECIMALS:
        if values.get(name) is not None:
            values[name] = Decimal(values[name])
    for name in _TIMES:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    return _to_order(tuple(values.get(name) for name in ORDER_COLUMNS))


def _jsonable(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
