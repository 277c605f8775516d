"""Applying journal records to the ledger, each record on its own account.

The drainer (:mod:`alpaca_nb.ledger.journal`) hands over the lines of its batches, and the
records set aside earlier that are due for a retry, as :class:`Entry` objects, and this module
brings them into the ledger inside the drainer's write transaction. One record that cannot be
applied never costs another record anything:

1. **Checked in Python first** (:func:`prepare`). A line that is not a record, of an unknown
   kind, with a field missing, or with a value that does not fit its column (``notes=None``, a
   quantity beyond ``DECIMAL(38,9)``) is refused alone, before any statement sees it. A
   trade-updates record with one unfit update keeps its other updates; the unfit one is split
   out and refused alone.
2. **The fast path** (:func:`apply`): the rest goes in as few statements as possible (a run of
   intents and answers is one statement per table, its rows one JSON parameter). An intent
   that names another order's ``client_order_id`` is refused alone here.
3. **The fallback.** Should DuckDB still refuse a statement, it aborts the whole transaction:
   :class:`BatchFailed` tells the drainer to roll back and apply everything again one record at
   a time (``one_by_one``); the record whose statement fails then raises
   :class:`RecordFailed`, and the drainer rolls back once more and applies the rest without it.

Whatever is refused, with its reason, the drainer sets aside in ``journal_rejects``
(:mod:`alpaca_nb.ledger.rejects`), to be retried by later drains.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ..errors import AlpacaNbError, DuplicateOrderError
from ..models import ManagedOrder
from . import ingest, rows
from .rejects import record_text

log = logging.getLogger("alpaca_nb")

ORDER_KINDS = ("intent", "update")
KINDS = (*ORDER_KINDS, "trade_updates")
_UPDATE_NUMBERS = ("qty", "price", "position_qty")
_ORDER_NUMBERS = ("qty", "notional", "limit_price", "stop_price", "filled_qty", "filled_avg_price")


@dataclass
class Entry:
    """One journal record: ``key`` names it (``<batch file>:<line>``, or its id in
    ``journal_rejects`` for a retry), ``raw`` is its line, ``record`` the parsed JSON."""

    key: str
    raw: str
    record: Any
    retry: bool = False
    # Filled in by prepare(): the decoded order of an intent or update.
    order: ManagedOrder | None = field(default=None, repr=False)
    source: str = ""
    at: datetime | None = None

    @property
    def kind(self) -> str | None:
        return self.record.get("kind") if isinstance(self.record, dict) else None


class BatchFailed(Exception):
    """The fast path failed in DuckDB: roll back and apply one record at a time."""

    def __init__(self, error: BaseException):
        super().__init__(reason(error))
        self.error = error


class RecordFailed(Exception):
    """The record ``key`` failed in DuckDB on its own: roll back and apply the rest without it."""

    def __init__(self, key: str, error: BaseException):
        super().__init__(f"{key}: {reason(error)}")
        self.key, self.reason = key, reason(error)


def reason(error: BaseException) -> str:
    """An error as the one line a set-aside record keeps."""
    text = " ".join(str(error).split()) or "(no message)"
    return text if isinstance(error, AlpacaNbError) else f"{type(error).__name__}: {text}"


def read_batch(batch: Path) -> Iterator[Entry]:
    """The records of a batch file, one :class:`Entry` per line. A line cut short by a crash
    mid-append (its writer never got to send anything) is skipped with a warning. Raises
    ``OSError`` when the file cannot be read."""
    with open(batch, "rb") as handle:
        data = handle.read()
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        text = line.decode("utf-8", errors="replace")
        try:
            record = json.loads(text)
        except ValueError:
            log.warning(
                "ledger journal %s line %d is unreadable (a write cut short by a crash, so "
                "its order was never sent): skipped",
                batch.name,
                number,
            )
            continue
        yield Entry(f"{batch.name}:{number}", text, record)


def retried(key: str, raw: str) -> Entry:
    """A record set aside earlier, met again for a retry."""
    try:
        record = json.loads(raw)
    except ValueError:
        record = raw  # prepare() refuses it again, with its reason
    return Entry(key, raw, record, retry=True)


def prepare(entries: list[Entry], refused: Mapping[str, str]) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    """Split ``entries`` into those to apply and those refused (with the reason) without any
    statement: by the checks above, or because ``refused`` (what failed earlier in this drain)
    names them."""
    good: list[Entry] = []
    bad: list[tuple[Entry, str]] = []
    for entry in entries:
        if entry.key in refused:
            bad.append((entry, refused[entry.key]))
            continue
        try:
            split = _check(entry)
        except Exception as err:
            bad.append((entry, reason(err)))
            continue
        for part, why in split:
            if part.key in refused:
                why = refused[part.key]
            (bad.append((part, why)) if why else good.append(part))
    return good, bad


def _check(entry: Entry) -> list[tuple[Entry, str | None]]:
    record = entry.record
    if not isinstance(record, dict):
        raise ValueError(f"not a journal record: {entry.raw[:80]!r}")
    kind = record.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (this alpaca_nb knows {', '.join(KINDS)})")
    entry.source = ingest.check_source(record.get("source"))
    entry.at = datetime.fromisoformat(record["at"]) if isinstance(record.get("at"), str) else None
    if entry.at is None:
        raise ValueError(f"'at' is {record.get('at')!r}, not an ISO time")
    if kind in ORDER_KINDS:
        if not isinstance(record.get("order"), dict):
            raise ValueError(f"'order' is {type(record.get('order')).__name__}, not an order")
        # An intent is written as it is; an answer gets its times when it is applied.
        entry.order = rows.check_order(rows.order_from_json(record["order"]), complete=kind == "intent")
        return [(entry, None)]
    for name in ("account_id", "environment"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise ValueError(f"{name!r} is {record.get(name)!r}, not text")
    rows.env_value(record["environment"])
    updates = record.get("updates")
    if not isinstance(updates, list):
        raise ValueError(f"'updates' is {type(updates).__name__}, not a list")
    problems = [_update_problem(update) for update in updates]
    if not any(problems):
        return [(entry, None)]
    # Only some updates are unfit: the others are applied, each unfit one is set aside alone.
    parts: list[tuple[Entry, str | None]] = []
    fit = [u for u, why in zip(updates, problems, strict=False) if why is None]
    if fit:
        kept = {**record, "updates": fit}
        parts.append((Entry(entry.key, record_text(kept), kept, entry.retry, source=entry.source, at=entry.at), None))
    for number, (update, why) in enumerate(zip(updates, problems, strict=False), 1):
        if why is not None:
            alone = {**record, "updates": [update]}
            key = entry.key if len(updates) == 1 else f"{entry.key}/{number}"
            parts.append((Entry(key, record_text(alone), alone, entry.retry), why))
    return parts


def _update_problem(update: Any) -> str | None:
    """Why a trade update cannot be applied (None: it can)."""
    if not isinstance(update, dict):
        return f"a trade update is a {type(update).__name__}, not an object"
    for name in _UPDATE_NUMBERS:
        why = rows.money_problem(update.get(name))
        if why:
            return f"trade update {name} is {why}"
    if update.get("event") in ("fill", "partial_fill"):
        try:
            datetime.fromisoformat(str(update.get("timestamp")))
        except ValueError:
            return f"fill timestamp {update.get('timestamp')!r} is not an ISO time"
    order = update.get("order")
    if order is None:
        return None
    return _order_problem(order)


def _order_problem(order: Any) -> str | None:
    if not isinstance(order, dict):
        return f"the order is a {type(order).__name__}, not an object"
    if not isinstance(order.get("client_order_id"), str) or not order["client_order_id"]:
        return f"the order {order.get('id')!r} has no client_order_id"
    for name in _ORDER_NUMBERS:
        why = rows.money_problem(order.get(name))
        if why:
            return f"order {order['client_order_id']!r} {name} is {why}"
    for leg in order.get("legs") or ():
        why = _order_problem(leg)
        if why:
            return why
    return None


def apply(con: duckdb.DuckDBPyConnection, entries: list[Entry], *, one_by_one: bool = False) -> list[tuple[Entry, str]]:
    """Apply prepared entries in order; returns those the ledger's rules refused, with why.

    Raises :class:`BatchFailed` (fast path) or :class:`RecordFailed` (``one_by_one``) when a
    statement fails: the transaction is lost and must be rolled back.
    """
    if not one_by_one:
        try:
            return _apply(con, entries)
        except Exception as err:
            raise BatchFailed(err) from err
    refused: list[tuple[Entry, str]] = []
    for entry in entries:
        try:
            refused.extend(_apply(con, [entry]))
        except Exception as err:
            raise RecordFailed(entry.key, err) from err
    return refused


def _apply(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> list[tuple[Entry, str]]:
    """Each run of intents and answers in one batch of statements; trade updates as a sync's."""
    refused: list[tuple[Entry, str]] = []
    run: list[Entry] = []
    for entry in entries:
        if entry.kind in ORDER_KINDS:
            run.append(entry)
            continue
        refused.extend(_apply_orders(con, run))
        run = []
        record = entry.record
        updates = record["updates"]
        scope = {
            "account_id": record["account_id"],
            "environment": rows.env_value(record["environment"]),
            "source": entry.source,
            "at": entry.at,
        }
        orders = ingest.orders_frame(u["order"] for u in updates if u.get("order"))
        ingest.upsert_orders(con, orders, external_user="external", **scope)
        ingest.insert_fills(con, ingest.fills_frame(updates), **scope)
    refused.extend(_apply_orders(con, run))
    return refused


def _order_of(entry: Entry) -> ManagedOrder:
    assert entry.order is not None, "an intent or update carries its order (decoded when checked)"
    return entry.order


def _apply_orders(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> list[tuple[Entry, str]]:
    if not entries:
        return []
    ids = sorted({_order_of(entry).client_order_id for entry in entries})
    current = {o.client_order_id: o for o in rows.fetch_orders(con, "list_contains(?, client_order_id)", [ids])}
    in_file = set(current)
    changes, refused = [], []
    for entry in entries:
        order = _order_of(entry)
        old = current.get(order.client_order_id)
        try:
            if entry.kind == "intent":
                change = rows.intent_change(old, order, entry.source, entry.at)
            else:
                change = rows.update_change(old, order, entry.source, entry.at)
        except DuplicateOrderError as err:
            refused.append((entry, reason(err)))
            continue
        if change is None:
            continue
        # ``old`` may be a row this batch created: only a row already in the file is replaced.
        change.stored = order.client_order_id in in_file
        current[order.client_order_id] = change.order
        changes.append(change)
    # Every row is a checked record's, or a stored row's fields merged with one: no need to check again.
    rows.write_changes(con, changes, checked=True)
    return refused
