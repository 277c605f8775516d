"""OrderView: one managed order, its history and its fills, kept current from the stream."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..models import ManagedOrder
from ._base import ServiceWidget, escape, guarded, money, quantity, table_html, timestamp

_FIELDS = (
    "user",
    "symbol",
    "side",
    "type",
    "order_class",
    "time_in_force",
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "status",
    "alpaca_status",
    "filled_qty",
    "filled_avg_price",
    "client_order_id",
    "alpaca_order_id",
    "parent_client_order_id",
    "tags",
    "notes",
    "external",
    "created_at",
    "submitted_at",
    "filled_at",
)
EVENT_COLUMNS = [
    ("time (UTC)", lambda r: timestamp(r["event_at"])),
    ("source", lambda r: r["source"]),
    ("event", lambda r: r["event"]),
    ("from", lambda r: r["previous_status"]),
    ("to", lambda r: r["status"]),
    ("alpaca status", lambda r: r["alpaca_status"]),
    ("filled", lambda r: quantity(r["filled_qty"])),
]
FILL_COLUMNS = [
    ("time (UTC)", lambda r: timestamp(r["filled_at"])),
    ("side", lambda r: r["side"]),
    ("qty", lambda r: quantity(r["qty"])),
    ("price", lambda r: money(r["price"])),
    ("cum qty", lambda r: quantity(r["cum_qty"])),
    ("source", lambda r: r["source"]),
    ("execution_id", lambda r: r["execution_id"]),
]


def _text(name: str, value: Any) -> str:
    if value is None or (not isinstance(value, (tuple, list)) and pd.isna(value)):
        return ""
    if isinstance(value, (tuple, list)):
        return ", ".join(value)
    if hasattr(value, "value"):  # an enum
        return str(value.value)
    if name.endswith("_at"):
        return timestamp(value)
    return str(value)


class OrderView(ServiceWidget):
    """Everything the ledger knows of one order: its fields, its ``order_events`` history (with
    the source of each change) and its fills, refreshed when a trade update for it arrives, with
    Cancel for a working order. ``order`` is a :class:`ManagedOrder` or its ``client_order_id``.
    ``order``, ``events`` and ``fills`` hold what was last shown."""

    def __init__(
        self, service: Any = None, order: ManagedOrder | str = "", *, auto_refresh: bool = True, interval: float = 0.3
    ):
        super().__init__(service)
        self.client_order_id = order.client_order_id if isinstance(order, ManagedOrder) else str(order).strip()
        if not self.client_order_id:
            raise ValueError("OrderView needs an order: a ManagedOrder or its client_order_id")
        self.order: ManagedOrder | None = None
        self.events: pd.DataFrame = pd.DataFrame()
        self.fills: pd.DataFrame = pd.DataFrame()
        self.fields = widgets.HTML("")
        self.history = widgets.HTML("")
        self.fill_table = widgets.HTML("")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.cancel_button = widgets.Button(description="Cancel order", button_style="warning", icon="times")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.children = [
            self.banner,
            widgets.HBox([self.refresh_button, self.cancel_button]),
            self.fields,
            widgets.HTML("<b>History</b>"),
            self.history,
            widgets.HTML("<b>Fills</b>"),
            self.fill_table,
            self.status,
        ]
        if auto_refresh:
            self.follow_trade_updates(self._mine, self.refresh, interval)
        self.refresh()

    def _mine(self, update: Any) -> bool:
        return self.order is not None and update.order_id == self.order.alpaca_order_id

    @guarded("refresh")
    def refresh(self) -> ManagedOrder | None:
        """Read the order, its events and fills from the ledger and show them."""
        ledger = self.service.order_service
        order = ledger.get(self.client_order_id)
        if order is None:
            raise LookupError(f"no order {self.client_order_id!r} in this account's ledger")
        events = ledger.events(self.client_order_id)
        fills = ledger.fills()
        fills = fills[fills["client_order_id"] == self.client_order_id].reset_index(drop=True)
        rows = "".join(
            f'<tr><td style="padding:1px 8px;color:#555">{name}</td>'
            f'<td style="padding:1px 8px">{escape(_text(name, getattr(order, name)))}</td></tr>'
            for name in _FIELDS
            if _text(name, getattr(order, name))
        )
        self.fields.value = f'<table style="font-family:monospace;font-size:12px">{rows}</table>'
        self.history.value = table_html(events, EVENT_COLUMNS, empty="No history")
        self.fill_table.value = table_html(fills, FILL_COLUMNS, empty="No fills")
        self.cancel_button.disabled = order.is_final or not order.alpaca_order_id
        self.order, self.events, self.fills = order, events, fills  # last: the widget shows them
        self.show(f"{order.symbol} {order.side.value} {order.type.value}: {order.status.value}", "info")
        return order

    @guarded("cancel")
    def cancel(self) -> ManagedOrder | None:
        """Ask Alpaca to cancel the order, then show its state."""
        if self.order is None or self.order.is_final:
            self.show("Nothing to cancel: the order is not working", "info")
            return None
        self.service.cancel_order_sync(self.order)
        self.service.sync_order_status_sync(self.order)
        return self.refresh()
