"""Property: any invalid order request raises OrderValidationError and the broker hears nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpaca_nb import AlpacaOrderRequest, OrderValidationError

BASE = {"symbol": "AAPL", "side": "buy", "qty": 10, "type": "market", "time_in_force": "day"}

positive = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
non_positive = st.decimals(max_value=Decimal(0), min_value=Decimal(-1e6), places=4)
# Prices of $1 and above with a sub-penny part: 1.001 .. 999.999 not on a cent.
sub_penny = st.integers(1001, 999_999).filter(lambda n: n % 10).map(lambda n: Decimal(n) / 1000)


def mutations(assets):
    unknown = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5).filter(lambda s: s not in assets)
    not_fractionable = sorted(s for s, a in assets.items() if not a["fractionable"] and a["tradable"])
    untradable = sorted(s for s, a in assets.items() if not a["tradable"] or a["status"] != "active")
    assert not_fractionable and untradable, "the local universe must have such assets"
    return st.one_of(
        non_positive.map(lambda q: {"qty": q}),
        positive.map(lambda n: {"notional": n}),  # qty and notional
        st.just({"qty": None}),  # neither
        st.just({"type": "limit"}),  # no limit_price
        positive.map(lambda p: {"limit_price": p}),  # market with a price
        st.just({"type": "stop"}),
        st.just({"type": "stop_limit", "limit_price": 10}),
        sub_penny.map(lambda p: {"type": "limit", "limit_price": p}),
        sub_penny.map(lambda p: {"type": "stop", "stop_price": p}),
        st.tuples(positive, positive).map(
            lambda t: {"type": "trailing_stop", "trail_price": t[0], "trail_percent": t[1]}
        ),
        st.just({"type": "trailing_stop"}),
        positive.map(lambda p: {"qty": None, "notional": p + 1, "type": "limit", "limit_price": p}),
        st.sampled_from(["gtc", "ioc", "fok", "opg", "cls"]).map(lambda t: {"qty": "0.5", "time_in_force": t}),
        st.just({"order_class": "bracket", "take_profit": {"limit_price": 200}}),
        positive.map(
            lambda p: {
                "order_class": "bracket",
                "type": "limit",
                "limit_price": p + 100,
                "take_profit": {"limit_price": p},
                "stop_loss": {"stop_price": p + 200},
            }
        ),
        st.just({"order_class": "oto"}),
        st.just({"take_profit": {"limit_price": 200}}),
        st.text(min_size=1, max_size=8).filter(lambda s: s.lower() not in ("buy", "sell")).map(lambda s: {"side": s}),
        st.text(min_size=1, max_size=8)
        .filter(lambda s: s.lower() not in ("market", "limit", "stop", "stop_limit", "trailing_stop"))
        .map(lambda s: {"type": s}),
        st.just({"extended_hours": True}),
        st.just(
            {
                "qty": "1.5",
                "order_class": "bracket",
                "take_profit": {"limit_price": 300},
                "stop_loss": {"stop_price": 1},
            }
        ),
        unknown.map(lambda s: {"symbol": s}),
        st.sampled_from(not_fractionable).map(lambda s: {"symbol": s, "qty": "0.5"}),
        st.sampled_from(not_fractionable).map(lambda s: {"symbol": s, "qty": None, "notional": 50}),
        st.sampled_from(untradable).map(lambda s: {"symbol": s}),
        st.text("abc!@# ", min_size=1, max_size=4)
        .filter(lambda s: s.strip().upper() not in assets)
        .map(lambda s: {"symbol": s}),
    )


@pytest.fixture
def warm(svc):
    svc.asset("AAPL")  # the asset list is cached before counting
    return svc


def test_invalid_requests_never_reach_the_broker(warm, broker):
    assets = warm._assets
    before = broker.requests["total"]
    seen = []

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(mutations(assets))
    def check(change):
        kwargs = {**BASE, **change}
        with pytest.raises(OrderValidationError) as info:
            warm.place_order_sync(user="prop", order_request=AlpacaOrderRequest(**kwargs))
        assert str(info.value)
        seen.append(change)

    check()
    assert len(seen) >= 500
    assert broker.requests["total"] == before, "an invalid request reached the broker"
    assert warm.order_service.list() == []
