"""PnLView: the ledger's FIFO P&L at today's prices, grouped as you choose, refreshed on fills."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import pandas as pd

from ._base import ServiceWidget, guarded, money, pl_style, table_html

#: The groupings offered: label -> ``svc.pnl(by=...)``.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol",),
    "user": ("user",),
    "tag": ("tag",),
    "user, symbol": ("user", "symbol"),
}
_VALUES = [("realized", "realized_pnl"), ("unrealized", "unrealized_pnl"), ("total", "total_pnl")]


class PnLView(ServiceWidget):
    """Realized, unrealized and total P&L of this account's ledger (:meth:`AlpacaService.pnl`:
    FIFO lots, open ones marked at today's mid prices), grouped by symbol, user, tag, or user
    and symbol, with a total row and a bar chart. Refresh re-marks at the latest quotes; with
    ``auto_refresh`` it also refreshes when a fill arrives (the ledger follows the stream).
    ``frame`` is the P&L last shown."""

    def __init__(
        self,
        service: Any = None,
        *,
        by: str = "symbol",
        auto_refresh: bool = True,
        interval: float = 1.0,
        chart: bool = True,
    ):
        super().__init__(service)
        if by not in GROUPINGS:
            raise ValueError(f"by={by!r}: use one of {', '.join(GROUPINGS)}")
        self.frame: pd.DataFrame = pd.DataFrame()
        self.by = widgets.Dropdown(options=list(GROUPINGS), value=by, description="By")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.table = widgets.HTML("")
        self.chart = widgets.Image(format="png") if chart else None
        self.by.observe(lambda _c: self.refresh(), "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.children = [
            self.banner,
            widgets.HBox([self.by, self.refresh_button]),
            self.table,
            *([self.chart] if chart else []),
            self.status,
        ]
        if auto_refresh:
            self.follow_trade_updates(lambda u: u.event in ("fill", "partial_fill"), self.refresh, interval)
        self.refresh()

    @guarded("refresh")
    def refresh(self) -> pd.DataFrame | None:
        """Mark at the latest quotes, recompute and show; returns the frame shown."""
        keys = list(GROUPINGS[self.by.value])
        frame = self.service.pnl(by=keys)
        label = frame[keys].astype("string").fillna("(none)").agg(" / ".join, axis=1) if len(frame) else None
        shown = pd.DataFrame({"group": label, **{name: frame[column] for name, column in _VALUES}})
        if len(shown):
            total = {"group": "total", **{name: shown[name].sum() for name, _ in _VALUES}}
            shown = pd.concat([shown, pd.DataFrame([total])], ignore_index=True)
        columns = [
            (", ".join(keys), lambda r: r["group"]),
            *((name, lambda r, n=name: money(r[n])) for name, _ in _VALUES),
        ]
        self.table.value = table_html(
            shown,
            columns,
            empty="No fills in the ledger yet",
            cell_style=lambda header, r: pl_style(r[header]) if header in dict(_VALUES) else None,
        )
        if self.chart is not None:
            self._draw(frame)
        self.frame = frame  # last: once it is set, the table and the chart show it
        self.show(f"{len(frame)} group(s), open lots marked at the latest mid prices", "info")
        return frame

    def _draw(self, frame: pd.DataFrame) -> None:
        """The bars of :func:`alpaca_nb.plots.pnl_bars` as a PNG in ``chart`` (an Image widget:
        nothing is displayed or printed outside the widget)."""
        import io

        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        from ..plots import pnl_bars

        chart = self.chart
        assert chart is not None  # refresh() draws only when there is a chart
        if not len(frame):
            chart.value = b""
            return
        ax = pnl_bars(frame)
        figure = ax.figure
        assert isinstance(figure, Figure)  # pnl_bars without ax= draws on a figure of its own
        try:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
        finally:
            plt.close(figure)
        chart.value = buffer.getvalue()
