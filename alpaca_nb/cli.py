"""``alpaca-nb``: the local broker, the tour, and the ledger from a shell.

    alpaca-nb sim [--port N --seed S]   serve the local broker in the foreground
    alpaca-nb sim start|stop|status|reset
    alpaca-nb demo                      a short tour against the local broker
    alpaca-nb sync                      bring the configured account's orders and fills into the ledger
    alpaca-nb reconcile                 list every difference between ledger and broker (exit 1 if any)
    alpaca-nb ledger orders [--user U] [--status S] [--symbol X] [--limit N]
    alpaca-nb ledger fills [--symbol X] [--limit N]
    alpaca-nb ledger events CLIENT_ORDER_ID
    alpaca-nb ledger sql "SELECT ..."
    alpaca-nb ledger export PATH [TABLE_OR_SELECT]
    alpaca-nb ledger health             what the ledger could not take in (exit 1 if anything)
    alpaca-nb ledger path | drain

``sync`` and ``reconcile`` use the settings a notebook's ``connect()`` uses (environment
variables and ``.env``); the ``ledger`` commands only read the ledger file
(``$ALPACA_NB_LEDGER``), all accounts in it, and need no broker.

Exit codes: 0 done; 1 differences found (``reconcile``) or records set aside (``ledger
health``); 2 an error (one line on stderr saying what and what to do: bad settings, a busy
ledger, a refused query, ...; add ``--debug`` or set ``ALPACA_NB_DEBUG=1`` for the traceback);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alpaca_nb.ledger import Ledger
    from alpaca_nb.models import AlpacaOrderRequest
    from alpaca_nb.service import AlpacaService


def _request(**fields: Any) -> AlpacaOrderRequest:
    """An order request from the loose values one types (``side="buy"``, ``qty=5``, float
    prices, dict legs): :class:`~alpaca_nb.models.AlpacaOrderRequest` parses them when built."""
    from alpaca_nb.models import AlpacaOrderRequest

    return AlpacaOrderRequest(**fields)


def _ledger_of(svc: AlpacaService) -> Ledger:
    """The ledger ``connect()`` gave the service (the commands here never pass another store)."""
    from alpaca_nb.ledger import Ledger

    ledger = svc.order_service
    assert isinstance(ledger, Ledger), "connect() keeps managed orders in the ledger"
    return ledger


def demo() -> int:
    """Connect with no credentials, show the account and quotes, place three orders, list them."""
    import pandas as pd

    import alpaca_nb as nb

    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 12)
    svc = nb.connect(environment="local")
    print(f"connected: {svc!r}\n")
    account = svc.account().iloc[0]
    print(
        f"account {account['account_number']}: cash ${account['cash']:,.2f}, "
        f"equity ${account['equity']:,.2f}, buying power ${account['buying_power']:,.2f}\n"
    )
    quotes = svc.quotes(["AAPL", "MSFT", "SPY"])
    print("latest quotes:")
    print(quotes[["timestamp", "bid_price", "ask_price", "bid_size", "ask_size"]], "\n")
    ask = quotes["ask_price"].astype(float)["AAPL"]
    bid = quotes["bid_price"].astype(float)["MSFT"]
    placed = [
        svc.place_order_sync(user="demo", order_request=_request(symbol="AAPL", qty=5, side="buy", type="market")),
        svc.place_order_sync(
            user="demo",
            order_request=_request(
                symbol="MSFT", qty=3, side="buy", type="limit", limit_price=round(bid * 0.98, 2), time_in_force="gtc"
            ),
        ),
        svc.place_order_sync(
            user="demo",
            order_request=_request(
                symbol="AAPL",
                qty=2,
                side="buy",
                type="limit",
                limit_price=round(ask * 1.002, 2),
                order_class="bracket",
                take_profit={"limit_price": round(ask * 1.05, 2)},
                stop_loss={"stop_price": round(ask * 0.95, 2)},
            ),
        ),
    ]
    for order in placed:
        print(
            f"placed {order.side.value} {order.symbol} {order.type.value} "
            f"({order.order_class.value}): {order.status.value}, alpaca id {order.alpaca_order_id}"
        )
    print("\norders:")
    cols = ["symbol", "side", "type", "order_class", "qty", "limit_price", "status", "filled_avg_price"]
    print(svc.orders(status="all", limit=10)[cols].to_string(index=False))
    print("\npositions:")
    print(svc.positions()[["symbol", "qty", "avg_entry_price", "market_value"]].to_string(index=False))
    result = svc.sync()
    ledger = _ledger_of(svc)
    print(f"\nledger {ledger.path}: {result}")
    mine = ledger.orders(user="demo")
    print(mine[["client_order_id", "symbol", "side", "type", "status", "filled_qty"]].tail(6).to_string(index=False))
    differences = svc.reconcile()
    print(
        "reconcile: in step with the broker"
        if differences.empty
        else f"reconcile: {len(differences)} differences\n{differences.to_string(index=False)}"
    )
    from alpaca_nb import analytics

    marks = svc.quotes(sorted(set(mine["symbol"])))["bid_price"]
    print("\nP&L by symbol (FIFO, open lots marked at the bid):")
    print(analytics.pnl(ledger, marks).round(2).to_string(index=False))
    return 0


def sync() -> int:
    import alpaca_nb as nb

    svc = nb.connect()
    result = svc.sync()
    print(f"{svc!r}\nledger {_ledger_of(svc).path}: {result}")
    return 0


def reconcile() -> int:
    import alpaca_nb as nb

    differences = nb.connect().reconcile()
    if differences.empty:
        print("in step with the broker")
        return 0
    print(differences.to_string(index=False))
    return 1


def ledger(argv: list[str]) -> int:
    from alpaca_nb.ledger import Ledger

    parser = argparse.ArgumentParser(prog="alpaca-nb ledger", description="read the managed-order ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    orders = commands.add_parser("orders", help="managed orders, newest last")
    orders.add_argument("--user")
    orders.add_argument("--status", action="append", help="a managed status (repeatable)")
    orders.add_argument("--symbol")
    orders.add_argument("--limit", type=int, default=50, help="rows shown (the newest; 0 = all)")
    fills = commands.add_parser("fills", help="recorded fills, newest last")
    fills.add_argument("--symbol")
    fills.add_argument("--limit", type=int, default=50)
    events = commands.add_parser("events", help="the history of one order")
    events.add_argument("client_order_id")
    sql = commands.add_parser("sql", help="read-only SQL over the ledger")
    sql.add_argument("query")
    export = commands.add_parser("export", help="a table or a SELECT to Parquet or CSV (by the suffix)")
    export.add_argument("path")
    export.add_argument("table", nargs="?", default="managed_orders", help="a table name or a SELECT")
    commands.add_parser("path", help="where the ledger file is")
    commands.add_parser(
        "drain",
        help="move the write-ahead journal into the file (before other DuckDB clients) "
        "and retry every record set aside",
    )
    commands.add_parser(
        "health",
        help="journal records set aside (with why), unreadable journal files, backlog; exit 1 if anything is set aside",
    )
    args = parser.parse_args(argv)

    book = Ledger()
    if args.command == "path":
        print(book.path)
        return 0
    if args.command == "drain":
        print("journal moved into the ledger" if book.drain() else "the journal was empty")
        left = book.health().set_aside
        if left:
            print(f"{len(left)} record(s) still set aside: alpaca-nb ledger health says why")
        return 0
    if args.command == "health":
        health = book.health()
        print(health)
        return 0 if health.ok else 1
    if args.command == "export":
        print(book.export(args.path, args.table))
        return 0
    if args.command == "orders":
        frame = book.orders(args.user, status=args.status, symbol=args.symbol)
        columns = [
            "created_at",
            "user",
            "symbol",
            "side",
            "type",
            "qty",
            "limit_price",
            "status",
            "filled_qty",
            "filled_avg_price",
            "client_order_id",
            "environment",
        ]
    elif args.command == "fills":
        frame = book.fills(symbol=args.symbol)
        columns = ["filled_at", "symbol", "side", "qty", "price", "client_order_id", "source", "environment"]
    elif args.command == "events":
        frame = book.events(args.client_order_id)
        columns = ["event_at", "source", "event", "previous_status", "status", "alpaca_status", "filled_qty"]
    else:
        frame, columns = book.sql(args.query), None
    if columns is not None:
        limit = getattr(args, "limit", 0)
        frame = frame[columns].tail(limit) if limit else frame[columns]
    print(frame.to_string(index=False) if len(frame) else "(no rows)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. alpaca_nb's errors (and Ctrl-C) end it with one
    line on stderr instead of a traceback, unless ``--debug`` or ``ALPACA_NB_DEBUG=1``."""
    from alpaca_nb.errors import AlpacaNbError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ALPACA_NB_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        return _run(argv)
    except AlpacaNbError as err:
        if debug:
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"alpaca-nb: error: {message} ({type(err).__name__}; --debug shows the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("alpaca-nb: interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "sim":
        from alpaca_nb.sim.__main__ import main as sim_main

        return sim_main(argv[1:], prog="alpaca-nb sim")
    if argv and argv[0] == "ledger":
        return ledger(argv[1:])
    parser = argparse.ArgumentParser(
        prog="alpaca-nb",
        description=__doc__.split("\n")[0],
        epilog="alpaca-nb sim --help and alpaca-nb ledger --help say more; --debug (anywhere) shows tracebacks",
    )
    parser.add_argument("command", choices=("demo", "sim", "sync", "reconcile", "ledger"), help="what to run")
    args = parser.parse_args(argv)
    return {"demo": demo, "sync": sync, "reconcile": reconcile}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
