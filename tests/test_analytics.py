"""P&L from the ledger's fills: FIFO lots against a worked example done by hand and against a
plain Python FIFO, positions, grouping by user and tag, daily P&L and the equity curve."""

from __future__ import annotations

import random
from collections import defaultdict, deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from alpaca_nb import analytics
from alpaca_nb.ledger import Ledger
from alpaca_nb.models import ManagedOrder

ACCOUNT = "acct-1"
MON = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York, a Monday


def at(day: int, hour: int = 0) -> str:
    return (MON + timedelta(days=day, hours=hour)).isoformat().replace("+00:00", "Z")


def fill(execution_id: str, order: str, symbol: str, side: str, qty: str, price: str, when: str) -> dict:
    return {
        "execution_id": execution_id,
        "client_order_id": order,
        "alpaca_order_id": f"A-{order}",
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "price": price,
        "filled_at": when,
    }


@pytest.fixture
def worked(tmp_path) -> Ledger:
    """The worked example. ana trades AAPL, bob trades MSFT; carol's account must stay out.

    AAPL  e1  Mon  buy  10 @ 100    lot L1 long 10 @ 100
          e2  Mon  buy   5 @ 110    lot L2 long  5 @ 110
          e3a Tue  sell  7 @ 120    closes 7 of L1: 7 x 20 = 140
          e3b Tue  sell  5 @ 121    closes 3 of L1: 3 x 21 = 63, and 2 of L2: 2 x 11 = 22
          e4  Wed  sell  8 @ 130    closes 3 of L2: 3 x 20 = 60; nothing long is left, so the
                                    other 5 open a short lot S1 5 @ 130
          e5  Thu  buy   2 @ 125    closes 2 of S1: 2 x (130 - 125) = 10; S1 keeps 3 @ 130
          realized 140 + 63 + 22 + 60 + 10 = 295; open short 3 @ 130
    MSFT  f1  Mon  sell  4 @ 300    short 4 @ 300
          f2  Tue  buy   4 @ 290    closes it: 4 x 10 = 40
          f3  Wed  buy   6 @ 280    long 6 @ 280, open
          realized 40; open long 6 @ 280
    """
    ledger = Ledger(tmp_path / "ledger.duckdb", account_id=ACCOUNT, environment="local")
    for cid, user, tags in (
        ("ana-1", "ana", ("strategy:alpha", "symbol:AAPL")),
        ("ana-2", "ana", ("strategy:alpha", "symbol:AAPL")),
        ("ana-3", "ana", ("strategy:alpha", "symbol:AAPL", "exit")),
        ("ana-4", "ana", ("strategy:alpha", "symbol:AAPL", "exit")),
        ("ana-5", "ana", ("strategy:alpha", "symbol:AAPL")),
        ("bob-1", "bob", ("strategy:beta",)),
        ("bob-2", "bob", ("strategy:beta", "exit")),
        ("bob-3", "bob", ("strategy:beta",)),
    ):
        symbol = "AAPL" if user == "ana" else "MSFT"
        ledger.create(
            ManagedOrder(
                client_order_id=cid,
                user=user,
                symbol=symbol,
                side="buy",
                type="market",
                environment="local",
                qty=Decimal(1),
                tags=tags,
            )
        )
    ledger.record_fills(
        [
            fill("e1", "ana-1", "AAPL", "buy", "10", "100", at(0)),
            fill("e2", "ana-2", "AAPL", "buy", "5", "110", at(0, 1)),
            fill("e3a", "ana-3", "AAPL", "sell", "7", "120", at(1)),
            fill("e3b", "ana-3", "AAPL", "sell", "5", "121", at(1, 1)),
            fill("e4", "ana-4", "AAPL", "sell", "8", "130", at(2)),
            fill("e5", "ana-5", "AAPL", "buy", "2", "125", at(3)),
            fill("f1", "bob-1", "MSFT", "sell", "4", "300", at(0)),
            fill("f2", "bob-2", "MSFT", "buy", "4", "290", at(1)),
            fill("f3", "bob-3", "MSFT", "buy", "6", "280", at(2)),
        ],
        source="sync",
    )
    ledger.record_fills([fill("c1", "carol-1", "AAPL", "buy", "100", "1", at(0))], source="sync", account_id="acct-2")
    return ledger


MARKS = {"AAPL": 120, "MSFT": 290}


def test_fifo_lots_match_the_worked_example(worked):
    lots = analytics.lots(worked, MARKS, symbol="AAPL")
    got = [
        (
            r.direction,
            r.qty,
            r.open_execution_id,
            None if pd.isna(r.close_execution_id) else r.close_execution_id,
            r.realized_pnl,
            r.unrealized_pnl,
        )
        for r in lots.itertuples()
    ]
    nan = float("nan")
    expected = [
        ("long", 7, "e1", "e3a", 140, nan),
        ("long", 3, "e1", "e3b", 63, nan),
        ("long", 2, "e2", "e3b", 22, nan),
        ("long", 3, "e2", "e4", 60, nan),
        ("short", 2, "e4", "e5", 10, nan),
        ("short", 3, "e4", None, nan, 30),
    ]
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=False):
        assert row[:4] == want[:4]
        assert row[4] == pytest.approx(want[4], nan_ok=True) and row[5] == pytest.approx(want[5], nan_ok=True)
    assert lots["realized_pnl"].sum() == 295
    assert list(lots["user"]) == ["ana"] * 6
    assert lots.loc[5, "closed_at"] is pd.NaT and lots.loc[5, "mark"] == 120
    assert str(lots["opened_at"].dtype) == "datetime64[ns, UTC]"


def test_positions_from_fills(worked):
    positions = analytics.positions(worked, MARKS).set_index("symbol")
    assert list(positions.index) == ["AAPL", "MSFT"]  # carol's account is not in scope
    aapl, msft = positions.loc["AAPL"], positions.loc["MSFT"]
    assert (aapl.qty, aapl.avg_entry_price, aapl.cost_basis) == (-3, 130, -390)
    assert (aapl.market_value, aapl.unrealized_pnl, aapl.realized_pnl) == (-360, 30, 295)
    assert (msft.qty, msft.avg_entry_price, msft.unrealized_pnl, msft.realized_pnl) == (6, 280, 60, 40)
    # Without a mark a symbol is valued at its last fill price (AAPL 125, MSFT 280).
    bare = analytics.positions(worked).set_index("symbol")
    assert list(bare["mark"]) == [125, 280] and list(bare["unrealized_pnl"]) == [15, 0]
    every = analytics.positions(worked, account_id=None)
    assert len(every) == 3 and every.loc[every.account_id == "acct-2", "qty"].item() == 100
    # Marks as a Series or a frame mean the same.
    as_series = analytics.positions(worked, pd.Series(MARKS))
    as_frame = analytics.positions(worked, pd.DataFrame({"symbol": ["aapl", "msft"], "close": [120, 290]}))
    assert list(as_series["unrealized_pnl"]) == list(as_frame["unrealized_pnl"]) == [30, 60]


def test_pnl_by_symbol_user_and_tag(worked):
    by_symbol = analytics.pnl(worked, MARKS)
    assert by_symbol.to_dict("list") == {
        "symbol": ["AAPL", "MSFT"],
        "realized_pnl": [295, 40],
        "unrealized_pnl": [30, 60],
        "total_pnl": [325, 100],
    }
    by_user = analytics.pnl(worked, MARKS, by="user")
    assert by_user.to_dict("list") == {
        "user": ["ana", "bob"],
        "realized_pnl": [295, 40],
        "unrealized_pnl": [30, 60],
        "total_pnl": [325, 100],
    }
    by_tag = analytics.pnl(worked, MARKS, by="tag").set_index("tag")
    assert by_tag.loc["strategy:alpha"].tolist() == [295, 30, 325]
    assert by_tag.loc["strategy:beta"].tolist() == [40, 60, 100]
    # Realized P&L belongs to the closing fill: "exit" orders closed 140 + 63 + 22 + 60 of AAPL
    # (e3a, e3b, e4) and MSFT's 40 (f2); e5 (not tagged exit) closed the other 10.
    assert by_tag.loc["exit", "realized_pnl"] == 325 and by_tag.loc["exit", "unrealized_pnl"] == 30
    both = analytics.pnl(worked, MARKS, by=["user", "symbol"])
    assert both[["user", "symbol", "total_pnl"]].values.tolist() == [["ana", "AAPL", 325], ["bob", "MSFT", 100]]
    with pytest.raises(ValueError, match="group by"):
        analytics.pnl(worked, by="desk")


DAILY_MARKS = pd.DataFrame(
    {"AAPL": [105, 118, 128, 131, 120], "MSFT": [305, 292, 285, 270, 290]},
    index=pd.to_datetime(["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]),
)


def test_daily_pnl_and_equity_curve(worked):
    """Total P&L at a day's end = cash from the fills so far + position x that day's close.

    Mon  AAPL -1550 + 15 x 105 = 25,  MSFT 1200 - 4 x 305 = -20       total   5, realized   0
    Tue  AAPL  -105 +  3 x 118 = 249, MSFT 40 + 0                     total 289, realized 265
    Wed  AAPL   935 -  5 x 128 = 295, MSFT -1640 + 6 x 285 = 70       total 365, realized  60
    Thu  AAPL   685 -  3 x 131 = 292, MSFT -1640 + 6 x 270 = -20      total 272, realized  10
    Fri  AAPL   685 -  3 x 120 = 325, MSFT -1640 + 6 x 290 = 100      total 425 (marks only)
    """
    daily = analytics.daily_pnl(worked, DAILY_MARKS)
    assert [d.strftime("%a") for d in daily["date"]] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert daily["realized_pnl"].tolist() == [0, 265, 60, 10, 0]
    assert daily["unrealized_pnl"].tolist() == [5, 24, 40, -63, 90]
    assert daily["pnl"].tolist() == [5, 284, 76, -93, 153]
    assert daily["cumulative_pnl"].tolist() == [5, 289, 365, 272, 425]

    long_marks = DAILY_MARKS.stack().rename_axis(["date", "symbol"]).rename("close").reset_index()
    assert analytics.daily_pnl(worked, long_marks)["cumulative_pnl"].tolist() == [5, 289, 365, 272, 425]

    curve = analytics.equity_curve(worked, DAILY_MARKS, starting_cash=10_000)
    assert curve["equity"].tolist() == [10_005, 10_289, 10_365, 10_272, 10_425]
    assert curve["realized_pnl"].tolist() == [0, 265, 325, 335, 335]
    assert curve["drawdown"].tolist() == [0, 0, 0, -93, 0]
    # The last day agrees with the point-in-time figures at Friday's closes.
    assert (
        curve["realized_pnl"].iloc[-1] + curve["unrealized_pnl"].iloc[-1]
        == analytics.pnl(worked, MARKS)["total_pnl"].sum()
    )

    # Without marks each day is valued at the last fill price so far.
    bare = analytics.daily_pnl(worked)
    assert bare["realized_pnl"].tolist() == [0, 265, 60, 10]
    assert bare["cumulative_pnl"].iloc[-1] == 295 + 40 + 15 + 0


# -- FIFO against a plain Python FIFO on random fills ---------------------------------------------


def python_fifo(fills):
    """FIFO lots kept in deques: the obviously-correct reference."""
    books: dict[str, deque] = defaultdict(deque)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    for symbol, side, qty, price in fills:
        sign = 1 if side == "buy" else -1
        book, left = books[symbol], qty
        while left and book and (book[0][0] > 0) != (sign > 0):
            lot = book[0]
            take = min(left, abs(lot[0]))
            realized[symbol] += take * (price - lot[1]) * (1 if lot[0] > 0 else -1)
            lot[0] += take * sign
            left -= take
            if lot[0] == 0:
                book.popleft()
        if left:
            book.append([sign * left, price])
    return realized, books


@pytest.mark.parametrize("fractional", [False, True], ids=["whole-shares", "fractional-shares"])
def test_fifo_agrees_with_a_python_fifo_on_random_fills(tmp_path, fractional):
    rng = random.Random(5 if fractional else 6)
    ledger = Ledger(tmp_path / "l.duckdb", account_id=ACCOUNT, environment="paper")
    rows, when = [], MON
    for i in range(1500):
        when += timedelta(seconds=rng.choice([0, 0, 1, 30]))  # many fills share a time
        qty = Decimal(rng.randint(1, 4000)) / 1000 if fractional else Decimal(rng.randint(1, 60))
        rows.append(
            (
                f"x{i:05d}",
                rng.choice("ABC"),
                rng.choice(["buy", "sell"]),
                qty,
                Decimal(rng.randint(5000, 15000)) / 100,
                when,
            )
        )
    ledger.record_fills(
        [fill(eid, "o", s, side, str(q), str(p), w.isoformat()) for eid, s, side, q, p, w in rows], source="sync"
    )
    realized, books = python_fifo([(s, side, q, p) for _, s, side, q, p, _ in rows])

    positions = analytics.positions(ledger).set_index("symbol")
    lots = analytics.lots(ledger)
    by_lots = lots.groupby("symbol")["realized_pnl"].sum()
    for symbol in "ABC":
        assert positions.loc[symbol, "realized_pnl"] == pytest.approx(float(realized[symbol]), abs=1e-6)
        assert by_lots[symbol] == pytest.approx(float(realized[symbol]), abs=1e-6)
        open_qty = sum(lot[0] for lot in books[symbol])
        open_cost = sum(lot[0] * lot[1] for lot in books[symbol])
        assert positions.loc[symbol, "qty"] == pytest.approx(float(open_qty), abs=1e-9)
        assert positions.loc[symbol, "cost_basis"] == pytest.approx(float(open_cost), abs=1e-6)
        still_open = lots[(lots.symbol == symbol) & lots.close_execution_id.isna()]
        assert still_open["qty"].sum() == pytest.approx(float(sum(abs(lot[0]) for lot in books[symbol])), abs=1e-9)
    # Every fill's quantity is accounted for exactly once as an opening or closing piece.
    pieces = (
        pd.concat([lots.groupby("open_execution_id")["qty"].sum(), lots.groupby("close_execution_id")["qty"].sum()])
        .groupby(level=0)
        .sum()
    )
    assert pieces.round(9).to_dict() == {eid: float(q) for eid, _, _, q, _, _ in rows}


def test_the_service_marks_open_positions_at_the_mid_and_reports_pnl(manual_broker):
    from brokers import service_for

    from alpaca_nb import AlpacaOrderRequest

    svc = service_for(manual_broker)
    for symbol, qty, side in (("AAPL", 5, "buy"), ("MSFT", 3, "buy"), ("MSFT", 3, "sell")):
        svc.place_order_sync(
            user="ana", order_request=AlpacaOrderRequest(symbol=symbol, qty=qty, side=side, type="market")
        )
    svc.sync()
    marks = svc.marks()
    assert list(marks.index) == ["AAPL"]  # MSFT is flat: nothing to mark
    quote = manual_broker.market.quote("AAPL")  # the market stands still
    assert marks["AAPL"] == pytest.approx((float(quote.bid) + float(quote.ask)) / 2)
    assert svc.marks(["msft"]).index.tolist() == ["MSFT"] and svc.marks([]).empty
    mine = svc.pnl()
    expected = analytics.pnl(svc.order_service, {"AAPL": marks["AAPL"]})
    pd.testing.assert_frame_equal(mine, expected)
    assert set(mine["symbol"]) == {"AAPL", "MSFT"} and mine["total_pnl"].notna().all()
    by_user = svc.pnl(by="user")
    assert by_user["user"].tolist() == ["ana"]
    assert by_user["total_pnl"].iloc[0] == pytest.approx(mine["total_pnl"].sum())
