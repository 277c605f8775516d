"""Order types and classes through their whole lifecycle, over HTTP with alpaca-py.

The market is stepped with a manual clock; every expectation is computed from the market's
own quotes and trades at the moment of each step, so the tests are exact and deterministic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, OrderType, TimeInForce
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from alpaca_nb.sim.market.bars import to_ns

D = Decimal


@pytest.fixture
def client(manual_broker) -> TradingClient:
    return TradingClient(manual_broker.key, manual_broker.secret, url_override=manual_broker.url)


@pytest.fixture
def nyse_broker(request):
    from brokers import broker_fixture

    # Monday 2026-11-23 08:00 New York: the regular session opens at 09:30.
    yield from broker_fixture(
        request, manual_clock=True, market_hours="nyse", start=datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    )


@pytest.fixture
def events(manual_broker):
    log: list[dict] = []
    manual_broker.engine.add_listener(log.append)
    return log


def _buy(client, qty=1, symbol="AAPL", **kw):
    return client.submit_order(
        MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, **kw)
    )


def test_market_order_lifecycle_and_events(client, manual_broker, events):
    quote = manual_broker.market.quote("AAPL")
    order = _buy(client, qty=2)
    assert order.status == OrderStatus.FILLED and D(order.filled_avg_price) == quote.ask
    assert [e["event"] for e in events] == ["pending_new", "new", "fill"]
    fill = events[-1]
    assert fill["order"]["id"] == str(order.id) and fill["qty"] == "2"
    assert fill["position_qty"] == "2" and D(fill["price"]) == quote.ask


def test_limit_order_fills_when_the_market_comes_to_it(client, manual_broker):
    market = manual_broker.market
    limit = (market.quote("MSFT").ask * D("0.999")).quantize(D("0.01"))
    order = client.submit_order(
        LimitOrderRequest(
            symbol="MSFT", qty=1, side=OrderSide.BUY, limit_price=float(limit), time_in_force=TimeInForce.GTC
        )
    )
    assert order.status == OrderStatus.NEW
    for _ in range(2000):
        manual_broker.clock.advance(30)
        quote = market.quote("MSFT")
        manual_broker.engine.tick()
        if quote.ask <= limit:
            got = client.get_order_by_id(order.id)
            assert got.status == OrderStatus.FILLED and D(got.filled_avg_price) == quote.ask
            break
        assert manual_broker.engine.get_order(str(order.id))["status"] == "new"
    else:
        pytest.fail("the market never came to the limit")


def test_stop_and_stop_limit_trigger_over_http(client, manual_broker):
    market = manual_broker.market
    _buy(client, qty=4)
    last = market.trade("AAPL").price
    stop = (last * D("0.998")).quantize(D("0.01"))
    plain = client.submit_order(
        StopOrderRequest(
            symbol="AAPL", qty=2, side=OrderSide.SELL, stop_price=float(stop), time_in_force=TimeInForce.GTC
        )
    )
    capped = client.submit_order(
        StopLimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.SELL,
            stop_price=float(stop),
            limit_price=float(stop - 2),
            time_in_force=TimeInForce.GTC,
        )
    )
    assert plain.status == capped.status == OrderStatus.NEW
    assert client.get_open_position("AAPL").qty_available == "0"
    for _ in range(3000):
        manual_broker.clock.advance(30)
        trade, quote = market.trade("AAPL"), market.quote("AAPL")
        manual_broker.engine.tick()
        if trade.price <= stop:
            got = client.get_order_by_id(plain.id)
            assert got.status == OrderStatus.FILLED and D(got.filled_avg_price) == quote.bid
            assert client.get_order_by_id(capped.id).status == OrderStatus.FILLED
            break
        assert client.get_order_by_id(plain.id).status == OrderStatus.NEW
    else:
        pytest.fail("the market never reached the stop")


def test_trailing_stop_hwm_over_http(client, manual_broker):
    market = manual_broker.market
    _buy(client, qty=1)
    order = client.submit_order(
        TrailingStopOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.SELL, trail_percent=0.2, time_in_force=TimeInForce.GTC
        )
    )
    hwm = market.trade("AAPL").price
    assert D(order.hwm) == hwm and order.type == OrderType.TRAILING_STOP
    assert order.trail_percent == "0.2"
    for _ in range(3000):
        before = manual_broker.clock.now()
        manual_broker.clock.advance(20)
        manual_broker.engine.tick()
        # a stop sees every trade of the step, not only the last one
        ticks, _ = market.ticks("AAPL", to_ns(before) + 1, to_ns(manual_broker.clock.now()) + 1, 1_000_000)
        prices = [D(int(p)) / 10000 for p in ticks.price]
        got = client.get_order_by_id(order.id)
        stop = D(got.stop_price) if got.stop_price else None
        if got.status == OrderStatus.FILLED:
            assert min(prices) <= stop
            break
        hwm = max([hwm, *prices])
        assert D(got.hwm) == hwm
        assert stop == (hwm * D("0.998")).quantize(D("0.01"), rounding="ROUND_FLOOR")
        order = got
    else:
        pytest.fail("the trailing stop never triggered")
    replaced = client.submit_order(
        TrailingStopOrderRequest(
            symbol="AAPL", qty=1, side=OrderSide.BUY, trail_price=5.0, time_in_force=TimeInForce.DAY
        )
    )
    moved = client.replace_order_by_id(replaced.id, ReplaceOrderRequest(trail=2.5))
    assert moved.trail_price == "2.5" and D(moved.stop_price) == D(moved.hwm) + D("2.5")


def test_ioc_and_fok(client, manual_broker):
    quote = manual_broker.market.quote("AAPL")
    ioc = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=quote.ask_size + 5,
            side=OrderSide.BUY,
            limit_price=float(quote.ask),
            time_in_force=TimeInForce.IOC,
        )
    )
    assert ioc.status == OrderStatus.CANCELED and ioc.filled_qty == str(quote.ask_size)
    cheap = manual_broker.market.quote("F")
    too_big = client.submit_order(
        MarketOrderRequest(symbol="F", qty=cheap.ask_size + 1, side=OrderSide.BUY, time_in_force=TimeInForce.FOK)
    )
    assert too_big.status == OrderStatus.CANCELED and too_big.filled_qty == "0"
    fits = client.submit_order(
        MarketOrderRequest(symbol="F", qty=cheap.ask_size, side=OrderSide.BUY, time_in_force=TimeInForce.FOK)
    )
    assert fits.status == OrderStatus.FILLED and fits.filled_qty == str(cheap.ask_size)


def test_opg_cls_in_continuous_mode_trade_at_the_next_step(client, manual_broker):
    opg = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.OPG)
    )
    assert opg.status == OrderStatus.ACCEPTED
    manual_broker.step(1)
    assert client.get_order_by_id(opg.id).status == OrderStatus.FILLED


def test_bracket_take_profit_fills_and_cancels_the_stop(client, manual_broker):
    last = manual_broker.market.trade("AAPL").price
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float(last + 15)),
            stop_loss=StopLossRequest(stop_price=float(last - 15), limit_price=float(last - 16)),
        )
    )
    tp, sl = order.legs
    assert sl.type == OrderType.STOP_LIMIT and tp.type == OrderType.LIMIT
    bid = manual_broker.market.quote("AAPL").bid
    moved = client.replace_order_by_id(tp.id, ReplaceOrderRequest(limit_price=float(bid - 1)))
    assert moved.status == OrderStatus.FILLED
    assert client.get_order_by_id(sl.id).status == OrderStatus.CANCELED
    assert client.get_all_positions() == []


def test_bracket_limit_entry_releases_legs_when_it_fills(client, manual_broker, events):
    market = manual_broker.market
    ask = market.quote("AAPL").ask
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            limit_price=float(ask - 40),
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=float(ask + 40)),
            stop_loss=StopLossRequest(stop_price=float(ask - 60)),
        )
    )
    assert {leg.status for leg in order.legs} == {OrderStatus.HELD}
    entry = client.replace_order_by_id(order.id, ReplaceOrderRequest(limit_price=float(ask + 1)))
    assert entry.status == OrderStatus.FILLED and entry.replaces == order.id
    legs = [client.get_order_by_id(leg.id) for leg in order.legs]
    assert [leg.status for leg in legs] == [OrderStatus.NEW, OrderStatus.NEW]
    assert {str(leg.id) for leg in legs} == {
        leg["id"] for leg in manual_broker.engine.get_order(str(entry.id), True)["legs"]
    }
    released = [e for e in events if e["order"]["id"] == str(order.legs[0].id)]
    assert [e["event"] for e in released] == ["pending_new", "new"]


def test_oco_and_oto(client, manual_broker):
    _buy(client, qty=2)
    last = manual_broker.market.trade("AAPL").price
    oco = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=float(last + 20)),
            stop_loss=StopLossRequest(stop_price=float(last - 20)),
        )
    )
    assert oco.order_class == OrderClass.OCO and len(oco.legs) == 1
    client.cancel_order_by_id(oco.legs[0].id)
    assert client.get_order_by_id(oco.id).status == OrderStatus.CANCELED
    oto = client.submit_order(
        MarketOrderRequest(
            symbol="MSFT",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.OTO,
            take_profit=TakeProfitRequest(limit_price=float(manual_broker.market.trade("MSFT").price + 50)),
        )
    )
    assert oto.status == OrderStatus.FILLED and oto.legs[0].status == OrderStatus.NEW
    assert oto.legs[0].side == OrderSide.SELL


def test_notional_and_fractional_over_http(client, manual_broker):
    quote = manual_broker.market.quote("SPY")
    order = client.submit_order(
        MarketOrderRequest(symbol="SPY", notional=250.0, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert order.notional == "250" and order.qty is None
    assert D(order.filled_qty) == (D(250) / quote.ask).quantize(D("1e-9"), rounding="ROUND_DOWN")
    frac = client.submit_order(
        MarketOrderRequest(symbol="SPY", qty=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert frac.filled_qty == "0.5"


# ---- nyse hours ------------------------------------------------------------------------------
def test_nyse_queue_open_close_and_auctions(nyse_broker):
    client = TradingClient(nyse_broker.key, nyse_broker.secret, url_override=nyse_broker.url)
    market = nyse_broker.market
    queued = _buy(client, qty=1)
    opg = client.submit_order(
        MarketOrderRequest(symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.OPG)
    )
    day = client.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, limit_price=1.0, time_in_force=TimeInForce.DAY)
    )
    assert queued.status == opg.status == day.status == OrderStatus.ACCEPTED
    with pytest.raises(Exception) as err:  # Alpaca: accepted orders cannot be replaced
        client.replace_order_by_id(day.id, ReplaceOrderRequest(limit_price=2.0))
    assert err.value.status_code == 422
    opening = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    nyse_broker.clock.set(opening + timedelta(seconds=10))
    nyse_broker.step(0)
    assert client.get_order_by_id(queued.id).status == OrderStatus.FILLED
    got = client.get_order_by_id(opg.id)
    assert got.status == OrderStatus.FILLED
    assert D(got.filled_avg_price) == market.trade("MSFT", opening).price
    assert client.get_order_by_id(day.id).status == OrderStatus.NEW
    nyse_broker.clock.set(datetime(2026, 11, 23, 21, 0, 5, tzinfo=UTC))
    nyse_broker.step(0)
    assert client.get_order_by_id(day.id).status == OrderStatus.EXPIRED
    assert client.get_clock().is_open is False
