"""The matching engine driven directly: manual clock, real synthetic market, deterministic.

Prices are never hard-coded: each test reads the market's quote / trade at the moment it
acts and asserts the engine did what Alpaca's rules say against exactly those numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alpaca_nb.sim.account.engine import Engine
from alpaca_nb.sim.account.errors import SimError
from alpaca_nb.sim.market.bars import to_ns
from alpaca_nb.sim.market.calendar import MarketHours
from alpaca_nb.sim.market.clock import SimClock
from alpaca_nb.sim.market.market import Market

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York
D = Decimal


class Rig:
    """An engine on a manual clock, with its event log."""

    def __init__(self, tmp_path, mode: str = "continuous", start: datetime = START, seed: int = 7):
        self.clock = SimClock(start, manual=True)
        self.hours = MarketHours(mode)
        self.market = Market(seed, self.hours, self.clock)
        self.path = tmp_path / "state.sqlite"
        self.engine = Engine(self.market, self.hours, self.clock, self.path)
        self.events: list[dict] = []
        self.engine.add_listener(self.events.append)

    def step(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)
        self.engine.tick()

    def quote(self, symbol: str = "AAPL"):
        return self.market.quote(symbol, self.clock.now())

    def trade(self, symbol: str = "AAPL"):
        return self.market.trade(symbol, self.clock.now())

    def order(self, **body) -> dict:
        body.setdefault("symbol", "AAPL")
        body.setdefault("side", "buy")
        body.setdefault("type", "market")
        body.setdefault("time_in_force", "day")
        return self.engine.submit_order(body)

    def get(self, order: dict) -> dict:
        return self.engine.get_order(order["id"])

    def events_of(self, order_id: str) -> list[str]:
        return [e["event"] for e in self.events if e["order"]["id"] == order_id]

    def snapshot(self) -> tuple:
        """Everything a refused order must leave untouched."""
        e = self.engine
        return (
            len(e.book.orders),
            e.cash,
            len(e._activities),
            e.account()["buying_power"],
            tuple(sorted((p["symbol"], p["qty"]) for p in e.positions())),
            len(self.events),
        )


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.engine.close()


@pytest.fixture
def nyse(tmp_path):
    # Monday 2026-11-23, 08:00 New York: before the open.
    r = Rig(tmp_path, "nyse", datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
    yield r
    r.engine.close()


# ---- account ---------------------------------------------------------------------------------
def test_new_account_is_a_funded_margin_account(rig):
    acct = rig.engine.account()
    assert acct["cash"] == "100000" and acct["equity"] == "100000"
    assert acct["buying_power"] == "200000" and acct["multiplier"] == "2"
    assert acct["status"] == "ACTIVE" and acct["account_number"].startswith("PA")
    deposit = rig.engine.activities()
    assert [a["activity_type"] for a in deposit] == ["CSD"]
    assert deposit[0]["net_amount"] == "100000"


def test_market_buy_fills_at_the_ask_and_moves_cash_and_position(rig):
    q = rig.quote()
    o = rig.order(qty=3)
    assert o["status"] == "filled" and o["filled_qty"] == "3"
    assert D(o["filled_avg_price"]) == q.ask
    assert rig.engine.cash == D(100000) - 3 * q.ask
    pos = rig.engine.position("AAPL")
    assert pos["qty"] == "3" and D(pos["avg_entry_price"]) == q.ask and pos["side"] == "long"
    last = rig.trade().price
    assert D(pos["market_value"]) == 3 * last
    assert D(pos["unrealized_pl"]) == 3 * (last - q.ask)
    acct = rig.engine.account()
    assert D(acct["equity"]) == (D(100000) - 3 * q.ask + 3 * last).quantize(D("0.01"))
    assert D(acct["long_market_value"]) == 3 * last
    assert rig.events_of(o["id"]) == ["pending_new", "new", "fill"]
    fill = rig.events[-1]
    assert fill["qty"] == "3" and D(fill["price"]) == q.ask and fill["position_qty"] == "3"
    assert fill["execution_id"] and fill["order"]["status"] == "filled" and fill["timestamp"]


def test_market_sell_fills_at_the_bid(rig):
    rig.order(qty=2)
    q = rig.quote()
    o = rig.order(qty=2, side="sell")
    assert o["status"] == "filled" and D(o["filled_avg_price"]) == q.bid
    assert o["position_intent"] == "sell_to_close"
    with pytest.raises(SimError) as err:
        rig.engine.position("AAPL")
    assert err.value.status == 404


def test_large_market_order_fills_partially_over_quotes(rig):
    q = rig.quote()
    o = rig.order(qty=q.ask_size + 350)
    assert o["status"] == "partially_filled"
    assert D(o["filled_qty"]) == q.ask_size
    fills = [(q.ask, D(q.ask_size))]
    for _ in range(200):
        rig.clock.advance(2)
        before = D(rig.get(o)["filled_qty"])
        quote = rig.quote()
        rig.engine.tick()
        after = rig.get(o)
        if D(after["filled_qty"]) > before:
            fills.append((quote.ask, D(after["filled_qty"]) - before))
            assert D(after["filled_qty"]) - before <= quote.ask_size
        if after["status"] == "filled":
            break
    assert after["status"] == "filled" and len(fills) >= 2
    total = sum(q for _, q in fills)
    avg = sum(p * q for p, q in fills) / total
    assert total == q.ask_size + 350
    assert abs(D(after["filled_avg_price"]) - avg) < D("0.000001")
    kinds = [e["event"] for e in rig.events if e["order"]["id"] == o["id"]]
    assert kinds.count("partial_fill") == len(fills) - 1 and kinds[-1] == "fill"
    acts = [a for a in rig.engine.activities(activity_types=["FILL"], direction="asc") if a["order_id"] == o["id"]]
    assert [a["type"] for a in acts] == ["partial_fill"] * (len(fills) - 1) + ["fill"]
    assert acts[-1]["cum_qty"] == str(total) and acts[-1]["leaves_qty"] == "0"
    assert D(acts[0]["leaves_qty"]) == total - q.ask_size


# ---- limit / stop / trailing -----------------------------------------------------------------
def _step_until(rig, done, seconds=15, limit=2000):
    for _ in range(limit):
        if done():
            return True
        rig.step(seconds)
    return done()


def test_limit_buy_rests_then_fills_when_the_ask_reaches_it(rig):
    limit = (rig.quote().ask * D("0.999")).quantize(D("0.01"))
    o = rig.order(qty=1, type="limit", limit_price=str(limit), time_in_force="gtc")
    assert o["status"] == "new" and o["filled_qty"] == "0"
    seen = []
    for _ in range(3000):
        rig.clock.advance(15)
        q = rig.quote()
        rig.engine.tick()
        now = rig.get(o)
        if now["status"] == "filled":
            assert q.ask <= limit and D(now["filled_avg_price"]) == q.ask
            assert all(a > limit for a in seen)  # it did not miss an earlier chance
            break
        seen.append(q.ask)
    else:
        pytest.fail("the market never came down to the limit")


def test_marketable_limit_fills_at_the_better_quote_price(rig):
    q = rig.quote()
    o = rig.order(qty=1, type="limit", limit_price=str(q.ask + 5))
    assert o["status"] == "filled" and D(o["filled_avg_price"]) == q.ask < q.ask + 5


def _prices_between(rig, lo: datetime, hi: datetime, symbol: str = "AAPL") -> list[Decimal]:
    """Every trade price in (lo, hi], read through the data API's range query."""
    ticks, more = rig.market.ticks(symbol, to_ns(lo) + 1, to_ns(hi) + 1, 1_000_000)
    assert not more
    return [D(int(p)) / 10000 for p in ticks.price]


def _step_until_crossed(rig, order: dict, crossed) -> tuple[dict, object]:
    """Step 15 s at a time until some trade of a step satisfies ``crossed(prices)`` (any trade,
    not only the last one); the order must stay ``new`` until then. Returns the order and the
    quote of that step."""
    for _ in range(3000):
        before = rig.clock.now()
        rig.clock.advance(15)
        q = rig.quote()
        rig.engine.tick()
        now = rig.get(order)
        if crossed(_prices_between(rig, before, rig.clock.now())):
            return now, q
        assert now["status"] == "new"
    pytest.fail("the market never reached the stop")


def test_stop_buy_triggers_on_a_trade_at_or_above_the_stop(rig):
    stop = (rig.trade().price * D("1.001")).quantize(D("0.01"))
    o = rig.order(qty=1, type="stop", stop_price=str(stop), time_in_force="gtc")
    assert o["status"] == "new"
    now, q = _step_until_crossed(rig, o, lambda prices: max(prices, default=D(0)) >= stop)
    assert now["status"] == "filled" and D(now["filled_avg_price"]) == q.ask


def test_stop_limit_becomes_a_limit_at_the_trigger(rig):
    rig.order(qty=5)
    stop = (rig.trade().price * D("0.999")).quantize(D("0.01"))
    o = rig.order(
        qty=5, side="sell", type="stop_limit", stop_price=str(stop), limit_price=str(stop - 1), time_in_force="gtc"
    )
    now, q = _step_until_crossed(rig, o, lambda prices: min(prices, default=stop + 1) <= stop)
    assert q.bid >= stop - 1  # the limit is a dollar under the stop: it trades
    assert now["status"] == "filled" and D(now["filled_avg_price"]) == q.bid


def test_trailing_stop_tracks_the_high_water_mark(rig):
    rig.order(qty=2)
    trail = D("0.50")
    o = rig.order(qty=2, side="sell", type="trailing_stop", trail_price=str(trail), time_in_force="gtc")
    hwm = rig.trade().price
    assert D(o["hwm"]) == hwm and D(o["stop_price"]) == hwm - trail
    for _ in range(3000):
        before = rig.clock.now()
        rig.clock.advance(10)
        q = rig.quote()
        rig.engine.tick()
        now = rig.get(o)
        triggered = False
        for price in _prices_between(rig, before, rig.clock.now()):  # the mark, trade by trade
            hwm = max(hwm, price)
            if price <= hwm - trail:
                triggered = True
                break
        assert D(now["hwm"]) == hwm and D(now["stop_price"]) == hwm - trail
        if triggered:
            assert now["status"] == "filled" and D(now["filled_avg_price"]) == q.bid
            break
        assert now["status"] == "new"
    else:
        pytest.fail("the trailing stop never triggered")


def test_trailing_percent_stop_rounds_to_cents(rig):
    o = rig.order(qty=1, side="buy", type="trailing_stop", trail_percent="1.5", time_in_force="day")
    low = D(o["hwm"])
    stop = D(o["stop_price"])
    assert stop == (low * D("1.015")).quantize(D("0.01"), rounding="ROUND_CEILING")


# ---- time in force ---------------------------------------------------------------------------
def test_ioc_fills_what_is_displayed_and_cancels_the_rest(rig):
    q = rig.quote()
    o = rig.order(qty=q.ask_size + 10, type="limit", limit_price=str(q.ask), time_in_force="ioc")
    assert o["status"] == "canceled" and D(o["filled_qty"]) == q.ask_size
    assert rig.events_of(o["id"])[-3:] == ["partial_fill", "pending_cancel", "canceled"]


def test_fok_is_all_or_nothing(rig):
    q = rig.quote()
    big = rig.order(qty=q.ask_size + 1, time_in_force="fok")
    assert big["status"] == "canceled" and big["filled_qty"] == "0"
    small = rig.order(qty=1, time_in_force="fok")
    assert small["status"] == "filled"


def test_day_order_expires_at_new_york_midnight_and_gtc_lives_on(rig):
    day = rig.order(qty=1, type="limit", limit_price="1.00")
    gtc = rig.order(qty=1, type="limit", limit_price="1.00", time_in_force="gtc")
    midnight = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert rig.get(day)["expires_at"] == "2026-11-25T05:00:00Z"
    rig.clock.set(midnight - timedelta(seconds=1))
    rig.engine.tick()
    assert rig.get(day)["status"] == "new"
    rig.step(2)
    expired = rig.get(day)
    assert expired["status"] == "expired" and expired["expired_at"] is not None
    assert rig.events_of(day["id"])[-1] == "expired"
    assert rig.get(gtc)["status"] == "new"
    assert rig.engine.account()["buying_power"] == str(D(200000) - 1)  # gtc still reserves $1


def test_opg_and_cls_trade_at_the_next_tick_in_continuous_mode(rig):
    opg = rig.order(qty=1, time_in_force="opg")
    cls = rig.order(qty=1, side="buy", type="limit", limit_price="1.00", time_in_force="cls")
    assert opg["status"] == "accepted" and cls["status"] == "accepted"
    q = rig.quote()
    rig.engine.tick()
    assert rig.get(opg)["status"] == "filled" and D(rig.get(opg)["filled_avg_price"]) == q.ask
    assert rig.get(cls)["status"] == "expired"  # its limit was far below the market


# ---- nyse hours ------------------------------------------------------------------------------
def test_nyse_orders_queue_until_the_open_and_day_orders_expire_at_the_close(nyse):
    assert not nyse.hours.is_open(nyse.clock.now())
    o = nyse.order(qty=1)
    rest = nyse.order(qty=1, type="limit", limit_price="1.00")
    assert o["status"] == "accepted" and rest["status"] == "accepted"
    assert rest["expires_at"] == "2026-11-23T21:00:00Z"
    opening = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    nyse.clock.set(opening + timedelta(seconds=30))
    q = nyse.quote()
    nyse.engine.tick()
    filled = nyse.get(o)
    assert filled["status"] == "filled" and D(filled["filled_avg_price"]) == q.ask
    assert nyse.events_of(o["id"]) == ["accepted", "new", "fill"]
    assert nyse.get(rest)["status"] == "new"
    nyse.clock.set(datetime(2026, 11, 23, 21, 0, 1, tzinfo=UTC))
    nyse.engine.tick()
    assert nyse.get(rest)["status"] == "expired"


def test_queued_order_the_account_cannot_pay_for_is_rejected_at_the_open(nyse):
    qty = int(D(150000) / nyse.quote().ask)  # needs margin: more than the cash
    o = nyse.order(qty=qty)
    assert o["status"] == "accepted"
    nyse.engine.update_configurations({"max_margin_multiplier": "1"})  # now a cash account
    nyse.clock.set(datetime(2026, 11, 23, 14, 30, 10, tzinfo=UTC))
    nyse.engine.tick()
    got = nyse.get(o)
    assert got["status"] == "rejected" and got["failed_at"] is not None
    assert nyse.events_of(o["id"]) == ["accepted", "rejected"]
    assert nyse.engine.positions() == [] and nyse.engine.cash == D(100000)
    assert nyse.engine.account()["buying_power"] == "100000"


def test_nyse_opening_and_closing_auctions(nyse):
    opg = nyse.order(qty=2, time_in_force="opg")
    cls = nyse.order(qty=2, time_in_force="cls")
    assert opg["status"] == cls["status"] == "accepted"
    opening = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    closing = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
    nyse.clock.set(opening + timedelta(minutes=1))
    nyse.engine.tick()
    got = nyse.get(opg)
    assert got["status"] == "filled"
    assert D(got["filled_avg_price"]) == nyse.market.trade("AAPL", opening).price
    assert nyse.get(cls)["status"] == "accepted"
    nyse.clock.set(closing + timedelta(minutes=5))
    nyse.engine.tick()
    got = nyse.get(cls)
    assert got["status"] == "filled"
    assert D(got["filled_avg_price"]) == nyse.market.trade("AAPL", closing).price


def test_nyse_extended_hours_limit_trades_before_the_open(nyse):
    q = nyse.quote()
    plain = nyse.order(qty=1, type="limit", limit_price=str(q.ask + 1))
    ext = nyse.order(qty=1, type="limit", limit_price=str(q.ask + 1), extended_hours=True)
    assert plain["status"] == "accepted"
    assert ext["status"] == "filled" and D(ext["filled_avg_price"]) == q.ask


def test_nyse_partly_filled_gtc_order_is_done_for_the_day_at_the_close(nyse):
    nyse.clock.set(datetime(2026, 11, 23, 20, 59, 50, tzinfo=UTC))
    q = nyse.quote("F")
    o = nyse.order(symbol="F", qty=q.ask_size + 500, type="limit", limit_price=str(q.ask), time_in_force="gtc")
    assert o["status"] == "partially_filled"
    nyse.engine.tick()
    nyse.step(20)  # past the 16:00 close
    assert nyse.get(o)["status"] == "done_for_day"
    assert "done_for_day" in nyse.events_of(o["id"])


# ---- order classes ---------------------------------------------------------------------------
def _bracket(rig, side="buy", qty=2):
    last = rig.trade().price
    tp, sl = (last + 20, last - 20) if side == "buy" else (last - 20, last + 20)
    return rig.order(
        qty=qty,
        side=side,
        time_in_force="gtc",
        order_class="bracket",
        take_profit={"limit_price": str(tp)},
        stop_loss={"stop_price": str(sl)},
    )


def test_bracket_legs_are_held_until_the_entry_fills_then_cancel_each_other(rig):
    o = _bracket(rig, qty=2)
    assert o["status"] == "filled" and o["order_class"] == "bracket"
    tp, sl = o["legs"]
    assert (tp["type"], sl["type"]) == ("limit", "stop")
    assert tp["status"] == sl["status"] == "new" and tp["side"] == sl["side"] == "sell"
    assert tp["qty"] == sl["qty"] == "2"
    assert rig.events_of(tp["id"])[:2] == ["pending_new", "new"]
    pos = rig.engine.position("AAPL")
    assert pos["qty_available"] == "0"  # both exits claim the 2 shares (counted once)
    # move the take-profit into the market: it fills and the stop-loss is canceled
    bid = rig.quote().bid
    new_tp = rig.engine.replace_order(tp["id"], {"limit_price": str(bid - 1)})
    assert new_tp["status"] == "filled" and new_tp["replaces"] == tp["id"]
    assert rig.get(sl)["status"] == "canceled"
    assert rig.engine.get_order(o["id"], nested=True)["legs"][0]["id"] == new_tp["id"]
    assert rig.engine.positions() == []


def test_bracket_entry_resting_keeps_legs_held_and_cancel_takes_them_along(rig):
    last = rig.trade().price
    o = rig.order(
        qty=1,
        type="limit",
        limit_price=str(last - 30),
        time_in_force="gtc",
        order_class="bracket",
        take_profit={"limit_price": str(last)},
        stop_loss={"stop_price": str(last - 40), "limit_price": str(last - 41)},
    )
    assert o["status"] == "new" and [leg["status"] for leg in o["legs"]] == ["held", "held"]
    assert o["legs"][1]["type"] == "stop_limit"
    assert rig.events_of(o["legs"][0]["id"]) == []
    nested = rig.engine.list_orders(nested=True)
    assert [x["id"] for x in nested] == [o["id"]] and len(nested[0]["legs"]) == 2
    flat = rig.engine.list_orders()
    assert {x["id"] for x in flat} == {o["id"], *(leg["id"] for leg in o["legs"])}
    rig.engine.cancel_order(o["id"])
    assert [rig.get(leg)["status"] for leg in o["legs"]] == ["canceled", "canceled"]


def test_bracket_price_rules(rig):
    last = rig.trade().price
    before = rig.snapshot()
    for tp, sl, field in ((last, last - 5, "take_profit"), (last + 5, last, "stop_loss")):
        with pytest.raises(SimError) as err:
            rig.order(
                qty=1, order_class="bracket", take_profit={"limit_price": str(tp)}, stop_loss={"stop_price": str(sl)}
            )
        assert err.value.status == 422 and field in err.value.message
    assert rig.snapshot() == before


def test_oco_exits_a_position_and_one_fill_cancels_the_other(rig):
    rig.order(qty=3)
    last = rig.trade().price
    o = rig.order(
        qty=3,
        side="sell",
        type="limit",
        time_in_force="gtc",
        order_class="oco",
        take_profit={"limit_price": str(last + 30)},
        stop_loss={"stop_price": str(last - 30)},
    )
    assert o["order_class"] == "oco" and o["type"] == "limit" and D(o["limit_price"]) == last + 30
    (stop,) = o["legs"]
    assert stop["type"] == "stop" and stop["status"] == "new" and o["status"] == "new"
    assert rig.engine.position("AAPL")["qty_available"] == "0"
    rig.engine.replace_order(stop["id"], {"stop_price": str(last + 10)})  # triggers at once
    assert rig.get(o)["status"] == "canceled"
    assert rig.engine.positions() == []


def test_oco_needs_shares_to_exit(rig):
    last = rig.trade().price
    with pytest.raises(SimError) as err:
        rig.order(
            qty=1,
            side="sell",
            type="limit",
            order_class="oco",
            time_in_force="gtc",
            take_profit={"limit_price": str(last + 5)},
            stop_loss={"stop_price": str(last - 5)},
        )
    assert err.value.status == 403 and "insufficient qty" in err.value.message


def test_oto_releases_its_single_leg_after_the_entry(rig):
    last = rig.trade().price
    o = rig.order(qty=1, order_class="oto", time_in_force="gtc", stop_loss={"stop_price": str(last - 10)})
    (leg,) = o["legs"]
    assert o["status"] == "filled" and leg["status"] == "new" and leg["type"] == "stop"


# ---- replace and cancel ----------------------------------------------------------------------
def test_replace_creates_a_new_order_and_retires_the_old(rig):
    o = rig.order(qty=2, type="limit", limit_price="10.00", time_in_force="gtc", client_order_id="first")
    new = rig.engine.replace_order(o["id"], {"qty": 3, "limit_price": "11.00", "client_order_id": "second"})
    old = rig.get(o)
    assert old["status"] == "replaced" and old["replaced_by"] == new["id"]
    assert old["replaced_at"] is not None
    assert new["replaces"] == o["id"] and new["qty"] == "3" and new["limit_price"] == "11"
    assert new["client_order_id"] == "second" and new["status"] == "new"
    assert rig.events_of(o["id"])[-2:] == ["pending_replace", "replaced"]
    assert rig.events_of(new["id"]) == ["pending_new", "new"]
    assert rig.engine.account()["buying_power"] == str(D(200000) - 33)
    with pytest.raises(SimError) as err:
        rig.engine.replace_order(o["id"], {"qty": 1})
    assert err.value.status == 422


def test_replace_refuses_fields_the_order_type_has_not(rig):
    o = rig.order(qty=1, type="limit", limit_price="10.00", time_in_force="gtc")
    before = rig.snapshot()
    for patch, word in (
        ({"stop_price": "9"}, "stop_price"),
        ({"trail": "1"}, "trail"),
        ({"limit_price": "10.001"}, "sub-penny"),
        ({"qty": -1}, "qty"),
    ):
        with pytest.raises(SimError) as err:
            rig.engine.replace_order(o["id"], patch)
        assert err.value.status == 422 and word in err.value.message
    assert rig.snapshot() == before and rig.get(o)["status"] == "new"


def test_cancel_rules(rig):
    filled = rig.order(qty=1)
    with pytest.raises(SimError) as err:
        rig.engine.cancel_order(filled["id"])
    assert (err.value.status, err.value.message) == (422, "order is not cancelable")
    with pytest.raises(SimError) as err:
        rig.engine.cancel_order("00000000-0000-4000-8000-000000000000")
    assert err.value.status == 404
    rest = rig.order(qty=1, type="limit", limit_price="1.00")
    rig.engine.cancel_order(rest["id"])
    got = rig.get(rest)
    assert got["status"] == "canceled" and got["canceled_at"] is not None
    assert rig.events_of(rest["id"])[-2:] == ["pending_cancel", "canceled"]


def test_cancel_all_returns_one_entry_per_canceled_order(rig):
    ids = {rig.order(qty=1, type="limit", limit_price="1.00", time_in_force="gtc")["id"] for _ in range(3)}
    rig.order(qty=1)  # filled: not in the answer
    answer = rig.engine.cancel_all_orders()
    assert {a["id"] for a in answer} == ids
    assert all(a["status"] == 200 and a["body"]["status"] == "canceled" for a in answer)
    assert rig.engine.list_orders() == []


# ---- refusals --------------------------------------------------------------------------------
REFUSALS = [
    (dict(symbol="NOPE"), 422, 'asset "NOPE" not found'),
    (dict(symbol="TWTR"), 422, "not active"),
    (dict(qty=0), 422, "qty must be > 0"),
    (dict(qty=-1), 422, "qty must be > 0"),
    (dict(qty=None), 422, "qty or notional is required"),
    (dict(notional=100), 422, "only one of qty or notional"),
    (dict(qty="abc"), 422, "invalid qty"),
    (dict(side="hold"), 422, "invalid side"),
    (dict(type="limit"), 422, "limit_price is required"),
    (dict(type="stop"), 422, "stop_price is required"),
    (dict(type="stop_limit", stop_price="10"), 422, "limit_price is required"),
    (dict(type="trailing_stop", time_in_force="gtc"), 422, "exactly one of trail_price"),
    (
        dict(type="trailing_stop", trail_price="1", trail_percent="1", time_in_force="gtc"),
        422,
        "exactly one of trail_price",
    ),
    (dict(type="limit", limit_price="10.001"), 422, "sub-penny increment"),
    (dict(type="limit", limit_price="0.12345"), 422, "sub-penny increment"),
    (dict(type="limit", limit_price="-1"), 422, "limit_price must be > 0"),
    (dict(type="market", limit_price="10"), 422, "limit_price is not allowed"),
    (dict(time_in_force="week"), 422, "invalid time_in_force"),
    (dict(type="stop", stop_price="10", time_in_force="ioc"), 422, "time_in_force"),
    (dict(extended_hours=True), 422, "extended_hours"),
    (dict(extended_hours="yes", type="limit", limit_price="1"), 422, "extended_hours"),
    (dict(qty="1.5", time_in_force="gtc"), 422, "fractional orders must be DAY orders"),
    (dict(symbol="BRK.A", qty="0.5"), 422, 'asset "BRK.A" is not fractionable'),
    (dict(qty=None, notional="0.5"), 422, "notional must be >= 1"),
    (dict(qty=None, notional="100", type="limit", limit_price="1"), 422, "notional orders must be market"),
    (dict(order_class="bracket"), 422, "take_profit"),
    (dict(order_class="mleg"), 422, "mleg"),
    (dict(client_order_id="x" * 129), 422, "128"),
    (dict(qty=10000), 403, "insufficient buying power"),
    (dict(side="sell", symbol="AMC", qty=10), 403, "cannot be sold short"),
    (dict(side="sell", symbol="GME", qty=10), 403, "not easy to borrow"),
    (dict(side="sell", qty="0.5"), 403, "fractional orders cannot be sold short"),
]


@pytest.mark.parametrize("body,status,message", REFUSALS)
def test_refused_orders_change_nothing(rig, body, status, message):
    rig.order(qty=1, type="limit", limit_price="1.00", time_in_force="gtc")
    before = rig.snapshot()
    body = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", **body}
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(SimError) as err:
        rig.engine.submit_order(body)
    assert err.value.status == status, err.value.message
    assert message in err.value.message
    assert err.value.code == (40310000 if status == 403 else err.value.code)
    assert err.value.code in (40010001, 42210000, 40310000)
    assert rig.snapshot() == before


def test_duplicate_client_order_id_is_refused_as_alpaca_does(rig):
    rig.order(qty=1, client_order_id="mine-1")
    before = rig.snapshot()
    with pytest.raises(SimError) as err:
        rig.order(qty=1, client_order_id="mine-1")
    assert (err.value.status, err.value.code) == (422, 40010001)
    assert err.value.message == "client_order_id must be unique"
    assert rig.snapshot() == before
    assert rig.engine.get_order_by_client_order_id("mine-1")["qty"] == "1"


def test_selling_more_than_held_is_refused_with_the_quantities(rig):
    rig.order(qty=5)
    rig.order(qty=2, side="sell", type="limit", limit_price="9999.00", time_in_force="gtc")
    before = rig.snapshot()
    with pytest.raises(SimError) as err:
        rig.order(qty=4, side="sell")
    assert err.value.status == 403 and err.value.code == 40310000
    assert err.value.message == "insufficient qty available for order (requested: 4, available: 3)"
    assert rig.snapshot() == before
    assert rig.engine.position("AAPL")["qty_available"] == "3"


def test_short_sale_opens_a_short_position(rig):
    q = rig.quote()
    o = rig.order(qty=2, side="sell")
    assert o["status"] == "filled" and o["position_intent"] == "sell_to_open"
    pos = rig.engine.position("AAPL")
    assert pos["side"] == "short" and pos["qty"] == "-2"
    assert D(pos["avg_entry_price"]) == q.bid
    acct = rig.engine.account()
    assert D(acct["short_market_value"]) == -2 * rig.trade().price
    assert D(acct["cash"]) == D(100000) + 2 * q.bid
    with pytest.raises(SimError) as err:  # no flipping a short to a long in one order
        rig.order(qty=3)
    assert err.value.status == 403 and "(requested: 3, available: 2)" in err.value.message
    cover = rig.order(qty=2)
    assert cover["position_intent"] == "buy_to_close" and rig.engine.positions() == []


def test_short_sell_while_a_buy_is_open_is_refused(rig):
    rig.order(qty=1, type="limit", limit_price="1.00")
    with pytest.raises(SimError) as err:
        rig.order(qty=1, side="sell")
    assert err.value.status == 403 and "long buy order is open" in err.value.message


def test_notional_and_fractional_orders(rig):
    q = rig.quote()
    o = rig.order(qty=None, notional="500")
    assert o["notional"] == "500" and o["qty"] is None and o["status"] == "filled"
    expected = (D(500) / q.ask).quantize(D("0.000000001"), rounding="ROUND_DOWN")
    assert D(o["filled_qty"]) == expected
    frac = rig.order(qty="0.25")
    assert frac["filled_qty"] == "0.25"
    assert D(rig.engine.position("AAPL")["qty"]) == expected + D("0.25")


def test_account_configuration_gates_orders(rig):
    rig.engine.update_configurations({"suspend_trade": True})
    with pytest.raises(SimError) as err:
        rig.order(qty=1)
    assert err.value.status == 403 and "rejected by user request" in err.value.message
    rig.engine.update_configurations({"suspend_trade": False, "no_shorting": True})
    with pytest.raises(SimError):
        rig.order(qty=1, side="sell")
    rig.engine.update_configurations({"max_margin_multiplier": "1", "no_shorting": False})
    assert rig.engine.account()["buying_power"] == "100000"
    with pytest.raises(SimError) as err:
        rig.engine.update_configurations({"max_margin_multiplier": "3"})
    assert err.value.status == 422 and "max_margin_multiplier" in err.value.message
    with pytest.raises(SimError) as err:
        rig.engine.update_configurations({"no_shorting": "yes"})
    assert err.value.status == 422 and "no_shorting" in err.value.message


# ---- positions -------------------------------------------------------------------------------
def test_close_position_by_qty_and_percentage(rig):
    rig.order(qty=10)
    o = rig.engine.close_position("AAPL", qty="4")
    assert o["side"] == "sell" and o["qty"] == "4" and o["status"] == "filled"
    o = rig.engine.close_position("AAPL", percentage="50")
    assert o["qty"] == "3"
    asset_id = rig.engine.position("AAPL")["asset_id"]
    o = rig.engine.close_position(asset_id)
    assert o["qty"] == "3" and rig.engine.positions() == []
    with pytest.raises(SimError) as err:
        rig.engine.close_position("AAPL")
    assert err.value.status == 404


def test_close_all_positions_reports_each_symbol(rig):
    rig.order(qty=2)
    rig.order(symbol="MSFT", qty=1)
    rig.order(symbol="MSFT", qty=1, side="sell", type="limit", limit_price="9999.00", time_in_force="gtc")
    answer = rig.engine.close_all_positions()
    by_symbol = {a["symbol"]: a for a in answer}
    assert by_symbol["AAPL"]["status"] == 200 and by_symbol["AAPL"]["body"]["status"] == "filled"
    failed = by_symbol["MSFT"]
    assert failed["status"] == 403 and failed["body"]["code"] == 40310000
    assert failed["body"]["available"] == "0" and failed["body"]["held_for_orders"] == "1"
    answer = rig.engine.close_all_positions(cancel_orders=True)
    assert [(a["symbol"], a["status"]) for a in answer] == [("MSFT", 200)]
    assert rig.engine.positions() == [] and rig.engine.list_orders() == []


# ---- listing ---------------------------------------------------------------------------------
def test_order_pages_by_time_lose_nothing(rig):
    ids = [rig.order(qty=1, type="limit", limit_price="1.00", time_in_force="gtc")["id"] for _ in range(23)]
    seen, until = [], None
    while True:
        page = rig.engine.list_orders(status="all", limit=5, until=until)
        if not page:
            break
        seen += [o["id"] for o in page]
        until = datetime.fromisoformat(page[-1]["submitted_at"].replace("Z", "+00:00"))
    assert seen == ids[::-1]
    asc = rig.engine.list_orders(status="all", limit=500, direction="asc")
    assert [o["id"] for o in asc] == ids
    after = datetime.fromisoformat(asc[9]["submitted_at"].replace("Z", "+00:00"))
    assert [o["id"] for o in rig.engine.list_orders(after=after, direction="asc", limit=3)] == ids[10:13]


def test_order_filters(rig):
    a = rig.order(qty=1, type="limit", limit_price="1.00")
    m = rig.order(symbol="MSFT", qty=1, type="limit", limit_price="1.00")
    f = rig.order(symbol="SPY", qty=1)
    assert [o["id"] for o in rig.engine.list_orders(symbols=["MSFT"])] == [m["id"]]
    assert [o["id"] for o in rig.engine.list_orders(status="closed")] == [f["id"]]
    assert {o["id"] for o in rig.engine.list_orders(status="all", side="buy")} == {a["id"], m["id"], f["id"]}
    assert rig.engine.list_orders(side="sell") == []
    for bad in (dict(status="some"), dict(limit=501), dict(direction="up")):
        with pytest.raises(SimError) as err:
            rig.engine.list_orders(**bad)
        assert err.value.status == 422


# ---- activities, history ---------------------------------------------------------------------
def test_activities_page_by_token(rig):
    for _ in range(7):
        rig.order(qty=1)
        rig.clock.advance(1)
    everything = rig.engine.activities(direction="asc")
    assert [a["activity_type"] for a in everything] == ["CSD"] + ["FILL"] * 7
    fill = everything[1]
    assert fill["id"].split("::")[0] == "20261124150000000" and fill["type"] == "fill"
    pages, token = [], None
    while True:
        page = rig.engine.activities(page_size=3, page_token=token)
        if not page:
            break
        pages.append(page)
        token = page[-1]["id"]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [a["id"] for p in pages for a in p] == [a["id"] for a in everything[::-1]]
    fills = rig.engine.activities(
        activity_types=["FILL"], after=START + timedelta(seconds=1.5), until=START + timedelta(seconds=3.5)
    )
    assert len(fills) == 2
    assert rig.engine.activities(date=START)[-1]["activity_type"] == "CSD"


def test_portfolio_history_follows_the_fills(rig):
    rig.step(60)
    rig.order(qty=100)
    for _ in range(30):
        rig.step(60)
    hist = rig.engine.portfolio_history(period="1D", timeframe="1Min")
    assert hist["timeframe"] == "1Min" and len(hist["timestamp"]) == len(hist["equity"])
    assert hist["base_value"] == 100000.0 and hist["equity"][0] == 100000.0
    assert hist["equity"][-1] == float(rig.engine.account()["equity"])
    assert hist["profit_loss"][-1] == pytest.approx(hist["equity"][-1] - 100000, abs=0.01)
    steps = {b - a for a, b in zip(hist["timestamp"], hist["timestamp"][1:], strict=False)}
    assert steps == {60}
    daily = rig.engine.portfolio_history(period="1W", timeframe="1D")
    assert daily["timeframe"] == "1D" and daily["equity"][-1] == hist["equity"][-1]
    with pytest.raises(SimError):
        rig.engine.portfolio_history(period="1X")
    with pytest.raises(SimError):
        rig.engine.portfolio_history(period="3M", timeframe="1Min")


def test_last_equity_is_the_previous_close(rig):
    rig.order(qty=10)
    rig.clock.set(datetime(2026, 11, 25, 6, 0, tzinfo=UTC))  # past NY midnight
    acct = rig.engine.account()
    close = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    expected = rig.engine.cash + 10 * rig.market.trade("AAPL", close).price
    assert D(acct["last_equity"]) == expected.quantize(D("0.01"))
    pos = rig.engine.position("AAPL")
    assert D(pos["lastday_price"]) == rig.market.trade("AAPL", close).price


# ---- persistence, bulk -----------------------------------------------------------------------
def test_a_restarted_engine_has_the_same_account(rig, tmp_path):
    rig.order(qty=3)
    rest = rig.order(qty=1, type="limit", limit_price="1.00", time_in_force="gtc", client_order_id="keep")
    e = rig.engine
    state = (e.account_id, e.cash, e.positions(), e.list_orders(status="all"), e.activities(), e.configurations())
    e.close()
    again = Engine(rig.market, rig.hours, rig.clock, rig.path)
    assert (
        again.account_id,
        again.cash,
        again.positions(),
        again.list_orders(status="all"),
        again.activities(),
        again.configurations(),
    ) == state
    assert again.get_order_by_client_order_id("keep")["id"] == rest["id"]
    with pytest.raises(SimError):
        again.submit_order(
            {
                "symbol": "AAPL",
                "qty": 1,
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
                "client_order_id": "keep",
            }
        )
    again.reset()
    assert again.account_id != state[0] and again.list_orders(status="all") == []
    assert again.cash == D(100000) and again.positions() == []
    again.close()
    fresh = Engine(rig.market, rig.hours, rig.clock, rig.path)
    assert fresh.account_id == again.account_id and fresh.list_orders(status="all") == []
    rig.engine = fresh


def test_bulk_submit_is_fast_and_persistent(rig):
    import time

    bodies = [
        {"symbol": s, "qty": 1, "side": "buy", "type": "limit", "limit_price": "1.00", "time_in_force": "gtc"}
        for s in ("AAPL", "MSFT", "SPY", "JPM") * 500
    ]
    started = time.perf_counter()
    out = rig.engine.submit_orders(bodies)
    assert time.perf_counter() - started < 5
    assert len(out) == 2000 and all(o["status"] == "new" for o in out)
    times = [o["submitted_at"] for o in out]
    assert len(set(times)) == 2000  # unique, so time-paging is exact
    with pytest.raises(SimError) as err:
        rig.engine.submit_orders([bodies[0], {"symbol": "NOPE"}])
    assert err.value.message.startswith("order 1: ")
    assert len(rig.engine.book.orders) == 2001  # the good one before it stayed
    held = rig.engine.submit_orders(
        [{"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market", "time_in_force": "day"}], match=False
    )
    assert held[0]["status"] == "new"
    rig.engine.tick()
    assert rig.get(held[0])["status"] == "filled"
    rig.engine.close()
    rig.engine = Engine(rig.market, rig.hours, rig.clock, rig.path)
    assert len(rig.engine.list_orders(status="all", limit=500)) == 500
    assert len(rig.engine.book.orders) == 2002


def test_listener_errors_do_not_break_the_engine(rig):
    def broken(event):
        raise RuntimeError("boom")

    rig.engine.add_listener(broken)
    o = rig.order(qty=1)
    assert o["status"] == "filled" and rig.events_of(o["id"])[-1] == "fill"
    rig.engine.remove_listener(broken)
