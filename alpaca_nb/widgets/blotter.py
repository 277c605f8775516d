"""Blotter: the ledger's managed orders as a table, filtered, refreshed live, cancellable."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..models import ManagedOrderStatus
from ._base import (
    ERROR_COLOR,
    OK_COLOR,
    ServiceWidget,
    guarded,
    missing,
    money,
    options_keeping,
    quantity,
    table_html,
    timestamp,
)

WORKING = ("pending", "unresolved", "open", "partially_filled")
#: Status filter choices: all, the orders still working, or one managed status.
STATUS_CHOICES: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "working": WORKING,
    **{s.value: (s.value,) for s in ManagedOrderStatus},
}
_SEED_TAGS = ("symbol:", "side:", "type:")


def _size(row: dict) -> str:
    if not missing(row.get("notional")):
        return f"${money(row['notional'])}"
    return quantity(row.get("qty"))


def _price(row: dict) -> str:
    return " / ".join(p for p in (money(row.get("limit_price")), money(row.get("stop_price"))) if p)


def _filled(row: dict) -> str:
    qty, avg = quantity(row.get("filled_qty")), money(row.get("filled_avg_price"))
    return f"{qty} @ {avg}" if avg else qty


def _own_tags(row: dict) -> str:
    tags = row.get("tags")
    return ", ".join(t for t in (list(tags) if tags is not None else []) if not t.startswith(_SEED_TAGS))


COLUMNS = [
    ("time (UTC)", lambda r: timestamp(r.get("created_at"))),
    ("user", lambda r: r["user"]),
    ("symbol", lambda r: r["symbol"]),
    ("side", lambda r: r["side"]),
    ("type", lambda r: r["type"]),
    ("size", _size),
    ("limit / stop", _price),
    ("tif", lambda r: r["time_in_force"]),
    ("status", lambda r: r["status"]),
    ("filled", _filled),
    ("tags", _own_tags),
    ("client_order_id", lambda r: r["client_order_id"]),
]
_STATUS_COLORS = {
    "filled": OK_COLOR,
    "rejected": ERROR_COLOR,
    "unresolved": ERROR_COLOR,
    "canceled": "#757575",
    "expired": "#757575",
    "replaced": "#757575",
}


def _style(header: str, row: dict) -> str | None:
    if header == "status" and row["status"] in _STATUS_COLORS:
        return f"color:{_STATUS_COLORS[row['status']]}"
    if header == "side":
        return f"color:{OK_COLOR if row['side'] == 'buy' else ERROR_COLOR}"
    return None


def orders_frame(store: Any, user: str | None, statuses: tuple[str, ...] | None) -> pd.DataFrame:
    """Managed orders, newest first: the ledger's ``orders()`` frame, or the same columns from
    any other order store's ``list()`` (``Ledger.orders_frame``)."""
    if hasattr(store, "orders"):
        frame = store.orders(user, status=statuses)
    else:
        from ..ledger import Ledger

        chosen = [o for o in store.list(user) if statuses is None or o.status.value in statuses]
        frame = Ledger.orders_frame(chosen)
    return frame.iloc[::-1].reset_index(drop=True)


class Blotter(ServiceWidget):
    """The managed orders of this account (the ledger's ``orders()``), newest first, with user
    and status filters, Refresh, and cancelling of selected working orders.

    With ``auto_refresh`` the table follows the account's trade updates (at most
    ``1 / interval`` refreshes a second) and the ledger follows the stream (``service.follow()``
    is started when nothing follows it yet, and stopped again on :meth:`close`). ``frame`` is the
    DataFrame last shown.
    """

    def __init__(
        self,
        service: Any = None,
        *,
        user: str | None = None,
        status: str | None = None,
        auto_refresh: bool = True,
        interval: float = 0.3,
        max_rows: int = 200,
    ):
        super().__init__(service)
        if (status or "all") not in STATUS_CHOICES:
            raise ValueError(f"status={status!r}: use one of {', '.join(STATUS_CHOICES)}")
        self.frame: pd.DataFrame = pd.DataFrame()
        self.refreshes = 0  # tables shown so far
        self.trade_updates = 0  # trade updates seen (auto_refresh)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self.user_filter = widgets.Text(
            value=user or "", description="User", placeholder="all users", continuous_update=False
        )
        self.status_filter = widgets.Dropdown(options=list(STATUS_CHOICES), value=status or "all", description="Status")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.table = widgets.HTML("")
        self.cancel_select = widgets.SelectMultiple(
            options=[], description="Working", layout=widgets.Layout(width="560px", height="90px")
        )
        self.cancel_button = widgets.Button(description="Cancel selected", button_style="warning", icon="times")
        self.user_filter.observe(lambda _c: self.refresh(), "value")
        self.status_filter.observe(lambda _c: self.refresh(), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.cancel_button.on_click(lambda _b: self.cancel_selected())
        self.children = [
            self.banner,
            widgets.HBox([self.user_filter, self.status_filter, self.refresh_button]),
            self.table,
            widgets.HBox([self.cancel_select, self.cancel_button]),
            self.status,
        ]
        if auto_refresh:
            # first: following the stream may catch the ledger up
            self.follow_trade_updates(self._count_update, self.refresh, interval)
        self.refresh()

    def _count_update(self, _update: Any) -> bool:
        self.trade_updates += 1
        return True

    @guarded("refresh")
    def refresh(self) -> pd.DataFrame | None:
        """Read the ledger with the filters, show the table; returns the frame shown."""
        with self._lock:
            frame = orders_frame(
                self.service.order_service,
                self.user_filter.value.strip() or None,
                STATUS_CHOICES[self.status_filter.value],
            )
            self.table.value = table_html(
                frame, COLUMNS, cell_style=_style, max_rows=self.max_rows, empty="No orders match the filters"
            )
            working = frame[frame["status"].isin(WORKING) & frame["alpaca_order_id"].notna()]
            options_keeping(
                self.cancel_select,
                [
                    (
                        f"{r['symbol']} {r['side']} {_size(r)} {r['type']} {_price(r)} · {r['client_order_id']}",
                        r["client_order_id"],
                    )
                    for r in working.to_dict("records")
                ],
            )
            self.frame = frame  # last: once it is set, the table and the choices show it
            self.refreshes += 1
        return frame

    @guarded("cancel")
    def cancel_selected(self) -> int:
        """Ask the broker to cancel each selected working order; returns how many it accepted."""
        chosen = list(self.cancel_select.value)
        if not chosen:
            self.show("Select working orders to cancel first", "info")
            return 0
        store, done, failed = self.service.order_service, 0, []
        for client_order_id in chosen:
            try:
                order = store.get(client_order_id)
                if order is None:
                    raise LookupError(f"order {client_order_id} is not in the ledger")
                self.service.cancel_order_sync(order)
                done += 1
                self.service.sync_order_status_sync(order)  # the ledger shows the outcome now
            except Exception as exc:
                failed.append(exc)
                self.report(exc, f"cancel {client_order_id}")
        text = f"Cancel requested for {done} of {len(chosen)} order(s)"
        if failed:
            text += f"; {len(failed)} failed: {failed[-1]}"
        self.show(text, "error" if failed else "ok")
        self.refresh()
        return done
