"""``alpaca-nb``: the local broker and the tour.

    alpaca-nb sim [--port N --seed S]   serve the local broker in the foreground
    alpaca-nb sim start|stop|status|reset
    alpaca-nb demo                      a short tour against the local broker
"""
from __future__ import annotations

import argparse
import sys


def demo() -> int:
    """Connect with no credentials, show the account and quotes, place three orders, list them."""
    import pandas as pd

    import alpaca_nb as nb
    from alpaca_nb.models import AlpacaOrderRequest

    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 12)
    svc = nb.connect(environment="local")
    print(f"connected: {svc!r}\n")
    account = svc.account().iloc[0]
    print(f"account {account['account_number']}: cash ${account['cash']:,.2f}, "
          f"equity ${account['equity']:,.2f}, buying power ${account['buying_power']:,.2f}\n")
    quotes = svc.quotes(["AAPL", "MSFT", "SPY"])
    print("latest quotes:")
    print(quotes[["timestamp", "bid_price", "ask_price", "bid_size", "ask_size"]], "\n")
    ask = quotes.loc["AAPL", "ask_price"]
    bid = quotes.loc["MSFT", "bid_price"]
    placed = [
        svc.place_order_sync(user="demo", order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=5, side="buy", type="market")),
        svc.place_order_sync(user="demo", order_request=AlpacaOrderRequest(
            symbol="MSFT", qty=3, side="buy", type="limit", limit_price=round(bid * 0.98, 2),
            time_in_force="gtc")),
        svc.place_order_sync(user="demo", order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=2, side="buy", type="limit", limit_price=round(ask * 1.002, 2),
            order_class="bracket", take_profit={"limit_price": round(ask * 1.05, 2)},
            stop_loss={"stop_price": round(ask * 0.95, 2)})),
    ]
    for order in placed:
        print(f"placed {order.side.value} {order.symbol} {order.type.value} "
              f"({order.order_class.value}): {order.status.value}, alpaca id {order.alpaca_order_id}")
    print("\norders:")
    cols = ["symbol", "side", "type", "order_class", "qty", "limit_price", "status", "filled_avg_price"]
    print(svc.orders(status="all", limit=10)[cols].to_string(index=False))
    print("\npositions:")
    print(svc.positions()[["symbol", "qty", "avg_entry_price", "market_value"]].to_string(index=False))
    result = svc.sync()
    ledger = svc.order_service
    print(f"\nledger {ledger.path}: {result}")
    mine = ledger.orders(user="demo")
    print(mine[["client_order_id", "symbol", "side", "type", "status", "filled_qty"]].tail(6).to_string(index=False))
    differences = svc.reconcile()
    print("reconcile: in step with the broker" if differences.empty
          else f"reconcile: {len(differences)} differences\n{differences.to_string(index=False)}")
    from alpaca_nb import analytics

    marks = svc.quotes(sorted(set(mine["symbol"])))["bid_price"]
    print("\nP&L by symbol (FIFO, open lots marked at the bid):")
    print(analytics.pnl(ledger, marks).round(2).to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sim":
        from alpaca_nb.sim.__main__ import main as sim_main

        return sim_main(argv[1:], prog="alpaca-nb sim")
    parser = argparse.ArgumentParser(prog="alpaca-nb", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("demo", "sim"), help="what to run")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
