"""OrderTicket: fill in an order, preview the validated request, place it (once per submission)."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..errors import LiveTradingNotArmed, NetworkError, OrderValidationError
from ..models import (
    AlpacaEnvironment,
    AlpacaOrderRequest,
    AlpacaOrderSide,
    AlpacaOrderType,
    AlpacaTimeInForce,
    ManagedOrder,
)
from ..service import new_client_order_id
from ._base import ERROR_COLOR, ServiceWidget, guarded, hide, is_shown, os_user, split_list, table_html

#: The price fields each order type shows.
PRICE_FIELDS: dict[str, tuple[str, ...]] = {
    "market": (),
    "limit": ("limit_price",),
    "stop": ("stop_price",),
    "stop_limit": ("limit_price", "stop_price"),
    "trailing_stop": ("trail_price", "trail_percent"),
}
# An OrderValidationError's field -> the control to highlight.
_FIELD_CONTROLS = {
    "type": "order_type",
    "order_class": "bracket",
    "take_profit.limit_price": "take_profit",
    "stop_loss.stop_price": "stop_loss",
    "stop_loss.limit_price": "stop_loss_limit",
}
_HIGHLIGHT = f"2px solid {ERROR_COLOR}"
# The controls whose values make up an order: changing any of them starts a new submission.
_FORM = (
    "symbol",
    "side",
    "order_type",
    "size_in",
    "qty",
    "notional",
    "limit_price",
    "stop_price",
    "trail_price",
    "trail_percent",
    "time_in_force",
    "extended_hours",
    "bracket",
    "take_profit",
    "stop_loss",
    "stop_loss_limit",
    "user",
    "tags",
    "notes",
)


def _wide() -> widgets.Layout:
    return widgets.Layout(width="320px")  # a Layout per control: hiding one must not hide others


def _text(description: str, value: str = "", placeholder: str = "") -> widgets.Text:
    return widgets.Text(value=value, description=description, placeholder=placeholder, layout=_wide())


def _blank(text: str) -> str | None:
    return text.strip() or None


class OrderTicket(ServiceWidget):
    """An order ticket: symbol, side, type, size in shares or dollars, the prices the type needs,
    time in force, extended hours, an optional bracket, user, tags and notes.

    "Preview" shows the validated request (or the invalid field, highlighted); "Place" sends it
    with ``service.place_order_sync`` and shows the managed order. Bad input sends nothing. In
    the LIVE environment placing needs the "real money" box ticked, which arms live trading with
    the two caps shown beside it, within any caps armed in code (``arm_live(tighten_only=True)``).
    Drive it from code through the controls (``ticket.symbol``, ``ticket.side``,
    ``ticket.order_type``, ``ticket.qty``, ...) and :meth:`place`.

    One order per submission, however fast the clicks come: "Place" is disabled before any work
    starts, and each submission keeps one ``client_order_id``. It stays disabled once the order
    is placed, until the ticket changes or "New order" is pressed (a click already on its way
    is ignored, and placing again returns the same order). After an unknown outcome it is
    enabled again: pressing it retries under the same ``client_order_id``, which never places a
    second order. After a refusal the next press is a new submission.
    """

    def __init__(self, service: Any = None, *, user: str | None = None, symbol: str = ""):
        super().__init__(service)
        self.last_order: ManagedOrder | None = None
        self.invalid_field: str | None = None  # the field the last preview/place refused
        self.symbol = _text("Symbol", symbol.upper(), "AAPL")
        self.side = widgets.ToggleButtons(
            options=[s.value for s in AlpacaOrderSide], description="Side", style={"button_width": "80px"}
        )
        self.order_type = widgets.Dropdown(
            options=[t.value for t in AlpacaOrderType], description="Type", layout=_wide()
        )
        self.size_in = widgets.ToggleButtons(
            options=[("shares", "qty"), ("dollars", "notional")], description="Size in", style={"button_width": "80px"}
        )
        self.qty = _text("Qty", "", "shares, e.g. 10 or 0.5")
        self.notional = _text("Notional $", "", "dollars, e.g. 250")
        self.limit_price = _text("Limit price")
        self.stop_price = _text("Stop price")
        self.trail_price = _text("Trail $", "", "one of trail $ / trail %")
        self.trail_percent = _text("Trail %")
        self.time_in_force = widgets.Dropdown(
            options=[t.value for t in AlpacaTimeInForce], description="Time in force", layout=_wide()
        )
        self.extended_hours = widgets.Checkbox(description="Extended hours", indent=True)
        self.bracket = widgets.Checkbox(description="Bracket (take profit + stop loss)", indent=True)
        self.take_profit = _text("Take profit", "", "limit price")
        self.stop_loss = _text("Stop loss", "", "stop price")
        self.stop_loss_limit = _text("Stop limit", "", "optional limit price")
        self.bracket_box = widgets.VBox([self.take_profit, self.stop_loss, self.stop_loss_limit])
        self.user = _text("User", user or os_user())
        self.tags = _text("Tags", "", "comma-separated, e.g. momentum, earnings")
        self.notes = widgets.Textarea(description="Notes", layout=widgets.Layout(width="320px", height="48px"))
        live = self.environment is AlpacaEnvironment.LIVE
        self.confirm_live = widgets.Checkbox(
            description="I understand: these orders use REAL MONEY", indent=False, layout=widgets.Layout(width="400px")
        )
        self.max_order_notional = widgets.BoundedFloatText(
            value=1_000.0, min=1.0, max=1e9, description="Max order $", layout=_wide()
        )
        self.max_orders_per_minute = widgets.BoundedIntText(
            value=10, min=1, max=10_000, description="Max orders/min", layout=_wide()
        )
        self.live_box = widgets.VBox([self.confirm_live, self.max_order_notional, self.max_orders_per_minute])
        self.preview_button = widgets.Button(description="Preview", icon="eye")
        self._place_label = "Place LIVE order" if live else "Place order"
        self.place_button = widgets.Button(
            description=self._place_label, button_style="danger" if live else "primary", icon="paper-plane"
        )
        self.new_button = widgets.Button(
            description="New order", icon="plus", tooltip="start another order from this ticket (a new client_order_id)"
        )
        self.preview = widgets.HTML("")
        self._client_order_id: str | None = None  # this submission's id (None: a new one on Place)
        self._placed: ManagedOrder | None = None  # the order this submission placed
        self._state = threading.Lock()  # guards the two above and the button
        self._placing = threading.Lock()  # one placement at a time

        self.order_type.observe(lambda _c: self._layout(), "value")
        self.size_in.observe(lambda _c: self._layout(), "value")
        self.bracket.observe(lambda _c: self._layout(), "value")
        for name in _FORM:
            getattr(self, name).observe(lambda _c: self.new_order(), "value")
        self.confirm_live.observe(lambda _c: self._arm(), "value")
        self.max_order_notional.observe(lambda _c: self._arm(cap_changed=True), "value")
        self.max_orders_per_minute.observe(lambda _c: self._arm(cap_changed=True), "value")
        self.preview_button.on_click(lambda _b: self.show_preview())
        self.place_button.on_click(self._clicked)
        self.new_button.on_click(lambda _b: self.new_order())
        hide(self.live_box, not live)
        self._layout()
        self.children = [
            self.banner,
            self.symbol,
            self.side,
            self.order_type,
            self.size_in,
            self.qty,
            self.notional,
            self.limit_price,
            self.stop_price,
            self.trail_price,
            self.trail_percent,
            self.time_in_force,
            self.extended_hours,
            self.bracket,
            self.bracket_box,
            self.user,
            self.tags,
            self.notes,
            self.live_box,
            widgets.HBox([self.preview_button, self.place_button, self.new_button]),
            self.status,
            self.preview,
        ]

    # -- the form -------------------------------------------------------------------------------
    def _layout(self) -> None:
        """Show exactly the fields the chosen type, size and class need."""
        wanted = PRICE_FIELDS[self.order_type.value]
        for name in ("limit_price", "stop_price", "trail_price", "trail_percent"):
            hide(getattr(self, name), name not in wanted)
        hide(self.qty, self.size_in.value != "qty")
        hide(self.notional, self.size_in.value != "notional")
        hide(self.bracket_box, not self.bracket.value)

    def shown_fields(self) -> list[str]:
        """The names of the order fields on show (they change with type, size and bracket)."""
        names = [
            "qty",
            "notional",
            "limit_price",
            "stop_price",
            "trail_price",
            "trail_percent",
            "take_profit",
            "stop_loss",
            "stop_loss_limit",
        ]
        return [
            n
            for n in names
            if is_shown(getattr(self, n))
            and (n not in ("take_profit", "stop_loss", "stop_loss_limit") or self.bracket.value)
        ]

    def request(self) -> AlpacaOrderRequest:
        """The order the ticket describes, validated: raises ``OrderValidationError`` naming the field."""
        values: dict[str, Any] = {
            "symbol": self.symbol.value,
            "side": self.side.value,
            "type": self.order_type.value,
            "time_in_force": self.time_in_force.value,
            "extended_hours": self.extended_hours.value,
            self.size_in.value: _blank(getattr(self, self.size_in.value).value),
        }
        for name in PRICE_FIELDS[self.order_type.value]:
            values[name] = _blank(getattr(self, name).value)
        if self.bracket.value:
            values.update(
                order_class="bracket",
                take_profit={"limit_price": _blank(self.take_profit.value)},
                stop_loss={
                    "stop_price": _blank(self.stop_loss.value),
                    "limit_price": _blank(self.stop_loss_limit.value),
                },
            )
        return AlpacaOrderRequest(**values)

    def tag_list(self) -> list[str]:
        return split_list(self.tags.value)

    def _checked(self) -> AlpacaOrderRequest:
        """The request, also checked against the asset (tradable, fractionable); marks a bad field."""
        self._highlight(None)
        try:
            request = self.request()
            return self.service.check_order(request, user=self.user.value)
        except OrderValidationError as err:
            self._highlight(err.field)
            raise

    def _highlight(self, field: str | None) -> None:
        self.invalid_field = field
        for name in (
            "symbol",
            "side",
            "order_type",
            "qty",
            "notional",
            "limit_price",
            "stop_price",
            "trail_price",
            "trail_percent",
            "time_in_force",
            "extended_hours",
            "bracket",
            "take_profit",
            "stop_loss",
            "stop_loss_limit",
            "user",
            "tags",
        ):
            getattr(self, name).layout.border = None
        if field is None:
            return
        name = _FIELD_CONTROLS.get(field, field.split(".")[0])
        control = getattr(self, name, None)
        if name in ("qty", "notional") and control is not None and not is_shown(control):
            control = getattr(self, self.size_in.value)
        if isinstance(control, widgets.Widget):
            control.layout.border = _HIGHLIGHT

    # -- actions --------------------------------------------------------------------------------
    @guarded("preview")
    def show_preview(self) -> AlpacaOrderRequest | None:
        """Validate the ticket and show the request that "Place" would send (once this
        submission is placed: say so, and keep the placed order's details in view)."""
        placed = self._placed
        if placed is not None:
            self.show(
                f"Already placed: {placed.side.value} {placed.symbol} · client_order_id "
                f"{placed.client_order_id}. Change the ticket or press New order to place another",
                "info",
            )
            return None
        self.preview.value = ""
        request = self._checked()
        self.preview.value = _fields_html(
            {**request.to_alpaca(), "user": self.user.value.strip(), "tags": ", ".join(self.tag_list())}
        )
        live = " — LIVE: this is a real-money order" if self.environment is AlpacaEnvironment.LIVE else ""
        self.show(f"Valid {request.side.value} order for {request.symbol}: press Place to send it{live}", "ok")
        return request

    def _clicked(self, _button: Any = None) -> ManagedOrder | None:
        """The Place button: disabled first, before any work; a click that finds it disabled (a
        double click, a click already on its way) does nothing."""
        with self._state:
            if self.place_button.disabled:
                return None
            self.place_button.disabled = True
        return self.place()

    def new_order(self) -> None:
        """Start a new submission: a fresh ``client_order_id`` on the next Place (any change to
        the ticket does this; so does the "New order" button)."""
        with self._state:
            self._client_order_id = self._placed = None
            if not self._placing.locked():
                self._enable()
        self.preview.value = ""
        self.show("")

    def _enable(self) -> None:
        self.place_button.description = self._place_label
        self.place_button.disabled = False

    @guarded("place order")
    def place(self) -> ManagedOrder | None:
        """Validate and place the order (what the Place button does); the managed order, or None
        when it was refused (the status line says why; a refused ticket sends nothing).

        Placing an unchanged ticket again returns the order already placed, never a second one.
        """
        with self._placing:
            self.place_button.disabled = True
            placed: ManagedOrder | None = None
            try:
                placed = self._submit()
            except NetworkError:  # the outcome is unknown: Place again retries under the same id
                raise
            except Exception:  # refused: nothing placed under this id; the next Place is new
                with self._state:
                    self._client_order_id = None
                self.preview.value = ""  # no earlier order's details under the refusal
                raise
            finally:
                with self._state:
                    if placed is not None and self._placed is placed:
                        self.place_button.description = "Placed"
                    else:
                        self._enable()
        return placed

    def _submit(self) -> ManagedOrder:
        request = self._checked()
        if self.environment is AlpacaEnvironment.LIVE and not self.confirm_live.value:
            raise LiveTradingNotArmed(
                "this is the LIVE environment (real money): tick "
                "'I understand: these orders use REAL MONEY' to place orders"
            )
        with self._state:
            if self._placed is not None:
                order = self._placed
                self.show(
                    f"Already placed: {order.side.value} {order.symbol} · client_order_id "
                    f"{order.client_order_id}. Change the ticket or press New order to place another",
                    "info",
                )
                return order
            client_order_id = self._client_order_id = self._client_order_id or new_client_order_id()
        order = self.service.place_order_sync(
            user=self.user.value.strip(),
            order_request=request.with_client_order_id(client_order_id),
            tags=self.tag_list(),
            notes=self.notes.value.strip(),
        )
        with self._state:
            if self._client_order_id == client_order_id:  # the ticket did not change meanwhile
                self._placed = order
        self.last_order = order
        self.show(
            f"Placed {order.side.value} {order.symbol} ({order.type.value}): status {order.status.value}"
            f" · client_order_id {order.client_order_id} · alpaca id {order.alpaca_order_id}",
            "ok",
        )
        self.preview.value = _fields_html(
            {
                "status": order.status.value,
                "alpaca_status": order.alpaca_status,
                "client_order_id": order.client_order_id,
                "alpaca_order_id": order.alpaca_order_id,
                "filled_qty": order.filled_qty,
                "filled_avg_price": order.filled_avg_price,
                "tags": ", ".join(order.tags),
                "notes": order.notes,
            }
        )
        return order

    @guarded("arm live trading")
    def _arm(self, cap_changed: bool = False) -> None:
        """Tick the box: arm live trading with the caps, within any caps armed in code (never
        looser, never resetting the minute's order count); untick: disarm. A cap changed while
        the box is ticked re-arms the same way; while it is not, it does nothing."""
        if self.environment is not AlpacaEnvironment.LIVE:
            return
        if not self.confirm_live.value:
            if not cap_changed:
                self.service.disarm_live()
                self.show("Live trading disarmed: no order will be placed", "info")
            return
        cap, rate = self.max_order_notional.value, self.max_orders_per_minute.value
        caps = self.service.arm_live(max_order_notional=cap, max_orders_per_minute=rate, tighten_only=True)
        within = (
            " (the caps armed in code)" if (caps.max_order_notional < cap or caps.max_orders_per_minute < rate) else ""
        )
        self.show(f"LIVE trading armed: {caps}{within}", "warn")


def _fields_html(values: dict[str, Any]) -> str:
    """A two-column field/value table of what is set in ``values``."""
    rows = pd.DataFrame([{"field": k, "value": v} for k, v in values.items() if v not in ("", None)])
    return table_html(rows, [("field", lambda r: r["field"]), ("value", lambda r: r["value"])])
