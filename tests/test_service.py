"""AlpacaService: the seed's API, async and sync, against a real local broker."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pandas as pd
import pytest
from brokers import service_for, wait_for

from alpaca_nb import (
    AlpacaCredentials,
    AlpacaEnvironment,
    AlpacaOrderRequest,
    AlpacaOrderSide,
    AlpacaOrderType,
    AlpacaService,
    ConfigurationError,
    LiveTradingNotArmed,
    ManagedOrderStatus,
    OrderValidationError,
)


def test_seed_usage_async(broker):
    async def scenario():
        service = AlpacaService()
        await service.initialize(
            AlpacaCredentials(broker.key, broker.secret, AlpacaEnvironment.LOCAL),
            trading_url=broker.url,
            data_url=broker.url,
        )
        order = await service.place_order(
            user="current_user",
            order_request=AlpacaOrderRequest(
                symbol="AAPL", qty=100, side=AlpacaOrderSide.BUY, type=AlpacaOrderType.MARKET
            ),
        )
        quote = await service.get_stock_quote("AAPL")
        synced = await service.sync_order_status(order)
        return service, order, quote, synced

    service, order, quote, synced = asyncio.run(scenario())
    assert set(quote) >= {"bid_price", "ask_price", "bid_size", "ask_size", "timestamp"}
    assert 0 < quote["bid_price"] <= quote["ask_price"]
    assert str(quote["timestamp"].tz) == "UTC"
    assert order.alpaca_order_id and f"alpaca_order_id={order.alpaca_order_id}" in order.notes
    assert {"symbol:AAPL", "side:buy", "type:market"} <= set(order.tags)
    assert synced is order and order.status in (
        ManagedOrderStatus.OPEN,
        ManagedOrderStatus.PARTIALLY_FILLED,
        ManagedOrderStatus.FILLED,
    )
    stored = service.order_service.get(order.client_order_id)
    assert stored.alpaca_order_id == order.alpaca_order_id and stored.status is order.status
    assert order.client_order_id.startswith("nb-")


def test_async_methods_do_not_block_the_event_loop(svc, broker):
    broker.faults.add(path="/v2/account", delay=0.5)

    async def scenario():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        await svc.get_account()
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) >= 10


def test_market_order_fills_and_shows_in_positions(svc):
    order = svc.place_order_sync(
        user="u", order_request=AlpacaOrderRequest(symbol="AAPL", qty=3, side="buy", type="market")
    )
    wait_for(lambda: svc.sync_order_status_sync(order).status is ManagedOrderStatus.FILLED)
    assert order.filled_qty == Decimal(3) and order.filled_avg_price > 0
    positions = svc.positions()
    assert positions.loc[positions["symbol"] == "AAPL", "qty"].item() == 3.0
    assert positions["qty"].dtype == "float64"


def test_limit_cancel_and_replace(svc):
    quote = svc.get_stock_quote_sync("MSFT")
    low = round(quote["bid_price"] * 0.8, 2)
    order = svc.place_order_sync(
        user="u",
        order_request=AlpacaOrderRequest(
            symbol="MSFT", qty=2, side="buy", type="limit", limit_price=low, time_in_force="gtc"
        ),
    )
    assert order.status is ManagedOrderStatus.OPEN
    new = svc.replace_order_sync(order, limit_price=round(low * 0.99, 2), qty=3)
    assert new.parent_client_order_id == order.client_order_id and new.qty == Decimal(3)
    wait_for(lambda: svc.sync_order_status_sync(order).status is ManagedOrderStatus.REPLACED)
    svc.cancel_order_sync(new)
    wait_for(lambda: svc.sync_order_status_sync(new).status is ManagedOrderStatus.CANCELED)
    frame = svc.orders(status="all")
    assert set(frame["status"]) == {"replaced", "canceled"}


def test_replace_needs_something_to_change(svc):
    order = svc.place_order_sync(
        user="u",
        order_request=AlpacaOrderRequest(
            symbol="MSFT", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"
        ),
    )
    with pytest.raises(OrderValidationError, match="nothing to replace"):
        svc.replace_order_sync(order)
    with pytest.raises(OrderValidationError, match="sub-penny"):
        svc.replace_order_sync(order, limit_price="1.001")


def test_bracket_order_places_its_legs(svc):
    ask = svc.get_stock_quote_sync("AAPL")["ask_price"]
    order = svc.place_order_sync(
        user="u",
        order_request=AlpacaOrderRequest(
            symbol="AAPL",
            qty=2,
            side="buy",
            type="limit",
            limit_price=round(ask * 1.01, 2),
            order_class="bracket",
            take_profit={"limit_price": round(ask * 1.10, 2)},
            stop_loss={"stop_price": round(ask * 0.90, 2)},
        ),
    )
    assert order.order_class.value == "bracket"
    raw = svc.broker.get_json("trading", f"/orders/{order.alpaca_order_id}", {"nested": True})
    assert len(raw["legs"]) == 2


def test_close_position_by_qty_and_percentage_and_close_all(svc):
    for symbol in ("AAPL", "MSFT"):
        order = svc.place_order_sync(
            user="u", order_request=AlpacaOrderRequest(symbol=symbol, qty=10, side="buy", type="market")
        )
        wait_for(lambda: svc.sync_order_status_sync(order).status is ManagedOrderStatus.FILLED)  # noqa: B023
    closing = svc.close_position_sync("AAPL", qty=4)
    assert closing.side is AlpacaOrderSide.SELL and closing.qty == Decimal(4)
    wait_for(lambda: svc.positions().set_index("symbol").loc["AAPL", "qty"] == 6.0)
    svc.close_position_sync("AAPL", percentage=50)
    wait_for(lambda: svc.positions().set_index("symbol").loc["AAPL", "qty"] == 3.0)
    closing = svc.close_all_positions_sync()
    assert {o.symbol for o in closing} == {"AAPL", "MSFT"}
    wait_for(lambda: svc.positions().empty)
    assert all(o.user == "close_all" for o in closing)
    with pytest.raises(OrderValidationError):
        svc.close_position_sync("AAPL", qty=1, percentage=10)


def test_frames_say_which_environment(svc):
    assert "local" in repr(svc)
    assert svc.environment is AlpacaEnvironment.LOCAL
    account = svc.account()
    assert isinstance(account, pd.DataFrame) and account["cash"].dtype == "float64"
    assert str(account["created_at"].dtype) == "datetime64[ns, UTC]"


def test_uninitialized_service_says_what_to_do():
    with pytest.raises(ConfigurationError, match="initialize"):
        AlpacaService().get_account_sync()


class TestLiveGuard:
    def live(self, broker):
        return service_for(broker, environment="live")

    def order(self, qty=1, **kw):
        return AlpacaOrderRequest(symbol="AAPL", qty=qty, side="buy", type="limit", limit_price=100, **kw)

    def test_unarmed_live_refuses_before_sending(self, broker):
        svc = self.live(broker)
        svc.asset("AAPL")
        before = broker.requests["total"]
        with pytest.raises(LiveTradingNotArmed, match="arm_live"):
            svc.place_order_sync(user="u", order_request=self.order())
        assert broker.requests["total"] == before
        assert svc.order_service.list() == []
        assert "live" in repr(svc)

    def test_caps_apply_once_armed(self, broker):
        svc = self.live(broker)
        svc.arm_live(max_order_notional=500, max_orders_per_minute=2)
        with pytest.raises(LiveTradingNotArmed, match="exceeds the live cap"):
            svc.place_order_sync(user="u", order_request=self.order(qty=6))
        svc.place_order_sync(user="u", order_request=self.order(qty=1))
        svc.place_order_sync(user="u", order_request=self.order(qty=2))
        with pytest.raises(LiveTradingNotArmed, match="in a minute"):
            svc.place_order_sync(user="u", order_request=self.order(qty=1))
        assert len(svc.orders(status="all")) == 2

    def test_arming_expires(self, broker):
        svc = self.live(broker)
        svc.arm_live(minutes=0)
        with pytest.raises(LiveTradingNotArmed, match="expired"):
            svc.place_order_sync(user="u", order_request=self.order())

    def test_paper_and_local_need_no_arming(self, svc):
        assert svc.place_order_sync(user="u", order_request=self.order()).alpaca_order_id


def test_every_frame_says_which_environment_and_account(svc):
    from alpaca_nb.service_frames import FRAME_METHODS

    calls = {
        "quotes": ("AAPL",),
        "trades": ("AAPL",),
        "latest_bars": ("AAPL",),
        "snapshots": ("AAPL",),
        "bars": ("AAPL", "1Day", "2026-11-02", "2026-11-04"),
        "historical_quotes": ("AAPL", "2026-11-24T15:00Z", "2026-11-24T15:01Z"),
        "historical_trades": ("AAPL", "2026-11-24T15:00Z", "2026-11-24T15:01Z"),
    }
    for name in FRAME_METHODS:
        frame = getattr(svc, name)(*calls.get(name, ()))
        assert frame.attrs["environment"] == "local", name
        assert frame.attrs["account_id"] == svc.account_id, name


def test_check_order_makes_the_placement_checks_and_sends_nothing(svc, broker):
    posts = lambda: broker.requests[("POST", "/v2/orders")]  # noqa: E731
    good = AlpacaOrderRequest(symbol="aapl", qty=1, side="buy", type="market")
    assert svc.check_order(good, user="ana") is good
    for request, user, field in (
        (AlpacaOrderRequest(symbol="ZZZZQ", qty=1, side="buy", type="market"), "ana", "symbol"),
        (AlpacaOrderRequest(symbol="AAPL", qty=1, side="buy", type="market"), " ", "user"),
    ):
        with pytest.raises(OrderValidationError) as refused:
            svc.check_order(request, user=user)
        assert refused.value.field == field
        with pytest.raises(OrderValidationError):  # placing refuses the same way
            svc.place_order_sync(user=user, order_request=request)
    assert posts() == 0 and svc.order_service.list() == []
