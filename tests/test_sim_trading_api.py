"""Trading API v2 of the local broker through the real alpaca-py TradingClient.

Every endpoint, the error answers (status and Alpaca code, state unchanged after a refusal),
the 207 multi-status bodies, persistence across a restart. Every response the ``broker``
fixtures served is checked against Alpaca's OpenAPI spec at teardown (conftest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    GetPortfolioHistoryRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
)

from alpaca_nb.sim import LocalBroker

D = Decimal


@pytest.fixture
def client(manual_broker) -> TradingClient:
    return TradingClient(manual_broker.key, manual_broker.secret, url_override=manual_broker.url)


def _market(symbol="AAPL", qty=1, side=OrderSide.BUY, **kw):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw)


def _resting(symbol="AAPL", qty=1, price=1.0, **kw):
    return LimitOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, limit_price=price, time_in_force=TimeInForce.GTC, **kw
    )


def _state(client: TradingClient) -> tuple:
    """What a refused request must leave as it was."""
    acct = client.get_account()
    orders = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500))
    return (
        acct.cash,
        acct.buying_power,
        len(orders),
        sorted((p.symbol, p.qty) for p in client.get_all_positions()),
        len(client.get("/account/activities")),
    )


def _raw(broker, method: str, path: str, headers: dict | None = None, **kw) -> requests.Response:
    headers = {"APCA-API-KEY-ID": broker.key, "APCA-API-SECRET-KEY": broker.secret, **(headers or {})}
    return requests.request(method, broker.url + path, headers=headers, timeout=10, **kw)


# ---- account ---------------------------------------------------------------------------------
def test_account_and_configurations(client, manual_broker):
    acct = client.get_account()
    assert acct.status.value == "ACTIVE" and acct.cash == "100000" and acct.multiplier == "2"
    assert acct.buying_power == "200000" and str(acct.id) == manual_broker.engine.account_id
    conf = client.get_account_configurations()
    assert conf.fractional_trading and conf.max_margin_multiplier == "2"
    conf.no_shorting = True
    assert client.set_account_configurations(conf).no_shorting is True
    assert client.get_account().shorting_enabled is False
    r = _raw(manual_broker, "PATCH", "/v2/account/configurations", json={"suspend_trade": "no"})
    assert r.status_code == 422 and r.json()["code"] == 42210000
    assert "suspend_trade" in r.json()["message"]


# ---- orders ----------------------------------------------------------------------------------
def test_submit_get_list_cancel(client, manual_broker):
    quote = manual_broker.market.quote("AAPL")
    filled = client.submit_order(_market(qty=2, client_order_id="buy-1"))
    assert filled.status == OrderStatus.FILLED and D(filled.filled_avg_price) == quote.ask
    assert filled.client_order_id == "buy-1" and filled.qty == "2" and filled.order_class.value == "simple"
    rest = client.submit_order(_resting())
    assert rest.status == OrderStatus.NEW
    assert client.get_order_by_id(rest.id).status == OrderStatus.NEW
    assert client.get_order_by_client_id("buy-1").id == filled.id
    open_ids = [o.id for o in client.get_orders()]
    assert open_ids == [rest.id]
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.id for o in closed] == [filled.id]
    assert client.cancel_order_by_id(rest.id) is None
    assert client.get_order_by_id(rest.id).status == OrderStatus.CANCELED
    with pytest.raises(APIError) as err:
        client.cancel_order_by_id(rest.id)
    assert (err.value.status_code, err.value.code) == (422, 42210000)
    assert err.value.message == "order is not cancelable"
    assert manual_broker.requests[("DELETE", f"/v2/orders/{rest.id}")] == 2


def test_cancel_answers_204_with_no_body(client, manual_broker):
    rest = client.submit_order(_resting())
    r = _raw(manual_broker, "DELETE", f"/v2/orders/{rest.id}")
    assert r.status_code == 204 and r.content == b""


def test_cancel_all_is_a_207_list(client, manual_broker):
    ids = {client.submit_order(_resting(symbol=s)).id for s in ("AAPL", "MSFT", "SPY")}
    answer = client.cancel_orders()
    assert {a.id for a in answer} == ids and {a.status for a in answer} == {200}
    assert all(a.body["status"] == "canceled" for a in answer)
    r = _raw(manual_broker, "DELETE", "/v2/orders")
    assert r.status_code == 207 and r.json() == []


def test_replace_order(client):
    rest = client.submit_order(_resting(qty=2, price=5.0))
    new = client.replace_order_by_id(rest.id, ReplaceOrderRequest(qty=3, limit_price=6.0))
    assert new.replaces == rest.id and new.qty == "3" and new.limit_price == "6"
    old = client.get_order_by_id(rest.id)
    assert old.status == OrderStatus.REPLACED and old.replaced_by == new.id
    with pytest.raises(APIError) as err:
        client.replace_order_by_id(rest.id, ReplaceOrderRequest(limit_price=7.0))
    assert err.value.status_code == 422


def test_bracket_order_nested_and_flat(client, manual_broker):
    last = manual_broker.market.trade("AAPL").price
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class="bracket",
            take_profit=TakeProfitRequest(limit_price=float(last + 10)),
            stop_loss=StopLossRequest(stop_price=float(last - 10)),
        )
    )
    assert order.status == OrderStatus.FILLED and len(order.legs) == 2
    assert {leg.status for leg in order.legs} == {OrderStatus.NEW}
    nested = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert [o.id for o in nested] == [order.id] and len(nested[0].legs) == 2
    flat = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert len(flat) == 3 and all(o.legs is None for o in flat)
    one = client.get_order_by_id(order.id, GetOrderByIdRequest(nested=True))
    assert [leg.id for leg in one.legs] == [leg.id for leg in order.legs]
    assert client.get_order_by_id(order.id).legs is None


def test_order_pagination_by_time(client, manual_broker):
    manual_broker.engine.submit_orders(
        [
            {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "limit", "limit_price": "1.00", "time_in_force": "gtc"}
            for _ in range(120)
        ]
    )
    seen, until = [], None
    while True:
        page = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=50, until=until))
        if not page:
            break
        seen += [o.id for o in page]
        until = page[-1].submitted_at
    assert len(seen) == len(set(seen)) == 120
    asc = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=500, direction="asc"))
    assert [o.id for o in asc] == seen[::-1]
    after = client.get_orders(GetOrdersRequest(after=asc[99].submitted_at, direction="asc"))
    assert [o.id for o in after] == [o.id for o in asc[100:]]
    r = _raw(manual_broker, "GET", "/v2/orders", params={"after_order_id": str(asc[117].id), "direction": "asc"})
    assert [o["id"] for o in r.json()] == [str(o.id) for o in asc[118:]]
    r = _raw(manual_broker, "GET", "/v2/orders", params={"limit": "501"})
    assert r.status_code == 422 and "limit" in r.json()["message"]


def test_order_filters_by_symbol_and_side(client):
    client.submit_order(_resting(symbol="AAPL"))
    msft = client.submit_order(_resting(symbol="MSFT"))
    got = client.get_orders(GetOrdersRequest(symbols=["MSFT", "SPY"]))
    assert [o.id for o in got] == [msft.id]
    assert client.get_orders(GetOrdersRequest(side=OrderSide.SELL)) == []


# ---- refusals over HTTP ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "body,status,code,words",
    [
        ({"symbol": "NOPE", "qty": 1}, 422, 42210000, 'asset "NOPE" not found'),
        ({"qty": 1, "side": "buy", "type": "limit", "limit_price": 10.001}, 422, 42210000, "sub-penny"),
        ({"qty": "many"}, 422, 42210000, "qty"),
        ({"qty": 1, "limit_price": [1]}, 422, 42210000, "limit_price"),
        ({"qty": 1, "side": 7}, 422, 40010001, "side"),
        ({"qty": 1, "type": None}, 422, 40010001, "type is required"),
        ({"qty": 100000}, 403, 40310000, "insufficient buying power"),
        ({"qty": 1, "side": "sell", "symbol": "AMC"}, 403, 40310000, "short"),
    ],
)
def test_refused_orders_over_http(client, manual_broker, body, status, code, words):
    client.submit_order(_resting())
    before = _state(client)
    full = {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", **body}
    r = _raw(manual_broker, "POST", "/v2/orders", json=full)
    assert r.status_code == status
    assert r.json()["code"] == code and words in r.json()["message"]
    assert _state(client) == before


def test_every_engine_refusal_has_alpacas_answer_over_http(client, manual_broker):
    from test_sim_engine import REFUSALS

    client.submit_order(_resting())
    before = _state(client)
    for body, status, words in REFUSALS:
        full = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", **body}
        full = {k: v for k, v in full.items() if v is not None}
        r = _raw(manual_broker, "POST", "/v2/orders", json=full)
        assert r.status_code == status, (body, r.text)
        answer = r.json()
        assert set(answer) == {"code", "message"} and words in answer["message"], body
        assert answer["code"] == {403: 40310000}.get(status, answer["code"])
        assert answer["code"] in ((40310000,) if status == 403 else (40010001, 42210000))
    assert _state(client) == before


def test_duplicate_client_order_id_through_the_client(client):
    client.submit_order(_market(client_order_id="once"))
    before = _state(client)
    with pytest.raises(APIError) as err:
        client.submit_order(_market(client_order_id="once"))
    assert (err.value.status_code, err.value.code) == (422, 40010001)
    assert err.value.message == "client_order_id must be unique"
    assert _state(client) == before


def test_malformed_bodies_are_400(client, manual_broker):
    before = _state(client)
    for raw in (b"{not json", b"[1, 2]", b"", b'"text"'):
        r = _raw(manual_broker, "POST", "/v2/orders", data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, raw
        assert r.json() == {"code": 40010000, "message": "request body format is invalid"}
    rest = client.submit_order(_resting())
    r = _raw(manual_broker, "PATCH", f"/v2/orders/{rest.id}", data=b"{oops")
    assert r.status_code == 400
    assert len(client.get_orders()) == 1 and _state(client)[0] == before[0]


def test_bad_ids_and_unknowns(client, manual_broker):
    r = _raw(manual_broker, "GET", "/v2/orders/not-a-uuid")
    assert r.status_code == 422 and r.json()["code"] == 40010001
    with pytest.raises(APIError) as err:
        client.get_order_by_id("00000000-0000-4000-8000-000000000000")
    assert (err.value.status_code, err.value.code) == (404, 40410000)
    with pytest.raises(APIError) as err:
        client.get_order_by_client_id("never")
    assert err.value.status_code == 404
    r = _raw(manual_broker, "GET", "/v2/orders:by_client_order_id")
    assert r.status_code == 422 and "client_order_id" in r.json()["message"]
    with pytest.raises(APIError) as err:
        client.get_open_position("AAPL")
    assert (err.value.status_code, err.value.message) == (404, "position does not exist")


def test_insufficient_qty_over_http(client):
    client.submit_order(_market(qty=3))
    before = _state(client)
    with pytest.raises(APIError) as err:
        client.submit_order(_market(qty=5, side=OrderSide.SELL))
    assert (err.value.status_code, err.value.code) == (403, 40310000)
    assert err.value.message == "insufficient qty available for order (requested: 5, available: 3)"
    assert _state(client) == before


# ---- positions -------------------------------------------------------------------------------
def test_positions_and_closing(client, manual_broker):
    client.submit_order(_market(qty=10))
    client.submit_order(_market(symbol="MSFT", qty=4))
    positions = client.get_all_positions()
    assert [(p.symbol, p.qty, p.side.value) for p in positions] == [("AAPL", "10", "long"), ("MSFT", "4", "long")]
    aapl = client.get_open_position("AAPL")
    assert aapl.qty_available == "10" and aapl.exchange.value == "NASDAQ"
    assert client.get_open_position(str(aapl.asset_id)).symbol == "AAPL"
    order = client.close_position("AAPL", ClosePositionRequest(qty="4"))
    assert order.qty == "4" and order.side == OrderSide.SELL and order.status == OrderStatus.FILLED
    order = client.close_position("AAPL", ClosePositionRequest(percentage="50"))
    assert order.qty == "3"
    r = _raw(manual_broker, "DELETE", "/v2/positions/AAPL", params={"qty": "1", "percentage": "5"})
    assert r.status_code == 422
    r = _raw(manual_broker, "DELETE", "/v2/positions/AAPL", params={"qty": "lots"})
    assert r.status_code == 422 and "qty" in r.json()["message"]
    assert client.get_open_position("AAPL").qty == "3"


def test_close_all_positions_207(client, manual_broker):
    client.submit_order(_market(qty=2))
    client.submit_order(_market(symbol="MSFT", qty=1))
    client.submit_order(
        LimitOrderRequest(symbol="MSFT", qty=1, side=OrderSide.SELL, limit_price=9999.0, time_in_force=TimeInForce.GTC)
    )
    answer = client.close_all_positions()
    by_symbol = {a.symbol: a for a in answer}
    assert by_symbol["AAPL"].status == 200 and by_symbol["AAPL"].body.status == OrderStatus.FILLED
    assert by_symbol["MSFT"].status == 403
    assert by_symbol["MSFT"].body.code == 40310000 and by_symbol["MSFT"].body.held_for_orders == 1
    answer = client.close_all_positions(cancel_orders=True)
    assert [(a.symbol, a.status) for a in answer] == [("MSFT", 200)]
    assert client.get_all_positions() == [] and client.get_orders() == []
    r = _raw(manual_broker, "DELETE", "/v2/positions")
    assert r.status_code == 207 and r.json() == []


# ---- activities, history ---------------------------------------------------------------------
def test_activities_endpoints(client, manual_broker):
    for _ in range(4):
        client.submit_order(_market())
        manual_broker.step(1)
    acts = client.get("/account/activities")
    assert [a["activity_type"] for a in acts] == ["FILL"] * 4 + ["CSD"]
    fills = client.get("/account/activities/FILL", {"page_size": 3})
    assert len(fills) == 3 and all(a["type"] == "fill" for a in fills)
    rest = client.get("/account/activities/FILL", {"page_size": 3, "page_token": fills[-1]["id"]})
    assert [a["id"] for a in fills + rest] == [a["id"] for a in acts[:4]]
    assert client.get("/account/activities", {"activity_types": "CSD"})[0]["net_amount"] == "100000"
    assert len(client.get("/account/activities", {"category": "trade_activity"})) == 4
    asc = client.get("/account/activities", {"direction": "asc"})
    assert [a["id"] for a in asc] == [a["id"] for a in acts[::-1]]
    for path, params in (
        ("/v2/account/activities/NOPE", {}),
        ("/v2/account/activities", {"page_size": "101"}),
        ("/v2/account/activities", {"direction": "sideways"}),
        ("/v2/account/activities", {"after": "yesterday"}),
    ):
        r = _raw(manual_broker, "GET", path, params=params)
        assert r.status_code == 422, (path, params)


def test_portfolio_history(client, manual_broker):
    manual_broker.step(60)
    client.submit_order(_market(qty=50))
    for _ in range(10):
        manual_broker.step(60)
    hist = client.get_portfolio_history(GetPortfolioHistoryRequest(period="1D", timeframe="5Min"))
    assert hist.timeframe == "5Min" and hist.base_value == 100000.0
    assert hist.equity[-1] == float(client.get_account().equity)
    assert len(hist.timestamp) == len(hist.profit_loss) == len(hist.profit_loss_pct)
    daily = client.get_portfolio_history(GetPortfolioHistoryRequest(period="1M"))
    assert daily.timeframe == "1D"
    r = _raw(manual_broker, "GET", "/v2/account/portfolio/history", params={"timeframe": "2Min"})
    assert r.status_code == 422 and "timeframe" in r.json()["message"]


# ---- lifecycle over HTTP ---------------------------------------------------------------------
def test_partial_fills_through_steps(client, manual_broker):
    quote = manual_broker.market.quote("F")
    order = client.submit_order(_market(symbol="F", qty=quote.ask_size + 100))
    assert order.status == OrderStatus.PARTIALLY_FILLED and order.filled_qty == str(quote.ask_size)
    for _ in range(60):
        manual_broker.step(5)
        if client.get_order_by_id(order.id).status == OrderStatus.FILLED:
            break
    got = client.get_order_by_id(order.id)
    assert got.status == OrderStatus.FILLED and got.filled_qty == str(quote.ask_size + 100)
    fills = [a for a in client.get("/account/activities/FILL") if a["order_id"] == str(order.id)]
    assert len(fills) >= 2 and sum(D(a["qty"]) for a in fills) == quote.ask_size + 100


def test_day_order_expires(client, manual_broker):
    rest = client.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, limit_price=1.0, time_in_force=TimeInForce.DAY)
    )
    midnight = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert rest.expires_at == midnight
    manual_broker.clock.set(midnight + timedelta(seconds=1))
    manual_broker.step(0)
    got = client.get_order_by_id(rest.id)
    assert got.status == OrderStatus.EXPIRED and got.expired_at is not None


# ---- persistence -----------------------------------------------------------------------------
def test_state_survives_a_broker_restart(tmp_path):
    from brokers import MANUAL_START, validate_recorded

    with LocalBroker(state_dir=tmp_path, manual_clock=True, start=MANUAL_START, record=True, rate_limit=None) as first:
        c = TradingClient(first.key, first.secret, url_override=first.url)
        c.submit_order(_market(qty=3))
        rest = c.submit_order(_resting(client_order_id="survivor"))
        before = (
            str(c.get_account().id),
            c.get_account().cash,
            [(p.symbol, p.qty, p.avg_entry_price) for p in c.get_all_positions()],
            [o.id for o in c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))],
            c.get("/account/activities"),
        )
    validate_recorded(first)
    with LocalBroker(state_dir=tmp_path, manual_clock=True, start=MANUAL_START, record=True, rate_limit=None) as second:
        c = TradingClient(second.key, second.secret, url_override=second.url)
        after = (
            str(c.get_account().id),
            c.get_account().cash,
            [(p.symbol, p.qty, p.avg_entry_price) for p in c.get_all_positions()],
            [o.id for o in c.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))],
            c.get("/account/activities"),
        )
        assert after == before
        assert c.get_order_by_client_id("survivor").id == rest.id
        c.cancel_order_by_id(rest.id)
    validate_recorded(second)
    with LocalBroker(state_dir=tmp_path, manual_clock=True, start=MANUAL_START) as third:
        assert third.engine.get_order(str(rest.id))["status"] == "canceled"
