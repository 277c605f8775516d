"""Order requests check themselves when built: every rule, the field it names, and the body sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alpaca_nb.errors import OrderValidationError
from alpaca_nb.models import (
    AlpacaOrderClass,
    AlpacaOrderRequest,
    AlpacaOrderSide,
    AlpacaOrderType,
    ManagedOrder,
    ManagedOrderStatus,
    StopLoss,
    TakeProfit,
    managed_status,
)

R = AlpacaOrderRequest


def refused(field: str, **kwargs) -> OrderValidationError:
    with pytest.raises(OrderValidationError) as info:
        R(**kwargs)
    assert info.value.field == field, f"named {info.value.field!r}, expected {field!r}: {info.value}"
    return info.value


def test_seed_style_market_order():
    order = R(symbol="aapl", qty=100, side=AlpacaOrderSide.BUY, type=AlpacaOrderType.MARKET)
    assert order.symbol == "AAPL" and order.qty == Decimal(100)
    assert order.to_alpaca() == {
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "qty": "100",
    }


def test_strings_and_floats_are_accepted_exactly():
    order = R(symbol="MSFT", qty="1.5", side="BUY", type="Limit", limit_price=10.1)
    assert order.side is AlpacaOrderSide.BUY and order.type is AlpacaOrderType.LIMIT
    assert order.limit_price == Decimal("10.1") and order.qty == Decimal("1.5")


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(qty=0), "qty"),
        (dict(qty=-1), "qty"),
        (dict(), "qty"),
        (dict(qty=1, notional=100), "qty"),
        (dict(notional=-5), "notional"),
        (dict(notional="12.345"), "notional"),
        (dict(notional="0.5"), "notional"),
        (dict(qty="abc"), "qty"),
        (dict(qty=float("nan")), "qty"),
        (dict(qty=True), "qty"),
        (dict(qty="1.0000000001"), "qty"),
    ],
)
def test_quantity_rules(kwargs, field):
    refused(field, symbol="AAPL", side="buy", **kwargs)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(type="limit"), "limit_price"),
        (dict(type="stop"), "stop_price"),
        (dict(type="stop_limit", limit_price=10), "stop_price"),
        (dict(type="stop_limit", stop_price=10), "limit_price"),
        (dict(type="market", limit_price=10), "limit_price"),
        (dict(type="limit", limit_price=10, stop_price=9), "stop_price"),
        (dict(type="limit", limit_price=-1), "limit_price"),
        (dict(type="trailing_stop"), "trail_price"),
        (dict(type="trailing_stop", trail_price=1, trail_percent=1), "trail_price"),
        (dict(type="trailing_stop", trail_percent=0), "trail_percent"),
        (dict(type="trailing_stop", trail_percent=100), "trail_percent"),
        (dict(type="limit", limit_price=10, trail_percent=1), "trail_percent"),
        (dict(type="trailing_stop", trail_price="1.001"), "trail_price"),
        (dict(type="shortsell"), "type"),
        (dict(type="market", time_in_force="forever"), "time_in_force"),
    ],
)
def test_price_rules(kwargs, field):
    refused(field, symbol="AAPL", side="buy", qty=1, **kwargs)


@pytest.mark.parametrize(
    "price, ok",
    [
        ("10.01", True),
        ("10.015", False),
        ("1.00", True),
        ("1.001", False),
        ("0.9999", True),
        ("0.99999", False),
        ("0.5", True),
        ("1234.5", True),
    ],
)
def test_price_increments(price, ok):
    kwargs = dict(symbol="AAPL", side="buy", qty=1, type="limit", limit_price=price)
    if ok:
        assert R(**kwargs).limit_price == Decimal(price)
    else:
        err = refused("limit_price", **kwargs)
        assert "sub-penny" in str(err)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(qty="0.5", time_in_force="gtc"), "time_in_force"),
        (dict(notional=100, type="limit", limit_price=10), "notional"),
        (dict(qty="0.5", type="trailing_stop", trail_percent=2), "qty"),
        (dict(type="limit", limit_price=10, extended_hours=True, time_in_force="gtc"), "extended_hours"),
        (dict(extended_hours=True), "extended_hours"),
        (dict(type="stop", stop_price=10, time_in_force="opg"), "time_in_force"),
        (dict(type="trailing_stop", trail_percent=1, time_in_force="ioc"), "time_in_force"),
    ],
)
def test_fractional_notional_and_time_in_force_rules(kwargs, field):
    kwargs.setdefault("qty", None if "notional" in kwargs else 1)
    refused(field, symbol="AAPL", side="buy", **kwargs)


def test_fractional_day_market_and_notional_are_fine():
    assert R(symbol="AAPL", side="buy", qty="0.25").is_fractional
    assert R(symbol="AAPL", side="sell", notional="150.25").to_alpaca()["notional"] == "150.25"
    assert not R(symbol="AAPL", side="buy", qty=3).is_fractional


BRACKET = dict(
    symbol="AAPL",
    side="buy",
    qty=10,
    type="limit",
    limit_price=100,
    order_class="bracket",
    take_profit={"limit_price": 110},
    stop_loss={"stop_price": 95},
)


def test_bracket_is_built_with_legs():
    order = R(**BRACKET)
    assert order.take_profit == TakeProfit(Decimal(110)) and order.stop_loss == StopLoss(Decimal(95))
    body = order.to_alpaca()
    assert body["order_class"] == "bracket"
    assert body["take_profit"] == {"limit_price": "110"} and body["stop_loss"] == {"stop_price": "95"}


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(take_profit=None), "take_profit"),
        (dict(stop_loss=None), "stop_loss"),
        (dict(take_profit={"limit_price": 99}), "take_profit"),  # below the buy entry
        (dict(stop_loss={"stop_price": 101}), "take_profit"),  # ... tp not above stop? no: stop above entry
        (dict(stop_loss={"stop_price": 96, "limit_price": 97}), "stop_loss"),
        (dict(time_in_force="ioc"), "time_in_force"),
        (dict(qty="1.5"), "qty"),
        (dict(type="trailing_stop", limit_price=None, trail_percent=1), "type"),
        (dict(take_profit={"limit_price": "110.001"}), "take_profit.limit_price"),
        (dict(take_profit={"price": 110}), "take_profit"),
        (dict(order_class="simple"), "order_class"),
    ],
)
def test_bracket_rules(change, field):
    kwargs = {**BRACKET, **change}
    if field == "take_profit" and change.get("stop_loss"):
        field = "stop_loss"
    refused(field, **kwargs)


def test_sell_bracket_mirrors_prices():
    R(**{**BRACKET, "side": "sell", "take_profit": {"limit_price": 90}, "stop_loss": {"stop_price": 105}})
    refused("take_profit", **{**BRACKET, "side": "sell"})


def test_oco_and_oto():
    oco = R(
        symbol="AAPL",
        side="sell",
        qty=5,
        type="limit",
        limit_price=120,
        order_class="oco",
        take_profit={"limit_price": 120},
        stop_loss={"stop_price": 90},
    )
    assert oco.order_class is AlpacaOrderClass.OCO
    refused(
        "type",
        symbol="AAPL",
        side="sell",
        qty=5,
        order_class="oco",
        take_profit={"limit_price": 120},
        stop_loss={"stop_price": 90},
    )
    refused(
        "limit_price",
        symbol="AAPL",
        side="sell",
        qty=5,
        type="limit",
        limit_price=119,
        order_class="oco",
        take_profit={"limit_price": 120},
        stop_loss={"stop_price": 90},
    )
    oto = R(symbol="AAPL", side="buy", qty=5, order_class="oto", stop_loss={"stop_price": 90})
    assert oto.take_profit is None
    refused("take_profit", symbol="AAPL", side="buy", qty=5, order_class="oto")
    refused(
        "take_profit",
        symbol="AAPL",
        side="buy",
        qty=5,
        order_class="oto",
        take_profit={"limit_price": 120},
        stop_loss={"stop_price": 90},
    )


@pytest.mark.parametrize("symbol", ["", "aapl bad", "1ABC", None, 42, "A" * 20])
def test_symbol_shape(symbol):
    refused("symbol", symbol=symbol, side="buy", qty=1)


def test_asset_checks():
    order = R(symbol="AAPL", side="buy", qty="0.5")
    order.check_asset({"symbol": "AAPL", "status": "active", "tradable": True, "fractionable": True})
    with pytest.raises(OrderValidationError, match="not fractionable") as info:
        order.check_asset({"symbol": "AAPL", "status": "active", "tradable": True, "fractionable": False})
    assert info.value.field == "qty"
    with pytest.raises(OrderValidationError, match="not tradable"):
        order.check_asset({"symbol": "AAPL", "status": "inactive", "tradable": False, "fractionable": True})
    with pytest.raises(OrderValidationError, match="not a known asset"):
        order.check_asset(None)


def test_client_order_id_and_tags():
    refused("client_order_id", symbol="AAPL", side="buy", qty=1, client_order_id="x" * 129)
    refused("tags", symbol="AAPL", side="buy", qty=1, tags="momentum")
    order = R(symbol="AAPL", side="buy", qty=1, tags=["momentum"], client_order_id="mine-1")
    assert ManagedOrder.seed_tags(order) == ("symbol:AAPL", "side:buy", "type:market", "momentum")
    assert order.to_alpaca()["client_order_id"] == "mine-1"


@pytest.mark.parametrize(
    "alpaca, managed",
    [
        ("new", "open"),
        ("accepted", "open"),
        ("pending_new", "open"),
        ("pending_cancel", "open"),
        ("partially_filled", "partially_filled"),
        ("filled", "filled"),
        ("canceled", "canceled"),
        ("expired", "expired"),
        ("replaced", "replaced"),
        ("rejected", "rejected"),
        ("done_for_day", "open"),
        ("held", "open"),
        ("accepted_for_bidding", "open"),
        ("stopped", "open"),
        ("suspended", "open"),
        ("calculated", "open"),
        ("pending_replace", "open"),
    ],
)
def test_every_alpaca_status_maps(alpaca, managed):
    assert managed_status(alpaca) is ManagedOrderStatus(managed)


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError):
        managed_status("teleported")


# -- input hygiene (issue 9: findings 8 and 12) ---------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(qty="1e999"), "qty"),  # decimal.InvalidOperation before
        (dict(qty=Decimal("1E+30")), "qty"),
        (dict(qty=1_000_000_000), "qty"),  # does not fit DECIMAL(18, 9)
        (dict(qty=None, notional="1e9"), "notional"),
        (dict(qty=None, notional="1e40"), "notional"),
        (dict(type="limit", limit_price="1e30"), "limit_price"),
        (dict(type="limit", limit_price=10_000_000), "limit_price"),
        (dict(type="stop", stop_price=Decimal("1E+7")), "stop_price"),
        (dict(type="trailing_stop", trail_price="1e12"), "trail_price"),
        (dict(type="trailing_stop", trail_percent="1e99"), "trail_percent"),
        (dict(order_class="oto", take_profit={"limit_price": "1e30"}), "take_profit.limit_price"),
        (dict(order_class="oto", stop_loss={"stop_price": 10_000_000}), "stop_loss.stop_price"),
        (dict(order_class="oto", stop_loss={"stop_price": 5, "limit_price": "1e8"}), "stop_loss.limit_price"),
    ],
)
def test_huge_numbers_are_refused_with_the_bound(kwargs, field):
    kwargs.setdefault("qty", 1)
    err = refused(field, symbol="AAPL", side="buy", **kwargs)
    assert "below" in str(err)


def test_the_largest_accepted_values_fit_the_ledger():
    from alpaca_nb.models import MAX_NOTIONAL, MAX_PRICE, MAX_QTY

    assert MAX_QTY == MAX_NOTIONAL == Decimal(10) ** 9 and MAX_PRICE == Decimal(10) ** 7
    order = R(symbol="AAPL", side="buy", qty="999999999.999999999", type="limit", limit_price="9999999.99")
    assert order.qty < MAX_QTY and order.limit_price < MAX_PRICE
    assert R(symbol="AAPL", side="buy", notional="999999999.99").notional < MAX_NOTIONAL


def test_check_price_increment_bounds_before_quantizing():
    from alpaca_nb.models import check_price_increment

    with pytest.raises(OrderValidationError, match="below"):
        check_price_increment(Decimal("1e30"), "limit_price")


def test_numbers_go_out_in_plain_notation():
    from alpaca_nb.models import plain

    order = R(
        symbol="AAPL",
        side="buy",
        qty="1e3",
        type="limit",
        limit_price=Decimal("1E+2"),
        order_class="bracket",
        take_profit={"limit_price": Decimal("1.1E+2")},
        stop_loss={"stop_price": Decimal("9E+1"), "limit_price": Decimal("8.9E+1")},
    )
    body = order.to_alpaca()
    assert body["qty"] == "1000" and body["limit_price"] == "100"
    assert body["take_profit"] == {"limit_price": "110"}
    assert body["stop_loss"] == {"stop_price": "90", "limit_price": "89"}
    assert R(symbol="AAPL", side="buy", qty="1E-7").to_alpaca()["qty"] == "0.0000001"
    assert plain(Decimal("1E+3")) == "1000" and plain(Decimal("0.50")) == "0.50" and plain(5) == "5"
    with pytest.raises(OrderValidationError):
        plain(Decimal("NaN"))


def test_tags_none_means_no_tags_and_other_types_are_refused():
    assert R(symbol="AAPL", side="buy", qty=1, tags=None).tags == ()
    assert R(symbol="AAPL", side="buy", qty=1, tags=(t for t in ["a", "b"])).tags == ("a", "b")
    for bad in (5, b"x", {"a": 1}, ["ok", 3], ["ok", ""], [None]):
        refused("tags", symbol="AAPL", side="buy", qty=1, tags=bad)


@pytest.mark.parametrize("symbol", ["ıntc", "ſpy", "ＡＡＰＬ", "AAPL\u200b", "A..B", "BRK.", "-A", "aapl\n1"])
def test_lookalike_and_malformed_symbols_are_refused(symbol):
    refused("symbol", symbol=symbol, side="buy", qty=1)


@pytest.mark.parametrize(
    "symbol, expected", [("brk.b", "BRK.B"), (" spy ", "SPY"), ("BTC/USD", "BTC/USD"), ("ABC-W", "ABC-W")]
)
def test_alpaca_symbol_grammar_is_accepted(symbol, expected):
    assert R(symbol=symbol, side="buy", qty=1).symbol == expected


def test_enum_lookalikes_are_refused_and_near_misses_suggested():
    refused("side", symbol="AAPL", side="ſell", qty=1)  # "ſell".upper() == "SELL"
    err = refused("type", symbol="AAPL", side="buy", qty=1, type="limt")
    assert "did you mean 'limit'" in str(err)
    err = refused("time_in_force", symbol="AAPL", side="buy", qty=1, time_in_force="gct")
    assert "did you mean 'gtc'" in str(err)
    refused("side", symbol="AAPL", side=["buy"], qty=1)


@pytest.mark.parametrize("cid", ["\ud800x", "x\n", "\x00", "tab\there", " padded", "", "x" * 129, 42])
def test_client_order_id_is_printable_text_of_1_to_128_characters(cid):
    with pytest.raises(OrderValidationError) as info:
        AlpacaOrderRequest(symbol="AAPL", qty=1, side="buy", client_order_id=cid)
    assert info.value.field == "client_order_id"
    with pytest.raises(OrderValidationError):
        AlpacaOrderRequest(symbol="AAPL", qty=1, side="buy").with_client_order_id(cid)
    assert AlpacaOrderRequest(symbol="AAPL", qty=1, side="buy", client_order_id="é-ü a").client_order_id == "é-ü a"
