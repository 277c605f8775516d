"""PositionsView: open positions with unrealized P&L, and closing them."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..models import ManagedOrder
from ._base import ServiceWidget, guarded, money, options_keeping, os_user, pl_style, quantity, table_html

COLUMNS = [
    ("symbol", lambda r: r["symbol"]),
    ("side", lambda r: r["side"]),
    ("qty", lambda r: quantity(r["qty"])),
    ("avg entry", lambda r: money(r["avg_entry_price"])),
    ("price", lambda r: money(r["current_price"])),
    ("market value", lambda r: money(r["market_value"])),
    ("unrealized P&L", lambda r: money(r["unrealized_pl"])),
    ("unrealized %", lambda r: "" if pd.isna(r["unrealized_plpc"]) else f"{r['unrealized_plpc']:+.2%}"),
    ("today P&L", lambda r: money(r["unrealized_intraday_pl"])),
]
_PL_COLUMNS = {
    "unrealized P&L": "unrealized_pl",
    "unrealized %": "unrealized_pl",
    "today P&L": "unrealized_intraday_pl",
}


def _style(header: str, row: dict) -> str | None:
    return pl_style(row[_PL_COLUMNS[header]]) if header in _PL_COLUMNS else None


class PositionsView(ServiceWidget):
    """The account's open positions (``service.positions()``) with unrealized P&L in green or
    red, Refresh, and "Close position" for the selected symbols (``service.close_position_sync``),
    the closing orders booked in the ledger to ``user`` (default: the OS user).
    ``frame`` is the DataFrame last shown."""

    def __init__(self, service: Any = None, *, user: str | None = None):
        super().__init__(service)
        self.user = user or os_user()
        self.frame: pd.DataFrame = pd.DataFrame()
        self.closing: list[ManagedOrder] = []  # the closing orders placed from this view
        self.table = widgets.HTML("")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.symbol_select = widgets.SelectMultiple(
            options=[], description="Positions", layout=widgets.Layout(width="320px", height="90px")
        )
        self.close_button = widgets.Button(description="Close position", button_style="warning", icon="times")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.close_button.on_click(lambda _b: self.close_selected())
        self.children = [
            self.banner,
            self.refresh_button,
            self.table,
            widgets.HBox([self.symbol_select, self.close_button]),
            self.status,
        ]
        self.refresh()

    @guarded("refresh")
    def refresh(self) -> pd.DataFrame | None:
        """Fetch the positions and show them; returns the frame shown."""
        frame = self.service.positions()
        self.frame = frame
        self.table.value = table_html(frame, COLUMNS, cell_style=_style, empty="No open positions")
        options_keeping(
            self.symbol_select,
            [(f"{r['symbol']} ({r['side']} {quantity(r['qty'])})", r["symbol"]) for r in frame.to_dict("records")],
        )
        return frame

    @guarded("close position")
    def close_selected(self) -> list[ManagedOrder]:
        """Close each selected position in full; returns the closing orders placed."""
        chosen = list(self.symbol_select.value)
        if not chosen:
            self.show("Select positions to close first", "info")
            return []
        placed, failed = [], []
        for symbol in chosen:
            try:
                placed.append(self.service.close_position_sync(symbol, user=self.user))
            except Exception as exc:
                failed.append(exc)
                self.report(exc, f"close {symbol}")
        self.closing.extend(placed)
        text = (
            "; ".join(
                f"closing {o.symbol}: {o.side.value} {quantity(o.qty)} ({o.status.value}, {o.client_order_id})"
                for o in placed
            )
            or "nothing closed"
        )
        if failed:
            text += f"; {len(failed)} failed: {failed[-1]}"
        self.show(text, "error" if failed else "ok")
        self.refresh()
        return placed
