"""The live guard's table: every way an order can leave with real money, in every arming state.

Each cell runs one path through a LIVE service on the local broker (live credentials pointed
at 127.0.0.1) and checks the outcome the table says. "sent" means the broker holds a new order;
"refused" means LiveTradingNotArmed, no request that could change the account (no POST, PATCH
or DELETE), and no new order at the broker. Unarmed and expired refuse before any request at
all; the other refusals may read (the quote, the order or the positions being priced).

=========  =====  =======  =======  ========  ========  ========  ==========
path       armed  unarmed  expired  over cap  over rate  no quote  zero quote
=========  =====  =======  =======  ========  ========  ========  ==========
place      sent   refused  refused  refused   refused   refused   refused
bracket    sent   refused  refused  refused   refused   refused   refused
oco        sent   refused  refused  refused   refused   refused   refused
replace    sent   refused  refused  refused   refused   refused   refused
close      sent   refused  refused  refused   refused   refused   refused
close all  sent   refused  refused  refused   refused   refused   refused
=========  =====  =======  =======  ========  ========  ========  ==========
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from live_guard_support import blank_quote, fail_quote_lookups, hold, live_service, orders_at_broker, writes

from alpaca_nb import AlpacaOrderRequest, LiveTradingNotArmed

GENEROUS = {"max_order_notional": 1_000_000, "max_orders_per_minute": 100}


def _quote(svc) -> tuple[Decimal, Decimal]:
    q = svc.get_stock_quote_sync("AAPL")
    return Decimal(str(q["bid_price"])), Decimal(str(q["ask_price"]))


def _place(svc, **fields):
    return svc.place_order_sync(user="table", order_request=AlpacaOrderRequest(symbol="AAPL", **fields))


def _bracket(svc, setup):
    ask = setup["ask"]
    return _place(
        svc,
        side="buy",
        type="market",
        qty=1,
        order_class="bracket",
        take_profit={"limit_price": str(ask + 20)},
        stop_loss={"stop_price": str(ask - 20)},
    )


def _oco(svc, setup):  # the exits of the long position the setup holds
    bid = setup["bid"]
    return _place(
        svc,
        side="sell",
        type="limit",
        qty=1,
        limit_price=str(bid + 20),
        order_class="oco",
        take_profit={"limit_price": str(bid + 20)},
        stop_loss={"stop_price": str(bid - 20)},
    )


PATHS = {
    "place": lambda svc, setup: _place(svc, side="buy", type="market", qty=1),
    "bracket": _bracket,
    "oco": _oco,
    "replace": lambda svc, setup: svc.replace_order_sync(setup["resting"], qty=2),
    "close": lambda svc, setup: svc.close_position_sync("AAPL"),
    "close all": lambda svc, setup: svc.close_all_positions_sync(),
}


def _armed(svc, broker, monkeypatch):
    svc.arm_live(**GENEROUS)


def _unarmed(svc, broker, monkeypatch):
    svc.disarm_live()


def _expired(svc, broker, monkeypatch):
    svc.arm_live(max_order_notional=1_000_000, minutes=0)


def _over_cap(svc, broker, monkeypatch):
    svc.arm_live(max_order_notional=1, max_orders_per_minute=100)


def _over_rate(svc, broker, monkeypatch):  # the setup's resting order used the minute's one order
    svc.arm_live(max_order_notional=1_000_000, max_orders_per_minute=1)


def _no_quote(svc, broker, monkeypatch):
    svc.arm_live(**GENEROUS)
    fail_quote_lookups(broker)


def _zero_quote(svc, broker, monkeypatch):
    svc.arm_live(**GENEROUS)
    blank_quote(monkeypatch, broker, "AAPL", "ask")
    blank_quote(monkeypatch, broker, "AAPL", "bid")


STATES = {
    "armed": _armed,
    "unarmed": _unarmed,
    "expired": _expired,
    "over cap": _over_cap,
    "over rate": _over_rate,
    "no quote": _no_quote,
    "zero quote": _zero_quote,
}
SILENT = {"unarmed", "expired"}  # refused before any request at all


def expected(path: str, state: str) -> str:
    return "sent" if state == "armed" else "refused"


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("path", list(PATHS))
def test_live_guard_table(manual_broker, monkeypatch, path, state, reliability_figures):
    reliability_figures.add("live_guard_cases", 1)
    broker = manual_broker
    svc = live_service(broker)
    hold(broker, "AAPL", 2)
    hold(broker, "MSFT", 1)
    svc.arm_live(**GENEROUS)
    bid, ask = _quote(svc)
    setup = {"bid": bid, "ask": ask, "resting": _place(svc, side="buy", type="limit", qty=1, limit_price="1.00")}
    STATES[state](svc, broker, monkeypatch)
    before = (len(writes(broker)), orders_at_broker(broker), broker.requests["total"])

    if expected(path, state) == "sent":
        PATHS[path](svc, setup)
        assert len(writes(broker)) > before[0] and orders_at_broker(broker) > before[1]
        reliability_figures.add("live_guard_sent", 1)
        return
    with pytest.raises(LiveTradingNotArmed):
        PATHS[path](svc, setup)
    assert writes(broker)[before[0] :] == [], f"{path} / {state}: a request that changes the account went out"
    assert orders_at_broker(broker) == before[1]
    if state in SILENT:
        assert broker.requests["total"] == before[2], f"{path} / {state}: unarmed, yet a request went out"
    reliability_figures.add("live_guard_refused", 1)
