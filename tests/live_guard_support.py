"""What the live-guard tests share: a LIVE service on the local broker, what reached the broker,
positions to close, and quotes the broker can be made to lack.

A LIVE service here is ``service_for(broker, environment="live")``: live credentials pointed
at 127.0.0.1, so the guard runs exactly as it would against Alpaca and nothing leaves the machine.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
from brokers import service_for, wait_for

#: Requests that can change the account (the guard's own reads are GETs).
WRITES = ("POST", "PATCH", "DELETE")


def live_service(broker, **kwargs):
    """An AlpacaService in the LIVE environment on the in-process broker."""
    return service_for(broker, environment="live", **kwargs)


def writes(broker) -> list[tuple[str, str, int]]:
    """Every request that could have changed the account, as (method, path, status)."""
    return [(method, path, status) for method, path, status, _body in broker.responses if method in WRITES]


def orders_at_broker(broker) -> int:
    """How many orders the broker holds (open or not), read from its own book."""
    return len(broker.engine.book.orders)


def hold(broker, symbol: str, qty: int, side: str = "buy") -> dict:
    """Open a position at the broker (a filled market order sent with alpaca-py, outside any
    service and its guard); returns the position's JSON."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import MarketOrderRequest

    client = TradingClient(broker.key, broker.secret, url_override=broker.url)
    client.submit_order(MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force="day"))
    want = Decimal(qty) if side == "buy" else -Decimal(qty)

    def held():
        position = next((p for p in broker.engine.positions() if p["symbol"] == symbol), None)
        return position if position and Decimal(position["qty"]) == want else None

    return wait_for(held, what=f"{side} {qty} {symbol} filled")


def blank_quote(monkeypatch, broker, symbol: str, side: str) -> None:
    """Make the broker quote ``symbol`` with a zero ``side`` ("bid" or "ask", as Alpaca does when
    one side is empty), or not at all (``side="none"``). Only the served quote changes."""
    market = broker.market
    real = market.latest_ticks

    def latest_ticks(name, *, by_quote=False, until_ns=None):
        ticks = real(name, by_quote=by_quote, until_ns=until_ns)
        if ticks is None or not by_quote or name != symbol:
            return ticks
        if side == "none":
            return None
        return dataclasses.replace(ticks, **{side: np.zeros_like(getattr(ticks, side))})

    monkeypatch.setattr(market, "latest_ticks", latest_ticks)


def fail_quote_lookups(broker, status: int = 500) -> None:
    """Every latest-quote request gets an error answer from now on."""
    broker.faults.add(method="GET", path="/v2/stocks/quotes/latest", status=status, times=10_000)
