"""The local broker's Market Data API and reference routes, driven by the real alpaca-py clients
(and plain HTTP for what alpaca-py never calls). Every response is checked against Alpaca's
OpenAPI spec by the broker fixtures at teardown."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.data.enums import DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestBarRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetAssetsRequest, GetCalendarRequest
from brokers import MANUAL_START

from alpaca_nb.sim.market.assets import ASSETS
from alpaca_nb.sim.market.bars import parse_timeframe, to_ns
from alpaca_nb.sim.market.calendar import NY, ny_midnight

UTC = UTC
FOUR = ["AAPL", "MSFT", "SPY", "TSLA"]


@pytest.fixture
def mdata(manual_broker):
    """alpaca-py's data client on a broker frozen at MANUAL_START (Tue 2026-11-24 10:00 ET)."""
    return StockHistoricalDataClient(manual_broker.key, manual_broker.secret, url_override=manual_broker.url)


def get(broker, path: str, **params) -> requests.Response:
    return requests.get(
        broker.url + path,
        params=params,
        timeout=30,
        headers={"APCA-API-KEY-ID": broker.key, "APCA-API-SECRET-KEY": broker.secret},
    )


# --------------------------------------------------------------------------- historical


def test_alpaca_py_follows_pages_and_merges_per_symbol(manual_broker, mdata):
    start = MANUAL_START - timedelta(minutes=3000)
    bars = mdata.get_stock_bars(
        StockBarsRequest(symbol_or_symbols=FOUR, timeframe=TimeFrame.Minute, start=start, end=MANUAL_START)
    )
    assert manual_broker.requests[("GET", "/v2/stocks/bars")] == 2  # 12,000 bars, 10,000 a page
    assert {s: len(v) for s, v in bars.data.items()} == {s: 3000 for s in FOUR}
    for symbol in FOUR:
        stamps = [b.timestamp for b in bars.data[symbol]]
        assert stamps == sorted(stamps) and stamps[0] == start
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars.data[symbol])
    direct, _ = manual_broker.market.bars("SPY", parse_timeframe("1Min"), to_ns(start), to_ns(MANUAL_START), 10_000)
    assert [b.close for b in bars.data["SPY"]] == (direct.c / 10_000).tolist()
    assert [b.trade_count for b in bars.data["SPY"]] == direct.n.tolist()

    limited = mdata.get_stock_bars(
        StockBarsRequest(symbol_or_symbols=FOUR, timeframe=TimeFrame.Minute, start=start, end=MANUAL_START, limit=4500)
    )
    assert {s: len(v) for s, v in limited.data.items()} == {"AAPL": 3000, "MSFT": 1500}


def test_small_pages_span_symbols_and_resume_after_the_token(manual_broker):
    params = dict(
        symbols="MSFT,AAPL", timeframe="1Min", start="2026-11-24T10:00:00Z", end="2026-11-24T10:09:00Z", limit=7
    )
    pages, token = [], None
    while True:
        body = get(manual_broker, "/v2/stocks/bars", **params, **({"page_token": token} if token else {})).json()
        pages.append({s: [b["t"] for b in v] for s, v in body["bars"].items()})
        token = body["next_page_token"]
        if token is None:
            break
        symbol, kind, stamp = base64.b64decode(token).decode().split("|")
        assert (symbol, kind) in {("AAPL", "B"), ("MSFT", "B")} and stamp.endswith("Z")
    assert [{s: len(v) for s, v in p.items()} for p in pages] == [
        {"AAPL": 7},
        {"AAPL": 3, "MSFT": 4},
        {"MSFT": 6},
    ]  # sorted by symbol, then time
    whole = get(manual_broker, "/v2/stocks/bars", **{**params, "limit": 100}).json()
    assert whole["next_page_token"] is None
    assert [t for p in pages for t in p.get("AAPL", [])] == [b["t"] for b in whole["bars"]["AAPL"]]
    assert whole["bars"]["AAPL"][0]["t"] == "2026-11-24T10:00:00Z"
    assert set(whole["bars"]["AAPL"][0]) == {"t", "o", "h", "l", "c", "v", "n", "vw"}


ALL_TIMEFRAMES = [
    (TimeFrame.Minute, 1),
    (TimeFrame(5, TimeFrameUnit.Minute), 1),
    (TimeFrame(59, TimeFrameUnit.Minute), 1),
    (TimeFrame.Hour, 2),
    (TimeFrame(4, TimeFrameUnit.Hour), 3),
    (TimeFrame(23, TimeFrameUnit.Hour), 6),
    (TimeFrame.Day, 20),
    (TimeFrame.Week, 40),
    (TimeFrame.Month, 100),
    (TimeFrame(2, TimeFrameUnit.Month), 200),
    (TimeFrame(3, TimeFrameUnit.Month), 250),
    (TimeFrame(6, TimeFrameUnit.Month), 330),
    (TimeFrame(12, TimeFrameUnit.Month), 330),
]


@pytest.mark.parametrize("timeframe, days", ALL_TIMEFRAMES, ids=[tf.value for tf, _ in ALL_TIMEFRAMES])
def test_every_timeframe_alpaca_py_can_ask_for(mdata, timeframe, days):
    start = MANUAL_START - timedelta(days=days)
    barset = mdata.get_stock_bars(StockBarsRequest(symbol_or_symbols="SPY", timeframe=timeframe, start=start))
    bars = barset.data["SPY"]
    assert bars and all(start <= b.timestamp <= MANUAL_START for b in bars)
    assert all(b.low <= b.vwap <= b.high and b.trade_count >= 1 and b.volume > 0 for b in bars)
    amount, unit = timeframe.amount, timeframe.unit.value
    for b in bars:
        if unit in ("Min", "Hour"):
            minutes = b.timestamp.hour * 60 + b.timestamp.minute
            assert minutes % (amount * (60 if unit == "Hour" else 1)) == 0, b.timestamp
        else:
            local = b.timestamp.astimezone(NY)
            assert (local.hour, local.minute) == (0, 0), b.timestamp
            if unit == "Week":
                assert local.weekday() == 0
            if unit == "Month":
                assert local.day == 1 and (local.month - 1) % amount == 0
    frame = barset.df
    assert list(frame.index.names) == ["symbol", "timestamp"]
    assert str(frame.index.get_level_values("timestamp").tz) == "UTC"
    assert {"open", "high", "low", "close", "volume", "trade_count", "vwap"} <= set(frame.columns)


def test_day_bar_holds_the_days_minutes(mdata):
    day = mdata.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL", timeframe=TimeFrame.Day, start=datetime(2026, 11, 20), end=datetime(2026, 11, 21)
        )
    ).data["AAPL"]
    assert [b.timestamp for b in day] == [ny_midnight(date(2026, 11, 20))]
    minutes = mdata.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame.Minute,
            start=ny_midnight(date(2026, 11, 20)),
            end=ny_midnight(date(2026, 11, 21)) - timedelta(minutes=1),
        )
    ).df
    assert len(minutes) == 1440
    assert day[0].volume == minutes.volume.sum() and day[0].trade_count == minutes.trade_count.sum()
    assert day[0].open == minutes.open.iloc[0] and day[0].close == minutes.close.iloc[-1]
    assert day[0].high == minutes.high.max() and day[0].low == minutes.low.min()
    vwap = (minutes.vwap * minutes.volume).sum() / minutes.volume.sum()
    assert day[0].vwap == pytest.approx(vwap, abs=1e-5)


def test_alias_timeframes_as_other_clients_send_them(manual_broker):
    for alias, long in (("5T", "5Min"), ("2H", "2Hour"), ("1D", "1Day"), ("1W", "1Week"), ("3M", "3Month")):
        short = get(manual_broker, "/v2/stocks/bars", symbols="IWM", timeframe=alias, start="2026-06-01").json()
        full = get(manual_broker, "/v2/stocks/bars", symbols="IWM", timeframe=long, start="2026-06-01").json()
        assert short == full and short["bars"]["IWM"], alias


def test_sort_desc_returns_the_latest_first(mdata):
    start = MANUAL_START - timedelta(hours=5)
    asc = mdata.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="MSFT", timeframe=TimeFrame.Minute, start=start, end=MANUAL_START)
    ).data["MSFT"]
    desc = mdata.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="MSFT",
            timeframe=TimeFrame.Minute,
            start=start,
            end=MANUAL_START,
            sort=Sort.DESC,
            limit=50,
        )
    ).data["MSFT"]
    assert [b.timestamp for b in desc] == [b.timestamp for b in asc[::-1][:50]]
    trades = mdata.get_stock_trades(
        StockTradesRequest(symbol_or_symbols="MSFT", start=start, sort=Sort.DESC, limit=20)
    ).data["MSFT"]
    assert [t.timestamp for t in trades] == sorted((t.timestamp for t in trades), reverse=True)
    assert trades[0].timestamp <= MANUAL_START and MANUAL_START - trades[0].timestamp < timedelta(minutes=2)


def test_trades_and_quotes_agree_and_frame(mdata, manual_broker):
    start = MANUAL_START - timedelta(minutes=30)
    trades = mdata.get_stock_trades(StockTradesRequest(symbol_or_symbols=["AAPL", "GME"], start=start))
    quotes = mdata.get_stock_quotes(StockQuotesRequest(symbol_or_symbols=["AAPL"], start=start))
    aapl = trades.data["AAPL"]
    assert len(aapl) > 30 and trades.data["GME"]
    ticks, _ = manual_broker.market.ticks("AAPL", to_ns(start), to_ns(MANUAL_START) + 1, 100_000)
    assert [t.id for t in aapl] == ticks.id.tolist() and [t.price for t in aapl] == (ticks.price / 1e4).tolist()
    assert all(t.tape == "C" for t in aapl) and {tuple(t.conditions) for t in aapl} <= {("@",), ("@", "I")}
    q = quotes.df.loc["AAPL"]
    t = trades.df.loc["AAPL"]
    standing = q.reindex(t.index, method="ffill")  # the quote in force at each trade
    assert ((standing.bid_price <= t.price) & (t.price <= standing.ask_price)).all()
    assert str(t.index.tz) == "UTC" and t.index.is_monotonic_increasing


def test_latest_endpoints_and_snapshots(mdata, manual_broker):
    market = manual_broker.market
    trade = mdata.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["AAPL", "SPY", "NOPE"]))
    quote = mdata.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="AAPL"))["AAPL"]
    bar = mdata.get_stock_latest_bar(StockLatestBarRequest(symbol_or_symbols="AAPL"))["AAPL"]
    assert set(trade) == {"AAPL", "SPY"}
    expected = market.trade("AAPL")
    assert trade["AAPL"].id == expected.id and trade["AAPL"].price == float(expected.price)
    assert quote.bid_price == float(market.quote("AAPL").bid) and quote.ask_price == float(market.quote("AAPL").ask)
    assert bar.timestamp == trade["AAPL"].timestamp.replace(second=0, microsecond=0)
    assert bar.close == trade["AAPL"].price

    snaps = mdata.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["AAPL", "NOPE"]))
    assert set(snaps) == {"AAPL"}
    snap = snaps["AAPL"]
    assert snap.latest_trade.id == expected.id and snap.minute_bar.timestamp == bar.timestamp
    assert snap.daily_bar.timestamp == ny_midnight(date(2026, 11, 24))
    assert snap.previous_daily_bar.timestamp == ny_midnight(date(2026, 11, 23))
    today = mdata.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute, start=ny_midnight(date(2026, 11, 24)))
    ).df
    assert snap.daily_bar.volume == today.volume.sum() and snap.daily_bar.close == float(expected.price)


def test_single_symbol_paths_other_clients_use(manual_broker):
    multi = get(manual_broker, "/v2/stocks/bars", symbols="TSLA", timeframe="15Min", start="2026-11-23").json()
    single = get(manual_broker, "/v2/stocks/TSLA/bars", timeframe="15Min", start="2026-11-23").json()
    assert single == {"bars": multi["bars"]["TSLA"], "symbol": "TSLA", "next_page_token": None}
    walked, token = [], None
    while True:
        page = get(
            manual_broker,
            "/v2/stocks/TSLA/trades",
            start="2026-11-24T14:00:00Z",
            limit=100,
            **({"page_token": token} if token else {}),
        ).json()
        walked += page["trades"]
        token = page["next_page_token"]
        if not token:
            break
    assert len(walked) > 300 and len({t["i"] for t in walked}) == len(walked)
    assert walked[-1]["i"] == manual_broker.market.trade("TSLA").id
    quotes = get(manual_broker, "/v2/stocks/TSLA/quotes", limit=3, currency="USD").json()
    assert quotes["symbol"] == "TSLA" and len(quotes["quotes"]) == 3 and quotes["currency"] == "USD"
    assert set(quotes["quotes"][0]) == {"t", "bx", "bp", "bs", "ax", "ap", "as", "c", "z"}
    for kind, key in (("trades", "trade"), ("quotes", "quote"), ("bars", "bar")):
        latest = get(manual_broker, f"/v2/stocks/TSLA/{kind}/latest").json()
        assert latest["symbol"] == "TSLA" and latest[key]["t"].startswith("2026-11-24T14:59")
    snapshot = get(manual_broker, "/v2/stocks/TSLA/snapshot").json()
    assert snapshot["symbol"] == "TSLA" and {
        "latestTrade",
        "latestQuote",
        "minuteBar",
        "dailyBar",
        "prevDailyBar",
    } <= set(snapshot)
    assert get(manual_broker, "/v2/stocks/NOPE/bars", timeframe="1Min").json() == {
        "bars": [],
        "symbol": "NOPE",
        "next_page_token": None,
    }
    missing = get(manual_broker, "/v2/stocks/NOPE/trades/latest")
    assert missing.status_code == 404 and missing.json()["code"] == 40410000


def test_unknown_symbols_are_absent_not_null(broker, data):
    raw = get(broker, "/v2/stocks/bars", symbols="NOPE,ZZZZ", timeframe="1Min")
    assert raw.status_code == 200 and raw.json() == {"bars": {}, "next_page_token": None}
    empty = data.get_stock_bars(StockBarsRequest(symbol_or_symbols=["NOPE"], timeframe=TimeFrame.Minute))
    assert empty.data == {}
    latest = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=["AAPL", "NOPE"]))
    assert set(latest) == {"AAPL"}
    assert datetime.now(UTC) - latest["AAPL"].timestamp < timedelta(minutes=2)  # real-time broker


@pytest.mark.parametrize(
    "params, field",
    [
        ({"timeframe": "1Minute"}, "timeframe"),
        ({"timeframe": "60Min"}, "timeframe"),
        ({"timeframe": "1Min", "limit": "0"}, "limit"),
        ({"timeframe": "1Min", "limit": "10001"}, "limit"),
        ({"timeframe": "1Min", "limit": "many"}, "limit"),
        ({"timeframe": "1Min", "sort": "up"}, "sort"),
        ({"timeframe": "1Min", "start": "2026-11-24", "end": "2026-11-23"}, "start"),
        ({"timeframe": "1Min", "start": "yesterday"}, "start"),
        ({"timeframe": "1Min", "feed": "nasdaq"}, "feed"),
        ({"timeframe": "1Min", "page_token": "bm90IGEgdG9rZW4="}, "page_token"),
        ({"timeframe": "1Min", "adjustment": "splits"}, "adjustment"),
        ({"timeframe": "1Min", "currency": "EUR"}, "currency"),
        ({"timeframe": "1Min", "asof": "someday"}, "asof"),
        ({"timeframe": "1Min", "symbol": "AAPL"}, "symbol"),
    ],
)
def test_bad_parameters_get_400_naming_the_field(manual_broker, params, field):
    answer = get(manual_broker, "/v2/stocks/bars", symbols="AAPL", **params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 40010000 and field in body["message"]


def test_errors_reach_alpaca_py_as_api_errors(mdata, manual_broker):
    with pytest.raises(APIError) as caught:
        mdata.get_stock_bars(
            StockBarsRequest(
                symbol_or_symbols="AAPL",
                timeframe=TimeFrame.Minute,
                start=MANUAL_START,
                end=MANUAL_START - timedelta(days=1),
            )
        )
    assert caught.value.status_code == 400 and "start" in caught.value.message
    missing = get(manual_broker, "/v2/stocks/bars", timeframe="1Min")
    assert missing.status_code == 400 and "symbols" in missing.json()["message"]


def test_delayed_sip_ends_fifteen_minutes_ago_and_the_future_is_empty(mdata, manual_broker):
    delayed = mdata.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL", feed=DataFeed.DELAYED_SIP))
    live = mdata.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="AAPL", feed=DataFeed.SIP))
    assert delayed["AAPL"].timestamp < MANUAL_START - timedelta(minutes=15) < live["AAPL"].timestamp
    future = get(
        manual_broker, "/v2/stocks/bars", symbols="AAPL", timeframe="1Min", start="2026-12-01", end="2026-12-02"
    ).json()
    assert future == {"bars": {}, "next_page_token": None}
    clipped = mdata.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL",
            timeframe=TimeFrame.Minute,
            start=MANUAL_START - timedelta(minutes=5),
            end=MANUAL_START + timedelta(days=2),
        )
    ).data["AAPL"]
    assert clipped[-1].timestamp < MANUAL_START
    manual_broker.step(120)  # two minutes later, two more bars
    later = mdata.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="AAPL", timeframe=TimeFrame.Minute, start=MANUAL_START - timedelta(minutes=5)
        )
    ).data["AAPL"]
    assert [b.timestamp for b in later[: len(clipped)]] == [b.timestamp for b in clipped]
    assert len(later) == len(clipped) + 2


# --------------------------------------------------------------------------- reference routes


def test_clock_calendar_and_assets_in_nyse_mode(nyse_broker):
    trading = TradingClient(nyse_broker.key, nyse_broker.secret, url_override=nyse_broker.url)
    clock = trading.get_clock()  # Tuesday 2026-11-24 10:00 New York
    assert clock.is_open and clock.timestamp == MANUAL_START
    assert clock.next_close == datetime(2026, 11, 24, 21, tzinfo=UTC)
    assert clock.next_open == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    days = trading.get_calendar(GetCalendarRequest(start=date(2026, 11, 1), end=date(2026, 11, 30)))
    assert len(days) == 20 and date(2026, 11, 26) not in [d.date for d in days]
    friday = next(d for d in days if d.date == date(2026, 11, 27))
    assert (friday.open, friday.close) == (datetime(2026, 11, 27, 9, 30), datetime(2026, 11, 27, 13, 0))
    raw = get(nyse_broker, "/v2/calendar", start="2026-11-27", end="2026-11-30", date_type="SETTLEMENT").json()
    assert [(d["date"], d["settlement_date"]) for d in raw] == [
        ("2026-11-25", "2026-11-27"),
        ("2026-11-27", "2026-11-30"),
    ]
    assert get(nyse_broker, "/v2/calendar", start="someday").status_code == 400
    everything = get(nyse_broker, "/v2/calendar").json()
    assert everything[0]["date"] == "1970-01-02" and everything[-1]["date"] == "2029-12-31"

    assert len(trading.get_all_assets()) == len(ASSETS)
    active = trading.get_all_assets(GetAssetsRequest(status="active"))
    assert active and all(a.status == "active" and a.tradable for a in active)
    arca = trading.get_all_assets(GetAssetsRequest(exchange="ARCA"))
    assert {"SPY", "IWM"} <= {a.symbol for a in arca} and all(a.exchange == "ARCA" for a in arca)
    spy = trading.get_asset("SPY")
    assert trading.get_asset(spy.id).symbol == "SPY" and spy.fractionable and spy.shortable
    with pytest.raises(APIError) as caught:
        trading.get_asset("NOPE")
    assert caught.value.status_code == 404 and caught.value.code == 40410000


def test_nyse_data_skips_holidays_and_closes_early(nyse_broker):
    client = StockHistoricalDataClient(nyse_broker.key, nyse_broker.secret, url_override=nyse_broker.url)
    days = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="QQQ", timeframe=TimeFrame.Day, start=datetime(2025, 11, 24), end=datetime(2025, 11, 30)
        )
    ).data["QQQ"]
    assert [b.timestamp.astimezone(NY).day for b in days] == [24, 25, 26, 28]  # Thanksgiving 11-27
    minutes = client.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="QQQ",
            timeframe=TimeFrame.Minute,
            start=datetime(2025, 11, 28),
            end=datetime(2025, 11, 29),
        )
    ).df
    stamps = minutes.index.get_level_values("timestamp")
    assert len(minutes) == 210 and stamps[0] == pd.Timestamp("2025-11-28 14:30", tz="UTC")
    assert stamps[-1] == pd.Timestamp("2025-11-28 17:59", tz="UTC")  # 13:00 ET close
