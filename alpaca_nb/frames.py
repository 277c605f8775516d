"""Every DataFrame alpaca_nb returns, built by one contract.

- timestamps are tz-aware UTC, ``datetime64[ns, UTC]`` (``tz=`` converts them for display);
- Alpaca's string numbers become ``float64``, counts and ids ``int64``, flags the nullable
  ``boolean``, text the ``string`` dtype (lists such as trade conditions are comma-joined);
- an empty result has the same columns and dtypes as a full one; a missing value is null
  (NaN, NaT, <NA>), except in int64 columns where it is 0;
- multi-symbol data has a ``symbol`` column (or index level).

Frames are built column-wise from Alpaca's raw JSON, never from per-row pydantic objects.
The column specs below (name -> kind) are the contract: every builder returns exactly them.
Historical bars, quotes and trades (big, paged) live in :mod:`alpaca_nb.marketdata`::

    positions_frame([])          # no positions: still the POSITION_COLUMNS, float64 qty, ...
    latest_trades_frame(body["trades"], tz="America/New_York").loc["AAPL", "price"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import tzinfo
from typing import Any, Final

import numpy as np
import pandas as pd

from . import params

# Column specs: name -> kind ("str", "float", "int", "bool", "time", "date").
ORDER_COLUMNS: dict[str, str] = {
    "id": "str",
    "client_order_id": "str",
    "symbol": "str",
    "side": "str",
    "type": "str",
    "order_class": "str",
    "time_in_force": "str",
    "status": "str",
    "qty": "float",
    "notional": "float",
    "filled_qty": "float",
    "filled_avg_price": "float",
    "limit_price": "float",
    "stop_price": "float",
    "trail_price": "float",
    "trail_percent": "float",
    "extended_hours": "bool",
    "created_at": "time",
    "submitted_at": "time",
    "filled_at": "time",
    "canceled_at": "time",
    "expired_at": "time",
    "updated_at": "time",
    "replaced_by": "str",
    "replaces": "str",
    "legs": "str",
}
POSITION_COLUMNS: dict[str, str] = {
    "symbol": "str",
    "side": "str",
    "qty": "float",
    "qty_available": "float",
    "avg_entry_price": "float",
    "current_price": "float",
    "market_value": "float",
    "cost_basis": "float",
    "unrealized_pl": "float",
    "unrealized_plpc": "float",
    "unrealized_intraday_pl": "float",
    "change_today": "float",
    "exchange": "str",
    "asset_id": "str",
}
ACCOUNT_COLUMNS: dict[str, str] = {
    "account_number": "str",
    "status": "str",
    "currency": "str",
    "cash": "float",
    "buying_power": "float",
    "equity": "float",
    "last_equity": "float",
    "portfolio_value": "float",
    "long_market_value": "float",
    "short_market_value": "float",
    "initial_margin": "float",
    "maintenance_margin": "float",
    "daytrading_buying_power": "float",
    "regt_buying_power": "float",
    "multiplier": "float",
    "pattern_day_trader": "bool",
    "trading_blocked": "bool",
    "shorting_enabled": "bool",
    "created_at": "time",
}
# Market data. Sizes and volumes are float64 like every other quantity (qty, filled_qty);
# trade_count and trade ids are counts and keys, so int64.
QUOTE_COLUMNS: dict[str, str] = {
    "timestamp": "time",
    "bid_price": "float",
    "bid_size": "float",
    "bid_exchange": "str",
    "ask_price": "float",
    "ask_size": "float",
    "ask_exchange": "str",
    "conditions": "str",
    "tape": "str",
}
TRADE_COLUMNS: dict[str, str] = {
    "timestamp": "time",
    "price": "float",
    "size": "float",
    "exchange": "str",
    "id": "int",
    "conditions": "str",
    "tape": "str",
}
BAR_COLUMNS: dict[str, str] = {
    "timestamp": "time",
    "open": "float",
    "high": "float",
    "low": "float",
    "close": "float",
    "volume": "float",
    "trade_count": "int",
    "vwap": "float",
}
# Alpaca's one-letter keys in market data -> our column names.
QUOTE_KEYS = {
    "t": "timestamp",
    "bp": "bid_price",
    "bs": "bid_size",
    "bx": "bid_exchange",
    "ap": "ask_price",
    "as": "ask_size",
    "ax": "ask_exchange",
    "c": "conditions",
    "z": "tape",
}
TRADE_KEYS = {"t": "timestamp", "p": "price", "s": "size", "x": "exchange", "i": "id", "c": "conditions", "z": "tape"}
BAR_KEYS = {
    "t": "timestamp",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
    "n": "trade_count",
    "vw": "vwap",
}

# Snapshot parts: column prefix, Alpaca's key, key map, columns.
SNAPSHOT_PARTS: tuple[tuple[str, str, dict[str, str], dict[str, str]], ...] = (
    ("latest_trade", "latestTrade", TRADE_KEYS, TRADE_COLUMNS),
    ("latest_quote", "latestQuote", QUOTE_KEYS, QUOTE_COLUMNS),
    ("minute_bar", "minuteBar", BAR_KEYS, BAR_COLUMNS),
    ("daily_bar", "dailyBar", BAR_KEYS, BAR_COLUMNS),
    ("prev_daily_bar", "prevDailyBar", BAR_KEYS, BAR_COLUMNS),
)
SNAPSHOT_COLUMNS: dict[str, str] = {
    f"{prefix}_{name}": kind for prefix, _, _, columns in SNAPSHOT_PARTS for name, kind in columns.items()
}

# Account activities: fills (TradingActivities) and everything else (NonTradeActivities) in one
# frame. ``timestamp`` is when it happened (transaction_time, else created_at, else date);
# ``date`` is the New York day it belongs to.
ACTIVITY_COLUMNS: dict[str, str] = {
    "id": "str",
    "activity_type": "str",
    "activity_sub_type": "str",
    "timestamp": "time",
    "date": "date",
    "symbol": "str",
    "side": "str",
    "type": "str",
    "qty": "float",
    "price": "float",
    "cum_qty": "float",
    "leaves_qty": "float",
    "order_id": "str",
    "order_status": "str",
    "net_amount": "float",
    "per_share_amount": "float",
    "status": "str",
    "description": "str",
}
CLOCK_COLUMNS: dict[str, str] = {"timestamp": "time", "is_open": "bool", "next_open": "time", "next_close": "time"}
CALENDAR_COLUMNS: dict[str, str] = {
    "date": "date",
    "open": "time",
    "close": "time",
    "session_open": "time",
    "session_close": "time",
    "settlement_date": "date",
}
ASSET_COLUMNS: dict[str, str] = {
    "symbol": "str",
    "name": "str",
    "exchange": "str",
    "asset_class": "str",
    "status": "str",
    "tradable": "bool",
    "marginable": "bool",
    "shortable": "bool",
    "easy_to_borrow": "bool",
    "fractionable": "bool",
    "maintenance_margin_requirement": "float",
    "margin_requirement_long": "float",
    "margin_requirement_short": "float",
    "min_order_size": "float",
    "min_trade_increment": "float",
    "price_increment": "float",
    "attributes": "str",
    "id": "str",
}
PORTFOLIO_COLUMNS: dict[str, str] = {"equity": "float", "profit_loss": "float", "profit_loss_pct": "float"}

# A "date" is a calendar day with no time zone (New York's, for market days): naive midnight.
STRING: Final = "string"  # the dtype of text columns
_TIME: Final = "datetime64[ns, UTC]"
_DATE: Final = "datetime64[ns]"
DTYPES = {
    "str": STRING,
    "float": "float64",
    "int": "int64",
    "bool": "boolean",
    "time": _TIME,
    "date": _DATE,
}
NEW_YORK = "America/New_York"


def empty_frame(columns: Mapping[str, str], index: str | None = None) -> pd.DataFrame:
    """A frame with no rows and exactly ``columns`` in their contract dtypes."""
    frame = pd.DataFrame({name: pd.Series(dtype=DTYPES[kind]) for name, kind in columns.items()})
    return frame.set_index(index) if index else frame


def column(values: Sequence[Any], kind: str) -> pd.Series:
    """One column of raw JSON values converted to its contract dtype (None -> null)."""
    series = pd.Series(values, dtype=object)
    if kind == "float":
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if kind == "int":
        return pd.to_numeric(series.fillna(0), errors="coerce").fillna(0).astype("int64")
    if kind == "time":
        return pd.to_datetime(series, utc=True, format="ISO8601").astype(_TIME)
    if kind == "date":
        return pd.to_datetime(series.map(_day, na_action="ignore"), format="%Y-%m-%d").astype(_DATE)
    if kind == "bool":
        return series.astype("boolean")
    return pd.Series(
        [None if v is None else (",".join(map(str, v)) if isinstance(v, list) else str(v)) for v in values],
        dtype="string",
    )


def _day(value: Any) -> str:
    # Alpaca's dates come as "2024-01-02" or as a full timestamp: the day is the first 10 chars.
    return str(value)[:10]


def records_frame(
    rows: Iterable[Mapping[str, Any]],
    columns: Mapping[str, str],
    *,
    rename: Mapping[str, str] | None = None,
    index: str | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Rows of raw JSON -> a frame with exactly ``columns`` (missing keys become nulls).

    ``rename`` maps Alpaca's keys to column names first; ``index`` names a column to index by.
    """
    rows = list(rows)
    if rename:
        rows = [{rename.get(k, k): v for k, v in row.items()} for row in rows]
    if not rows:
        frame = empty_frame(columns)
    else:
        frame = pd.DataFrame({name: _values(rows, name, kind) for name, kind in columns.items()})
    frame = to_tz(frame, tz)
    return frame.set_index(index) if index else frame


def _values(rows: list[Mapping[str, Any]], name: str, kind: str) -> pd.Series:
    raw = [row.get(name) for row in rows]
    if name == "legs" and kind == "str":
        # Orders nest their legs: show the leg ids, the legs themselves are rows of their own.
        raw = [",".join(leg["id"] for leg in legs) if legs else None for legs in raw]
    return column(raw, kind)


def to_tz(frame: pd.DataFrame, tz: str | tzinfo | None) -> pd.DataFrame:
    """Convert every tz-aware column and index (level) to ``tz`` for display.

    Naive ``date`` columns are calendar days and stay as they are. ``tz`` is an IANA name or a
    ``tzinfo`` (see :func:`alpaca_nb.params.tz`); anything else raises
    :class:`~alpaca_nb.errors.InvalidArgumentError`.
    """
    tz = params.tz(tz)
    if tz is None:
        return frame
    frame = frame.copy(deep=False)  # copy-on-write: the caller's frame stays as it was
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].dt.tz_convert(tz)
    index = frame.index
    if isinstance(index, pd.MultiIndex):
        for i, level in enumerate(index.levels):
            if isinstance(level, pd.DatetimeIndex) and level.tz is not None:
                # pandas-stubs want a sequence of levels here; one level as an Index is what pandas takes
                index = index.set_levels(level.tz_convert(tz), level=i)  # type: ignore[call-overload]
        frame.index = index
    elif isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        frame.index = index.tz_convert(tz)
    return frame


# -- trading ----------------------------------------------------------------------------------


def orders_frame(orders: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Orders as Alpaca lists them, one row each; columns and kinds :data:`ORDER_COLUMNS`.

    ``legs`` holds the comma-joined ids of a bracket/OCO order's legs.
    """
    return records_frame(orders, ORDER_COLUMNS, tz=tz)


def positions_frame(positions: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Open positions, one row per symbol; columns and kinds :data:`POSITION_COLUMNS`."""
    return records_frame(positions, POSITION_COLUMNS, tz=tz)


def account_frame(account: Mapping[str, Any], tz: str | None = None) -> pd.DataFrame:
    """The account as a one-row frame; columns and kinds :data:`ACCOUNT_COLUMNS`."""
    return records_frame([account], ACCOUNT_COLUMNS, tz=tz)


def activities_frame(activities: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Account activities (``GET /v2/account/activities``), fills and non-trade alike.

    Columns :data:`ACTIVITY_COLUMNS`: fills fill ``symbol, side, type, qty, price, cum_qty,
    leaves_qty, order_id, order_status``; cash activities (DIV, FEE, CSD, ...) fill
    ``net_amount, per_share_amount, status, description`` (and ``symbol``/``qty`` when they have
    one). ``timestamp`` (UTC) is when it happened; ``date`` (naive) is its New York day.
    """
    rows = []
    for activity in activities:
        row = dict(activity)
        when = row.get("transaction_time") or row.get("created_at") or row.get("date")
        row["timestamp"] = when
        if row.get("date") is None and when is not None:
            stamp = pd.Timestamp(when)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            row["date"] = stamp.tz_convert(NEW_YORK).strftime("%Y-%m-%d")
        rows.append(row)
    return records_frame(rows, ACTIVITY_COLUMNS, tz=tz)


def portfolio_history_frame(history: Mapping[str, Any], tz: str | None = None) -> pd.DataFrame:
    """Portfolio history (``GET /v2/account/portfolio/history``) indexed by ``timestamp``.

    Index ``timestamp`` (``datetime64[ns, UTC]``, from Alpaca's epoch seconds); columns
    ``equity, profit_loss, profit_loss_pct`` (float64, NaN where Alpaca sends null).
    ``frame.attrs`` keeps ``base_value`` and ``timeframe``.
    """
    stamps = history.get("timestamp") or []
    index = pd.DatetimeIndex(
        pd.to_datetime(np.asarray(stamps, dtype="int64"), unit="s", utc=True), name="timestamp"
    ).as_unit("ns")
    data = {}
    for name in PORTFOLIO_COLUMNS:
        values = history.get(name) or []
        # Alpaca pads series with nulls when the account did not exist yet.
        data[name] = (
            np.array([np.nan if v is None else v for v in values], dtype="float64")
            if len(values) == len(stamps)
            else np.full(len(stamps), np.nan)
        )
    frame = pd.DataFrame(data, index=index)
    frame.attrs.update(base_value=history.get("base_value"), timeframe=history.get("timeframe"))
    return to_tz(frame, tz)


# -- reference data ---------------------------------------------------------------------------


def clock_frame(clock: Mapping[str, Any], tz: str | None = None) -> pd.DataFrame:
    """The market clock as one row: ``timestamp, is_open, next_open, next_close``."""
    return records_frame([clock], CLOCK_COLUMNS, tz=tz)


def calendar_frame(days: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """The trading calendar, one row per market day; columns :data:`CALENDAR_COLUMNS`.

    ``date`` and ``settlement_date`` are naive days; ``open``/``close`` (regular session) and
    ``session_open``/``session_close`` (extended hours) are tz-aware UTC instants computed from
    Alpaca's New York wall-clock times ("09:30", "0400"), daylight saving included.
    """
    days = list(days)
    frame = records_frame(days, {"date": "date", "settlement_date": "date"})
    for name in ("open", "close", "session_open", "session_close"):
        minutes = pd.Series([_minutes(day.get(name)) for day in days], dtype="float64")
        # Wall-clock time on the day ("24:00" is the next midnight), then New York -> UTC.
        local = frame["date"] + pd.to_timedelta(minutes, unit="min")
        frame[name] = local.dt.tz_localize(NEW_YORK).dt.tz_convert("UTC").astype(DTYPES["time"])
    return to_tz(frame[list(CALENDAR_COLUMNS)], tz)


def _minutes(value: Any) -> float:
    # The calendar says "09:30" for the session and "0400" for extended hours.
    text = "" if value is None else str(value).replace(":", "")
    if len(text) != 4 or not text.isdigit():
        return float("nan")
    return int(text[:2]) * 60 + int(text[2:])


def assets_frame(assets: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Assets (``GET /v2/assets``), one row each; columns :data:`ASSET_COLUMNS`.

    ``asset_class`` is Alpaca's ``class``; ``attributes`` is comma-joined.
    """
    return records_frame(assets, ASSET_COLUMNS, rename={"class": "asset_class"})


# -- latest market data -----------------------------------------------------------------------


def _latest_frame(
    items: Mapping[str, Mapping[str, Any]] | None, keys: Mapping[str, str], columns: Mapping[str, str], tz: str | None
) -> pd.DataFrame:
    rows = [
        {"symbol": symbol, **{keys.get(k, k): v for k, v in item.items()}}
        for symbol, item in (items or {}).items()
        if item is not None
    ]
    return records_frame(rows, {"symbol": "str", **columns}, index="symbol", tz=tz)


def latest_quotes_frame(quotes: Mapping[str, Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """``{"AAPL": {"bp": ...}}`` (Alpaca's latest quotes) -> one row per symbol.

    Index ``symbol``; columns :data:`QUOTE_COLUMNS` (``timestamp`` UTC, prices and sizes float64).
    """
    return _latest_frame(quotes, QUOTE_KEYS, QUOTE_COLUMNS, tz)


def latest_trades_frame(trades: Mapping[str, Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """``{"AAPL": {"p": ...}}`` (Alpaca's latest trades) -> one row per symbol.

    Index ``symbol``; columns :data:`TRADE_COLUMNS` (price/size float64, id int64).
    """
    return _latest_frame(trades, TRADE_KEYS, TRADE_COLUMNS, tz)


def latest_bars_frame(bars: Mapping[str, Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """``{"AAPL": {"o": ...}}`` (Alpaca's latest minute bars) -> one row per symbol.

    Index ``symbol``; columns :data:`BAR_COLUMNS` (prices/volume float64, trade_count int64).
    """
    return _latest_frame(bars, BAR_KEYS, BAR_COLUMNS, tz)


def snapshots_frame(snapshots: Mapping[str, Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Snapshots (``GET /v2/stocks/snapshots``) -> one row per symbol, parts flattened.

    Index ``symbol``; columns :data:`SNAPSHOT_COLUMNS`: each part's columns behind its prefix,
    ``latest_trade_`` (price, size, ...), ``latest_quote_`` (bid_price, ask_price, ...),
    ``minute_bar_``, ``daily_bar_``, ``prev_daily_bar_`` (open, high, low, close, volume, ...),
    each with its own ``..._timestamp``. A part Alpaca leaves out is null.
    """
    rows = []
    for symbol, snapshot in (snapshots or {}).items():
        if snapshot is None:
            continue
        row: dict[str, Any] = {"symbol": symbol}
        for prefix, key, keys, _ in SNAPSHOT_PARTS:
            for k, v in (snapshot.get(key) or {}).items():
                if k in keys:
                    row[f"{prefix}_{keys[k]}"] = v
        rows.append(row)
    return records_frame(rows, {"symbol": "str", **SNAPSHOT_COLUMNS}, index="symbol", tz=tz)
