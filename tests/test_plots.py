"""Charts of the package's own frames, drawn from real data of the local broker: candles against
the bars they show, fill markers against the ledger's fills and the FILL activities, P&L bars
against analytics' frames; empty frames, missing columns and ambiguous symbols."""

from __future__ import annotations

import time
from datetime import timedelta

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from brokers import MANUAL_START, service_for
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.markers import MarkerStyle

from alpaca_nb import AlpacaOrderRequest, analytics, plots

NY = "America/New_York"
MINUTE = 1 / 1440
GREEN, RED = to_rgba("tab:green"), to_rgba("tab:red")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def msvc(manual_broker):
    """A service on the manual-clock broker: the market stands still at MANUAL_START."""
    return service_for(manual_broker)


@pytest.fixture
def traded(manual_broker, msvc):
    """Three days of trading: each day ana buys 5 AAPL and sells 3, bob buys 2 MSFT; synced."""
    for _ in range(3):
        for user, symbol, side, qty in (
            ("ana", "AAPL", "buy", 5),
            ("ana", "AAPL", "sell", 3),
            ("bob", "MSFT", "buy", 2),
        ):
            msvc.place_order_sync(
                user=user, order_request=AlpacaOrderRequest(symbol=symbol, qty=qty, side=side, type="market")
            )
            manual_broker.step(30)
        manual_broker.step(86_400)
    msvc.sync()
    return msvc


def by_gid(ax: Axes, gid: str):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"{len(found)} artists with gid {gid!r}"
    return found[0]


def rects(collection) -> np.ndarray:
    """(left, right, bottom, top) of each rectangle of a PolyCollection."""
    corners = np.array([path.vertices[:4] for path in collection.get_paths()])
    return np.column_stack(
        [corners[:, :, 0].min(1), corners[:, :, 0].max(1), corners[:, :, 1].min(1), corners[:, :, 1].max(1)]
    )


def xnum(times) -> np.ndarray:
    """Where matplotlib places these instants (by UTC, whatever zone they are shown in)."""
    return mdates.date2num(pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]"))


def no_data(ax: Axes) -> bool:
    return any(t.get_text() == "no data" for t in ax.texts)


# -- candlestick ----------------------------------------------------------------------------------


def test_candles_show_every_minute_bar_with_its_volume_beneath(msvc):
    bars = msvc.bars("AAPL", "1Min", MANUAL_START - timedelta(hours=2), MANUAL_START, progress=False)
    price_ax, volume_ax = plots.candlestick(bars, tz=NY)
    o, h, lo, c, v = (bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    stamps = bars.index.get_level_values("timestamp")
    rising = c >= o
    assert rising.any() and (~rising).any()

    bodies = by_gid(price_ax, "candles")
    assert len(bodies.get_paths()) == len(bars) == 120
    box = rects(bodies)
    np.testing.assert_allclose((box[:, 0] + box[:, 1]) / 2, xnum(stamps))
    np.testing.assert_allclose(box[:, 1] - box[:, 0], 0.8 * MINUTE)  # candles follow the spacing
    np.testing.assert_allclose(box[:, 2], np.minimum(o, c))
    np.testing.assert_allclose(box[:, 3], np.maximum(o, c))
    np.testing.assert_allclose(bodies.get_facecolors(), [GREEN if r else RED for r in rising])

    wicks = np.array(by_gid(price_ax, "wicks").get_segments())
    np.testing.assert_allclose(wicks[:, :, 0], np.column_stack([xnum(stamps)] * 2))
    np.testing.assert_allclose(wicks[:, 0, 1], lo)
    np.testing.assert_allclose(wicks[:, 1, 1], h)

    volume = rects(by_gid(volume_ax, "volume"))
    assert len(volume) == len(bars)
    np.testing.assert_allclose(volume[:, 2], 0)
    np.testing.assert_allclose(volume[:, 3], v)
    assert price_ax.get_shared_x_axes().joined(price_ax, volume_ax)
    # Drawn as collections, never one patch per candle.
    assert not price_ax.patches and not volume_ax.patches

    assert price_ax.get_title() == "AAPL"
    assert volume_ax.get_xlabel() == f"time ({NY})"
    shown = volume_ax.xaxis.get_major_formatter().format_data_short(xnum(stamps)[0])
    assert shown.startswith(stamps[0].tz_convert(NY).strftime("%Y-%m-%d %H:%M"))  # 08:00, not 13:00
    assert price_ax.get_ylim()[0] <= lo.min() and price_ax.get_ylim()[1] >= h.max()


def test_daily_bars_of_several_symbols_need_a_symbol(msvc):
    bars = msvc.bars(["AAPL", "MSFT"], "1Day", MANUAL_START - timedelta(days=30), MANUAL_START, progress=False)
    with pytest.raises(ValueError, match=r"2 symbols \(AAPL, MSFT\).*symbol="):
        plots.candlestick(bars)
    with pytest.raises(ValueError, match="no rows for symbol 'TSLA'"):
        plots.candlestick(bars, "TSLA")

    ax = plots.candlestick(bars, "msft", volume=False)
    assert isinstance(ax, Axes) and ax.get_title() == "MSFT"
    msft = bars.loc["MSFT"]
    box = rects(by_gid(ax, "candles"))
    assert len(box) == len(msft) > 20
    np.testing.assert_allclose(box[:, 1] - box[:, 0], 0.8)  # 0.8 of a day
    np.testing.assert_allclose(np.array(by_gid(ax, "wicks").get_segments())[:, :, 1], msft[["low", "high"]].to_numpy())

    # On the caller's Axes, the volume panel is carved from its bottom and shares its x axis.
    fig, mine = plt.subplots()
    price_ax, volume_ax = plots.candlestick(bars, "AAPL", ax=mine)
    assert price_ax is mine and volume_ax.figure is fig
    assert mine.get_shared_x_axes().joined(mine, volume_ax)
    np.testing.assert_allclose(rects(by_gid(volume_ax, "volume"))[:, 3], bars.loc["AAPL", "volume"])


def test_ten_thousand_candles_draw_quickly(msvc):
    bars = msvc.bars("AAPL", "1Min", MANUAL_START - timedelta(days=7), MANUAL_START, progress=False)
    assert len(bars) >= 10_000
    started = time.perf_counter()
    price_ax, volume_ax = plots.candlestick(bars)
    price_ax.figure.canvas.draw()
    elapsed = time.perf_counter() - started
    assert len(by_gid(price_ax, "candles").get_paths()) == len(bars)
    assert len(price_ax.collections) == 2 and not price_ax.patches
    assert elapsed < 10, f"{elapsed:.1f} s to draw {len(bars)} candles"


# -- fills on price -------------------------------------------------------------------------------


def marker_path(marker: str) -> np.ndarray:
    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform()).vertices


def check_markers(ax: Axes, fills: pd.DataFrame, times: pd.Series) -> None:
    """Each fill is a marker at (its time, its price): buys green ^, sells red v, area by qty."""
    qty_max = fills["qty"].max()
    for gid, side, marker, color in (("buys", "buy", "^", GREEN), ("sells", "sell", "v", RED)):
        mine = (fills["side"] == side).to_numpy()
        markers = by_gid(ax, gid)
        assert len(markers.get_offsets()) == mine.sum() > 0
        np.testing.assert_allclose(markers.get_offsets()[:, 0], xnum(times[mine]))
        np.testing.assert_allclose(markers.get_offsets()[:, 1], fills["price"][mine])
        np.testing.assert_allclose(markers.get_sizes(), 20 + 180 * fills["qty"][mine] / qty_max)
        np.testing.assert_allclose(markers.get_paths()[0].vertices, marker_path(marker))
        np.testing.assert_allclose(markers.get_facecolors(), [color])  # one color for all


def test_fills_from_the_ledger_sit_on_the_close(traded):
    fills = traded.order_service.fills()
    assert set(fills["symbol"]) == {"AAPL", "MSFT"} and len(fills) == 9
    end = fills["filled_at"].max() + timedelta(minutes=5)
    bars = traded.bars(["AAPL", "MSFT"], "1Min", MANUAL_START - timedelta(minutes=10), end, progress=False)
    with pytest.raises(ValueError, match="symbol="):
        plots.fills_on_price(bars, fills)

    ax = plots.fills_on_price(bars, fills, "AAPL", tz=NY)
    aapl = fills[fills["symbol"] == "AAPL"].reset_index(drop=True)
    check_markers(ax, aapl, aapl["filled_at"])  # MSFT's fills left out
    assert len(by_gid(ax, "buys").get_offsets()) + len(by_gid(ax, "sells").get_offsets()) == len(aapl) == 6
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), bars.loc["AAPL", "close"])
    np.testing.assert_allclose(line.get_xdata(), xnum(bars.loc["AAPL"].index))
    assert "AAPL" in ax.get_title() and ax.get_xlabel() == f"time ({NY})"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"close", "buy (3)", "sell (3)"}


def test_fill_activities_on_quote_mids_and_trade_prices(traded):
    fills = traded.activities(types="FILL", direction="asc")
    aapl = fills[fills["symbol"] == "AAPL"].reset_index(drop=True)
    assert len(aapl) == 6
    window = (MANUAL_START - timedelta(minutes=1), MANUAL_START + timedelta(minutes=2))

    quotes = traded.historical_quotes("AAPL", *window, progress=False)
    ax = plots.fills_on_price(quotes, fills)  # one symbol in the quotes: it picks the fills'
    check_markers(ax, aapl, aapl["timestamp"])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), (quotes["bid_price"] + quotes["ask_price"]) / 2)

    trades = traded.historical_trades("AAPL", *window, progress=False)
    ax = plots.fills_on_price(trades, fills)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), trades["price"])
    # The same executions as the ledger's, at the same places.
    ledger = traded.order_service.fills(symbol="AAPL")
    np.testing.assert_allclose(
        np.sort(by_gid(ax, "buys").get_offsets()[:, 0]),
        np.sort(xnum(ledger.loc[ledger["side"] == "buy", "filled_at"])),
        atol=1e-9,
    )


# -- P&L, equity, daily P&L -------------------------------------------------------------------


def test_pnl_bars_equal_the_frame(traded):
    ledger = traded.order_service
    pnl = analytics.pnl(ledger, {"AAPL": 245.0, "MSFT": 420.0}, by="user")
    ax = plots.pnl_bars(pnl)
    heights = {c.get_label(): [p.get_height() for p in c] for c in ax.containers}
    np.testing.assert_allclose(heights["realized"], pnl["realized_pnl"])
    np.testing.assert_allclose(heights["unrealized"], pnl["unrealized_pnl"])
    np.testing.assert_allclose(by_gid(ax, "total").get_offsets()[:, 1], pnl["total_pnl"])
    assert (pnl["realized_pnl"] != 0).any() and (pnl["unrealized_pnl"] != 0).all()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ana", "bob"]
    assert ax.get_title() == "P&L by user"

    both = analytics.pnl(ledger, {"AAPL": 245.0, "MSFT": 420.0}, by=["user", "symbol"])
    ax = plots.pnl_bars(both)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ana / AAPL", "bob / MSFT"]
    np.testing.assert_allclose([p.get_height() for p in ax.containers[1]], both["unrealized_pnl"])


def test_equity_curve_and_daily_pnl(traded):
    ledger = traded.order_service
    curve = analytics.equity_curve(ledger, starting_cash=100_000)
    ax = plots.equity(curve)
    line = by_gid(ax, "equity")
    np.testing.assert_allclose(line.get_ydata(), curve["equity"])
    np.testing.assert_allclose(line.get_xdata(), mdates.date2num(curve["date"].to_numpy("datetime64[ns]")))
    assert by_gid(ax, "drawdown") is not None and ax.get_xlabel() == "date"

    daily = analytics.daily_pnl(ledger)
    ax = plots.daily_pnl(daily)
    bars = [p for p in ax.patches if p.get_gid() == "daily_pnl"]
    assert len(bars) == len(daily) == 3
    np.testing.assert_allclose([p.get_height() for p in bars], daily["pnl"])
    gains = (daily["pnl"] >= 0).to_numpy()
    assert gains.any() and (~gains).any()
    np.testing.assert_allclose([p.get_facecolor() for p in bars], [GREEN if g else RED for g in gains])
    np.testing.assert_allclose([p.get_width() for p in bars], 0.8)

    # The broker's own equity history, timestamps shown in New York.
    history = traded.portfolio_history(period="1W", timeframe="1H")
    ax = plots.equity(history, tz=NY)
    np.testing.assert_allclose(by_gid(ax, "equity").get_ydata(), history["equity"])
    assert ax.get_xlabel() == f"time ({NY})"


# -- empty frames, missing columns --------------------------------------------------------------


def test_empty_frames_draw_no_data(msvc):
    later = MANUAL_START + timedelta(days=3)
    bars = msvc.bars("AAPL", "1Min", later, later + timedelta(minutes=5), progress=False)
    assert bars.empty
    price_ax, volume_ax = plots.candlestick(bars, "AAPL")
    assert no_data(price_ax) and price_ax.get_title() == "AAPL" and not price_ax.collections
    ledger = msvc.order_service
    assert no_data(plots.fills_on_price(bars, ledger.fills(), "AAPL"))
    assert no_data(plots.fills_on_price(bars, msvc.activities(types="FILL"), "AAPL"))
    assert no_data(plots.pnl_bars(analytics.pnl(ledger, by="user")))
    assert no_data(plots.equity(analytics.equity_curve(ledger)))
    assert no_data(plots.daily_pnl(analytics.daily_pnl(ledger)))


def test_missing_columns_name_themselves_and_the_frame_to_use(traded):
    bars = traded.bars("AAPL", "1Min", MANUAL_START - timedelta(minutes=30), MANUAL_START, progress=False)
    fills = traded.order_service.fills()
    with pytest.raises(ValueError, match=r"candlestick\(\) needs the column\(s\) volume.*svc\.bars"):
        plots.candlestick(bars.drop(columns="volume"))
    assert isinstance(plots.candlestick(bars.drop(columns="volume"), volume=False), Axes)
    with pytest.raises(ValueError, match=r"column\(s\) high, low"):
        plots.candlestick(bars.drop(columns=["high", "low"]))
    with pytest.raises(ValueError, match=r"timestamp.*svc\.bars"):
        plots.candlestick(bars.reset_index(drop=True))
    with pytest.raises(ValueError, match=r"column\(s\) side.*Ledger\.fills\(\)"):
        plots.fills_on_price(bars, fills.drop(columns="side"))
    with pytest.raises(ValueError, match=r"filled_at / transaction_time / timestamp.*Ledger\.fills\(\)"):
        plots.fills_on_price(bars, fills.drop(columns="filled_at"))
    with pytest.raises(ValueError, match="close, price or bid_price and ask_price"):
        plots.fills_on_price(bars[["volume"]], fills)
    pnl = analytics.pnl(traded.order_service)
    with pytest.raises(ValueError, match=r"unrealized_pnl.*analytics\.pnl\(ledger, marks, by=\.\.\.\)"):
        plots.pnl_bars(pnl.drop(columns="unrealized_pnl"))
    with pytest.raises(ValueError, match=r"equity.*equity_curve"):
        plots.equity(analytics.equity_curve(traded.order_service).drop(columns="equity"))
    with pytest.raises(ValueError, match=r"pnl.*analytics\.daily_pnl"):
        plots.daily_pnl(analytics.daily_pnl(traded.order_service).drop(columns="pnl"))
