"""Account activities: what ``/v2/account/activities`` lists, and how it pages.

Alpaca's activity id is ``<YYYYMMDDhhmmssSSS>::<uuid>`` (UTC time to the millisecond), and
the page token is simply the id of the last activity of the previous page. Activities are
kept in the order they happened; each stores its instant under the private key ``_t``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .errors import unprocessable
from .orders import Order
from .values import fmt_num, fmt_time


def sort_key(at: datetime) -> str:
    """A fixed-width UTC string: compares like the instant it encodes."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def activity_id(at: datetime, execution_id: str | None = None) -> str:
    """Alpaca's activity id: the time to the millisecond, ``::``, then (for a fill) the execution."""
    return f"{at:%Y%m%d%H%M%S}{at.microsecond // 1000:03d}::{execution_id or uuid.uuid4()}"


def fill_activity(
    account_id: str, order: Order, event: str, qty: Decimal, price: Decimal, at: datetime, execution_id: str
) -> dict:
    """A FILL trade activity (``type`` fill or partial_fill) for one execution: its id carries
    the execution id the trade-update stream reports for the same fill."""
    return {
        "id": activity_id(at, execution_id),
        "account_id": account_id,
        "activity_type": "FILL",
        "transaction_time": fmt_time(at),
        "type": event,
        "price": fmt_num(price),
        "qty": fmt_num(qty),
        "side": order.side,
        "symbol": order.symbol,
        "leaves_qty": fmt_num(max(order.remaining, Decimal(0))),
        "order_id": order.id,
        "cum_qty": fmt_num(order.filled_qty),
        "order_status": order.status,
        "_t": sort_key(at),
    }


def cash_activity(account_id: str, activity_type: str, amount: Decimal, at: datetime, description: str) -> dict:
    """A non-trade activity moving cash (the opening deposit is a CSD, cash deposit)."""
    return {
        "id": activity_id(at),
        "account_id": account_id,
        "activity_type": activity_type,
        "date": at.date().isoformat(),
        "net_amount": fmt_num(amount),
        "description": description,
        "status": "executed",
        "currency": "USD",
        "created_at": fmt_time(at),
        "_t": sort_key(at),
    }


def public(activity: dict) -> dict:
    return {k: v for k, v in activity.items() if not k.startswith("_")}


def page(
    activities: list[dict],
    *,
    activity_types: Iterable[str] | None = None,
    after: datetime | None = None,
    until: datetime | None = None,
    date: datetime | None = None,
    direction: str = "desc",
    page_size: int = 100,
    page_token: str | None = None,
) -> list[dict]:
    """One page of ``activities`` (oldest first in the list) filtered as Alpaca does.

    ``date`` selects one UTC calendar day; ``after``/``until`` are exclusive; ``page_token``
    continues after that id in the chosen direction.
    """
    if direction not in ("asc", "desc"):
        raise unprocessable(f"invalid direction: {direction!r} (asc or desc)")
    types = set(activity_types) if activity_types else None
    lo_t = sort_key(after) if after else None
    hi_t = sort_key(until) if until else None
    if date is not None:
        day = date.replace(hour=0, minute=0, second=0, microsecond=0)
        lo_day, hi_day = sort_key(day), sort_key(day + timedelta(days=1))
    indexes = range(len(activities) - 1, -1, -1) if direction == "desc" else range(len(activities))
    started = page_token is None
    out = []
    for i in indexes:
        act = activities[i]
        if not started:
            started = act["id"] == page_token
            continue
        t = act["_t"]
        if types is not None and act["activity_type"] not in types:
            continue
        if (lo_t and t <= lo_t) or (hi_t and t >= hi_t):
            continue
        if date is not None and not (lo_day <= t < hi_day):
            continue
        out.append(public(act))
        if len(out) >= page_size:
            break
    return out
