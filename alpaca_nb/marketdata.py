"""Historical bars, quotes and trades as DataFrames, fetched and decoded fast.

alpaca-py turns every bar into a pydantic object and then builds ``.df`` from them: about 15 s
for a million bars. Here the pages come over one ``requests`` session as raw bytes (following
``next_page_token``, 10,000 rows a page), msgspec decodes them into typed Structs holding only
the fields a frame needs, and the columns are built with numpy and pandas' ISO-8601 parser, one
page at a time so that no page's bytes or objects outlive it.

Every frame has the index (``symbol``, ``timestamp``) like alpaca-py's ``.df``
(``symbol`` the ``string`` dtype, ``timestamp`` ``datetime64[ns, UTC]``), rows grouped by symbol
in alphabetical order and, within a symbol, in the order Alpaca sent them (``sort``). Unlike
``.df`` the columns never change with the data (see :data:`BAR_FIELDS`, :data:`QUOTE_FIELDS`,
:data:`TRADE_FIELDS`), also when the result is empty::

    bars = fetch_bars(svc.broker, ["AAPL", "MSFT"], "1Min", "2024-01-02", "2024-01-05")
    bars.loc["AAPL", "close"]
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pandas as pd

from . import params
from .broker import decode_json
from .frames import BAR_COLUMNS, DTYPES, QUOTE_COLUMNS, STRING, TRADE_COLUMNS, to_tz

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

PAGE_LIMIT = 10_000  # Alpaca's largest page
INDEX_NAMES = ["symbol", "timestamp"]
# The historical columns: the latest-data columns without ``timestamp`` (it is in the index).
BAR_FIELDS = {k: v for k, v in BAR_COLUMNS.items() if k != "timestamp"}
QUOTE_FIELDS = {k: v for k, v in QUOTE_COLUMNS.items() if k != "timestamp"}
TRADE_FIELDS = {k: v for k, v in TRADE_COLUMNS.items() if k != "timestamp"}


# -- the wire: only the fields a frame needs, named by column -------------------------------------


class _Bar(msgspec.Struct, gc=False):
    timestamp: str = msgspec.field(name="t")
    open: float = msgspec.field(name="o")
    high: float = msgspec.field(name="h")
    low: float = msgspec.field(name="l")
    close: float = msgspec.field(name="c")
    volume: float = msgspec.field(name="v")
    trade_count: int | None = msgspec.field(name="n", default=None)
    vwap: float | None = msgspec.field(name="vw", default=None)


# Conditions stay raw JSON (b'["@","F"]'): a list and its strings per row would double the
# decoding time, and the few distinct values are converted once each (see _conditions).
_NULL = msgspec.Raw(b"null")


class _Quote(msgspec.Struct, gc=False):
    timestamp: str = msgspec.field(name="t")
    bid_price: float = msgspec.field(name="bp", default=float("nan"))
    bid_size: float = msgspec.field(name="bs", default=float("nan"))
    bid_exchange: str | None = msgspec.field(name="bx", default=None)
    ask_price: float = msgspec.field(name="ap", default=float("nan"))
    ask_size: float = msgspec.field(name="as", default=float("nan"))
    ask_exchange: str | None = msgspec.field(name="ax", default=None)
    conditions: msgspec.Raw = msgspec.field(name="c", default=_NULL)
    tape: str | None = msgspec.field(name="z", default=None)


class _Trade(msgspec.Struct, gc=False):
    timestamp: str = msgspec.field(name="t")
    price: float = msgspec.field(name="p")
    size: float = msgspec.field(name="s")
    exchange: str | None = msgspec.field(name="x", default=None)
    id: int | None = msgspec.field(name="i", default=None)
    conditions: msgspec.Raw = msgspec.field(name="c", default=_NULL)
    tape: str | None = msgspec.field(name="z", default=None)


class _BarsPage(msgspec.Struct, gc=False):
    data: dict[str, list[_Bar]] | None = msgspec.field(name="bars", default=None)
    next_page_token: str | None = None


class _QuotesPage(msgspec.Struct, gc=False):
    data: dict[str, list[_Quote]] | None = msgspec.field(name="quotes", default=None)
    next_page_token: str | None = None


class _TradesPage(msgspec.Struct, gc=False):
    data: dict[str, list[_Trade]] | None = msgspec.field(name="trades", default=None)
    next_page_token: str | None = None


@dataclass(frozen=True)
class _Kind:
    """One kind of historical data: where it lives, how its pages decode, its columns."""

    name: str
    path: str
    page: type
    fields: dict[str, str]

    @property
    def decoder(self) -> msgspec.json.Decoder[Any]:
        return _DECODERS[self.page]


_BARS = _Kind("bars", "/stocks/bars", _BarsPage, BAR_FIELDS)
_QUOTES = _Kind("quotes", "/stocks/quotes", _QuotesPage, QUOTE_FIELDS)
_TRADES = _Kind("trades", "/stocks/trades", _TradesPage, TRADE_FIELDS)
# Decoders are built once: building one compiles the Struct's schema.
_DECODERS: dict[type, msgspec.json.Decoder[Any]] = {
    kind.page: msgspec.json.Decoder(kind.page) for kind in (_BARS, _QUOTES, _TRADES)
}


# -- pages -> columns -----------------------------------------------------------------------------


class _Columns:
    """Columns accumulated page by page; symbols in the order Alpaca sent them."""

    def __init__(self, kind: _Kind):
        self.kind = kind
        self.symbols: list[str] = []
        self.counts: list[int] = []
        self.times: list[np.ndarray] = []
        self.arrays: dict[str, list[Any]] = {name: [] for name in kind.fields}
        self.rows = 0
        self.conditions: dict[bytes, str | None] = {}

    def add(self, data: Mapping[str, list[Any]] | None) -> int:
        """Append one page's ``{symbol: [item, ...]}``; returns the rows it held."""
        if not data:
            return 0
        items = list(itertools.chain.from_iterable(data.values()))
        self.symbols.extend(data)
        self.counts.extend(len(v) for v in data.values())
        stamps = list(map(operator.attrgetter("timestamp"), items))
        # pandas' ISO-8601 parser is C and fixed-format; a strptime format with a literal "Z"
        # takes ten times longer.
        self.times.append(pd.to_datetime(stamps, format="ISO8601", utc=True).as_unit("ns").asi8)
        for name, kind in self.kind.fields.items():
            if name == "conditions":
                self.arrays[name].append(_conditions(items, self.conditions))
            else:
                self.arrays[name].append(_array(items, name, kind))
        self.rows += len(items)
        return len(items)

    def frame(self, tz: str | None = None) -> pd.DataFrame:
        names = sorted(set(self.symbols))
        code_of = {symbol: i for i, symbol in enumerate(names)}
        codes = np.repeat(
            np.array([code_of[s] for s in self.symbols], dtype=np.int64), np.array(self.counts, dtype=np.int64)
        )
        stamps = np.concatenate(self.times) if self.times else np.empty(0, np.int64)
        order = None
        if codes.size and (np.diff(codes) < 0).any():
            # A symbol came back in more than one run: group it, keeping Alpaca's order inside.
            order = np.argsort(codes, kind="stable")
            codes, stamps = codes[order], stamps[order]
        ts_codes, ts_level = pd.factorize(stamps, sort=True)
        # Index levels and integer arrays, as pandas takes them (pandas-stubs ask for sequences).
        levels: list[Any] = [
            pd.Index(names, dtype=DTYPES["str"]),
            pd.DatetimeIndex(ts_level.view("datetime64[ns]")).tz_localize("UTC"),
        ]
        level_codes: list[Any] = [codes, ts_codes]
        index = pd.MultiIndex(
            levels=levels,
            codes=level_codes,
            names=INDEX_NAMES,
            verify_integrity=False,
        )
        data = {}
        for name, kind in self.kind.fields.items():
            column = _concat(self.arrays[name], kind)
            data[name] = column if order is None else column[order]
        return to_tz(pd.DataFrame(data, index=index), tz)


def _array(items: list[Any], name: str, kind: str) -> Any:
    """One field of a page's Structs as a numpy array or pandas ``string`` array."""
    get = operator.attrgetter(name)
    if kind == "float":
        try:
            return np.fromiter(map(get, items), np.float64, len(items))
        except TypeError:  # a null (vwap): numpy reads None as NaN only via a list
            return np.array(list(map(get, items)), dtype=np.float64)
    if kind == "int":
        try:
            return np.fromiter(map(get, items), np.int64, len(items))
        except TypeError:  # a null trade count or id: 0, as everywhere in an int64 column
            return np.array([0 if v is None else v for v in map(get, items)], dtype=np.int64)
    return list(map(get, items))


def _conditions(items: list[Any], seen: dict[bytes, str | None]) -> list[str | None]:
    """Raw ``["@","F"]`` -> ``"@,F"`` (null -> None), each distinct value decoded once."""

    def convert(raw: bytes) -> str | None:
        value = msgspec.json.decode(raw)
        seen[raw] = text = None if value is None else ",".join(map(str, value))
        return text

    return [
        seen[raw] if raw in seen else convert(raw) for raw in map(bytes, map(operator.attrgetter("conditions"), items))
    ]


def _concat(parts: list[Any], kind: str) -> Any:
    if kind in ("float", "int"):
        return np.concatenate(parts) if parts else np.empty(0, DTYPES[kind])
    return pd.array(list(itertools.chain.from_iterable(parts)), dtype=STRING)


# -- raw JSON -> frame ----------------------------------------------------------------------------


def _frame_from_raw(kind: _Kind, raw: Any, tz: str | None) -> pd.DataFrame:
    columns = _Columns(kind)
    pages = raw if isinstance(raw, list) else [raw]
    for page in pages:
        if not isinstance(page, (bytes, bytearray, memoryview, str)):
            if not (kind.name in page or "next_page_token" in page):
                page = {kind.name: page}  # the inner {symbol: [item, ...]}
            # Back to JSON: the Structs keep some fields raw, and msgspec encodes fast.
            page = msgspec.json.encode(page)
        columns.add(kind.decoder.decode(page).data)
    return columns.frame(tz)


def bars_frame(raw: Any, tz: str | None = None) -> pd.DataFrame:
    """Historical bars from Alpaca's raw JSON -> index (symbol, timestamp), :data:`BAR_FIELDS`.

    ``raw`` is a response body (bytes/str), a decoded response ``{"bars": {...}}``, the inner
    ``{"AAPL": [{"t": ..., "o": ...}, ...]}``, or a list of pages. Columns: ``open, high, low,
    close, volume, vwap`` float64 (vwap NaN when absent), ``trade_count`` int64.
    """
    return _frame_from_raw(_BARS, raw, tz)


def quotes_frame(raw: Any, tz: str | None = None) -> pd.DataFrame:
    """Historical quotes from raw JSON (as :func:`bars_frame`) -> :data:`QUOTE_FIELDS`.

    ``bid_price, bid_size, ask_price, ask_size`` float64; ``bid_exchange, ask_exchange, tape``
    and the comma-joined ``conditions`` string.
    """
    return _frame_from_raw(_QUOTES, raw, tz)


def trades_frame(raw: Any, tz: str | None = None) -> pd.DataFrame:
    """Historical trades from raw JSON (as :func:`bars_frame`) -> :data:`TRADE_FIELDS`.

    ``price, size`` float64; ``id`` int64; ``exchange, tape`` and comma-joined ``conditions``
    string.
    """
    return _frame_from_raw(_TRADES, raw, tz)


# -- request parameters ---------------------------------------------------------------------------
# The checks live in alpaca_nb.params; these names stay for callers that know them here.

parse_timeframe = params.timeframe
time_param = params.timestamp
symbols_param = params.symbols
TIMEFRAME_FORMS = params.TIMEFRAME_FORMS


# -- fetching -------------------------------------------------------------------------------------


def fetch_bars(
    broker: Broker,
    symbols: Iterable[str] | str,
    timeframe: Any,
    start: Any = None,
    end: Any = None,
    *,
    feed: Any = None,
    adjustment: Any = None,
    limit: int | None = None,
    sort: str = "asc",
    progress: bool = True,
    tz: str | None = None,
) -> pd.DataFrame:
    """Historical bars for ``symbols`` as one frame (see :func:`bars_frame` for the columns).

    ``timeframe``: see :func:`alpaca_nb.params.timeframe`. ``start``/``end``: see
    :func:`alpaca_nb.params.timestamp` (Alpaca's defaults when None; a naive time is UTC).
    ``feed``: "iex", "sip", ... (Alpaca's default when None). ``adjustment``: "raw", "split",
    "dividend", "spin-off", "all" or several of them. ``limit`` caps the total rows. A tqdm
    progress bar shows when more than one page is fetched and ``progress`` is true. More
    symbols than one request may carry go out in several requests (see
    :func:`alpaca_nb.params.symbol_chunks`); the frame is the same. Raises
    :class:`~alpaca_nb.errors.InvalidArgumentError` for a bad argument before any request,
    alpaca_nb's errors for Alpaca's answers.

    >>> fetch_bars(svc.broker, ["AAPL", "MSFT"], "1Day", "2024-01-01", "2024-06-30")
    """
    query = _params(symbols, start, end, feed, limit, sort, progress, tz)
    query["timeframe"] = params.timeframe(timeframe)
    if adjustment is not None:
        query["adjustment"] = ",".join(params.choice_list(adjustment, "adjustment", params.ADJUSTMENTS))
    return _fetch(broker, _BARS, query, limit, progress, tz)


def fetch_quotes(
    broker: Broker,
    symbols: Iterable[str] | str,
    start: Any = None,
    end: Any = None,
    *,
    feed: Any = None,
    limit: int | None = None,
    sort: str = "asc",
    progress: bool = True,
    tz: str | None = None,
) -> pd.DataFrame:
    """Historical quotes (NBBO) for ``symbols`` (see :func:`quotes_frame` for the columns).

    Arguments as in :func:`fetch_bars`; quotes are many, so give a narrow ``start``/``end``.
    """
    return _fetch(broker, _QUOTES, _params(symbols, start, end, feed, limit, sort, progress, tz), limit, progress, tz)


def fetch_trades(
    broker: Broker,
    symbols: Iterable[str] | str,
    start: Any = None,
    end: Any = None,
    *,
    feed: Any = None,
    limit: int | None = None,
    sort: str = "asc",
    progress: bool = True,
    tz: str | None = None,
) -> pd.DataFrame:
    """Historical trades for ``symbols`` (see :func:`trades_frame` for the columns).

    Arguments as in :func:`fetch_bars`.
    """
    return _fetch(broker, _TRADES, _params(symbols, start, end, feed, limit, sort, progress, tz), limit, progress, tz)


def _params(
    symbols: Any, start: Any, end: Any, feed: Any, limit: int | None, sort: Any, progress: Any, tz: Any
) -> dict[str, Any]:
    """Every argument checked (see :mod:`alpaca_nb.params`); the query without ``symbols``,
    whose groups (sorted, as Alpaca orders its items) are under ``"_chunks"``."""
    params.count(limit, "limit", allow_none=True)
    params.flag(progress, "progress")
    params.tz(tz)
    names = params.symbols(symbols)
    query: dict[str, Any] = {"sort": params.choice(sort, "sort", params.SORTS)}
    for name, text in zip(("start", "end"), params.time_range(start, end), strict=False):
        if text is not None:
            query[name] = text
    if feed is not None:
        query["feed"] = params.choice(feed, "feed", params.FEEDS)
    query["_chunks"] = params.symbol_chunks(sorted(names))
    return query


def _fetch(
    broker: Broker, kind: _Kind, query: dict[str, Any], limit: int | None, progress: bool, tz: str | None
) -> pd.DataFrame:
    """Every page of every group of symbols into one set of columns.

    Groups go in symbol order and a ``limit`` counts over all of them, so the rows are those
    one request for every symbol would give.
    """
    chunks = query.pop("_chunks")
    columns = _Columns(kind)
    what = f"historical {kind.name} for {_short([s for chunk in chunks for s in chunk])}"
    bar = None
    try:
        for number, chunk in enumerate(chunks, 1):
            token: str | None = None
            while True:
                remaining = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - columns.rows)
                page_query = {**query, "symbols": ",".join(chunk), "limit": remaining}
                if token:
                    page_query["page_token"] = token
                page = decode_json(
                    broker.get_bytes("data", kind.path, page_query, what=what), what, kind.decoder.decode
                )
                rows = columns.add(page.data)
                token = page.next_page_token
                full = limit is not None and columns.rows >= limit
                done = full or (not token and number == len(chunks))
                if bar is None and progress and not done:
                    from tqdm.auto import tqdm  # imported only when a bar shows

                    bar = tqdm(desc=what, unit=f" {kind.name}", unit_scale=True, total=limit)
                    bar.update(columns.rows)
                elif bar is not None:
                    bar.update(rows)
                if full or not token:
                    break
            if limit is not None and columns.rows >= limit:
                break
    finally:
        if bar is not None:
            bar.close()
    return columns.frame(tz)


def _short(names: list[str]) -> str:
    return ",".join(names) if len(names) <= 3 else f"{','.join(names[:3])} and {len(names) - 3} more"
