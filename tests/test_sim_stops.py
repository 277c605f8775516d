"""Stops see every trade of the tape, not only the last one at an engine tick.

The engine runs on a manual clock over the deterministic market. Each test first reads the
tape ahead of the clock (the same seeded market seen from days later) to find a one-step
window with the shape it needs, e.g. a spike through a level that comes back before the step
ends, then places the order before the window and steps over it in one go. Each test also
checks that the last trade at the end of the step alone would not have done it.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import msgspec
import numpy as np
import pytest
from brokers import MANUAL_START

from alpaca_nb.sim.account import matching
from alpaca_nb.sim.account.engine import Engine
from alpaca_nb.sim.market.bars import to_ns
from alpaca_nb.sim.market.calendar import MarketHours
from alpaca_nb.sim.market.clock import SimClock
from alpaca_nb.sim.market.market import Market

D = Decimal
SEED = 7
STEP = 60.0
CENT = D("0.01")


def _dollars(units) -> Decimal:
    return D(int(units)) / 10000


class Rig:
    """An engine on a manual clock, the tape ahead of it, and the trade-update log."""

    def __init__(self, path, mode: str = "continuous", start: datetime = MANUAL_START):
        self.hours = MarketHours(mode)
        self.clock = SimClock(start, manual=True)
        self.market = Market(SEED, self.hours, self.clock)
        # The same market seen from a week later: the tape the engine has not reached yet.
        self.tape = Market(SEED, self.hours, SimClock(start + timedelta(days=7), manual=True))
        self.path = path
        self.events: list[dict] = []
        self.engine = self.open()

    def open(self) -> Engine:
        engine = Engine(self.market, self.hours, self.clock, self.path)
        engine.add_listener(self.events.append)
        return engine

    def restart(self) -> None:
        self.engine.close()
        self.engine = self.open()

    def prices(self, lo: datetime, hi: datetime, symbol: str = "AAPL") -> list[Decimal]:
        """Every trade price in (lo, hi], in order, through the data API's range query."""
        ticks, more = self.tape.ticks(symbol, to_ns(lo) + 1, to_ns(hi) + 1, 1_000_000)
        assert not more
        return [_dollars(p) for p in ticks.price]

    def find(self, fits, symbol: str = "AAPL", seconds: float = STEP):
        """The first window (t, t + seconds] from now on for which ``fits(last trade at t,
        prices of the window)`` gives something: (t, that)."""
        t = self.clock.now()
        for _ in range(2000):
            hi = t + timedelta(seconds=seconds)
            found = fits(self.tape.trade(symbol, t).price, self.prices(t, hi, symbol))
            if found is not None:
                return t, found
            t = hi
        pytest.fail("no such window on the tape")

    def go(self, t: datetime) -> None:
        self.clock.set(t)
        self.engine.tick()

    def step(self, seconds: float = STEP) -> None:
        self.clock.advance(seconds)
        self.engine.tick()

    def order(self, **body) -> dict:
        body.setdefault("symbol", "AAPL")
        body.setdefault("qty", 1)
        body.setdefault("type", "market")
        body.setdefault("time_in_force", "gtc")
        return self.engine.submit_order(body)

    def get(self, order: dict) -> dict:
        return self.engine.get_order(order["id"])

    def record(self, order: dict):
        return self.engine.book.orders[order["id"]]

    def last(self, symbol: str = "AAPL") -> Decimal:
        return self.market.trade(symbol).price

    def quote(self, symbol: str = "AAPL"):
        return self.market.quote(symbol)

    def events_of(self, order: dict) -> list[dict]:
        return [e for e in self.events if e["order"]["id"] == order["id"]]


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path / "state.sqlite")
    yield r
    r.engine.close()


def _sign(side: str) -> int:
    """+1 when the stop waits for the price to rise (a buy stop), -1 for a sell stop."""
    return 1 if side == "buy" else -1


def _spike(side: str):
    """Window finder: the extreme trade (a high for a buy, a low for a sell) beyond both the
    last trade before the window and the last trade of the window."""
    s = _sign(side)

    def fits(p0, prices):
        if not prices:
            return None
        peak = max(prices) if s > 0 else min(prices)
        if s * (peak - p0) > 0 and s * (peak - prices[-1]) > 0:
            return peak
        return None

    return fits


def _filled_at_quote(order: dict, side: str, quote) -> bool:
    price = quote.ask if side == "buy" else quote.bid
    return order["status"] == "filled" and D(order["filled_avg_price"]) == price


# ---- stop, stop_limit ------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_spike_within_one_step_triggers_a_stop(rig, side):
    t, stop = rig.find(_spike(side))
    rig.go(t)
    if side == "sell":
        rig.order(side="buy")  # something to sell
    o = rig.order(side=side, type="stop", stop_price=str(stop))
    assert o["status"] == "new"
    rig.step()
    s = _sign(side)
    assert s * (rig.last() - stop) < 0  # the last trade alone would not have triggered it
    got = rig.get(o)
    assert _filled_at_quote(got, side, rig.quote())  # at the quote of the tick, as before
    assert D(got["stop_price"]) == stop and got["type"] == "stop"
    assert [e["event"] for e in rig.events_of(o)] == ["pending_new", "new", "fill"]


def test_frequent_ticks_trigger_a_stop_at_the_first_tick_after_the_crossing_trade(rig):
    t, stop = rig.find(_spike("sell"))
    rig.go(t)
    rig.order(side="buy")
    o = rig.order(side="sell", type="stop", stop_price=str(stop))
    quiet = 0
    for _ in range(int(STEP / 0.25)):  # most ticks see no new trade: the symbol is skipped
        last = rig.market.trade("AAPL").t
        rig.step(0.25)
        quiet += rig.market.trade("AAPL").t == last
        crossed = min(rig.prices(t, rig.clock.now()), default=stop + 1) <= stop
        got = rig.get(o)
        assert (got["status"] == "filled") == crossed
        if crossed:
            assert _filled_at_quote(got, "sell", rig.quote())
            break
    assert crossed and quiet > 0


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_stop_no_trade_reaches_does_not_trigger(rig, side):
    t, peak = rig.find(_spike(side))
    rig.go(t)
    if side == "sell":
        rig.order(side="buy")
    stop = peak + _sign(side) * CENT  # a cent beyond the spike
    o = rig.order(side=side, type="stop", stop_price=str(stop))
    rig.step()
    got = rig.get(o)
    assert got["status"] == "new" and got["filled_qty"] == "0"
    record = rig.record(o)
    assert not record.triggered and record.stop_checked_ns == to_ns(rig.clock.now())


def test_a_triggered_stop_limit_fills_by_its_limit(rig):
    t, stop = rig.find(_spike("sell"))
    rig.go(t)
    rig.order(side="buy")
    o = rig.order(side="sell", type="stop_limit", stop_price=str(stop), limit_price=str(stop - 1))
    rig.step()
    assert rig.last() > stop
    q = rig.quote()
    assert q.bid >= stop - 1
    assert _filled_at_quote(rig.get(o), "sell", q)


def test_a_triggered_stop_limit_rests_as_a_limit(rig):
    t, stop = rig.find(_spike("sell"))
    end = t + timedelta(seconds=STEP)
    limit = rig.tape.quote("AAPL", end).bid + CENT  # just above the bid after the step
    rig.go(t)
    rig.order(side="buy")
    o = rig.order(side="sell", type="stop_limit", stop_price=str(stop), limit_price=str(limit))
    rig.step()
    assert rig.last() > stop and rig.quote().bid < limit
    got = rig.get(o)
    assert got["status"] == "new" and rig.record(o).triggered  # a limit order now
    for _ in range(2000):
        rig.step(5)
        q, got = rig.quote(), rig.get(o)
        if q.bid >= limit:  # the first quote at its limit: trade, whatever the last trades
            assert got["status"] == "filled" and D(got["filled_avg_price"]) == q.bid
            break
        assert got["status"] == "new"
    else:
        pytest.fail("the bid never came up to the limit")


# ---- trailing stops --------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["sell", "buy"])
def test_a_trailing_stop_marks_the_extreme_of_the_step(rig, side):
    s = -_sign(side)  # +1: a sell's mark is the high; -1: a buy's is the low

    def run_beyond_both_ends(p0, prices):
        if not prices:
            return None
        extreme = max(prices) if s > 0 else min(prices)
        if s * (extreme - p0) > 0 and s * (extreme - prices[-1]) > 0:
            return extreme, max(prices) - min(prices)
        return None

    t, (extreme, span) = rig.find(run_beyond_both_ends)
    trail = span + 1  # wider than the step's range: it cannot trigger
    rig.go(t)
    if side == "sell":
        rig.order(side="buy")
    o = rig.order(side=side, type="trailing_stop", trail_price=str(trail))
    assert D(o["hwm"]) == rig.last()
    rig.step()
    assert s * (extreme - rig.last()) > 0  # the last trade alone would give another mark
    got = rig.get(o)
    assert got["status"] == "new"
    assert D(got["hwm"]) == extreme and D(got["stop_price"]) == extreme - s * trail


def _trail_trigger(side: str):
    """Window finder for a trailing stop that triggers inside the step: the trail is the
    largest retreat from the running mark; the mark goes further after that trade (so the
    window's extreme is not the mark at the trigger), and the last trade alone would not
    trigger it. Gives (trail, mark at the trigger, trigger price)."""
    s = -_sign(side)

    def fits(p0, prices):
        if len(prices) < 3:
            return None
        x = [s * p for p in prices]
        marks, mark = [], s * p0
        for v in x:
            mark = max(mark, v)
            marks.append(mark)
        retreat = [m - v for m, v in zip(marks, x, strict=False)]
        trail = max(retreat)
        if trail <= 0:
            return None
        k = retreat.index(trail)
        if max(x[k + 1 :], default=marks[k]) <= marks[k]:
            return None
        if max(s * p0, x[-1]) - x[-1] >= trail:
            return None
        return trail, s * marks[k], prices[k]

    return fits


@pytest.mark.parametrize("side", ["sell", "buy"])
def test_a_trailing_stop_triggers_at_the_first_trade_crossing_the_trail(rig, side):
    t, (trail, mark, price) = rig.find(_trail_trigger(side))
    rig.go(t)
    if side == "sell":
        rig.order(side="buy")
    o = rig.order(side=side, type="trailing_stop", trail_price=str(trail))
    rig.step()
    got = rig.get(o)
    assert _filled_at_quote(got, side, rig.quote())
    # the mark and stop of the moment it triggered, not of the whole step
    assert D(got["hwm"]) == mark and D(got["stop_price"]) == price
    fill = rig.events_of(o)[-1]
    assert fill["event"] == "fill" and D(fill["order"]["hwm"]) == mark
    assert D(fill["order"]["stop_price"]) == price


def test_trailing_percent_stop_over_a_step(rig):
    t, (extreme, span) = rig.find(
        lambda p0, prices: (
            (max(prices), max(prices) - min(prices)) if prices and max(prices) > max(p0, prices[-1]) else None
        )
    )
    rig.go(t)
    rig.order(side="buy")
    percent = D("12.5")  # far wider than a minute's range
    o = rig.order(side="sell", type="trailing_stop", trail_percent=str(percent))
    rig.step()
    got = rig.get(o)
    assert got["status"] == "new" and D(got["hwm"]) == extreme
    want = (extreme * (1 - percent / 100)).quantize(CENT, rounding=ROUND_FLOOR)
    assert D(got["stop_price"]) == want


def test_stop_units_match_the_decimal_rule():
    rng = random.Random(5)
    for _ in range(3000):
        side = rng.choice(["buy", "sell"])
        marks = np.array(
            [rng.randint(1, 30_000), rng.randint(1, 10**7) // 100 * 100, rng.randint(9_000, 11_000)], dtype=np.int64
        )
        if rng.random() < 0.5:
            price, percent = D(rng.randint(1, 900)) / 100, None
        else:
            price, percent = None, D(rng.randint(1, 99_999_999)) / D(10 ** rng.randint(6, 16))
        got = matching.trailing_stop_units(side, marks, price, percent)
        want = [matching.trailing_stop_price(side, _dollars(m), price, percent) for m in marks]
        assert [_dollars(g) for g in got] == want, (side, marks, price, percent)


# ---- symbols, restarts, sessions -------------------------------------------------------------
def test_stops_of_other_symbols_see_their_own_tape(rig):
    t, stop = rig.find(_spike("sell"))
    end = t + timedelta(seconds=STEP)
    msft = rig.prices(t, end, "MSFT")
    low, high = min(msft), max(msft)
    assert rig.tape.trade("AAPL", end).price < low  # AAPL's trades would trigger MSFT's stop
    rig.go(t)
    rig.order(side="buy", qty=2)
    rig.order(side="buy", symbol="MSFT", qty=2)
    aapl = rig.order(side="sell", type="stop", stop_price=str(stop), qty=2)
    floor = min(low, rig.last("MSFT")) - CENT
    quiet = rig.order(side="sell", symbol="MSFT", type="stop", stop_price=str(floor))
    trail = rig.order(side="sell", symbol="MSFT", type="trailing_stop", trail_price="100")
    rig.step()
    assert rig.get(aapl)["status"] == "filled"
    assert rig.get(quiet)["status"] == "new"
    assert rig.record(quiet).stop_checked_ns == to_ns(rig.clock.now())
    assert D(rig.get(trail)["hwm"]) == max(high, D(trail["hwm"]))


def test_working_stops_survive_a_restart(rig):
    t, stop = rig.find(_spike("sell"))
    rig.go(t)
    rig.order(side="buy", qty=2)
    o = rig.order(side="sell", type="stop", stop_price=str(stop))
    trail = rig.order(side="sell", type="trailing_stop", trail_price="50")
    armed = rig.record(o).stop_checked_ns
    assert armed == to_ns(t)  # it looked when placed
    rig.restart()
    assert rig.get(o)["status"] == "new" and rig.record(o).stop_checked_ns == armed
    assert rig.get(trail)["hwm"] == trail["hwm"]
    rig.step()
    assert rig.last() > stop
    assert _filled_at_quote(rig.get(o), "sell", rig.quote())
    assert D(rig.get(trail)["hwm"]) == max([D(trail["hwm"]), *rig.prices(t, rig.clock.now())])


def test_state_saved_before_stop_windows_still_loads(rig):
    rig.order(side="buy")
    o = rig.order(side="sell", type="stop", stop_price=str(rig.last() - 50))
    rig.engine.close()
    db = sqlite3.connect(str(rig.path))
    for oid, body in db.execute("SELECT id, body FROM orders").fetchall():
        row = msgspec.json.decode(body)
        row.pop("stop_checked_ns")
        db.execute("UPDATE orders SET body = ? WHERE id = ?", (msgspec.json.encode(row), oid))
    db.commit()
    db.close()
    rig.engine = rig.open()
    assert rig.record(o).stop_checked_ns is None and rig.get(o)["status"] == "new"
    rig.step()  # evaluated from the restart on: the last trade, then every trade
    assert rig.record(o).stop_checked_ns == to_ns(rig.clock.now())
    assert rig.get(o)["status"] == "new"


def test_nyse_stop_sees_the_last_minutes_of_yesterday_at_the_open(tmp_path):
    # Wednesday 2026-11-25 before the close; Thursday is Thanksgiving, Friday opens at 09:30.
    r = Rig(tmp_path / "state.sqlite", "nyse", datetime(2026, 11, 25, 20, 30, tzinfo=UTC))
    try:
        close = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
        friday = datetime(2026, 11, 27, 14, 31, tzinfo=UTC)  # 09:31
        after = r.prices(close, friday)
        found = None
        for minutes in range(29, 0, -1):  # a level only Wednesday's last minutes reach
            t = close - timedelta(minutes=minutes)
            before, p0 = r.prices(t, close), r.tape.trade("AAPL", t).price
            if min(before) < min(p0, *after):
                found = t, "sell", min(before)
            elif max(before) > max(p0, *after):
                found = t, "buy", max(before)
        assert found is not None
        t, side, stop = found
        r.go(t)
        if side == "sell":
            r.order(side="buy")
        o = r.order(side=side, type="stop", stop_price=str(stop))
        assert o["status"] == "new"
        r.go(friday)  # one step over the close, the holiday and the open
        assert _sign(side) * (r.last() - stop) < 0
        got = r.get(o)
        assert _filled_at_quote(got, side, r.quote()) and got["filled_at"] > "2026-11-27"
    finally:
        r.engine.close()


def test_trades_between_slices_the_tape_and_caps_the_window(tmp_path):
    hours = MarketHours("nyse")
    market = Market(SEED, hours, SimClock(datetime(2026, 12, 1, tzinfo=UTC), manual=True))
    wed = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # 15:00 New York
    fri = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 10:00, after Thanksgiving
    t, prices = market.trades_between("AAPL", to_ns(wed), to_ns(fri))
    ticks, _ = market.ticks("AAPL", to_ns(wed) + 1, to_ns(fri) + 1, 1_000_000)
    assert len(t) > 100 and np.array_equal(t, ticks.t) and np.array_equal(prices, ticks.price)
    # Across two trading days: Wednesday's last hour, then Friday's first half hour.
    assert t[0] > to_ns(wed) and t[-1] <= to_ns(fri)
    # A window reaching back to Monday is cut to the two trading days before its end.
    mon = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    capped, _ = market.trades_between("AAPL", to_ns(mon), to_ns(fri))
    wed_open = to_ns(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert wed_open <= capped[0] < to_ns(wed) and capped[-1] == t[-1]
    assert len(market.trades_between("AAPL", to_ns(fri), to_ns(fri))[0]) == 0
    # Nothing after the market's now.
    later = Market(SEED, hours, SimClock(fri, manual=True))
    window = (to_ns(fri) - 60 * 10**9, to_ns(fri) + 600 * 10**9)
    cut, _ = later.trades_between("AAPL", *window)
    full, _ = market.trades_between("AAPL", *window)
    assert 0 < len(cut) < len(full) and cut[-1] <= to_ns(fri) < full[-1]
