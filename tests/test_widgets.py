"""alpaca_nb.widgets driven from code (control values, buttons, methods) against real services on
in-process local brokers: what the widgets send, what lands in the ledger, what they show."""

from __future__ import annotations

import logging
import time

import ipywidgets
import pandas as pd
import pytest
from brokers import service_for, wait_for

from alpaca_nb import stream
from alpaca_nb.models import ManagedOrderStatus
from alpaca_nb.widgets import Blotter, OrderTicket, OrderView, PnLView, PositionsView, QuoteBoard
from alpaca_nb.widgets._base import Throttle, money

POST = ("POST", "/v2/orders")


@pytest.fixture(autouse=True)
def _stop_hubs():
    yield
    stream.stop_all()


@pytest.fixture
def opened():
    """Registers widgets; closes them (and every stream hub) before the broker stops."""
    made: list = []

    def keep(widget):
        made.append(widget)
        return widget

    yield keep
    for widget in made:
        widget.close()
    stream.stop_all()


def text_of(widget) -> str:
    """Every string a widget and its descendants show (values, labels, options)."""
    parts = [repr(widget)]
    for name in ("value", "description", "placeholder", "tooltip"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            parts.append(value)
    parts.extend(str(option) for option in getattr(widget, "options", ()) or ())
    for child in getattr(widget, "children", ()):
        parts.append(text_of(child))
    return "\n".join(parts)


def fill(ticket: OrderTicket, **values) -> OrderTicket:
    for name, value in values.items():
        getattr(ticket, name).value = value
    return ticket


def step_until(broker, predicate, what: str):
    """Move a manual-clock market on until ``predicate()`` holds."""

    def moved():
        broker.step(12)
        return predicate()

    return wait_for(moved, interval=0.1, what=what)


# -- OrderTicket --------------------------------------------------------------------------------------


def test_ticket_places_a_market_and_a_limit_order_into_the_ledger(svc, broker, opened):
    ticket = opened(OrderTicket(svc, user="ana", symbol="spy"))
    fill(ticket, qty="2", tags="momentum, test", notes="from the ticket")
    market = ticket.place()
    assert market is not None and ticket.last_order is market
    assert market.client_order_id in ticket.status.value and market.alpaca_order_id in ticket.status.value
    fill(ticket, order_type="limit", limit_price="1.00", time_in_force="gtc", qty="3", tags="dip")
    limit = ticket.place()
    assert limit.status is ManagedOrderStatus.OPEN and ticket.last_order is limit
    assert broker.requests[POST] == 2
    stored = {o.client_order_id: o for o in svc.order_service.list()}
    assert stored[market.client_order_id].user == stored[limit.client_order_id].user == "ana"
    assert {"momentum", "test", "symbol:SPY", "type:market"} <= set(stored[market.client_order_id].tags)
    assert "dip" in stored[limit.client_order_id].tags and "momentum" not in stored[limit.client_order_id].tags
    assert "from the ticket" in stored[market.client_order_id].notes
    assert stored[limit.client_order_id].limit_price == 1 and stored[limit.client_order_id].qty == 3


def test_ticket_user_defaults_to_the_os_user(svc, opened):
    import getpass

    assert opened(OrderTicket(svc)).user.value == getpass.getuser()


@pytest.mark.parametrize(
    "order_type, shown",
    [
        ("market", ["qty"]),
        ("limit", ["qty", "limit_price"]),
        ("stop", ["qty", "stop_price"]),
        ("stop_limit", ["qty", "limit_price", "stop_price"]),
        ("trailing_stop", ["qty", "trail_price", "trail_percent"]),
    ],
)
def test_ticket_shows_the_price_fields_each_type_needs(svc, opened, order_type, shown):
    ticket = opened(OrderTicket(svc, symbol="AAPL"))
    ticket.order_type.value = order_type
    assert ticket.shown_fields() == shown
    hidden = {"limit_price", "stop_price", "trail_price", "trail_percent"} - set(shown)
    assert all(getattr(ticket, name).layout.display == "none" for name in hidden)
    ticket.size_in.value = "notional"
    assert ticket.shown_fields() == ["notional", *shown[1:]]
    ticket.bracket.value = True
    assert {"take_profit", "stop_loss", "stop_loss_limit"} <= set(ticket.shown_fields())


@pytest.mark.parametrize(
    "values, field, message",
    [
        ({"order_type": "limit", "qty": "1"}, "limit_price", "needs limit_price"),
        ({"order_type": "limit", "qty": "1", "limit_price": "190.123"}, "limit_price", "sub-penny"),
        ({"symbol": "ZZZZQ", "qty": "1"}, "symbol", "not a known asset"),
        ({"qty": "ten"}, "qty", "not a number"),
        ({"qty": ""}, "qty", "exactly one of qty"),
        ({"qty": "1", "user": "  "}, "user", "user"),
        (
            {
                "order_type": "limit",
                "qty": "1",
                "limit_price": "190",
                "bracket": True,
                "take_profit": "200",
                "stop_loss": "195",
            },
            "stop_loss",
            "below the entry price",
        ),
    ],
)
def test_bad_input_names_the_field_and_sends_nothing(svc, broker, opened, values, field, message):
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="AAPL"), **values))
    assert ticket.show_preview() is None
    assert ticket.invalid_field == field and f"Invalid {field}" in ticket.status.value
    assert message in ticket.status.value
    assert ticket.place() is None and ticket.last_order is None
    assert f"Invalid {field}" in ticket.status.value
    control = {"stop_loss": ticket.stop_loss}.get(field, getattr(ticket, field))
    assert control.layout.border and "solid" in control.layout.border
    assert broker.requests[POST] == 0 and svc.order_service.list() == []


def test_a_fixed_field_clears_its_highlight(svc, opened):
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="AAPL"), order_type="limit", qty="1"))
    ticket.show_preview()
    assert ticket.limit_price.layout.border
    ticket.limit_price.value = "190.50"
    assert ticket.show_preview() is not None
    assert ticket.invalid_field is None and not ticket.limit_price.layout.border
    assert "Valid" in ticket.status.value and "190.50" in ticket.preview.value


def test_a_broker_rejection_is_shown_in_the_status(svc, broker, opened):
    broker.faults.add(path="/v2/orders", method="POST", status=403, message="insufficient buying power")
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    ticket.place_button.click()
    assert "OrderRejectedError" in ticket.status.value and "insufficient buying power" in ticket.status.value
    assert ticket.last_order is None and not ticket.place_button.disabled
    assert broker.requests[POST] == 1
    [order] = svc.order_service.list()
    assert order.status is ManagedOrderStatus.REJECTED


def test_live_ticket_refuses_until_real_money_is_confirmed(broker, opened):
    live = service_for(broker, environment="live")
    ticket = opened(
        fill(
            OrderTicket(live, user="ana", symbol="SPY"),
            order_type="limit",
            limit_price="1.00",
            time_in_force="gtc",
            qty="100",
        )
    )
    assert "LIVE" in ticket.banner.value and "REAL MONEY" in ticket.banner.value
    assert ticket.place_button.button_style == "danger" and ticket.live_box.layout.display != "none"
    assert ticket.place() is None and "REAL MONEY" in ticket.status.value
    assert broker.requests[POST] == 0
    fill(ticket, max_order_notional=50.0, max_orders_per_minute=5, confirm_live=True)
    assert "armed" in ticket.status.value
    assert ticket.place() is None  # $100 > the $50 cap
    assert "LiveTradingNotArmed" in ticket.status.value and "exceeds the live cap" in ticket.status.value
    assert broker.requests[POST] == 0
    ticket.qty.value = "10"
    order = ticket.place()
    assert order is not None and order.environment.value == "live" and broker.requests[POST] == 1
    ticket.confirm_live.value = False  # disarms: refused again
    assert ticket.place() is None and broker.requests[POST] == 1


def test_local_ticket_has_no_live_section(svc, opened):
    ticket = opened(OrderTicket(svc))
    assert ticket.live_box.layout.display == "none" and "LOCAL" in ticket.banner.value
    assert "REAL MONEY" not in ticket.banner.value


def test_the_ticket_arms_within_code_caps_and_never_resets_the_minute(broker, opened):
    live = service_for(broker, environment="live")
    live.arm_live(max_order_notional=50, max_orders_per_minute=1)
    ticket = opened(
        fill(
            OrderTicket(live, user="ana", symbol="SPY"),
            order_type="limit",
            limit_price="1.00",
            time_in_force="gtc",
            qty="10",
        )
    )
    ticket.confirm_live.value = True  # the ticket's caps: $1,000 and 10 a minute
    assert "up to $50.00 per order, 1 order a minute" in ticket.status.value
    assert ticket.place() is not None and broker.requests[POST] == 1
    fill(ticket, max_order_notional=5000.0, max_orders_per_minute=100)  # touching the caps re-arms...
    assert "up to $50.00 per order, 1 order a minute" in ticket.status.value
    ticket.qty.value = "20"
    assert ticket.place() is None and "in a minute" in ticket.status.value  # ...within code's, same minute
    assert broker.requests[POST] == 1


def test_editing_a_cap_with_the_box_unticked_leaves_code_arming_alone(broker, opened):
    from alpaca_nb import AlpacaOrderRequest

    live = service_for(broker, environment="live")
    live.arm_live(max_order_notional=100)
    ticket = opened(OrderTicket(live, user="ana", symbol="SPY"))
    fill(ticket, max_order_notional=20.0, max_orders_per_minute=3)
    order = live.place_order_sync(
        user="ana", order_request=AlpacaOrderRequest(symbol="SPY", qty=1, side="buy", type="limit", limit_price="1.00")
    )
    assert order.alpaca_order_id and broker.requests[POST] == 1


def orders_at(broker) -> int:
    return len(broker.engine.book.orders)


def test_a_double_click_places_one_order(svc, broker, opened):
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    ticket.place_button.click()
    ticket.place_button.click()  # the second click of a double click
    assert broker.requests[POST] == 1 and orders_at(broker) == 1
    assert ticket.place_button.disabled and ticket.last_order.alpaca_order_id in ticket.status.value
    assert ticket.place() is ticket.last_order  # placing again: the same order
    assert "Already placed" in ticket.status.value and broker.requests[POST] == 1


def test_clicks_from_two_threads_place_one_order(svc, broker, opened):
    import threading

    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    start = threading.Barrier(2)

    def click():
        start.wait()
        ticket.place_button.click()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert broker.requests[POST] == 1 and orders_at(broker) == 1 and ticket.last_order is not None


def test_placing_from_two_threads_returns_one_order(svc, broker, opened):
    import threading

    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    start, placed = threading.Barrier(2), []

    def place():
        start.wait()
        placed.append(ticket.place())

    threads = [threading.Thread(target=place) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert placed[0] is not None and placed[0] is placed[1]
    assert broker.requests[POST] == 1 and orders_at(broker) == 1


def test_a_retry_after_an_unknown_outcome_reuses_the_client_order_id(svc, broker, opened):
    broker.faults.add(path="/v2/orders", method="POST", drop_after=True)  # lands, answer lost
    broker.faults.add(path="/v2/orders:by_client_order_id", method="GET", status=500, times=3)
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    ticket.place_button.click()
    assert "OrderOutcomeUnknownError" in ticket.status.value and not ticket.place_button.disabled
    [unknown] = svc.order_service.list()
    ticket.place_button.click()  # the retry: same submission, same id
    assert ticket.last_order.client_order_id == unknown.client_order_id and ticket.last_order.alpaca_order_id
    assert orders_at(broker) == 1


def test_a_changed_ticket_or_new_order_is_a_new_submission(svc, broker, opened):
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    first = ticket.place()
    assert ticket.place_button.disabled
    ticket.qty.value = "2"
    assert not ticket.place_button.disabled
    second = ticket.place()
    ticket.new_button.click()
    third = ticket.place()
    assert len({first.client_order_id, second.client_order_id, third.client_order_id}) == 3
    assert broker.requests[POST] == 3 and orders_at(broker) == 3


# -- Blotter -----------------------------------------------------------------------------------------


def place(svc, user, **request):
    from alpaca_nb import AlpacaOrderRequest

    return svc.place_order_sync(user=user, order_request=AlpacaOrderRequest(**{"side": "buy", **request}), tags=["t"])


def test_blotter_lists_filters_and_cancels_a_selected_open_order(svc, broker, opened):
    resting = place(svc, "ana", symbol="SPY", qty=1, type="limit", limit_price=1, time_in_force="gtc")
    filled = place(svc, "bob", symbol="AAPL", qty=1, type="market")
    blotter = opened(Blotter(svc, auto_refresh=False))
    assert list(blotter.frame["client_order_id"]) == [filled.client_order_id, resting.client_order_id]
    assert "SPY" in blotter.table.value and "1.00" in blotter.table.value and "bob" in blotter.table.value
    blotter.user_filter.value = "ana"
    assert list(blotter.frame["user"]) == ["ana"]
    blotter.user_filter.value = ""
    blotter.status_filter.value = "working"
    assert list(blotter.frame["client_order_id"]) == [resting.client_order_id]
    assert [v for _label, v in blotter.cancel_select.options] == [resting.client_order_id]

    delete = ("DELETE", f"/v2/orders/{resting.alpaca_order_id}")
    blotter.cancel_button.click()  # nothing selected: says so, sends nothing
    assert "Select" in blotter.status.value and broker.requests[delete] == 0
    blotter.cancel_select.value = (resting.client_order_id,)
    blotter.cancel_button.click()
    assert broker.requests[delete] == 1
    assert "Cancel requested for 1 of 1" in blotter.status.value
    assert svc.order_service.get(resting.client_order_id).status is ManagedOrderStatus.CANCELED
    assert blotter.frame.empty and blotter.cancel_select.options == ()  # no longer working
    blotter.status_filter.value = "canceled"
    assert list(blotter.frame["client_order_id"]) == [resting.client_order_id]


def test_blotter_refreshes_itself_on_trade_updates(svc, broker, opened):
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import LimitOrderRequest

    resting = place(svc, "ana", symbol="SPY", qty=2, type="limit", limit_price=1, time_in_force="gtc")
    blotter = opened(Blotter(svc, interval=0.2))
    assert list(blotter.frame["status"]) == ["open"] and svc.streams.subscriptions("trade_updates")
    # Changes made elsewhere (another app on the account) reach the table through the stream.
    client = TradingClient(broker.key, broker.secret, url_override=broker.url)
    client.cancel_order_by_id(resting.alpaca_order_id)
    client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", limit_price=1, time_in_force="gtc"))

    def shown() -> bool:
        frame = blotter.frame
        return frame["status"].tolist() == ["open", "canceled"] and frame["user"].tolist() == ["external", "ana"]

    wait_for(shown, what="the blotter showing the cancel and the external order")
    assert blotter.trade_updates >= 2 and "canceled" in blotter.table.value and "external" in blotter.table.value
    assert blotter.refreshes <= blotter.trade_updates + 1  # one refresh per burst, at most
    blotter.close()
    assert svc.streams.subscriptions("trade_updates") == []  # its own and the follower it started


def test_blotter_on_an_in_memory_order_store(broker, opened):
    from alpaca_nb import InMemoryOrderStore

    svc = service_for(broker, order_service=InMemoryOrderStore())
    first = place(svc, "ana", symbol="SPY", qty=1, type="limit", limit_price=1, time_in_force="gtc")
    second = place(svc, "bob", symbol="AAPL", notional=250, type="market")
    blotter = opened(Blotter(svc, status="working", auto_refresh=False))
    assert list(blotter.frame["client_order_id"]) == [first.client_order_id]
    blotter.status_filter.value = "all"
    assert list(blotter.frame["client_order_id"]) == [second.client_order_id, first.client_order_id]
    assert "$250.00" in blotter.table.value
    with pytest.raises(ValueError, match="working"):
        Blotter(svc, status="done", auto_refresh=False)


def test_throttle_calls_at_most_once_per_interval_during_a_stream_of_pokes():
    calls: list[float] = []
    throttle = Throttle(lambda: calls.append(time.monotonic()), 0.2)
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # a busy stream: a poke every millisecond for a second
            throttle.poke()
            time.sleep(0.001)
        time.sleep(0.3)  # the trailing call after the last poke
        gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
        assert 3 <= len(calls) <= 7 and min(gaps) >= 0.19
    finally:
        throttle.stop()
    throttle.poke()
    time.sleep(0.3)
    assert len(calls) == len(gaps) + 1  # stopped: no more calls


# -- PositionsView --------------------------------------------------------------------------------------


def test_positions_view_shows_a_position_and_closes_it(svc, broker, opened):
    view = opened(PositionsView(svc, user="ana"))
    assert view.frame.empty and "No open positions" in view.table.value
    place(svc, "ana", symbol="SPY", qty=3, type="market")
    wait_for(lambda: view.refresh() is not None and list(view.frame["symbol"]) == ["SPY"], what="the position")
    assert "SPY" in view.table.value and view.frame["qty"].iloc[0] == 3
    view.symbol_select.value = ("SPY",)
    view.close_button.click()
    assert "closing SPY" in view.status.value
    [closing] = view.closing
    assert closing.symbol == "SPY" and closing.side.value == "sell" and closing.qty == 3
    assert svc.order_service.get(closing.client_order_id).user == "ana"  # booked to the view's user
    wait_for(lambda: view.refresh() is not None and view.frame.empty, what="the position closed")


def test_a_failing_refresh_is_shown_and_logged_not_raised(svc, broker, opened, caplog):
    view = opened(PositionsView(svc))
    broker.faults.add(path="/v2/positions", status=504)
    with caplog.at_level(logging.INFO, logger="alpaca_nb"):
        view.refresh_button.click()
    assert "NetworkError" in view.status.value and "504" in view.status.value
    assert any("NetworkError" in r.getMessage() for r in caplog.records if r.name == "alpaca_nb")


# -- OrderView -----------------------------------------------------------------------------------------------


def test_order_view_shows_fields_history_fills_and_cancels(svc, broker, opened):
    filled = place(svc, "ana", symbol="SPY", qty=2, type="market")
    view = opened(OrderView(svc, filled))
    assert view.order.status is ManagedOrderStatus.FILLED and view.cancel_button.disabled
    assert list(view.events["source"])[:2] == ["submit", "submit"] and "created" in view.history.value
    wait_for(lambda: view.refresh() is not None and len(view.fills) == 1, what="the fill in the ledger")
    assert view.fills["qty"].sum() == 2 and view.fills["execution_id"].iloc[0] in view.fill_table.value
    assert filled.client_order_id in view.fields.value and "ana" in view.fields.value

    resting = place(svc, "ana", symbol="SPY", qty=1, type="limit", limit_price=1, time_in_force="gtc")
    working = opened(OrderView(svc, resting.client_order_id))
    assert not working.cancel_button.disabled
    deletes = broker.requests[("DELETE", f"/v2/orders/{resting.alpaca_order_id}")]
    working.cancel_button.click()
    assert broker.requests[("DELETE", f"/v2/orders/{resting.alpaca_order_id}")] == deletes + 1
    wait_for(lambda: working.order.status is ManagedOrderStatus.CANCELED, what="the canceled state")
    assert "canceled" in working.history.value and working.cancel_button.disabled
    assert (
        working.cancel() is None and broker.requests[("DELETE", f"/v2/orders/{resting.alpaca_order_id}")] == deletes + 1
    )  # nothing more to cancel: nothing sent

    missing = opened(OrderView(svc, "nb-no-such-order", auto_refresh=False))
    assert missing.order is None and "no order" in missing.status.value
    with pytest.raises(ValueError, match="needs an order"):
        OrderView(svc, "")


# -- PnLView -------------------------------------------------------------------------------------------------


def test_pnl_view_groups_marks_and_refreshes_on_fills(manual_broker, opened):
    svc = service_for(manual_broker)
    view = opened(PnLView(svc, by="user", interval=0.05))
    assert view.frame.empty and "No fills" in view.table.value and bytes(view.chart.value) == b""
    assert svc.follower is not None  # the ledger follows the stream
    place(svc, "ana", symbol="AAPL", qty=4, type="market")
    place(svc, "ben", symbol="MSFT", qty=2, type="market")
    wait_for(lambda: len(view.frame) == 2, what="a refresh on the fills")
    expected = svc.pnl(by=["user"])  # the market stands still
    pd.testing.assert_frame_equal(view.frame, expected)
    assert "ana" in view.table.value and "ben" in view.table.value and ">total<" in view.table.value
    assert bytes(view.chart.value).startswith(b"\x89PNG")  # the bars, as an image
    view.by.value = "user, symbol"  # regroup
    assert view.frame[["user", "symbol"]].values.tolist() == [["ana", "AAPL"], ["ben", "MSFT"]]
    view.close()
    assert svc.follower is None and svc.streams.subscriptions("trade_updates") == []
    with pytest.raises(ValueError, match="by="):
        PnLView(svc, by="month")


# -- QuoteBoard -------------------------------------------------------------------------------------------


def test_quote_board_fills_in_quotes_from_the_stream_and_stops_on_close(manual_broker, opened):
    svc = service_for(manual_broker)
    board = opened(QuoteBoard(svc, ["SPY", "aapl"], interval=0.05))
    assert board.symbols == ["SPY", "AAPL"] and board.live
    seeded = board.frame  # the latest quotes, before any stream message
    assert seeded.index.tolist() == ["SPY", "AAPL"] and seeded["bid_price"].notna().all()
    step_until(
        manual_broker, lambda: all(board._quotes[s].updates for s in ("SPY", "AAPL")), "stream quotes for both symbols"
    )
    frame = board.frame
    assert (frame["timestamp"] > seeded["timestamp"]).all()  # the stream's quotes replaced them
    assert (frame["ask_price"] >= frame["bid_price"]).all() and (frame["spread"] >= 0).all()
    wait_for(
        lambda: all(money(board.frame.loc[s, "bid_price"]) in board.table.value for s in ("AAPL", "SPY")),
        what="the table showing both quotes",
    )

    board.symbols_input.value = "SPY"  # the text box removes a symbol
    assert board.symbols == ["SPY"] and board.frame.index.tolist() == ["SPY"]
    assert board.add("msft") == ["SPY", "MSFT"] and board.symbols_input.value == "SPY, MSFT"
    assert board.remove("MSFT") == ["SPY"]
    assert board.add("ZZZZQ") is None and "not a known asset" in board.status.value
    assert board.symbols == ["SPY"] and len(svc.streams.subscriptions("quotes")) == 1

    hub = svc.streams
    assert hub.subscriptions("quotes")
    board.close()
    assert hub.subscriptions("quotes") == [] and not board.live
    seen = board.frame.loc["SPY", "timestamp"]
    manual_broker.step(60)
    time.sleep(0.3)
    assert board.frame.loc["SPY", "timestamp"] == seen  # nothing arrives after close


# -- every widget -------------------------------------------------------------------------------------------


def test_reprs_are_short_stable_and_no_widget_shows_a_secret(svc, broker, opened):
    ticket = opened(OrderTicket(svc, user="ana", symbol="SPY"))
    made = [ticket, opened(Blotter(svc)), opened(PositionsView(svc)), opened(QuoteBoard(svc, ["SPY"]))]
    before = [repr(w) for w in made]
    assert before == [
        "OrderTicket(environment='local')",
        "Blotter(environment='local')",
        "PositionsView(environment='local')",
        "QuoteBoard(environment='local', symbols=['SPY'])",
    ]
    fill(ticket, qty="1")
    ticket.place()
    broker.faults.add(path="/v2/orders", method="POST", status=403, message="no")
    ticket.place()
    made[1].refresh()
    made[2].refresh()
    assert [repr(w) for w in made] == before
    assert all(w._repr_mimebundle_()["text/plain"] == repr(w) for w in made)
    for widget in made:
        assert isinstance(widget, ipywidgets.VBox) and svc.account_id in widget.banner.value
        shown = text_of(widget)
        assert broker.key not in shown and broker.secret not in shown


def test_preview_after_placing_says_placed_and_keeps_the_order_in_view(svc, broker, opened):
    """Seen in the browser: Preview after Place said "press Place to send it" while Place was
    disabled, and replaced the placed order's details."""
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    order = ticket.place()
    assert ticket.show_preview() is None
    assert "Already placed" in ticket.status.value and "press Place" not in ticket.status.value
    assert order.client_order_id in ticket.preview.value and broker.requests[POST] == 1


def test_a_refusal_or_a_new_order_leaves_no_earlier_order_in_view(svc, broker, opened):
    ticket = opened(fill(OrderTicket(svc, user="ana", symbol="SPY"), qty="1"))
    order = ticket.place()
    ticket.new_order()
    assert ticket.preview.value == "" and order.client_order_id not in ticket.status.value
    fill(ticket, qty="100000000")  # refused: far beyond buying power
    assert ticket.place() is None
    assert order.client_order_id not in ticket.preview.value
