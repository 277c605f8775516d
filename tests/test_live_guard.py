"""The live guard (alpaca_nb.guard) against the local broker, through a LIVE service.

Every way an order can leave with real money is checked: place (brackets and OCOs included),
replace, close one, close all. Orders count at the market they can trade at, a missing quote
refuses, and arming from the ticket never loosens code's caps or resets the minute's count.
A refused request never changes anything at the broker.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from live_guard_support import blank_quote, fail_quote_lookups, hold, live_service, orders_at_broker, writes

from alpaca_nb import AlpacaOrderRequest, InvalidArgumentError, LiveTradingNotArmed
from alpaca_nb.exposure import Exposure
from alpaca_nb.guard import LiveGuard


@pytest.fixture
def live(manual_broker):
    """A LIVE service on a broker whose market stands still (prices can be read, then relied on)."""
    return live_service(manual_broker)


def quote(svc, symbol: str = "AAPL") -> dict[str, Decimal]:
    q = svc.get_stock_quote_sync(symbol)
    return {"bid": Decimal(str(q["bid_price"])), "ask": Decimal(str(q["ask_price"]))}


def order(side="buy", type="limit", qty=1, symbol="AAPL", **prices) -> AlpacaOrderRequest:
    return AlpacaOrderRequest(symbol=symbol, side=side, type=type, qty=qty, **prices)


class Refusal:
    """Asserts that a block raised LiveTradingNotArmed and changed nothing at the broker."""

    def __init__(self, broker, match: str | None = None):
        self.broker, self.match = broker, match

    def __enter__(self):
        self.writes, self.orders = len(writes(self.broker)), orders_at_broker(self.broker)
        self._raises = pytest.raises(LiveTradingNotArmed, match=self.match)
        self.error = self._raises.__enter__()
        return self.error

    def __exit__(self, *exc):
        handled = self._raises.__exit__(*exc)
        assert writes(self.broker)[self.writes :] == [], "a refused request reached the broker"
        assert orders_at_broker(self.broker) == self.orders
        return handled


# -- what an order counts at ---------------------------------------------------------------------


def test_a_marketable_sell_limit_counts_at_the_bid_not_its_limit(live, manual_broker):
    live.arm_live(max_order_notional=100)
    bid = quote(live)["bid"]
    with Refusal(manual_broker, "exceeds the live cap") as refused:
        live.place_order_sync(user="u", order_request=order("sell", qty=1000, limit_price="0.01"))
    assert f"${1000 * bid:,.2f}" in str(refused.value) and "the bid" in str(refused.value)


def test_a_buy_stop_below_the_market_counts_at_the_ask(live, manual_broker):
    live.arm_live(max_order_notional=100)
    ask = quote(live)["ask"]
    with Refusal(manual_broker, "exceeds the live cap") as refused:
        live.place_order_sync(user="u", order_request=order("buy", "stop", qty=10, stop_price="1.00"))
    assert f"${10 * ask:,.2f}" in str(refused.value) and "the ask" in str(refused.value)


def test_an_order_counts_at_its_own_price_where_that_bounds_it(live, manual_broker):
    live.arm_live(max_order_notional=100)
    bid = quote(live)["bid"]
    # A buy limit below the market pays at most its limit: 50 x $1 = $50.
    placed = live.place_order_sync(user="u", order_request=order("buy", qty=50, limit_price="1.00"))
    assert placed.alpaca_order_id and writes(manual_broker) == [("POST", "/v2/orders", 200)]
    # A sell limit above the market gets at least its limit: 1 x (bid + $200).
    with Refusal(manual_broker, "exceeds the live cap") as refused:
        live.place_order_sync(user="u", order_request=order("sell", limit_price=str(bid + 200)))
    assert "its limit" in str(refused.value)


def test_an_oco_counts_as_its_dearer_leg(live, manual_broker):
    """A buy OCO (the exits of a short) with its take-profit at $100 and its stop at $400: the
    stop can buy at $400, so the pair counts $400, not the $100 of its limit."""
    live.arm_live(max_order_notional=300)
    with Refusal(manual_broker, r"exceeds the live cap") as refused:
        live.place_order_sync(
            user="u",
            order_request=order(
                "buy",
                qty=1,
                limit_price="100",
                order_class="oco",
                take_profit={"limit_price": "100"},
                stop_loss={"stop_price": "400"},
            ),
        )
    assert "$400.00" in str(refused.value) and "stop leg" in str(refused.value)


def test_a_bracket_counts_as_its_entry(live, manual_broker):
    """Its exits only close what the entry opened: a far take-profit does not count."""
    ask = quote(live)["ask"]
    live.arm_live(max_order_notional=ask + 1)
    bracket = live.place_order_sync(
        user="u",
        order_request=order(
            "buy",
            "market",
            qty=1,
            order_class="bracket",
            take_profit={"limit_price": str(ask * 4)},
            stop_loss={"stop_price": str((ask / 2).quantize(Decimal("0.01")))},
        ),
    )
    assert bracket.alpaca_order_id
    live.arm_live(max_order_notional=ask - 1)
    with Refusal(manual_broker, "exceeds the live cap"):
        live.place_order_sync(
            user="u",
            order_request=order(
                "buy",
                "market",
                qty=1,
                order_class="bracket",
                take_profit={"limit_price": str(ask * 4)},
                stop_loss={"stop_price": str((ask / 2).quantize(Decimal("0.01")))},
            ),
        )


def test_a_notional_order_counts_as_its_notional(live, manual_broker):
    live.arm_live(max_order_notional=100)
    with Refusal(manual_broker, r"\$150.00 \(its notional\)"):
        live.place_order_sync(
            user="u", order_request=AlpacaOrderRequest(symbol="AAPL", side="buy", type="market", notional=150)
        )
    assert live.place_order_sync(
        user="u", order_request=AlpacaOrderRequest(symbol="AAPL", side="buy", type="market", notional=90)
    ).alpaca_order_id


# -- no quote, no order --------------------------------------------------------------------------


@pytest.mark.parametrize("blank, side", [("ask", "buy"), ("bid", "sell"), ("none", "buy")])
def test_a_missing_side_of_the_quote_refuses(live, manual_broker, monkeypatch, blank, side):
    """A quote with a zero ask (or bid, or no quote at all) never prices an order at $0."""
    live.arm_live(max_order_notional=1_000_000)
    blank_quote(monkeypatch, manual_broker, "AAPL", blank)
    with Refusal(manual_broker, "quote") as refused:
        live.place_order_sync(user="u", order_request=order(side, "market", qty=1))
    assert "nothing was sent" in str(refused.value)


def test_a_failed_quote_lookup_refuses(live, manual_broker):
    live.arm_live(max_order_notional=1_000_000)
    fail_quote_lookups(manual_broker)
    with Refusal(manual_broker, "could not be read"):
        live.place_order_sync(user="u", order_request=order("buy", "market", qty=1))
    hold(manual_broker, "AAPL", 1)
    with Refusal(manual_broker, "could not be read"):
        live.close_position_sync("AAPL")


# -- replace ------------------------------------------------------------------------------------


def resting(live, qty=10):
    return live.place_order_sync(user="u", order_request=order("buy", qty=qty, limit_price="1.00"))


def test_replacing_needs_arming(live, manual_broker):
    live.arm_live(max_order_notional=100)
    placed = resting(live)
    live.disarm_live()
    with Refusal(manual_broker, "arm_live"):
        live.replace_order_sync(placed, qty=20)


def test_replacing_counts_the_order_that_results(live, manual_broker):
    live.arm_live(max_order_notional=100)
    placed = resting(live)  # 10 x $1
    with Refusal(manual_broker, r"exceeds the live cap") as refused:
        live.replace_order_sync(placed, limit_price="300.00")  # now marketable: 10 x $300
    assert "$3,000.00" in str(refused.value)
    with Refusal(manual_broker, r"exceeds the live cap"):
        live.replace_order_sync(placed, qty=200)  # 200 x $1
    replaced = live.replace_order_sync(placed, qty=50)  # 50 x $1
    assert replaced.qty == 50 and writes(manual_broker)[-1][:2] == ("PATCH", f"/v2/orders/{placed.alpaca_order_id}")


def test_a_replacement_counts_against_the_orders_per_minute(live, manual_broker):
    live.arm_live(max_order_notional=100, max_orders_per_minute=2)
    placed = resting(live)
    replaced = live.replace_order_sync(placed, qty=20)
    with Refusal(manual_broker, "in a minute"):
        live.replace_order_sync(replaced, qty=30)


# -- close one, close all -------------------------------------------------------------------------


def test_closing_a_position_needs_arming(live, manual_broker):
    hold(manual_broker, "AAPL", 3)
    with Refusal(manual_broker, "arm_live"):
        live.close_position_sync("AAPL")
    assert manual_broker.requests[("GET", "/v2/positions/AAPL")] == 0  # unarmed: nothing went out


def test_closing_counts_the_shares_it_sells_at_the_bid(live, manual_broker):
    hold(manual_broker, "AAPL", 30)
    bid = quote(live)["bid"]
    live.arm_live(max_order_notional=bid * 4)
    with Refusal(manual_broker, "exceeds the live cap") as refused:
        live.close_position_sync("AAPL")  # 30 shares
    assert f"${30 * bid:,.2f}" in str(refused.value) and "the bid" in str(refused.value)
    with Refusal(manual_broker, "exceeds the live cap"):
        live.close_position_sync("AAPL", percentage=50)  # 15 shares
    with Refusal(manual_broker, "exceeds the live cap"):
        live.close_position_sync("AAPL", qty=5)
    closed = live.close_position_sync("AAPL", percentage=10)  # 3 shares
    assert closed.qty == 3 and closed.side.value == "sell"


def test_closing_a_short_counts_at_the_ask(live, manual_broker):
    hold(manual_broker, "MSFT", 2, side="sell")
    live.arm_live(max_order_notional=100)
    with Refusal(manual_broker, "exceeds the live cap") as refused:
        live.close_position_sync("MSFT")
    assert "buy 2 MSFT market" in str(refused.value) and "the ask" in str(refused.value)


def test_close_all_is_refused_whole_when_one_closing_order_is_over_the_cap(live, manual_broker):
    hold(manual_broker, "AAPL", 1)
    hold(manual_broker, "MSFT", 2)
    cheap, dear = quote(live, "AAPL")["bid"], 2 * quote(live, "MSFT")["bid"]
    live.arm_live(max_order_notional=(cheap + dear) / 2)
    with Refusal(manual_broker, "sell 2 MSFT market"):
        live.close_all_positions_sync()
    assert len(manual_broker.engine.positions()) == 2


def test_close_all_counts_each_closing_order_against_the_minute(live, manual_broker):
    hold(manual_broker, "AAPL", 1)
    hold(manual_broker, "MSFT", 2)
    live.arm_live(max_order_notional=10_000, max_orders_per_minute=1)
    with Refusal(manual_broker, r"2 to send, 1 left"):
        live.close_all_positions_sync()
    live.arm_live(max_order_notional=10_000, max_orders_per_minute=3)
    assert len(live.close_all_positions_sync()) == 2
    resting(live, 1)  # the third of the minute
    with Refusal(manual_broker, r"1 to send, 0 left"):
        resting(live, 2)


# -- arming ---------------------------------------------------------------------------------------


def test_arming_from_the_ticket_never_loosens_code_caps(live, manual_broker):
    live.arm_live(max_order_notional=100, max_orders_per_minute=2, minutes=5)
    caps = live.arm_live(max_order_notional=1_000_000, max_orders_per_minute=100, minutes=600, tighten_only=True)
    assert (caps.max_order_notional, caps.max_orders_per_minute) == (100, 2)
    with Refusal(manual_broker, r"live cap \$100.00"):
        live.place_order_sync(user="u", order_request=order("buy", "market", qty=1))
    tighter = live.arm_live(max_order_notional=50, max_orders_per_minute=1, tighten_only=True)
    assert (tighter.max_order_notional, tighter.max_orders_per_minute) == (50, 1)
    live.disarm_live()  # code's caps still bound the ticket
    assert live.arm_live(max_order_notional=500, tighten_only=True).max_order_notional == 100


def test_arming_from_the_ticket_cannot_outlive_code_arming(live):
    live.arm_live(minutes=0)
    with pytest.raises(LiveTradingNotArmed, match="expired"):
        live.arm_live(tighten_only=True)
    live.arm_live(minutes=5)  # code arms again: so can the ticket
    assert live.arm_live(tighten_only=True).max_order_notional == 1_000


def test_re_arming_never_resets_the_orders_per_minute(live, manual_broker):
    live.arm_live(max_order_notional=100, max_orders_per_minute=2)
    resting(live, 1)
    resting(live, 2)
    live.arm_live(max_order_notional=100, max_orders_per_minute=2)
    live.arm_live(max_order_notional=100, max_orders_per_minute=2, tighten_only=True)
    live.disarm_live()
    live.arm_live(max_order_notional=100, max_orders_per_minute=2)
    with Refusal(manual_broker, "in a minute"):
        resting(live, 3)


@pytest.mark.parametrize(
    "caps, argument",
    [
        ({"max_order_notional": 0}, "max_order_notional"),
        ({"max_order_notional": "lots"}, "max_order_notional"),
        ({"max_order_notional": float("inf")}, "max_order_notional"),
        ({"max_orders_per_minute": 0}, "max_orders_per_minute"),
        ({"max_orders_per_minute": 2.5}, "max_orders_per_minute"),
        ({"minutes": -1}, "minutes"),
        ({"minutes": float("nan")}, "minutes"),
    ],
)
def test_bad_caps_are_refused_and_arm_nothing(live, caps, argument):
    with pytest.raises(InvalidArgumentError) as refused:
        live.arm_live(**caps)
    assert refused.value.argument == argument
    with pytest.raises(LiveTradingNotArmed, match="arm_live"):
        live.place_order_sync(user="u", order_request=order(limit_price="1.00"))


def test_two_threads_never_share_the_last_order_of_the_minute():
    guard = LiveGuard()
    guard.arm(max_order_notional=10, max_orders_per_minute=5)
    admitted, start = [], threading.Barrier(20)

    def send():
        start.wait()
        try:
            guard.admit([Exposure("buy 1 X", Decimal(1), "test")])
            admitted.append(1)
        except LiveTradingNotArmed:
            pass

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 5


def test_arming_is_not_carried_over_to_another_environment(broker):
    """Armed on paper (or local), then re-initialized as live: the live guard starts unarmed."""
    from brokers import service_for

    from alpaca_nb import AlpacaCredentials

    svc = service_for(broker)
    svc.arm_live(max_order_notional=1_000_000)
    svc.initialize_sync(
        AlpacaCredentials(broker.key, broker.secret, "live"), trading_url=broker.url, data_url=broker.url
    )
    before = broker.requests[("POST", "/v2/orders")]
    with pytest.raises(LiveTradingNotArmed):
        svc.place_order_sync(
            user="ana", order_request=AlpacaOrderRequest(symbol="AAPL", qty=1, side="buy", type="market")
        )
    assert broker.requests[("POST", "/v2/orders")] == before
