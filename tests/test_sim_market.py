"""The synthetic market on its own: deterministic, self-consistent, calendar-aware, cut at now."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from alpaca_nb.sim.market.bars import TimeFrame, from_ns, parse_timeframe, to_ns
from alpaca_nb.sim.market.calendar import NY, MarketHours, ny_date, ny_midnight
from alpaca_nb.sim.market.clock import SimClock
from alpaca_nb.sim.market.market import Market, NoData
from alpaca_nb.sim.market.tape import MINUTE_NS

UTC = UTC
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 New York


def market(seed: int = 7, mode: str = "continuous", now: datetime = NOW) -> Market:
    return Market(seed, MarketHours(mode), SimClock(now, manual=True))


def ns(*args: int) -> int:
    return to_ns(datetime(*args, tzinfo=UTC))


def all_ticks(m: Market, symbol: str, lo: int, hi: int, **kw):
    ticks, more = m.ticks(symbol, lo, hi, 10_000_000, **kw)
    assert not more
    return ticks


def test_same_seed_same_data_in_any_order():
    a, b = market(), market()
    # b generates the later day first: each (symbol, day) has its own random stream
    later_b = all_ticks(b, "AAPL", ns(2026, 11, 3), ns(2026, 11, 4))
    early_a = all_ticks(a, "AAPL", ns(2026, 11, 2), ns(2026, 11, 3))
    early_b = all_ticks(b, "AAPL", ns(2026, 11, 2), ns(2026, 11, 3))
    later_a = all_ticks(a, "AAPL", ns(2026, 11, 3), ns(2026, 11, 4))
    for x, y in ((early_a, early_b), (later_a, later_b)):
        assert len(x) > 1000
        for field in ("t", "price", "size", "id", "qt", "bid", "ask", "venue"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), field
    bars_a, _ = a.bars("MSFT", parse_timeframe("5Min"), ns(2026, 11, 2), ns(2026, 11, 4), 10_000)
    bars_b, _ = b.bars("MSFT", parse_timeframe("5Min"), ns(2026, 11, 2), ns(2026, 11, 4), 10_000)
    assert np.array_equal(bars_a.c, bars_b.c) and np.array_equal(bars_a.v, bars_b.v)
    other = all_ticks(market(seed=8), "AAPL", ns(2026, 11, 2), ns(2026, 11, 3))
    assert not np.array_equal(other.price[:100], early_a.price[:100])


def test_quote_and_trade_for_the_engine():
    m = market()
    q, t = m.quote("AAPL"), m.trade("AAPL")
    assert isinstance(q.bid, Decimal) and isinstance(t.price, Decimal)
    assert q.t <= NOW and t.t <= NOW and NOW - t.t < timedelta(minutes=1)
    assert q.bid < q.ask and q.bid_size > 0 and q.ask_size > 0
    assert q.bid == q.bid.quantize(Decimal("0.01")) and t.price == t.price.quantize(Decimal("0.01"))
    earlier = m.trade("AAPL", NOW - timedelta(hours=2))
    assert earlier.t <= NOW - timedelta(hours=2) and earlier.id < t.id
    assert m.trade("AAPL", NOW + timedelta(days=3)) == t  # the future is cut at now
    with pytest.raises(NoData):
        m.quote("NOPE")


def test_standing_quote_brackets_every_trade():
    m = market()
    ticks = all_ticks(m, "SPY", ns(2026, 11, 27, 12), ns(2026, 11, 28))
    assert len(ticks) > 2000
    assert np.all(np.diff(ticks.t) > 0) and np.all(ticks.qt < ticks.t)
    assert np.all(ticks.qt[1:] > ticks.t[:-1])  # quote j is the latest one at trade j
    assert np.all((ticks.bid <= ticks.price) & (ticks.price <= ticks.ask) & (ticks.bid < ticks.ask))
    for j in (0, len(ticks) // 3, len(ticks) - 1):  # and through the engine's lookup
        at = from_ns(-(-int(ticks.t[j]) // 1000) * 1000)  # datetimes hold microseconds
        q, trade = m.quote("SPY", at), m.trade("SPY", at)
        assert trade.id == ticks.id[j] and q.bid <= trade.price <= q.ask
    assert np.all(ticks.price % 100 == 0)  # whole cents above $1


def test_sub_dollar_stock_trades_in_hundredths_of_a_cent():
    ticks = all_ticks(market(), "BBBY", ns(2026, 11, 27), ns(2026, 11, 28))
    assert ticks.price.max() < 10_000 and np.any(ticks.price % 100 != 0)


@pytest.mark.parametrize("timeframe", ["1Min", "5Min", "7Min", "1Hour", "4Hour", "1Day", "1Week"])
def test_bars_are_built_from_the_trades(timeframe):
    m = market()
    tf = parse_timeframe(timeframe)
    lo, hi = ns(2026, 11, 23, 5), ns(2026, 11, 30, 5)  # one New York week, Monday to Sunday
    bars, more = m.bars("AAPL", tf, lo, hi - 1, 20_000)
    assert len(bars) and not more
    # Recompute independently with pandas from every trade of the week (and after: a bar
    # holds its whole interval even past `end`).
    ticks = all_ticks(m, "AAPL", lo, int(bars.t[-1]) + 8 * 86_400 * 10**9)
    if tf.intraday:
        keys = tf.bucket(ticks.t)
    else:
        keys = np.array([tf.day_key(_ny_day(t)) for t in ticks.t.tolist()])
    frame = pd.DataFrame({"key": keys, "p": ticks.price, "s": ticks.size, "ps": ticks.price * ticks.size})
    want = (
        frame[frame.key.isin(bars.t)]
        .groupby("key")
        .agg(
            o=("p", "first"),
            h=("p", "max"),
            l=("p", "min"),
            c=("p", "last"),
            v=("s", "sum"),
            n=("p", "size"),
            ps=("ps", "sum"),
        )
    )
    assert list(want.index) == bars.t.tolist()
    for col in ("o", "h", "l", "c", "v", "n"):
        assert want[col].tolist() == getattr(bars, col).tolist(), col
    np.testing.assert_allclose(bars.pv / bars.v, want.ps / want.v, rtol=1e-12)


def _ny_day(t_ns: int) -> date:
    return ny_date(datetime.fromtimestamp(t_ns / 1e9, UTC))


def test_bar_alignment():
    m = market()
    week, _ = m.bars("SPY", parse_timeframe("1Week"), ns(2026, 9, 1), ns(2026, 11, 30), 100)
    quarter, _ = m.bars("SPY", parse_timeframe("3Month"), ns(2025, 12, 1), ns(2026, 11, 30), 100)
    five, _ = m.bars("SPY", parse_timeframe("5Min"), ns(2026, 11, 30, 13, 2), ns(2026, 11, 30, 14), 100)
    ny = [datetime.fromtimestamp(t / 1e9, UTC).astimezone(NY) for t in week.t.tolist()]
    assert all(d.weekday() == 0 and d.hour == 0 for d in ny)
    assert [datetime.fromtimestamp(t / 1e9, UTC).strftime("%m-%d %H") for t in quarter.t.tolist()] == [
        "01-01 05",
        "04-01 04",
        "07-01 04",
        "10-01 04",
    ]
    assert five.t[0] == ns(2026, 11, 30, 13, 5)  # the bar that began before start is out
    assert np.all(five.t % (5 * MINUTE_NS) == 0) and five.t[-1] == ns(2026, 11, 30, 14)


def test_every_minute_trades_in_continuous_mode_including_dst_days():
    m = market()
    assert len(m.day_minutes("MTUM", date(2026, 11, 27))) == 1440
    assert len(m.day_minutes("MTUM", date(2026, 3, 8))) == 23 * 60
    assert len(m.day_minutes("MTUM", date(2026, 11, 1))) == 25 * 60


def test_prices_continue_from_one_day_to_the_next():
    m = market()
    for symbol in ("AAPL", "TSLA", "BRK.A"):
        days, _ = m.bars(symbol, parse_timeframe("1Day"), ns(2026, 9, 1), ns(2026, 11, 29), 1000)
        gaps = np.abs(days.o[1:] / days.c[:-1] - 1)
        assert gaps.max() < 0.01, symbol  # next open within 1% of the close
        moves = np.abs(np.diff(np.log(days.c)))
        assert 0.002 < moves.mean() < 0.05, symbol  # it does move, like a stock


def test_nyse_mode_trades_only_in_sessions_and_honours_holidays():
    m = market(mode="nyse")
    hours = MarketHours("nyse")
    ticks = all_ticks(m, "AAPL", ns(2026, 11, 23), ns(2026, 11, 30))
    days = {}
    for t in ticks.t[::50].tolist() + [int(ticks.t[-1])]:
        at = datetime.fromtimestamp(t / 1e9, UTC)
        assert hours.is_open(at), at
        days.setdefault(_ny_day(t), []).append(at)
    assert sorted(days) == [date(2026, 11, d) for d in (23, 24, 25, 27)]  # no Thanksgiving
    friday = all_ticks(m, "AAPL", ns(2026, 11, 27), ns(2026, 11, 28))
    assert ns(2026, 11, 27, 14, 30) < int(friday.t[0]) and int(friday.t[-1]) < ns(2026, 11, 27, 18)
    assert len(m.day_minutes("AAPL", date(2026, 11, 27))) == 210  # 09:30-13:00
    assert m.day_tape("AAPL", date(2026, 11, 26)) is None
    # On the holiday the latest trade is Wednesday's last one.
    assert m.trade("AAPL", datetime(2026, 11, 26, 17, tzinfo=UTC)).t < datetime(2026, 11, 25, 21, tzinfo=UTC)
    daily, _ = m.bars("AAPL", parse_timeframe("1Day"), ns(2026, 11, 23), ns(2026, 11, 29), 100)
    assert [datetime.fromtimestamp(t / 1e9, UTC).day for t in daily.t.tolist()] == [23, 24, 25, 27]


def test_nothing_exists_after_now():
    m = market()
    now = to_ns(NOW)
    ticks, more = m.ticks("AAPL", now - 3600 * 10**9, now + 86_400 * 10**9, 100_000)
    assert not more and int(ticks.t[-1]) <= now
    bars, _ = m.bars("AAPL", parse_timeframe("1Min"), now - 3600 * 10**9, now + 86_400 * 10**9, 1000)
    assert int(bars.t[-1]) == now - MINUTE_NS or int(bars.t[-1]) == now
    today, previous = m.daily_bars("AAPL")
    minutes = m.day_minutes("AAPL", date(2026, 11, 30))
    assert today.v[0] == minutes.v.sum() and today.c[0] == minutes.c[-1]  # partial day so far
    assert previous.t[0] == to_ns(ny_midnight(date(2026, 11, 29)))
    later = market(now=NOW + timedelta(hours=1))  # same seed, later clock: same past
    ticks_later, _ = later.ticks("AAPL", now - 3600 * 10**9, now + 1, 100_000)
    assert np.array_equal(ticks_later.t, ticks.t)


def test_paging_and_desc_give_the_same_items():
    m = market()
    lo, hi = ns(2026, 11, 29, 12), ns(2026, 11, 29, 14)
    whole = all_ticks(m, "MSFT", lo, hi)
    pages, cursor = [], lo
    while True:
        page, more = m.ticks("MSFT", cursor, hi, 97)
        pages.append(page.t)
        if not more:
            break
        cursor = int(page.t[-1]) + 1
    assert np.array_equal(np.concatenate(pages), whole.t)
    backwards, more = m.ticks("MSFT", lo, hi, 50, desc=True)
    assert more and np.array_equal(backwards.t, whole.t[::-1][:50])
    quotes = all_ticks(m, "MSFT", lo, hi, by_quote=True)
    assert np.all((quotes.qt >= lo) & (quotes.qt < hi))
    tf = parse_timeframe("1Min")
    asc, _ = m.bars("MSFT", tf, lo, hi, 10_000)
    desc, more = m.bars("MSFT", tf, lo, hi, 30, desc=True)
    assert more and np.array_equal(desc.t, asc.t[::-1][:30])
    assert np.array_equal(desc.pv, asc.pv[::-1][:30])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1Min", TimeFrame(1, "Min")),
        ("15T", TimeFrame(15, "Min")),
        ("59Min", TimeFrame(59, "Min")),
        ("2H", TimeFrame(2, "Hour")),
        ("23Hour", TimeFrame(23, "Hour")),
        ("1D", TimeFrame(1, "Day")),
        ("1W", TimeFrame(1, "Week")),
        ("3M", TimeFrame(3, "Month")),
        ("12Month", TimeFrame(12, "Month")),
    ],
)
def test_timeframes_alpaca_accepts(text, expected):
    assert parse_timeframe(text) == expected


@pytest.mark.parametrize("text", ["60Min", "0Min", "24Hour", "2Day", "2Week", "5Month", "1Minute", "", "1Sec"])
def test_timeframes_alpaca_refuses(text):
    with pytest.raises(ValueError, match="invalid timeframe"):
        parse_timeframe(text)
