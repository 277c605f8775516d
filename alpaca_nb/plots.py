"""Matplotlib charts of alpaca_nb's own DataFrames: candles, fills on price, P&L and equity.

Every function takes the frame a helper returns, draws on ``ax`` (a new figure when None, so
it shows inline in Jupyter), never calls ``plt.show()`` and returns the Axes it drew on.
Timestamps are shown in ``tz=`` (default: the frame's own zone, UTC unless it was fetched with
``tz=``). An empty frame draws "no data"; a frame without the needed columns raises
``ValueError`` naming them and where such a frame comes from::

    import alpaca_nb as nb
    from alpaca_nb import analytics, plots

    svc = nb.connect()
    bars = svc.bars("AAPL", "5Min", "2026-11-02", "2026-11-03")
    price_ax, volume_ax = plots.candlestick(bars, tz="America/New_York")
    plots.fills_on_price(bars, svc.order_service.fills(), "AAPL")
    plots.pnl_bars(analytics.pnl(svc.order_service, {"AAPL": 191.2}, by="user"))
    plots.equity(analytics.equity_curve(svc.order_service, starting_cash=100_000))
    plots.daily_pnl(analytics.daily_pnl(svc.order_service))

Candles, wicks and volume are drawn as one collection each, so 10,000 bars take a fraction of a
second. The artists carry a ``gid`` to find them again: ``"candles"``, ``"wicks"``,
``"volume"``, ``"buys"``, ``"sells"``, ``"realized"``, ``"unrealized"``, ``"total"``,
``"equity"``, ``"drawdown"``, ``"daily_pnl"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.ticker import ScalarFormatter

__all__ = ["candlestick", "fills_on_price", "pnl_bars", "equity", "daily_pnl"]

# Where each kind of frame comes from, for the error messages.
BARS_SOURCE = "svc.bars(...) / alpaca_nb.bars(...)"
PRICES_SOURCE = (
    "svc.bars(...) (close), svc.historical_trades(...) (price) or svc.historical_quotes(...) (bid_price/ask_price mid)"
)
FILLS_SOURCE = 'Ledger.fills() (svc.order_service.fills()) or svc.activities(types="FILL")'
PNL_SOURCE = "alpaca_nb.analytics.pnl(ledger, marks, by=...)"
EQUITY_SOURCE = "alpaca_nb.analytics.equity_curve(...) or svc.portfolio_history(...)"
DAILY_SOURCE = "alpaca_nb.analytics.daily_pnl(...)"

MINUTE = 1 / 1440  # matplotlib dates count days
BUY_COLOR, SELL_COLOR = "tab:green", "tab:red"
PNL_VALUES = ("realized_pnl", "unrealized_pnl", "total_pnl")


# -- frames -> arrays -----------------------------------------------------------------------------


def _require(frame: pd.DataFrame, columns: Iterable[str], func: str, source: str) -> None:
    """``ValueError`` naming the missing columns and the helper whose frame has them."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{func}() takes a DataFrame from {source}, not {type(frame).__name__}")
    have = set(frame.columns) | {n for n in frame.index.names if n is not None}
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(
            f"{func}() needs the column(s) {', '.join(missing)}, which the frame lacks "
            f"(it has {', '.join(map(str, frame.columns)) or 'none'}): pass the frame from {source}"
        )


def _one_symbol(
    frame: pd.DataFrame, symbol: str | None, func: str, *, strict: bool = True
) -> tuple[pd.DataFrame, str | None]:
    """The rows of one symbol (from a ``symbol`` index level or column) and its name.

    Without ``symbol`` the frame must hold one symbol at most. ``strict``: a non-empty frame
    without rows for ``symbol`` is an error (for prices; a symbol with no fills is not).
    """
    if "symbol" in frame.index.names:
        values = pd.Series(frame.index.get_level_values("symbol"), index=None)
    elif "symbol" in frame.columns:
        values = frame["symbol"].reset_index(drop=True)
    else:
        return frame, None if symbol is None else str(symbol).upper()
    names = sorted(str(s) for s in values.dropna().unique())
    if symbol is None:
        if len(names) > 1:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ValueError(
                f"{func}() got a frame with {len(names)} symbols ({shown}): pass symbol=, e.g. symbol={names[0]!r}"
            )
        return frame, names[0] if names else None
    symbol = str(symbol).upper()
    mask = values.astype("string").str.upper().eq(symbol).fillna(False).to_numpy(dtype=bool)
    if strict and len(frame) and not mask.any():
        raise ValueError(f"{func}(): the frame has no rows for symbol {symbol!r}; it has {', '.join(names)}")
    return frame[mask], symbol


def _times(frame: pd.DataFrame, names: Sequence[str], func: str, source: str) -> pd.DatetimeIndex:
    """The frame's timestamps: the first of ``names`` found as an index level or column, else a
    DatetimeIndex."""
    for name in names:
        if name in frame.index.names:
            return pd.DatetimeIndex(frame.index.get_level_values(name))
        if name in frame.columns:
            return pd.DatetimeIndex(frame[name])
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index
    raise ValueError(
        f"{func}() needs timestamps, a {' / '.join(names)} column or index, which the frame "
        f"lacks: pass the frame from {source}"
    )


def _dates(times: pd.DatetimeIndex, tz: Any) -> tuple[np.ndarray, Any]:
    """Matplotlib date numbers for ``times`` and the zone to show them in.

    Tz-aware times are placed by their instant (UTC) and shown in ``tz`` (default: their own
    zone); naive ones (calendar days such as the analytics' ``date``) are drawn as they are.
    """
    if times.tz is None:
        return mdates.date2num(times.to_numpy("datetime64[ns]")), None
    zone = tz or times.tz
    return mdates.date2num(times.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")), zone


def _spacing(x: np.ndarray, default: float) -> float:
    """The usual distance between consecutive times (median; gaps such as nights do not count)."""
    steps = np.diff(np.unique(x))
    return float(np.median(steps)) if steps.size else default


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# -- axes -----------------------------------------------------------------------------------------


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _date_axis(ax: Axes, x: np.ndarray, zone: Any) -> None:
    """Concise date ticks in ``zone`` (UTC when None) and an x label saying which zone.

    Calendar days (naive midnights) get ticks on days only, never on hours.
    """
    days = zone is None and bool(np.all(x == np.floor(x)))
    locator = mdates.AutoDateLocator(tz=zone, minticks=2 if days else 5)
    if days:
        locator.intervald[mdates.HOURLY] = [24]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.set_xlabel("date" if days else f"time ({zone or 'UTC'})")


def _plain_y(ax: Axes) -> None:
    """Prices, volumes and money as written: no "+1e5" offset, no scientific notation."""
    if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):  # not a caller's own formatter
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")


def _rects(left: np.ndarray, right: np.ndarray, bottom: Any, top: Any) -> np.ndarray:
    """Rectangles as an (n, 4, 2) vertex array, the fast path of PolyCollection."""
    bottom, top = np.broadcast_to(bottom, left.shape), np.broadcast_to(top, left.shape)
    return np.stack(
        [np.column_stack(corner) for corner in ((left, bottom), (left, top), (right, top), (right, bottom))], axis=1
    )


def _candle_axes(ax: Any, volume: bool) -> tuple[Axes, Axes | None]:
    """The price axes and, with ``volume``, a panel beneath sharing its x axis."""
    if ax is None:
        if not volume:
            return plt.subplots(figsize=(12, 5))[1], None
        _, (price_ax, volume_ax) = plt.subplots(
            2, 1, sharex=True, figsize=(12, 6), gridspec_kw={"height_ratios": [3, 1]}
        )
        return price_ax, volume_ax
    if isinstance(ax, (tuple, list, np.ndarray)):
        axes = list(np.ravel(ax))
        if len(axes) != 2:
            raise ValueError(f"candlestick(ax=...) takes one Axes or a pair (price, volume), not {len(axes)}")
        return axes[0], axes[1] if volume else None
    if not volume:
        return ax, None
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    volume_ax = make_axes_locatable(ax).append_axes("bottom", size="30%", pad=0.1, sharex=ax)
    ax.tick_params(labelbottom=False)
    return ax, volume_ax


# -- the charts -----------------------------------------------------------------------------------


def candlestick(
    bars: pd.DataFrame,
    symbol: str | None = None,
    *,
    ax: Any = None,
    volume: bool = True,
    tz: Any = None,
    up: Any = "tab:green",
    down: Any = "tab:red",
) -> Axes | tuple[Axes, Axes]:
    """OHLC candles of ``bars`` (from ``svc.bars(...)``), with a volume panel beneath.

    Bodies span open to close, wicks low to high, colored ``up`` when close >= open else
    ``down``; a candle is 80% of the usual bar spacing wide (minute, hour or daily bars alike).
    A multi-symbol frame needs ``symbol=``. ``ax``: an Axes (with ``volume`` the volume panel is
    carved from its bottom) or a pair (price, volume). Returns ``(price_ax, volume_ax)`` when
    ``volume`` (they share the x axis), else the price Axes.
    """
    _require(bars, ["open", "high", "low", "close", *(["volume"] if volume else [])], "candlestick", BARS_SOURCE)
    frame, symbol = _one_symbol(bars, symbol, "candlestick")
    times = _times(frame, ("timestamp",), "candlestick", BARS_SOURCE)
    price_ax, volume_ax = _candle_axes(ax, volume)
    price_ax.set_title(symbol or "bars")
    price_ax.set_ylabel("price")
    result = (price_ax, volume_ax) if volume_ax is not None else price_ax
    if volume_ax is not None:
        volume_ax.set_ylabel("volume")
    keep = times.notna()
    if not keep.any():
        _no_data(price_ax)
        return result
    frame, times = frame[keep], times[keep]
    x, zone = _dates(times, tz)
    o, h, low, c = (_floats(frame, name) for name in ("open", "high", "low", "close"))
    half = 0.4 * _spacing(x, MINUTE)
    colors = np.where((c >= o)[:, None], to_rgba(up), to_rgba(down))
    wicks = LineCollection(
        # matplotlib's stubs ask for a sequence of segments; an (n, 2, 2) array is one
        np.stack([np.column_stack((x, low)), np.column_stack((x, h))], axis=1),  # type: ignore[arg-type]
        colors=colors,
        linewidths=0.8,
        zorder=2,
        gid="wicks",
    )
    # Edges in the body's color keep a doji (open == close) visible as a line.
    bodies = PolyCollection(
        _rects(x - half, x + half, o, c),  # type: ignore[arg-type]  # an (n, 4, 2) array: n polygons
        facecolors=colors,
        edgecolors=colors,
        linewidths=0.5,
        zorder=3,
        gid="candles",
    )
    price_ax.add_collection(wicks)
    price_ax.add_collection(bodies)
    price_ax.autoscale_view()
    _plain_y(price_ax)
    bottom_ax = price_ax
    if volume_ax is not None:
        shade = colors.copy()
        shade[:, 3] = 0.6
        volume_ax.add_collection(
            PolyCollection(
                _rects(x - half, x + half, 0.0, _floats(frame, "volume")),  # type: ignore[arg-type]  # n polygons
                facecolors=shade,
                linewidths=0,
                gid="volume",
            )
        )
        volume_ax.autoscale_view()
        _plain_y(volume_ax)
        bottom_ax = volume_ax
    _date_axis(bottom_ax, x, zone)
    return result


def _price_line(frame: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Close of bars, price of trades or mid of quotes, with its legend label."""
    if "close" in frame.columns:
        return _floats(frame, "close"), "close"
    if "price" in frame.columns:
        return _floats(frame, "price"), "trade price"
    if {"bid_price", "ask_price"} <= set(frame.columns):
        bid, ask = _floats(frame, "bid_price"), _floats(frame, "ask_price")
        # A one-sided quote (a price of 0) has no mid.
        return np.where((bid > 0) & (ask > 0), (bid + ask) / 2, np.nan), "quote mid"
    raise ValueError(
        f"fills_on_price() needs prices with a close, price or bid_price and ask_price column, "
        f"which the frame lacks (it has {', '.join(map(str, frame.columns)) or 'none'}): "
        f"pass {PRICES_SOURCE}"
    )


def fills_on_price(
    prices: pd.DataFrame, fills: pd.DataFrame, symbol: str | None = None, *, ax: Axes | None = None, tz: Any = None
) -> Axes:
    """The price of ``symbol`` as a line and its fills as markers on it.

    ``prices``: bars (their close), historical trades (price) or historical quotes (bid/ask
    mid). ``fills``: the ledger's ``Ledger.fills()`` (time ``filled_at``) or
    ``svc.activities(types="FILL")`` (time ``timestamp``); rows of other symbols, and
    non-fill activities, are left out. Buys are green upward triangles, sells (``sell``,
    ``sell_short``) red downward ones, with area proportional to qty. Returns the Axes.
    """
    _price_line(prices.iloc[:0])  # refuses prices without a price column before anything else
    _require(fills, ["side", "qty", "price"], "fills_on_price", FILLS_SOURCE)
    prices, symbol = _one_symbol(prices, symbol, "fills_on_price")
    fills, symbol = _one_symbol(fills, symbol, "fills_on_price", strict=False)
    if "activity_type" in fills.columns:
        fills = fills[fills["activity_type"].astype("string").eq("FILL").fillna(False).to_numpy(dtype=bool)]
    price_times = _times(prices, ("timestamp",), "fills_on_price", PRICES_SOURCE)
    fill_times = _times(fills, ("filled_at", "transaction_time", "timestamp"), "fills_on_price", FILLS_SOURCE)
    ax = _axes(ax, (12, 5))
    ax.set_title(f"{symbol}: fills on price" if symbol else "fills on price")
    ax.set_ylabel("price")
    if prices.empty and fills.empty:
        _no_data(ax)
        return ax
    price_x, zone = _dates(price_times, tz)
    fill_x, fill_zone = _dates(fill_times, tz)
    if len(prices):
        y, label = _price_line(prices)
        order = np.argsort(price_x, kind="stable")
        ax.plot(price_x[order], y[order], color="tab:blue", linewidth=1, label=label, zorder=1)
    if len(fills):
        qty, price = _floats(fills, "qty"), _floats(fills, "price")
        side = fills["side"].astype("string").str.lower().fillna("")
        sizes = 20 + 180 * qty / max(np.nanmax(np.abs(qty)), 1e-12)
        buys, sells = side.eq("buy").to_numpy(dtype=bool), side.str.startswith("sell").to_numpy(dtype=bool)
        for name, mask, marker, color in (("buys", buys, "^", BUY_COLOR), ("sells", sells, "v", SELL_COLOR)):
            ax.scatter(
                fill_x[mask],
                price[mask],
                s=sizes[mask],
                marker=marker,
                color=color,
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
                label=f"{name[:-1]} ({int(mask.sum())})",
                gid=name,
            )
    _date_axis(ax, np.concatenate([price_x, fill_x]), zone if len(prices) else fill_zone)
    _plain_y(ax)
    ax.legend(loc="best")
    return ax


def _group_labels(pnl: pd.DataFrame, groups: list[str]) -> list[str]:
    """One label per row: its grouping values joined (``ana / AAPL``); null shows as (none)."""
    keys = pnl[groups] if groups else (None if isinstance(pnl.index, pd.RangeIndex) else pnl.index.to_frame())
    if keys is None:
        return ["total"] * len(pnl)
    return [" / ".join("(none)" if pd.isna(v) else str(v) for v in row) for row in keys.itertuples(index=False)]


def pnl_bars(pnl: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Realized and unrealized P&L side by side per group, total as a black diamond.

    ``pnl`` is ``analytics.pnl(ledger, marks, by=...)``: its grouping columns (symbol, user,
    tag, account, or several) label the groups. Returns the Axes.
    """
    _require(pnl, ["realized_pnl", "unrealized_pnl"], "pnl_bars", PNL_SOURCE)
    groups = [c for c in pnl.columns if c not in PNL_VALUES]
    ax = _axes(ax, (max(6.0, 0.9 * len(pnl) + 3), 4.5))
    ax.set_title(f"P&L by {', '.join(map(str, groups))}" if groups else "P&L")
    ax.set_ylabel("P&L")
    if pnl.empty:
        _no_data(ax)
        return ax
    x = np.arange(len(pnl))
    realized, unrealized = _floats(pnl, "realized_pnl"), _floats(pnl, "unrealized_pnl")
    total = _floats(pnl, "total_pnl") if "total_pnl" in pnl.columns else realized + unrealized
    ax.bar(x - 0.2, realized, 0.4, color="tab:blue", label="realized", gid="realized")
    ax.bar(x + 0.2, unrealized, 0.4, color="tab:orange", label="unrealized", gid="unrealized")
    ax.scatter(x, total, marker="D", color="black", zorder=3, label="total", gid="total")
    ax.axhline(0, color="grey", linewidth=0.8)
    labels = _group_labels(pnl, groups)
    slanted = len(labels) > 6 or max(map(len, labels)) > 12
    ax.set_xticks(x, labels, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    _plain_y(ax)
    ax.legend(loc="best")
    return ax


def equity(curve: pd.DataFrame, *, ax: Axes | None = None, tz: Any = None) -> Axes:
    """The equity line, with the drawdown (below the running peak) shaded red.

    ``curve``: ``analytics.equity_curve(...)`` (``date``: New York days, drawn as they are) or
    ``svc.portfolio_history(...)`` (``timestamp``, shown in ``tz``). Returns the Axes.
    """
    _require(curve, ["equity"], "equity", EQUITY_SOURCE)
    times = _times(curve, ("date", "timestamp"), "equity", EQUITY_SOURCE)
    ax = _axes(ax, (10, 4))
    ax.set_title("equity")
    ax.set_ylabel("equity")
    if curve.empty:
        _no_data(ax)
        return ax
    x, zone = _dates(times, tz)
    order = np.argsort(x, kind="stable")
    x, y = x[order], _floats(curve, "equity")[order]
    ax.plot(x, y, color="tab:blue", marker="o" if len(x) == 1 else None, label="equity", gid="equity")
    peak = np.fmax.accumulate(y)
    ax.fill_between(x, y, peak, color=SELL_COLOR, alpha=0.25, linewidth=0, label="drawdown", gid="drawdown")
    _date_axis(ax, x, zone)
    _plain_y(ax)
    return ax


def daily_pnl(daily: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """One bar per day of ``analytics.daily_pnl(...)``'s ``pnl``: green for a gain (or flat),
    red for a loss. Returns the Axes."""
    _require(daily, ["pnl"], "daily_pnl", DAILY_SOURCE)
    times = _times(daily, ("date",), "daily_pnl", DAILY_SOURCE)
    ax = _axes(ax, (10, 4))
    ax.set_title("daily P&L")
    ax.set_ylabel("P&L")
    if daily.empty:
        _no_data(ax)
        return ax
    x, zone = _dates(times, None)
    values = _floats(daily, "pnl")
    ax.bar(x, values, 0.8 * _spacing(x, 1.0), color=np.where(values >= 0, BUY_COLOR, SELL_COLOR), gid="daily_pnl")
    ax.axhline(0, color="grey", linewidth=0.8)
    _date_axis(ax, x, zone)
    _plain_y(ax)
    return ax
