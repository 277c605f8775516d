"""The DataFrame contract (alpaca_nb.frames, alpaca_nb.marketdata) against a real local broker.

For every frame: its columns, their dtypes, UTC timestamps (and ``tz=`` conversion), an empty
result with the same columns and dtypes, and the ``symbol`` column or index level. The fast
historical path is checked against alpaca-py's ``.df`` for the same request on the same broker.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockQuotesRequest, StockTradesRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from brokers import MANUAL_START, service_for, wait_for

from alpaca_nb import AlpacaOrderRequest, frames, marketdata, params
from alpaca_nb.errors import InvalidArgumentError
from alpaca_nb.marketdata import BAR_FIELDS, QUOTE_FIELDS, TRADE_FIELDS

# alpaca-py's .df calls dropna(inplace=True), which pandas 3.1 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.dropna")

NY = "America/New_York"
SYMBOLS = ["MSFT", "AAPL", "SPY"]  # deliberately unsorted: frames come back sorted by symbol


def dtypes_of(columns: dict[str, str]) -> dict[str, str]:
    return {name: frames.DTYPES[kind] for name, kind in columns.items()}


def assert_contract(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """Exactly ``columns``, in order, in their contract dtypes."""
    assert list(frame.columns) == list(columns)
    assert {k: str(v) for k, v in frame.dtypes.items()} == dtypes_of(columns)


def assert_series_index(frame: pd.DataFrame, tz: str = "UTC") -> None:
    """The historical index: (symbol: string, timestamp: datetime64[ns, tz])."""
    assert list(frame.index.names) == ["symbol", "timestamp"]
    assert str(frame.index.levels[0].dtype) == "string"
    assert str(frame.index.levels[1].dtype) == f"datetime64[ns, {tz}]"


@pytest.fixture
def manual_svc(manual_broker):
    return service_for(manual_broker)


@pytest.fixture
def manual_data(manual_broker):
    return StockHistoricalDataClient(manual_broker.key, manual_broker.secret, url_override=manual_broker.url)


# -- historical: the fast path equals alpaca-py's .df --------------------------------------------


def test_bars_equal_alpaca_py_over_several_pages(manual_svc, manual_data, manual_broker):
    start, end = MANUAL_START - timedelta(days=3), MANUAL_START - timedelta(minutes=1)
    ours = manual_svc.bars(SYMBOLS, "1Min", start, end, feed="iex", progress=False)
    theirs = manual_data.get_stock_bars(
        StockBarsRequest(symbol_or_symbols=SYMBOLS, timeframe=TimeFrame.Minute, start=start, end=end, feed="iex")
    ).df
    # 3 symbols x 3 days of minutes: more than one 10,000-bar page, so next_page_token was followed.
    assert len(ours) == 3 * 3 * 24 * 60 > marketdata.PAGE_LIMIT
    assert manual_broker.requests[("GET", "/v2/stocks/bars")] >= 2 * 2
    assert_contract(ours, BAR_FIELDS)
    assert_series_index(ours)
    assert list(ours.index.levels[0]) == sorted(SYMBOLS)
    assert ours.index.get_level_values("symbol").is_monotonic_increasing
    # Same numbers, same timestamps: alpaca-py's counts are floats and its times microseconds.
    pd.testing.assert_frame_equal(ours[list(theirs.columns)], theirs, check_dtype=False, check_index_type=False)
    assert ours.loc["AAPL"].index.is_monotonic_increasing


def test_bars_follow_tokens_across_small_pages(manual_svc, manual_broker, monkeypatch):
    """A symbol split over pages, several symbols on one page: the frame is the same."""
    start, end = MANUAL_START - timedelta(hours=2), MANUAL_START - timedelta(minutes=1)
    whole = manual_svc.bars(SYMBOLS, "1Min", start, end, progress=False)
    monkeypatch.setattr(marketdata, "PAGE_LIMIT", 77)
    before = manual_broker.requests[("GET", "/v2/stocks/bars")]
    paged = manual_svc.bars(SYMBOLS, "1Min", start, end, progress=False)
    assert manual_broker.requests[("GET", "/v2/stocks/bars")] - before == -(-len(whole) // 77)
    pd.testing.assert_frame_equal(paged, whole)


@pytest.mark.parametrize(
    "fetch, request_type, method, fields",
    [
        ("historical_quotes", StockQuotesRequest, "get_stock_quotes", QUOTE_FIELDS),
        ("historical_trades", StockTradesRequest, "get_stock_trades", TRADE_FIELDS),
    ],
)
def test_quotes_and_trades_equal_alpaca_py(manual_svc, manual_data, fetch, request_type, method, fields):
    start, end = MANUAL_START - timedelta(minutes=45), MANUAL_START
    ours = getattr(manual_svc, fetch)(SYMBOLS, start, end, feed="iex", progress=False)
    theirs = getattr(manual_data, method)(request_type(symbol_or_symbols=SYMBOLS, start=start, end=end, feed="iex")).df
    assert len(ours) > 0
    assert_contract(ours, fields)
    assert_series_index(ours)
    # alpaca-py keeps conditions as lists and truncates the nanoseconds Alpaca sends.
    expected = theirs.assign(conditions=theirs["conditions"].map(",".join))
    got = ours[list(theirs.columns)]
    got.index = pd.MultiIndex.from_arrays([got.index.get_level_values(0), got.index.get_level_values(1).floor("us")])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False)
    # Nanoseconds survive here (alpaca-py drops them).
    assert (ours.index.levels[1].nanosecond != 0).any()


def test_historical_frames_convert_tz_sort_and_limit(manual_svc):
    start, end = MANUAL_START - timedelta(hours=3), MANUAL_START - timedelta(minutes=1)
    utc = manual_svc.bars("aapl", "5Min", start, end, progress=False)
    local = manual_svc.bars("AAPL", "5Min", start, end, tz=NY, progress=False)
    assert_series_index(local, tz=NY)
    assert (local.index.levels[1] == utc.index.levels[1]).all()  # the same instants, shown in NY
    assert utc.index.levels[1][0] == pd.Timestamp(start)
    newest_first = manual_svc.bars("AAPL", "5Min", start, end, sort="desc", progress=False)
    assert newest_first.index.get_level_values("timestamp").is_monotonic_decreasing
    pd.testing.assert_frame_equal(newest_first.iloc[::-1], utc)
    limited = manual_svc.bars(["AAPL", "MSFT"], "5Min", start, end, limit=50, progress=False)
    assert len(limited) == 50
    assert len(utc) == 36  # 3 hours of 5-minute bars, every minute trades in continuous mode


def test_timeframe_objects_and_strings_agree(manual_svc):
    start, end = MANUAL_START - timedelta(hours=2), MANUAL_START
    by_object = manual_svc.bars("SPY", TimeFrame(15, TimeFrameUnit.Minute), start, end, progress=False)
    by_text = manual_svc.bars("SPY", "15T", start, end, progress=False)
    pd.testing.assert_frame_equal(by_object, by_text)
    assert len(by_text) == 8
    daily = manual_svc.bars("SPY", TimeFrame.Day, MANUAL_START - timedelta(days=10), MANUAL_START, progress=False)
    assert len(daily) >= 9 and daily.index.levels[1].tz is not None


@pytest.mark.parametrize(
    "fetch, fields", [("bars", BAR_FIELDS), ("historical_quotes", QUOTE_FIELDS), ("historical_trades", TRADE_FIELDS)]
)
def test_empty_history_keeps_columns_and_dtypes(manual_svc, manual_broker, fetch, fields):
    # Data only exists up to the broker's clock: a window in its future is empty.
    start, end = MANUAL_START + timedelta(days=1), MANUAL_START + timedelta(days=2)
    args = ("1Min",) if fetch == "bars" else ()
    frame = getattr(manual_svc, fetch)(SYMBOLS, *args, start, end, progress=False)
    assert len(frame) == 0
    assert_contract(frame, fields)
    assert_series_index(frame)
    assert_series_index(getattr(manual_svc, fetch)("AAPL", *args, start, end, tz=NY, progress=False), tz=NY)


def test_progress_bar_shows_only_for_more_than_one_page(manual_svc, capsys, monkeypatch):
    start, end = MANUAL_START - timedelta(minutes=30), MANUAL_START - timedelta(minutes=1)
    manual_svc.bars("AAPL", "1Min", start, end)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(marketdata, "PAGE_LIMIT", 10)
    manual_svc.bars("AAPL", "1Min", start, end)
    assert "historical bars for AAPL" in capsys.readouterr().err
    manual_svc.bars("AAPL", "1Min", start, end, progress=False)
    assert capsys.readouterr().err == ""


def test_raw_json_builders_match_the_fetch(manual_svc, manual_broker):
    """bars_frame / quotes_frame / trades_frame take the raw JSON a user already holds."""
    start, end = MANUAL_START - timedelta(minutes=20), MANUAL_START - timedelta(minutes=1)
    broker = manual_svc.broker
    params = {
        "symbols": "AAPL,MSFT",
        "timeframe": "1Min",
        "start": marketdata.time_param(start, "start"),
        "end": marketdata.time_param(end, "end"),
        "feed": "iex",
        "limit": 10_000,
    }
    body = broker.get_bytes("data", "/stocks/bars", params)
    decoded = broker.get_json("data", "/stocks/bars", params)
    fetched = manual_svc.bars(["AAPL", "MSFT"], "1Min", start, end, feed="iex", progress=False)
    for raw in (body, decoded, decoded["bars"], [body]):
        pd.testing.assert_frame_equal(marketdata.bars_frame(raw), fetched)
    for kind, builder, fields in (
        ("quotes", marketdata.quotes_frame, QUOTE_FIELDS),
        ("trades", marketdata.trades_frame, TRADE_FIELDS),
    ):
        params = {"symbols": "AAPL", "start": params["start"], "end": params["end"], "feed": "iex"}
        frame = builder(broker.get_bytes("data", f"/stocks/{kind}", params), tz=NY)
        assert_contract(frame, fields)
        assert_series_index(frame, tz=NY)
        assert_contract(builder({kind: {}, "next_page_token": None}), fields)


# -- arguments are checked before any request ----------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1Min", "1Min"),
        ("5min", "5Min"),
        ("15T", "15Min"),
        ("1Hour", "1Hour"),
        ("4H", "4Hour"),
        ("1Day", "1Day"),
        ("D", "1Day"),
        ("day", "1Day"),
        ("1Week", "1Week"),
        ("1W", "1Week"),
        ("1Month", "1Month"),
        ("3M", "3Month"),
        ("12Month", "12Month"),
        (TimeFrame.Minute, "1Min"),
        (TimeFrame(5, TimeFrameUnit.Minute), "5Min"),
        (TimeFrame.Day, "1Day"),
        (TimeFrame(3, TimeFrameUnit.Month), "3Month"),
    ],
)
def test_parse_timeframe_accepts_alpaca_forms(value, expected):
    assert marketdata.parse_timeframe(value) == expected


@pytest.mark.parametrize("value", ["60Min", "0Min", "24Hour", "2Day", "5Month", "1m", "1Year", "", "fast", None, 5])
def test_parse_timeframe_refuses_with_the_valid_forms(value):
    with pytest.raises(ValueError, match=r"timeframe=.*'1Min'.*'1Day'.*TimeFrame"):
        marketdata.parse_timeframe(value)


def test_bad_arguments_fail_before_any_request(manual_svc, manual_broker):
    before = manual_broker.requests["total"]
    with pytest.raises(ValueError, match="timeframe='7Day'"):
        manual_svc.bars("AAPL", "7Day", "2026-11-01", "2026-11-02")
    with pytest.raises(ValueError, match="'m' is ambiguous"):
        manual_svc.bars("AAPL", "1m", "2026-11-01", "2026-11-02")
    with pytest.raises(ValueError, match="start='yesterday'"):
        manual_svc.historical_trades("AAPL", "yesterday")
    with pytest.raises(ValueError, match="symbols=.*at least one symbol"):
        manual_svc.historical_quotes([], "2026-11-01")
    with pytest.raises(ValueError, match="limit=0"):
        manual_svc.bars("AAPL", "1Day", limit=0)
    with pytest.raises(ValueError, match="sort='up'"):
        manual_svc.bars("AAPL", "1Day", sort="up")
    assert manual_broker.requests["total"] == before


def test_time_param_forms():
    assert marketdata.time_param("2024-01-02", "start") == "2024-01-02"
    assert marketdata.time_param(date(2024, 1, 2), "start") == "2024-01-02"
    assert marketdata.time_param(datetime(2024, 1, 2, 14, 30), "start") == "2024-01-02T14:30:00Z"
    assert (
        marketdata.time_param(pd.Timestamp("2024-01-02 09:30:00.000000001", tz=NY), "end")
        == "2024-01-02T14:30:00.000000001Z"
    )
    assert marketdata.time_param("2024-01-02T09:30:00-05:00", "end") == "2024-01-02T14:30:00Z"
    assert marketdata.time_param(None, "end") is None
    assert marketdata.time_param("now", "end").endswith("Z")
    assert len(marketdata.time_param("today", "start")) == 10


# -- latest data and snapshots -------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, columns",
    [
        ("quotes", frames.QUOTE_COLUMNS),
        ("trades", frames.TRADE_COLUMNS),
        ("latest_bars", frames.BAR_COLUMNS),
        ("snapshots", frames.SNAPSHOT_COLUMNS),
    ],
)
def test_latest_frames(svc, method, columns):
    frame = getattr(svc, method)(SYMBOLS)
    assert frame.index.name == "symbol" and str(frame.index.dtype) == "string"
    assert sorted(frame.index) == sorted(SYMBOLS)
    assert_contract(frame, columns)
    stamps = [c for c, kind in columns.items() if kind == "time"]
    assert frame[stamps].notna().all().all()  # every part of a snapshot is there
    assert all(str(frame[c].dt.tz) == "UTC" for c in stamps)
    assert all(str(getattr(svc, method)("AAPL", tz=NY)[c].dt.tz) == NY for c in stamps)
    unknown = getattr(svc, method)(["NOPE"])
    assert len(unknown) == 0
    assert_contract(unknown, columns)


def test_latest_values_match_alpaca_py(manual_svc, manual_broker):
    from alpaca.data.requests import StockLatestTradeRequest, StockSnapshotRequest

    client = StockHistoricalDataClient(manual_broker.key, manual_broker.secret, url_override=manual_broker.url)
    trades = manual_svc.trades(SYMBOLS)
    theirs = client.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols=SYMBOLS, feed="iex"))
    for symbol in SYMBOLS:
        assert trades.loc[symbol, "price"] == theirs[symbol].price
        assert trades.loc[symbol, "timestamp"].floor("us") == pd.Timestamp(theirs[symbol].timestamp)
    snaps = manual_svc.snapshots(SYMBOLS)
    theirs = client.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=SYMBOLS, feed="iex"))
    for symbol in SYMBOLS:
        assert snaps.loc[symbol, "latest_quote_ask_price"] == theirs[symbol].latest_quote.ask_price
        assert snaps.loc[symbol, "daily_bar_close"] == theirs[symbol].daily_bar.close
        assert snaps.loc[symbol, "prev_daily_bar_volume"] == theirs[symbol].previous_daily_bar.volume
        assert snaps.loc[symbol, "minute_bar_open"] == theirs[symbol].minute_bar.open


# -- trading frames ------------------------------------------------------------------------------


def test_account_positions_orders_and_fills(svc):
    account = svc.account()
    assert len(account) == 1
    assert_contract(account, frames.ACCOUNT_COLUMNS)
    assert account.loc[0, "cash"] > 0
    empty_positions = svc.positions()
    assert len(empty_positions) == 0
    assert_contract(empty_positions, frames.POSITION_COLUMNS)
    assert_contract(svc.orders(), frames.ORDER_COLUMNS)
    assert_contract(svc.activities(), frames.ACTIVITY_COLUMNS)

    svc.place_order_sync(
        user="frames", order_request=AlpacaOrderRequest(symbol="AAPL", qty=3, side="buy", type="market")
    )
    orders = svc.orders(tz=NY)
    assert list(orders["symbol"]) == ["AAPL"]
    assert str(orders["created_at"].dt.tz) == NY
    assert_contract(svc.orders(), frames.ORDER_COLUMNS)

    def filled():
        positions = svc.positions()
        return positions if len(positions) else None

    positions = wait_for(filled)
    assert_contract(positions, frames.POSITION_COLUMNS)
    assert positions.loc[0, "symbol"] == "AAPL" and positions.loc[0, "qty"] == 3.0

    fills = svc.activities(types="FILL")
    assert_contract(fills, frames.ACTIVITY_COLUMNS)
    assert set(fills["activity_type"]) == {"FILL"} and fills["qty"].sum() == 3.0
    assert fills["price"].gt(0).all() and str(fills["timestamp"].dt.tz) == "UTC"
    assert fills["date"].iloc[0] == fills["timestamp"].dt.tz_convert(NY).dt.normalize().dt.tz_localize(None).iloc[0]
    assert str(svc.activities(types=["FILL"], tz=NY)["timestamp"].dt.tz) == NY
    none = svc.activities(types="DIV")
    assert len(none) == 0
    assert_contract(none, frames.ACTIVITY_COLUMNS)
    later = svc.activities(after=datetime.now(UTC) + timedelta(hours=1))
    assert len(later) == 0


def test_portfolio_history(svc):
    history = svc.portfolio_history(period="1W", timeframe="1D")
    assert history.index.name == "timestamp" and str(history.index.dtype) == "datetime64[ns, UTC]"
    assert_contract(history, frames.PORTFOLIO_COLUMNS)
    assert len(history) >= 1 and history["equity"].iloc[-1] > 0
    assert str(svc.portfolio_history(tz=NY).index.dtype) == f"datetime64[ns, {NY}]"
    empty = frames.portfolio_history_frame(
        {"timestamp": [], "equity": [], "profit_loss": [], "profit_loss_pct": [], "base_value": 0, "timeframe": "1D"}
    )
    assert_contract(empty, frames.PORTFOLIO_COLUMNS)
    assert str(empty.index.dtype) == "datetime64[ns, UTC]"


# -- reference frames ----------------------------------------------------------------------------


def test_clock(manual_svc):
    clock = manual_svc.clock()
    assert len(clock) == 1
    assert_contract(clock, frames.CLOCK_COLUMNS)
    assert clock.loc[0, "timestamp"] == pd.Timestamp(MANUAL_START)
    assert str(manual_svc.clock(tz=NY)["next_close"].dt.tz) == NY


def test_calendar_sessions_are_utc_instants():
    # Independent of the broker's market-hours mode: Alpaca's JSON for a DST week and an early close.
    days = [
        {
            "date": "2024-03-08",
            "open": "09:30",
            "close": "16:00",
            "session_open": "0400",
            "session_close": "2000",
            "settlement_date": "2024-03-11",
        },
        {
            "date": "2024-03-11",
            "open": "09:30",
            "close": "16:00",
            "session_open": "0400",
            "session_close": "2000",
            "settlement_date": "2024-03-12",
        },
        {
            "date": "2024-11-29",
            "open": "09:30",
            "close": "13:00",
            "session_open": "0400",
            "session_close": "1700",
            "settlement_date": "2024-12-02",
        },
    ]
    calendar = frames.calendar_frame(days)
    assert_contract(calendar, frames.CALENDAR_COLUMNS)
    assert list(calendar["open"]) == [
        pd.Timestamp("2024-03-08 14:30", tz="UTC"),
        pd.Timestamp("2024-03-11 13:30", tz="UTC"),
        pd.Timestamp("2024-11-29 14:30", tz="UTC"),
    ]
    assert calendar.loc[2, "close"] == pd.Timestamp("2024-11-29 18:00", tz="UTC")
    assert calendar.loc[0, "date"] == pd.Timestamp("2024-03-08")
    assert_contract(frames.calendar_frame([]), frames.CALENDAR_COLUMNS)


def test_calendar_from_the_broker(svc):
    calendar = svc.calendar("2026-11-23", "2026-11-29")
    assert_contract(calendar, frames.CALENDAR_COLUMNS)
    assert len(calendar) >= 1
    assert calendar["date"].between(pd.Timestamp("2026-11-23"), pd.Timestamp("2026-11-29")).all()
    assert (calendar["close"] > calendar["open"]).all()
    local = svc.calendar(date(2026, 11, 23), date(2026, 11, 29), tz=NY)
    # The sessions' New York wall-clock times are whole minutes on their own day.
    assert (local["open"].dt.tz_localize(None).dt.normalize() == local["date"]).all()
    with pytest.raises(InvalidArgumentError, match="start='2026-11-29' is after end='2026-11-23'"):
        svc.calendar("2026-11-29", "2026-11-23")  # an inverted range is a mistake, not "no days"


def test_assets(svc):
    assets = svc.assets()
    assert_contract(assets, frames.ASSET_COLUMNS)
    assert {"AAPL", "SPY"} <= set(assets["symbol"])
    assert assets["symbol"].is_unique and assets["asset_class"].eq("us_equity").all()
    active = svc.assets(status="active")
    assert active["status"].eq("active").all() and len(active) < len(assets)
    nasdaq = svc.assets(exchange="NASDAQ")
    assert len(nasdaq) and nasdaq["exchange"].eq("NASDAQ").all()
    assert_contract(frames.assets_frame([]), frames.ASSET_COLUMNS)


# -- builders on Alpaca's documented JSON (fields the local broker does not send) -----------------


def test_activities_union_of_fills_and_cash():
    rows = [
        {
            "id": "20240103020000000::8e7f",
            "activity_type": "FILL",
            "transaction_time": "2024-01-03T02:00:00Z",
            "type": "partial_fill",
            "price": "10.5",
            "qty": "2",
            "side": "buy",
            "symbol": "AAPL",
            "leaves_qty": "1",
            "order_id": "904837e3-3b76-47ec-b432-046db621571b",
            "cum_qty": "2",
            "order_status": "partially_filled",
        },
        {
            "id": "20240102000000000::1",
            "activity_type": "DIV",
            "activity_sub_type": "CDIV",
            "date": "2024-01-02",
            "created_at": "2024-01-03T10:00:00.123Z",
            "net_amount": "1.23",
            "symbol": "AAPL",
            "qty": "2",
            "per_share_amount": "0.615",
            "status": "executed",
            "description": "Cash DIV @ 0.615",
        },
    ]
    frame = frames.activities_frame(rows, tz=NY)
    assert list(frame["activity_type"]) == ["FILL", "DIV"]
    assert frame.loc[0, "price"] == 10.5 and pd.isna(frame.loc[0, "net_amount"])
    assert frame.loc[1, "net_amount"] == 1.23 and pd.isna(frame.loc[1, "price"])
    # The fill at 02:00 UTC belongs to New York's January 2nd.
    assert list(frame["date"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-02")]
    assert str(frame["timestamp"].dt.tz) == NY
    assert frames.activities_frame([]).dtypes.equals(frames.activities_frame(rows).dtypes)


def test_snapshot_missing_parts_are_null():
    frame = frames.snapshots_frame(
        {
            "AAPL": {
                "latestTrade": {
                    "t": "2024-01-02T14:30:00Z",
                    "p": 190.5,
                    "s": 10,
                    "x": "V",
                    "i": 7,
                    "c": ["@"],
                    "z": "C",
                }
            },
            "MSFT": {},
        }
    )
    assert_contract(frame, frames.SNAPSHOT_COLUMNS)
    assert frame.loc["AAPL", "latest_trade_price"] == 190.5
    assert pd.isna(frame.loc["MSFT", "latest_trade_price"]) and pd.isna(frame.loc["AAPL", "daily_bar_close"])
    assert frame.loc["MSFT", "latest_trade_id"] == 0  # int64 columns carry 0 for missing


def test_to_tz_leaves_the_utc_frame_alone():
    frame = frames.latest_trades_frame(
        {"AAPL": {"t": "2024-01-02T14:30:00Z", "p": 1, "s": 1, "x": "V", "i": 1, "c": [], "z": "C"}}
    )
    shown = frames.to_tz(frame, NY)
    assert str(frame["timestamp"].dt.tz) == "UTC" and str(shown["timestamp"].dt.tz) == NY
    assert shown.loc["AAPL", "timestamp"] == frame.loc["AAPL", "timestamp"]


def test_activities_follow_pages(svc, trading, broker):
    """More than one page (100) of activities: every one arrives once, in order."""
    from alpaca.trading.requests import MarketOrderRequest

    for _ in range(105):
        trading.submit_order(MarketOrderRequest(symbol="SPY", qty=1, side="buy", time_in_force="day"))
    fills = wait_for(lambda: (lambda f: f if f["qty"].sum() == 105 else None)(svc.activities(types="FILL")), timeout=60)
    assert len(fills) >= 105 and fills["id"].is_unique
    assert fills["timestamp"].is_monotonic_decreasing
    before = broker.requests[("GET", "/v2/account/activities")]
    oldest_first = svc.activities(types="FILL", direction="asc")
    assert broker.requests[("GET", "/v2/account/activities")] - before == 2  # 100 + the rest
    assert list(oldest_first["id"]) == list(fills["id"])[::-1]


# -- input hygiene (issue 9: findings 8 and 12) ---------------------------------------------------
# Every argument of every frame helper is checked before anything is sent; a bad one raises
# InvalidArgumentError naming it. Large symbol lists go out in requests of legal size.

BAD_ARGUMENTS = [
    ("bars", ("AAPL", "1Day"), dict(start=12345), "start"),  # read as 1970 before
    ("bars", ("AAPL", "1Day"), dict(start=1.7e9), "start"),
    ("bars", ("AAPL", "1Day"), dict(end=True), "end"),
    ("bars", ("AAPL", "1Day"), dict(start="2024-13-45"), "start"),  # sent, refused by Alpaca
    ("bars", ("AAPL", "1Day"), dict(start="01/02/2024"), "start"),  # January or February?
    ("bars", ("AAPL", "1Day"), dict(start=date(1, 1, 1)), "start"),  # OutOfBoundsDatetime
    ("bars", ("AAPL", "1Day"), dict(end="9999-12-31T00:00:00Z"), "end"),
    ("bars", ("AAPL", "1Day"), dict(start="2026-11-20", end="2026-11-10"), "start"),
    ("bars", ("AAPL", "1Day"), dict(tz="Mars/Olympus"), "tz"),  # ZoneInfoNotFoundError after
    ("bars", ("AAPL", "1Day"), dict(tz=5), "tz"),
    ("bars", ("AAPL", "1Day"), dict(feed="iexx"), "feed"),
    ("bars", ("AAPL", "1Day"), dict(adjustment="splits"), "adjustment"),
    ("bars", ("AAPL", "1Day"), dict(limit=1.5), "limit"),
    ("bars", ("AAPL", "1Day"), dict(sort=None), "sort"),
    ("bars", ("AAPL", "1Day"), dict(progress="yes"), "progress"),
    ("bars", (["AAPL", 7], "1Day"), {}, "symbols"),
    ("bars", (None, "1Day"), {}, "symbols"),  # TypeError before
    ("bars", (["ıntc"], "1Day"), {}, "symbols"),  # sent as INTC before
    ("bars", (b"AAPL", "1Day"), {}, "symbols"),
    ("bars", ("AAPL", "1Fortnight"), {}, "timeframe"),
    ("historical_quotes", ("AAPL",), dict(start="yesterday"), "start"),
    ("historical_trades", ("AAPL",), dict(end=pd.NaT), "end"),
    ("quotes", (5,), {}, "symbols"),
    ("quotes", (["ſpy"],), {}, "symbols"),  # sent as SPY before
    ("quotes", ("AAPL",), dict(tz="nowhere"), "tz"),
    ("trades", ({"AAPL": 1},), {}, "symbols"),
    ("latest_bars", ("AA PL",), {}, "symbols"),
    ("snapshots", ([None],), {}, "symbols"),
    ("orders", (), dict(status=5), "status"),
    ("orders", (), dict(limit="x"), "limit"),
    ("orders", (), dict(limit=501), "limit"),
    ("orders", (), dict(after=12345), "after"),
    ("orders", (), dict(after="2026-11-20", until="2026-11-10"), "after"),
    ("orders", (), dict(symbols=5), "symbols"),
    ("orders", (), dict(tz="x"), "tz"),
    ("activities", (), dict(types=5), "types"),
    ("activities", (), dict(types="FILLS"), "types"),
    ("activities", (), dict(direction=None), "direction"),
    ("activities", (), dict(until="x"), "until"),
    ("calendar", (), dict(start=date(1, 1, 1)), "start"),
    ("calendar", (), dict(start=12345), "start"),
    ("portfolio_history", (), dict(period="forever"), "period"),
    ("portfolio_history", (), dict(timeframe="2Weeks"), "timeframe"),
    ("portfolio_history", (), dict(period="1M", start="2026-10-01", end="2026-11-01"), "period"),
    ("portfolio_history", (), dict(period="3M", timeframe="1Min"), "timeframe"),
    ("assets", (), dict(status="zombie"), "status"),
    ("assets", (), dict(attributes=5), "attributes"),
    ("assets", (), dict(asset_class="beans"), "asset_class"),
    ("assets", (), dict(exchange="NASDQ"), "exchange"),
    ("account", (), dict(tz="x"), "tz"),
    ("positions", (), dict(tz=[]), "tz"),
    ("clock", (), dict(tz=3), "tz"),
]


@pytest.mark.parametrize(
    "method, args, kwargs, argument",
    BAD_ARGUMENTS,
    ids=[f"{m}-{a}-{i}" for i, (m, _, _, a) in enumerate(BAD_ARGUMENTS)],
)
def test_every_bad_argument_is_refused_by_name_before_any_request(
    manual_svc, manual_broker, method, args, kwargs, argument
):
    before = dict(manual_broker.requests)
    with pytest.raises(InvalidArgumentError) as info:
        getattr(manual_svc, method)(*args, **kwargs)
    assert info.value.argument == argument, str(info.value)
    assert argument in str(info.value)
    assert dict(manual_broker.requests) == before, "a request was sent"


def test_timestamps_mean_what_they_say():
    with pytest.raises(InvalidArgumentError, match=r"a number is not a time.*unit='s'"):
        params.timestamp(12345, "start")
    assert params.timestamp(pd.Timestamp(12345, unit="s", tz="UTC"), "start") == "1970-01-01T03:25:45Z"
    assert params.timestamp(datetime(2024, 1, 2, 9, 30), "start") == "2024-01-02T09:30:00Z"  # naive: UTC
    assert params.timestamp(" 2024-01-02 ", "start") == "2024-01-02"
    assert params.timestamp("2024-01-02 09:30-05:00", "start") == "2024-01-02T14:30:00Z"
    assert params.timestamp(np.datetime64("2024-01-02T14:30"), "start") == "2024-01-02T14:30:00Z"
    assert params.time_range("2024-01-02", "2024-01-02") == ("2024-01-02", "2024-01-02")
    assert params.market_day(pd.Timestamp("2024-01-03T02:00Z"), "start") == "2024-01-02"  # New York's day
    assert params.market_day(datetime(2024, 1, 3, 2, 0), "start") == "2024-01-03"  # its own date


def test_near_misses_are_suggested(manual_svc):
    with pytest.raises(InvalidArgumentError, match=r"did you mean 'America/New_York'"):
        manual_svc.clock(tz="america/new_york")
    with pytest.raises(InvalidArgumentError, match=r"did you mean 'iex'"):
        manual_svc.bars("AAPL", "1Day", feed="iexx")
    with pytest.raises(InvalidArgumentError, match=r"did you mean 'FILL'"):
        manual_svc.activities(types="FILLS")
    assert manual_svc.activities(types="fill").empty  # any case is fine


def test_symbol_chunks_fit_one_request():
    names = [f"S{i}" for i in range(10_000)] + ["BTC/USD", "ABCDEFGHIJKLMNO"] * 200
    chunks = params.symbol_chunks(names)
    assert [s for chunk in chunks for s in chunk] == names
    from urllib.parse import urlencode

    for chunk in chunks:
        assert len(chunk) <= params.MAX_SYMBOLS_PER_REQUEST
        assert len(urlencode({"symbols": ",".join(chunk)})) <= params.MAX_SYMBOLS_QUERY_CHARS + len("symbols=")
    slashed = params.symbol_chunks(["A/B/C/D/E/F/G/H"] * 300)  # 29 characters each, encoded
    assert max(len(c) for c in slashed) < params.MAX_SYMBOLS_PER_REQUEST  # the characters bound first


def test_ten_thousand_symbols_go_out_in_requests_of_legal_size(manual_svc, manual_broker):
    fakes = [f"ZZ{i}" for i in range(10_000)]
    path = ("GET", "/v2/stocks/quotes/latest")
    before = manual_broker.requests[path]
    quotes = manual_svc.quotes(fakes + SYMBOLS)  # one 70 KB URL before: the broker refused it
    assert sorted(quotes.index) == sorted(SYMBOLS)
    assert manual_broker.requests[path] - before == len(params.symbol_chunks(fakes + SYMBOLS)) >= 100
    assert_contract(quotes, frames.QUOTE_COLUMNS)
    pd.testing.assert_frame_equal(quotes.sort_index(), manual_svc.quotes(SYMBOLS).sort_index())
    snaps = manual_svc.snapshots([*fakes[:150], "AAPL"])
    assert list(snaps.index) == ["AAPL"]


def test_chunked_history_is_the_frame_one_request_gives(manual_svc, manual_broker):
    # Fakes that sort between the real symbols: AAPL | B000..B149 | MSFT, SPY over two requests.
    fakes = [f"B{i:03d}" for i in range(150)]
    start, end = MANUAL_START - timedelta(hours=3), MANUAL_START - timedelta(minutes=1)
    for limit in (None, 50, 70):
        path = ("GET", "/v2/stocks/bars")
        before = manual_broker.requests[path]
        chunked = manual_svc.bars(SYMBOLS + fakes, "5Min", start, end, limit=limit, progress=False)
        assert manual_broker.requests[path] - before >= (2 if limit != 50 else 1)
        alone = manual_svc.bars(SYMBOLS, "5Min", start, end, limit=limit, progress=False)
        pd.testing.assert_frame_equal(chunked, alone)
        assert_series_index(chunked)
    trades = manual_svc.historical_trades(fakes + ["MSFT"], end - timedelta(minutes=5), end, progress=False)
    pd.testing.assert_frame_equal(
        trades, manual_svc.historical_trades("MSFT", end - timedelta(minutes=5), end, progress=False)
    )


def test_orders_for_many_symbols_are_merged_newest_first(svc, broker):
    for symbol in ("AAPL", "MSFT", "SPY", "AAPL"):
        svc.place_order_sync(
            user="frames",
            order_request=AlpacaOrderRequest(symbol=symbol, qty=1, side="buy", type="limit", limit_price=1),
        )
    fakes = [f"B{i:03d}" for i in range(250)]
    path = ("GET", "/v2/orders")
    before = broker.requests[path]
    merged = svc.orders(symbols=["AAPL", "MSFT", "SPY", *fakes])
    assert broker.requests[path] - before == 3
    pd.testing.assert_frame_equal(merged, svc.orders(symbols=["AAPL", "MSFT", "SPY"]))
    assert list(svc.orders(symbols=[*fakes, "SPY", "AAPL"], limit=2)["id"]) == list(svc.orders(limit=2)["id"])
