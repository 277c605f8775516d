"""Every DataFrame alpaca_nb returns, built by one contract.

- timestamps are tz-aware UTC (``tz=`` converts them for display);
- Alpaca's string numbers become float64, counts int64, text the ``string`` dtype;
- an empty result has the same columns and dtypes as a full one;
- multi-symbol data has a ``symbol`` column (or index level).

Frames are built column-wise from Alpaca's raw JSON, never from per-row pydantic objects.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

# Column specs: name -> kind ("str", "float", "int", "bool", "time").
ORDER_COLUMNS: dict[str, str] = {
    "id": "str", "client_order_id": "str", "symbol": "str", "side": "str", "type": "str",
    "order_class": "str", "time_in_force": "str", "status": "str", "qty": "float",
    "notional": "float", "filled_qty": "float", "filled_avg_price": "float",
    "limit_price": "float", "stop_price": "float", "trail_price": "float",
    "trail_percent": "float", "extended_hours": "bool", "created_at": "time",
    "submitted_at": "time", "filled_at": "time", "canceled_at": "time", "expired_at": "time",
    "updated_at": "time", "replaced_by": "str", "replaces": "str", "legs": "str",
}
POSITION_COLUMNS: dict[str, str] = {
    "symbol": "str", "side": "str", "qty": "float", "qty_available": "float",
    "avg_entry_price": "float", "current_price": "float", "market_value": "float",
    "cost_basis": "float", "unrealized_pl": "float", "unrealized_plpc": "float",
    "unrealized_intraday_pl": "float", "change_today": "float", "exchange": "str", "asset_id": "str",
}
ACCOUNT_COLUMNS: dict[str, str] = {
    "account_number": "str", "status": "str", "currency": "str", "cash": "float",
    "buying_power": "float", "equity": "float", "last_equity": "float", "portfolio_value": "float",
    "long_market_value": "float", "short_market_value": "float", "initial_margin": "float",
    "maintenance_margin": "float", "daytrading_buying_power": "float",
    "regt_buying_power": "float", "multiplier": "float", "pattern_day_trader": "bool",
    "trading_blocked": "bool", "shorting_enabled": "bool", "created_at": "time",
}
QUOTE_COLUMNS: dict[str, str] = {
    "timestamp": "time", "bid_price": "float", "bid_size": "float", "bid_exchange": "str",
    "ask_price": "float", "ask_size": "float", "ask_exchange": "str", "conditions": "str",
    "tape": "str",
}
# Alpaca's one-letter keys in market data -> our column names.
QUOTE_KEYS = {"t": "timestamp", "bp": "bid_price", "bs": "bid_size", "bx": "bid_exchange",
              "ap": "ask_price", "as": "ask_size", "ax": "ask_exchange", "c": "conditions", "z": "tape"}

_DTYPES = {"str": "string", "float": "float64", "int": "int64", "bool": "boolean",
           "time": "datetime64[ns, UTC]"}


def empty_frame(columns: Mapping[str, str], index: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in columns.items()})
    return frame.set_index(index) if index else frame


def column(values: Sequence[Any], kind: str) -> pd.Series | np.ndarray:
    """One column of raw JSON values converted to its contract dtype."""
    if kind == "float":
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("float64")
    if kind == "int":
        return pd.Series(values, dtype=object).fillna(0).astype("int64")
    if kind == "time":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601").astype(
            "datetime64[ns, UTC]")
    if kind == "bool":
        return pd.Series(values, dtype="boolean")
    return pd.Series([None if v is None else (",".join(map(str, v)) if isinstance(v, list) else str(v))
                      for v in values], dtype="string")


def records_frame(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str], *,
                  rename: Mapping[str, str] | None = None, index: str | None = None,
                  tz: str | None = None) -> pd.DataFrame:
    """Rows of raw JSON -> a frame with exactly ``columns`` (missing keys become nulls)."""
    rows = list(rows)
    if rename:
        rows = [{rename.get(k, k): v for k, v in row.items()} for row in rows]
    if not rows:
        frame = empty_frame(columns)
    else:
        frame = pd.DataFrame({name: _values(rows, name, kind) for name, kind in columns.items()})
    frame = to_tz(frame, tz)
    return frame.set_index(index) if index else frame


def _values(rows: list[Mapping[str, Any]], name: str, kind: str):
    raw = [row.get(name) for row in rows]
    if name == "legs" and kind == "str":
        raw = [",".join(leg["id"] for leg in legs) if legs else None for legs in raw]
    return column(raw, kind).values if kind != "str" else column(raw, kind)


def to_tz(frame: pd.DataFrame, tz: str | None) -> pd.DataFrame:
    """Convert every tz-aware column (and a datetime index) to ``tz`` for display."""
    if not tz:
        return frame
    frame = frame.copy()
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].dt.tz_convert(tz)
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
        frame.index = frame.index.tz_convert(tz)
    return frame


def orders_frame(orders: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Orders as Alpaca lists them; columns :data:`ORDER_COLUMNS` (``type`` from ``order_type``)."""
    return records_frame(orders, ORDER_COLUMNS, tz=tz)


def positions_frame(positions: Iterable[Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """Open positions, one row per symbol; columns :data:`POSITION_COLUMNS`."""
    return records_frame(positions, POSITION_COLUMNS, tz=tz)


def account_frame(account: Mapping[str, Any], tz: str | None = None) -> pd.DataFrame:
    """The account as a one-row frame; columns :data:`ACCOUNT_COLUMNS`."""
    return records_frame([account], ACCOUNT_COLUMNS, tz=tz)


def latest_quotes_frame(quotes: Mapping[str, Mapping[str, Any]], tz: str | None = None) -> pd.DataFrame:
    """``{"AAPL": {"bp": ...}}`` (Alpaca's latest quotes) -> one row per symbol, indexed by symbol."""
    rows = [{"symbol": symbol, **{QUOTE_KEYS.get(k, k): v for k, v in q.items()}}
            for symbol, q in quotes.items()]
    frame = records_frame(rows, {"symbol": "str", **QUOTE_COLUMNS}, tz=tz)
    return frame.set_index("symbol")
