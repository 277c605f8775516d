"""What the reliability tests share: placing an intent and classifying what the caller saw,
listing the broker's orders, and auditing the ledger against the broker.

Test modules import it as ``from faultkit import ...`` (tests/reliability is on ``sys.path``
while its tests run). Each intent carries a tag ``intent:<n>``, so every ledger row and every
broker order can be traced back to the one call that asked for it: two broker orders for one
intent are a duplicate, an intent without a row is lost, and a broker order whose row is not
the intent's (or is ``external``) was placed behind the caller's back.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
from alpaca_nb.errors import (
    AlpacaNbError,
    AuthenticationError,
    NotFoundError,
    OrderOutcomeUnknownError,
    OrderRejectedError,
    OrderValidationError,
    RateLimitError,
)
from alpaca_nb.ledger import Ledger

# The errors whose documented meaning is "the order was not placed".
NOT_PLACED = (OrderRejectedError, OrderValidationError, AuthenticationError, RateLimitError, NotFoundError)
OPEN_OUTCOME = ("pending", "unresolved")


def service(
    broker_or_url: Any, ledger_path, *, timeout: float = 5.0, key: str | None = None, secret: str | None = None
) -> AlpacaService:
    """An AlpacaService on its own ledger file, against an in-process broker or a URL."""
    url = getattr(broker_or_url, "url", broker_or_url)
    key = key or broker_or_url.key
    secret = secret or broker_or_url.secret
    return AlpacaService(Ledger(ledger_path)).initialize_sync(
        AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url, timeout=timeout
    )


@dataclass
class Intent:
    """One call to ``place_order_sync`` and what its caller saw."""

    n: int
    user: str
    request: AlpacaOrderRequest
    outcome: str = "not tried"  # placed | unknown | not_placed | other | error | killed
    error: BaseException | None = None
    client_order_id: str | None = None
    retried: bool = False  # placed again with the same client_order_id after "unknown"
    first_outcome: str = "not tried"  # what the first call saw (before any placing again)

    @property
    def tag(self) -> str:
        return intent_tag(self.n)


def intent_tag(n: int) -> str:
    return f"intent:{n}"


def place(svc: AlpacaService, intent: Intent) -> Intent:
    """Place ``intent`` and classify the outcome; any exception outside the AlpacaNbError tree
    is recorded as ``error`` (and fails the audit)."""
    try:
        order = svc.place_order_sync(user=intent.user, order_request=intent.request, tags=[intent.tag])
    except OrderOutcomeUnknownError as err:
        intent.outcome, intent.error = "unknown", err
        intent.client_order_id = err.client_order_id
    except NOT_PLACED as err:
        intent.outcome, intent.error = "not_placed", err
    except AlpacaNbError as err:  # typed, and claiming nothing about the order (e.g. LedgerBusyError)
        intent.outcome, intent.error = "other", err
    except BaseException as err:
        intent.outcome, intent.error = "error", err
    else:
        intent.outcome, intent.client_order_id = "placed", order.client_order_id
    intent.first_outcome = intent.outcome
    return intent


def place_again(svc: AlpacaService, intent: Intent) -> Intent:
    """What the unknown-outcome error tells a caller to do: place again under the same
    ``client_order_id``. Returns the intent with its new outcome."""
    request = intent.request.with_client_order_id(intent.client_order_id)
    intent.retried = True
    try:
        order = svc.place_order_sync(user=intent.user, order_request=request, tags=[intent.tag])
    except OrderOutcomeUnknownError as err:
        intent.outcome, intent.error = "unknown", err
    except NOT_PLACED as err:
        intent.outcome, intent.error = "not_placed", err
    except AlpacaNbError as err:
        intent.outcome, intent.error = "other", err
    except BaseException as err:
        intent.outcome, intent.error = "error", err
    else:
        intent.outcome, intent.error = "placed", None
        assert order.client_order_id == intent.client_order_id
    return intent


# -- the broker's side -------------------------------------------------------------------------


def broker_orders(broker) -> list[dict]:
    """Every order an in-process broker holds (its own records, not an API answer)."""
    engine = broker.engine
    return [engine.get_order(order_id) for order_id in list(engine.book.orders)]


def broker_orders_rest(url: str, key: str, secret: str) -> list[dict]:
    """Every order of a broker reached over HTTP (``GET /v2/orders`` pages, legs included)."""
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    seen: dict[str, dict] = {}
    after = None
    while True:
        params = {"status": "all", "limit": 500, "direction": "asc", "nested": "true"}
        if after:
            params["after"] = after
        page = requests.get(f"{url}/v2/orders", params=params, headers=headers, timeout=30).json()
        new = 0
        for order in page:
            for one in [order, *(order.get("legs") or [])]:
                if one["id"] not in seen:
                    seen[one["id"]] = one
                    new += 1
        if len(page) < 500 or not new:
            return list(seen.values())
        after = page[-1]["submitted_at"]


# -- the audit -----------------------------------------------------------------------------------


@dataclass
class Audit:
    """What :func:`audit` found; every list should be empty."""

    lost: list[int] = field(default_factory=list)  # intents without a ledger row
    duplicates: list[str] = field(default_factory=list)  # second broker orders of one intent
    foreign: list[str] = field(default_factory=list)  # broker orders with no intent's row
    wrong_user: list[str] = field(default_factory=list)  # rows attributed to another user
    not_placed_but_there: list[int] = field(default_factory=list)  # "not placed" yet at the broker
    untyped: list[str] = field(default_factory=list)  # errors outside AlpacaNbError
    unresolved: list[int] = field(default_factory=list)  # intents whose row is still open
    outcomes: collections.Counter = field(default_factory=collections.Counter)

    def problems(self, *, allow_unresolved: bool = True) -> dict[str, list]:
        found = {
            name: getattr(self, name)
            for name in ("lost", "duplicates", "foreign", "wrong_user", "not_placed_but_there", "untyped")
        }
        if not allow_unresolved:
            found["unresolved"] = self.unresolved
        return {name: items[:10] for name, items in found.items() if items}


def audit(ledger_rows: Iterable[Any], intents: Iterable[Intent], at_broker: Iterable[dict]) -> Audit:
    """Compare the ledger's rows, the intents and the broker's orders (see the module doc)."""
    intents = list(intents)
    result = Audit(outcomes=collections.Counter(i.outcome for i in intents))
    rows = list(ledger_rows)
    by_cid = {row.client_order_id: row for row in rows}
    rows_of: dict[int, list] = collections.defaultdict(list)
    for row in rows:
        for tag in row.tags:
            if tag.startswith("intent:"):
                rows_of[int(tag.split(":", 1)[1])].append(row)
    orders = list(at_broker)
    broker_cids = {o["client_order_id"] for o in orders}
    per_intent: collections.Counter[int] = collections.Counter()
    for order in orders:
        row = by_cid.get(order["client_order_id"])
        numbers = [int(t.split(":", 1)[1]) for t in (row.tags if row else ()) if t.startswith("intent:")]
        if row is None or row.external or not numbers:
            result.foreign.append(order["client_order_id"])
            continue
        per_intent[numbers[0]] += 1
    for n, count in per_intent.items():
        if count > 1:
            result.duplicates.extend([f"intent {n}"] * (count - 1))
    for intent in intents:
        if intent.outcome == "error":
            result.untyped.append(f"intent {intent.n}: {type(intent.error).__name__}: {intent.error}")
        mine = rows_of.get(intent.n, [])
        if not mine:
            # A process killed before its intent reached the ledger sent nothing (write-ahead;
            # a broker order without a row would be counted as foreign above).
            if intent.outcome != "killed":
                result.lost.append(intent.n)
            continue
        if len(mine) > 1:
            result.duplicates.append(f"intent {intent.n}: {len(mine)} rows")
        for row in mine:
            if row.user != intent.user or row.external:
                result.wrong_user.append(row.client_order_id)
            if row.status.value in OPEN_OUTCOME:
                result.unresolved.append(intent.n)
            if intent.outcome == "not_placed" and row.client_order_id in broker_cids:
                result.not_placed_but_there.append(intent.n)
        if intent.outcome == "unknown" and intent.client_order_id not in {r.client_order_id for r in mine}:
            result.lost.append(intent.n)  # the error named an id the ledger does not hold
    return result


def reconcile_rows(svc: AlpacaService) -> list[dict]:
    """``svc.reconcile()`` as a list of dicts (empty when the ledger is in step)."""
    return svc.reconcile().to_dict("records")


def unknown_names_its_id(intent: Intent) -> bool:
    """The unknown-outcome error names the ``client_order_id`` and what resolves it."""
    err = intent.error
    return (
        isinstance(err, OrderOutcomeUnknownError)
        and bool(err.client_order_id)
        and err.client_order_id in str(err)
        and "sync" in str(err)
    )


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true (returns True) or ``timeout`` (returns False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
