"""P&L from the ledger's fills, in DuckDB SQL: positions, FIFO lots, realized and unrealized
P&L by symbol, user and tag, daily P&L and an equity curve.

    from alpaca_nb import analytics
    analytics.positions(ledger, marks={"AAPL": 191.2})
    analytics.pnl(ledger, marks, by="user")
    analytics.equity_curve(ledger, daily_closes, starting_cash=100_000)

**FIFO without a loop.** Number each side's shares in time order: a buy of 10 after 30 bought
shares holds units (30, 40] of the buy queue, a sell likewise on the sell queue. FIFO closes
the k-th unit bought against the k-th unit sold, flips included: while long, a sell closes the
oldest open buy, which is exactly unit (sold so far + 1); while short, a buy closes the oldest
open sell, unit (bought so far + 1); a sell with no long open opens a short lot. So the lots are
the overlaps of the two queues' intervals: one running sum per side, then one ordered pass over
the interval ends of both sides, each end closing a segment that belongs to the buy and the
sell whose intervals contain it. A segment whose buy came first is a long lot closed by the
sell, otherwise a short lot closed by the buy; the P&L of either is qty x (sell - buy). Units
one side has and the other has not yet matched are the open lots. Window functions only, no
Python per fill: P&L by symbol over a million fills takes about half a second (it needs only
the running sums), matching every lot about a second (see bench/RESULTS.md).

**Marks.** ``marks`` gives the price to value open lots at: a dict ``{symbol: price}``, a Series
indexed by symbol, or a DataFrame with ``symbol`` and ``price`` (or ``mark`` / ``close``)
columns. For :func:`daily_pnl` and :func:`equity_curve` marks are per day: a long DataFrame with
``date`` (or ``timestamp``), ``symbol`` and a price column, or a wide one indexed by date with a
column per symbol (e.g. daily closes). A symbol without a mark is marked at its last fill price.

**Attribution.** The account's lots are matched per account, environment and symbol,
whoever placed the orders. Realized P&L belongs to the fill that closes a lot (its order's
``user`` and ``tags``), unrealized P&L to the fill that opened it. An order carries several
tags, so P&L by tag counts a lot once under each of its tags (tags do not add up to the total).

All functions take the ledger's scope (``account_id=`` / ``environment=``, see
:mod:`alpaca_nb.ledger`) and return DataFrames with float64 money columns. Every argument is
checked before the ledger is read: a bad one (a mark that is not a finite price below
$10,000,000, an unknown ``by`` or ``tz``, a non-ASCII symbol) raises
:class:`~alpaca_nb.errors.InvalidArgumentError` naming it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from . import params
from .errors import InvalidArgumentError
from .ledger import SCOPE, Ledger, LedgerRead
from .models import MAX_PRICE

__all__ = ["lots", "positions", "pnl", "daily_pnl", "equity_curve"]

DAY_TZ = "America/New_York"  # trading days are New York days

# -- SQL building blocks -------------------------------------------------------------------------

_SCOPED_FILLS = """
    scoped AS NOT MATERIALIZED (
        SELECT *, hash(account_id, environment, symbol) AS k FROM fills WHERE {where})"""

# Each fill's interval on its side's queue: units (hi - qty, hi]. A running DECIMAL sum is
# DuckDB's slow path; when every quantity is a whole number of shares and no queue reaches 2^53
# shares, the same sum in DOUBLE is exact and about a third faster (see _queues). Fractional
# shares take the exact DECIMAL path.
_QUEUES = """
    queues AS (
        SELECT seq, k, side = 'buy' AS is_buy, qty, price, filled_at, {hi} AS hi
        FROM scoped)"""
_HI_DECIMAL = "sum(qty) OVER (PARTITION BY k, side = 'buy' ORDER BY filled_at, seq)"
_HI_WHOLE = "(sum(qty::DOUBLE) OVER (PARTITION BY k, side = 'buy' ORDER BY filled_at, seq))::BIGINT::DECIMAL(38, 9)"

# Every interval end closes a segment (next lower end, this end]; it belongs to the buy and the
# sell whose intervals contain it: the nearest ends at or above it on each side.
_SEGMENTS = """
    segments AS (
        SELECT k, hi - coalesce(lead(hi) OVER w, 0) AS qty,
               last_value(CASE WHEN is_buy THEN seq END IGNORE NULLS) OVER w AS buy_seq,
               last_value(CASE WHEN is_buy THEN filled_at END IGNORE NULLS) OVER w AS buy_at,
               last_value(CASE WHEN NOT is_buy THEN seq END IGNORE NULLS) OVER w AS sell_seq,
               last_value(CASE WHEN NOT is_buy THEN filled_at END IGNORE NULLS) OVER w AS sell_at
        FROM queues
        WINDOW w AS (PARTITION BY k ORDER BY hi DESC ROWS UNBOUNDED PRECEDING))"""

_LOTS = """
    lots AS (
        SELECT o.account_id, o.environment, o.symbol,
               CASE WHEN o.side = 'buy' THEN 'long' ELSE 'short' END AS direction,
               s.qty,
               o.execution_id AS open_execution_id, o.client_order_id AS open_client_order_id,
               o.filled_at AS opened_at, o.price AS open_price,
               c.execution_id AS close_execution_id, c.client_order_id AS close_client_order_id,
               c.filled_at AS closed_at, c.price AS close_price,
               CASE WHEN c.seq IS NULL THEN NULL
                    ELSE s.qty * (CASE WHEN o.side = 'buy' THEN c.price - o.price ELSE o.price - c.price END)
               END AS realized_pnl
        FROM (
            SELECT seg.k, seg.qty,
                   -- the earlier of the pair opened the lot; a lone side is still open
                   CASE WHEN sell_seq IS NULL THEN buy_seq
                        WHEN buy_seq IS NULL THEN sell_seq
                        WHEN buy_at < sell_at OR (buy_at = sell_at AND buy_seq < sell_seq)
                        THEN buy_seq ELSE sell_seq END AS open_seq,
                   CASE WHEN buy_seq IS NULL OR sell_seq IS NULL THEN NULL
                        WHEN buy_at < sell_at OR (buy_at = sell_at AND buy_seq < sell_seq)
                        THEN sell_seq ELSE buy_seq END AS close_seq
            FROM segments seg
            WHERE seg.qty > 0) s
        JOIN scoped o ON o.seq = s.open_seq
        LEFT JOIN scoped c ON c.seq = s.close_seq)"""

# Without the lots: the first min(bought, sold) units of each side are matched, the rest open.
_TOTALS = """
    sides AS (
        SELECT k, least(coalesce(sum(qty) FILTER (WHERE side = 'buy'), 0),
                        coalesce(sum(qty) FILTER (WHERE side = 'sell'), 0)) AS matched
        FROM scoped GROUP BY k),
    parts AS (
        SELECT q.k, q.is_buy, q.qty, q.price,
               greatest(0, least(q.qty, s.matched - (q.hi - q.qty))) AS part  -- matched units
        FROM queues q JOIN sides s USING (k)),
    totals AS (
        SELECT k, sum(CASE WHEN is_buy THEN qty ELSE -qty END) AS qty,
               sum(CASE WHEN is_buy THEN -part ELSE part END * price) AS realized_pnl,
               sum(CASE WHEN is_buy THEN qty - part ELSE part - qty END * price) AS open_cost
        FROM parts GROUP BY k)"""

_LAST_PRICES = """
    last_prices AS (
        SELECT k, arg_max(price, (filled_at, seq)) AS last_price FROM scoped GROUP BY k)"""


_MARKS_FORMS = "a dict {symbol: price}, a Series indexed by symbol, or a DataFrame with symbol and price columns"


def _marks_frame(marks: Any) -> pd.DataFrame:
    """Point-in-time marks as a frame of ``symbol`` and ``mark`` (float)."""
    if marks is None:
        return pd.DataFrame({"symbol": pd.Series([], dtype=object), "mark": pd.Series([], dtype=float)})
    if isinstance(marks, Mapping):
        symbols, prices = list(marks), list(marks.values())
    elif isinstance(marks, pd.Series):
        symbols, prices = list(marks.index), list(marks)
    elif isinstance(marks, pd.DataFrame):
        data = marks.reset_index() if "symbol" not in marks.columns else marks
        if "symbol" not in data.columns:
            raise InvalidArgumentError(f"marks have no symbol column: give {_MARKS_FORMS}", "marks")
        symbols, prices = list(data["symbol"]), list(data[_price_column(data)])
    else:
        raise InvalidArgumentError(f"marks is of type {type(marks).__name__}: give {_MARKS_FORMS}", "marks")
    frame = pd.DataFrame({"symbol": _mark_symbols(symbols), "mark": _prices(prices, missing="refuse")})
    return frame.drop_duplicates("symbol", keep="last")


def _mark_symbols(values: Sequence[Any]) -> list[str]:
    """Each symbol checked once (ASCII, Alpaca's grammar) and upper-cased."""
    checked = {value: params.symbol(value, "marks") for value in dict.fromkeys(values)}
    return [checked[value] for value in values]


def _prices(values: Sequence[Any], *, missing: str) -> list[float]:
    """Marks as floats: each a finite price from 0 up to (not including) $10,000,000, the most
    the ledger's DECIMAL(18, 9) arithmetic takes. ``missing="drop"``: a null is NaN (dropped)."""
    out = []
    for value in values:
        if missing == "drop" and (value is None or (isinstance(value, float) and value != value)):
            out.append(float("nan"))
            continue
        try:
            if isinstance(value, bool) or not isinstance(value, (numbers.Real, Decimal, str)):
                raise TypeError
            price = float(value)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"marks holds {value!r}: every mark is a price (a number)", "marks") from None
        if not 0 <= price < float(MAX_PRICE):  # NaN fails this too
            raise InvalidArgumentError(
                f"marks holds {value!r}: a mark is a finite price from 0 up to {MAX_PRICE:,} dollars", "marks"
            )
        out.append(price)
    return out


def _price_column(frame: pd.DataFrame) -> str:
    for name in ("price", "mark", "close", "last"):
        if name in frame.columns:
            return name
    raise InvalidArgumentError(
        f"marks need a price column (price, mark, close or last); got {list(frame.columns)}", "marks"
    )


def _daily_marks_frame(marks: Any) -> pd.DataFrame:
    """Per-day marks as a long frame of ``date`` (datetime64 day), ``symbol``, ``mark``."""
    empty = pd.DataFrame(
        {
            "date": pd.Series([], dtype="datetime64[s]"),
            "symbol": pd.Series([], dtype=object),
            "mark": pd.Series([], dtype=float),
        }
    )
    if marks is None:
        return empty
    if not isinstance(marks, pd.DataFrame):
        raise InvalidArgumentError(
            "daily marks must be a DataFrame: long (date, symbol, price) or wide (date "
            f"index, a column per symbol), not a {type(marks).__name__}",
            "marks",
        )
    if "symbol" in marks.columns or "symbol" in (marks.index.names or ()):
        data = marks.reset_index()
        column = next((c for c in ("date", "timestamp", "day", "time") if c in data.columns), None)
        if column is None:
            raise InvalidArgumentError("daily marks need a date (or timestamp) column", "marks")
        frame = pd.DataFrame({"when": data[column], "symbol": data["symbol"], "mark": data[_price_column(data)]})
    else:
        wide = marks.copy()
        wide.index.name = "when"
        frame = wide.reset_index().melt(id_vars="when", var_name="symbol", value_name="mark")
    try:
        when = pd.to_datetime(frame["when"])
    except (ValueError, TypeError, OverflowError):
        raise InvalidArgumentError("daily marks' dates are not all dates or timestamps", "marks") from None
    if when.isna().any():
        raise InvalidArgumentError("daily marks have a missing date: give every row its day", "marks")
    if getattr(when.dt, "tz", None) is not None:  # a timestamp: its New York day
        when = when.dt.tz_convert(DAY_TZ).dt.tz_localize(None)
    numbers = pd.to_numeric(frame["mark"], errors="coerce").astype(float)  # text, None: no mark that day
    out = pd.DataFrame(
        {
            "date": when.dt.normalize().astype("datetime64[s]"),
            "symbol": _mark_symbols(list(frame["symbol"])),
            "mark": _prices(list(numbers), missing="drop"),
        }
    )
    return out.dropna(subset=["mark"]).sort_values(["symbol", "date"]).drop_duplicates(["symbol", "date"], keep="last")


def _day_zone(tz: Any) -> str:
    """The zone whose days :func:`daily_pnl` counts in: an IANA name (or a ZoneInfo), never None."""
    name = params.tz(tz, name_only=True)
    if name is None:
        raise InvalidArgumentError(f"tz=None is not valid: give the zone whose days count, e.g. {DAY_TZ!r}", "tz")
    return name


def _queues(read: LedgerRead, where: str, values: list[Any]) -> str:
    """The ``queues`` CTE for these fills: the DOUBLE running sum when it is exact (whole shares,
    every queue below 2^53 shares), else DECIMAL."""
    exact = read.sql(
        f"""
        SELECT coalesce(bool_and(whole) AND max(total) < 9007199254740992, false) AS exact FROM (
            SELECT bool_and(qty = trunc(qty)) AS whole, sum(qty) AS total
            FROM fills WHERE {where} GROUP BY account_id, environment, symbol, side)""",
        values,
    )["exact"].iloc[0]
    return _QUEUES.format(hi=_HI_WHOLE if bool(exact) else _HI_DECIMAL)


def _scope(ledger: Ledger, account_id: Any, environment: Any, symbol: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause and its values for the fills in scope; every scope argument checked."""
    if not isinstance(ledger, Ledger):
        raise InvalidArgumentError(
            f"ledger={ledger!r} is not a Ledger: give svc.order_service or alpaca_nb.ledger.Ledger(path)", "ledger"
        )
    if not (account_id is SCOPE or account_id is None or isinstance(account_id, str)):
        raise InvalidArgumentError(
            f"account_id={account_id!r} is not valid: give an account id (str), None "
            "for every account, or leave it out for the ledger's own",
            "account_id",
        )
    if not (environment is SCOPE or environment is None):
        environment = params.choice(environment, "environment", ("local", "paper", "live"))
    symbol = None if symbol is None else params.symbol(symbol)
    where, values = ledger.scope_where(account_id, environment)
    if symbol is not None:
        where = "symbol = ?" if where == "true" else f"{where} AND symbol = ?"
        values.append(symbol)
    return where, values


def _run(
    ledger: Ledger, query: Callable[[str], str], where: str, values: list[Any], **frames: pd.DataFrame
) -> pd.DataFrame:
    """Run ``query(queues_cte)`` over the scoped fills in one read of the ledger."""
    with ledger.reading() as read:
        return read.sql(query(_queues(read, where, values)), values, frames=frames)


# Lots with their mark, unrealized P&L and the user and tags they are booked to.
_VALUED_LOTS = """
    valued AS (
        SELECT l.*, coalesce(mk.mark, lp.last_price) AS mark,
               CASE WHEN l.close_execution_id IS NULL THEN
                    l.qty * (coalesce(mk.mark, lp.last_price) - l.open_price)
                          * CASE WHEN l.direction = 'long' THEN 1 ELSE -1 END END AS unrealized_pnl,
               mo."user", mo.tags
        FROM lots l
        LEFT JOIN (SELECT symbol, mark::DECIMAL(18, 9) AS mark FROM _marks) mk ON mk.symbol = l.symbol
        LEFT JOIN last_prices lp ON lp.k = hash(l.account_id, l.environment, l.symbol)
        LEFT JOIN managed_orders mo
               ON mo.client_order_id = coalesce(l.close_client_order_id, l.open_client_order_id))"""


def _lots_query(where: str, select: str) -> Callable[[str], str]:
    return lambda queues: (
        f"WITH {_SCOPED_FILLS.format(where=where)}, {queues}, {_SEGMENTS}, {_LOTS}, "
        f"{_LAST_PRICES}, {_VALUED_LOTS} {select}"
    )


# -- the public face -----------------------------------------------------------------------------


def lots(
    ledger: Ledger, marks: Any = None, *, symbol: str | None = None, account_id: Any = SCOPE, environment: Any = SCOPE
) -> pd.DataFrame:
    """FIFO lots: one row per piece of a fill matched against another, and per still-open piece.

    Columns: ``account_id, environment, symbol, direction`` (long: opened by a buy; short:
    opened by a sell), ``qty``, ``open_execution_id, open_client_order_id, opened_at,
    open_price``, ``close_execution_id, close_client_order_id, closed_at, close_price`` (null
    while open), ``realized_pnl`` (closed lots), ``mark``, ``unrealized_pnl`` (open lots),
    ``user``, ``tags`` (of the closing order for closed lots, of the opening one for open
    lots). Sorted by symbol and opening time.
    """
    where, values = _scope(ledger, account_id, environment, symbol)
    select = (
        "SELECT * FROM valued ORDER BY account_id, environment, symbol, opened_at, "
        "open_execution_id, closed_at NULLS LAST"
    )
    return _run(ledger, _lots_query(where, select), where, values, _marks=_marks_frame(marks))


def positions(ledger: Ledger, marks: Any = None, *, account_id: Any = SCOPE, environment: Any = SCOPE) -> pd.DataFrame:
    """Positions from the fills, one row per account, environment and symbol ever traded.

    Columns: ``account_id, environment, symbol, qty`` (negative: short), ``avg_entry_price``
    (of the open FIFO lots), ``cost_basis`` (signed), ``mark``, ``market_value``,
    ``unrealized_pnl``, ``realized_pnl``. Flat symbols keep their row (qty 0) for their
    realized P&L. Needs no lot matching: the matched units are the first min(bought, sold)
    of each side, which is what makes a million fills take well under a second.
    """
    where, values = _scope(ledger, account_id, environment, None)

    def query(queues: str) -> str:
        return f"""
        WITH {_SCOPED_FILLS.format(where=where)}, {queues}, {_TOTALS}, {_LAST_PRICES},
        names AS (SELECT DISTINCT k, account_id, environment, symbol FROM scoped)
        SELECT n.account_id, n.environment, n.symbol, t.qty,
               CASE WHEN t.qty <> 0 THEN t.open_cost / t.qty END AS avg_entry_price,
               t.open_cost AS cost_basis, coalesce(mk.mark, lp.last_price) AS mark,
               t.qty * coalesce(mk.mark, lp.last_price) AS market_value,
               t.qty * coalesce(mk.mark, lp.last_price) - t.open_cost AS unrealized_pnl,
               t.realized_pnl
        FROM totals t JOIN names n USING (k) JOIN last_prices lp USING (k)
        LEFT JOIN (SELECT symbol, mark::DECIMAL(18, 9) AS mark FROM _marks) mk ON mk.symbol = n.symbol
        ORDER BY n.account_id, n.environment, n.symbol"""

    return _run(ledger, query, where, values, _marks=_marks_frame(marks))


_BY = {"symbol": ("symbol",), "user": ('"user"',), "tag": ("tag",), "account": ("account_id", "environment")}


def pnl(
    ledger: Ledger,
    marks: Any = None,
    *,
    by: str | Sequence[str] = "symbol",
    account_id: Any = SCOPE,
    environment: Any = SCOPE,
) -> pd.DataFrame:
    """Realized, unrealized and total P&L grouped ``by`` "symbol" (default), "user", "tag" or
    "account", or a list of those (e.g. ``["user", "symbol"]``).

    Columns: the grouping columns, ``realized_pnl``, ``unrealized_pnl``, ``total_pnl``.
    Fills of orders the ledger does not know (no user, no tags) group under a null user / tag.

    >>> analytics.pnl(ledger, {"AAPL": 191.2, "MSFT": 415.0}, by=["user", "symbol"])
    """
    keys = params.choice_list(by, "by", tuple(_BY), verb="group by")
    columns = ", ".join(c for k in keys for c in _BY[k])
    marks_frame = _marks_frame(marks)
    where, values = _scope(ledger, account_id, environment, None)
    if keys == ["symbol"]:  # no lots needed
        frame = positions(ledger, marks, account_id=account_id, environment=environment)
        out = frame.groupby("symbol", as_index=False)[["realized_pnl", "unrealized_pnl"]].sum()
    else:
        source = (
            "(SELECT v.*, t.tag FROM valued v LEFT JOIN LATERAL (SELECT unnest(v.tags) AS tag) t ON true)"
            if "tag" in keys
            else "valued"
        )
        select = (
            f"SELECT {columns}, coalesce(sum(realized_pnl), 0) AS realized_pnl, "
            f"coalesce(sum(unrealized_pnl), 0) AS unrealized_pnl FROM {source} "
            f"GROUP BY {columns} ORDER BY {columns}"
        )
        out = _run(ledger, _lots_query(where, select), where, values, _marks=marks_frame)
    out["total_pnl"] = out["realized_pnl"] + out["unrealized_pnl"]
    return out.reset_index(drop=True)


def daily_pnl(
    ledger: Ledger, marks: Any = None, *, account_id: Any = SCOPE, environment: Any = SCOPE, tz: str = DAY_TZ
) -> pd.DataFrame:
    """P&L per day (days in ``tz``, New York by default): one row per day with a fill or a mark.

    Columns: ``date``, ``realized_pnl`` (booked that day, FIFO), ``unrealized_pnl`` (of the
    open lots at the day's end, at that day's marks), ``pnl`` (the day's change in total P&L:
    realized + change in unrealized), ``cumulative_pnl``. Total P&L at a day's end is the
    cash flow of all fills so far plus the position at the mark, whatever the lot method;
    unrealized is that minus realized so far.
    """
    tz = _day_zone(tz)  # it goes into the SQL text: a known IANA name, nothing else
    daily_marks = _daily_marks_frame(marks)
    where, values = _scope(ledger, account_id, environment, None)
    day = f"(filled_at AT TIME ZONE '{tz}')::DATE"

    def query(queues: str) -> str:
        return f"""
        WITH {_SCOPED_FILLS.format(where=where)}, {queues}, {_SEGMENTS}, {_LOTS},
        realized AS (
            SELECT (closed_at AT TIME ZONE '{tz}')::DATE AS date, sum(realized_pnl) AS realized_pnl
            FROM lots WHERE closed_at IS NOT NULL GROUP BY ALL),
        flows AS (  -- per symbol and day: shares and cash that moved, and the day's last price
            SELECT k, any_value(symbol) AS symbol, {day} AS date,
                   sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS qty,
                   sum(CASE WHEN side = 'buy' THEN -qty ELSE qty END * price) AS cash,
                   arg_max(price, (filled_at, seq)) AS last_price
            FROM scoped GROUP BY k, {day}),
        days AS (
            SELECT DISTINCT date FROM flows
            UNION SELECT DISTINCT date::DATE FROM _daily_marks
                  WHERE date::DATE >= (SELECT min(date) FROM flows) AND symbol IN (SELECT symbol FROM flows)),
        grid AS (SELECT f.k, f.symbol, d.date FROM (SELECT DISTINCT k, symbol FROM flows) f, days d),
        running AS (
            SELECT g.k, g.symbol, g.date,
                   sum(coalesce(fl.qty, 0)) OVER w AS qty, sum(coalesce(fl.cash, 0)) OVER w AS cash,
                   last_value(fl.last_price IGNORE NULLS) OVER w AS last_price
            FROM grid g LEFT JOIN flows fl USING (k, date)
            WINDOW w AS (PARTITION BY g.k ORDER BY g.date ROWS UNBOUNDED PRECEDING)),
        valued AS (
            SELECT r.date, r.cash + r.qty * coalesce(m.mark, r.last_price) AS total
            FROM running r
            ASOF LEFT JOIN (SELECT symbol, date::DATE AS date, mark::DECIMAL(18, 9) AS mark FROM _daily_marks) m
                 ON m.symbol = r.symbol AND r.date >= m.date
            WHERE r.last_price IS NOT NULL),
        totals AS (SELECT date, sum(total) AS total FROM valued GROUP BY date)
        SELECT t.date,
               coalesce(r.realized_pnl, 0) AS realized_pnl,
               t.total - sum(coalesce(r.realized_pnl, 0)) OVER (ORDER BY t.date) AS unrealized_pnl,
               t.total - coalesce(lag(t.total) OVER (ORDER BY t.date), 0) AS pnl,
               t.total AS cumulative_pnl
        FROM totals t LEFT JOIN realized r USING (date)
        ORDER BY t.date"""

    frame = _run(ledger, query, where, values, _daily_marks=daily_marks)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    for column in ("realized_pnl", "unrealized_pnl", "pnl", "cumulative_pnl"):
        frame[column] = frame[column].astype(float)
    return frame


def equity_curve(
    ledger: Ledger,
    marks: Any = None,
    *,
    starting_cash: float = 0.0,
    account_id: Any = SCOPE,
    environment: Any = SCOPE,
    tz: str = DAY_TZ,
) -> pd.DataFrame:
    """Equity by day: ``date``, ``realized_pnl`` (cumulative), ``unrealized_pnl``,
    ``total_pnl``, ``equity`` (``starting_cash`` + total P&L), ``drawdown`` (equity below its
    running peak, <= 0). Same days and marks as :func:`daily_pnl`."""
    starting_cash = params.amount(starting_cash, "starting_cash")
    daily = daily_pnl(ledger, marks, account_id=account_id, environment=environment, tz=tz)
    out = pd.DataFrame(
        {
            "date": daily["date"],
            "realized_pnl": daily["realized_pnl"].cumsum(),
            "unrealized_pnl": daily["unrealized_pnl"],
            "total_pnl": daily["cumulative_pnl"],
        }
    )
    out["equity"] = starting_cash + out["total_pnl"]
    out["drawdown"] = out["equity"] - out["equity"].cummax()
    return out
