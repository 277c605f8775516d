"""Bad input never reaches the broker: hypothesis-generated arguments for every public helper and
for order requests each get a typed error naming the argument, and the broker hears nothing.

One broker and one service serve the whole module (a bad argument changes nothing, so nothing
needs resetting); the broker records every response it serves (``record=True``) and counts every
request: both counts must stand still. The figure ``bad_inputs_tried`` goes to RELIABILITY.md.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from brokers import MANUAL_START, service_for, validate_recorded
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alpaca_nb as nb
from alpaca_nb import analytics, marketdata, params
from alpaca_nb.errors import AlpacaNbError, InvalidArgumentError, OrderValidationError
from alpaca_nb.ledger import Ledger
from alpaca_nb.live import LiveBars, LiveQuotes, LiveTrades, live_bars, live_quotes, live_trades
from alpaca_nb.models import MAX_NOTIONAL, MAX_PRICE, MAX_QTY, AlpacaOrderRequest
from alpaca_nb.service import InMemoryOrderStore

HELPER_EXAMPLES = 900
ORDER_EXAMPLES = 600
SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# -- the world: one broker, one service, one ledger, one stream hub ------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from alpaca_nb.sim import LocalBroker

    broker = LocalBroker(record=True, rate_limit=None, manual_clock=True, start=MANUAL_START).start()
    svc = service_for(broker, order_service=InMemoryOrderStore())
    svc.asset("AAPL")  # the asset list is cached before counting
    ledger = Ledger(tmp_path_factory.mktemp("ledger") / "ledger.duckdb")
    hub = svc.streams  # connects on its first subscription only
    previous = nb.session.current()
    nb.session.set_default(svc)  # nb.bars(...) and friends go to this service
    try:
        yield {"broker": broker, "svc": svc, "ledger": ledger, "hub": hub}
    finally:
        nb.session.set_default(previous)
        hub.stop()
        broker.stop()
    validate_recorded(broker)


class Quiet:
    """Asserts that nothing reached the broker between entering and leaving."""

    def __init__(self, broker):
        self.broker = broker

    def __enter__(self):
        self.requests, self.responses = self.broker.requests["total"], len(self.broker.responses)
        return self

    def __exit__(self, *exc):
        assert self.broker.requests["total"] == self.requests, "a request reached the broker"
        assert len(self.broker.responses) == self.responses, "the broker answered something"
        return False


# -- bad values ----------------------------------------------------------------------------------
# What counts as good is written here independently of alpaca_nb.params (from Alpaca's docs), so
# a filter can never hide a value the code wrongly accepts.

BLANKS = " \t\n\r\f\v"  # the only blanks a value may be trimmed of
GOOD_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[./-][A-Za-z0-9]+)*", re.ASCII)
ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ].*)?", re.ASCII)  # anything that starts like a day
PERIOD = re.compile(r"[1-9]\d{0,3}[DWMA]", re.ASCII)


def good_symbol(text):
    text = text.strip(BLANKS)
    return text.isascii() and len(text) <= 15 and bool(GOOD_SYMBOL.fullmatch(text))


def known_zone(text):
    try:
        zoneinfo.ZoneInfo(text.strip(BLANKS))
    except Exception:
        return False
    return True


LOOKALIKES = ["ıntc", "ſpy", "ＡＡＰＬ", "AAPL\u200b", "\u0410APL", "İBM", "ﬀ", "MSFT\u00a0", "ⅯSFT", "AAPL\u0301"]
not_ascii = st.text(min_size=1, max_size=8).filter(lambda s: not s.isascii())
malformed = st.one_of(
    st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabc0123456789.-/ _!@#$%^&*()[]{}|;:'\"<>?\\`~+=", min_size=1, max_size=20
    ).filter(lambda s: "," not in s and not good_symbol(s)),
    st.integers(16, 40).map(lambda n: "A" * n),
    st.sampled_from(["", "   ", "1ABC", "A..B", "BRK.", "-A", "A/", "A B", "../positions", "AAPL?x=1", "A%2FB"]),
)
wrong_type = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=6),
    st.just(None),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.decimals(allow_nan=False, allow_infinity=False),
)

bad_symbol = st.one_of(
    st.sampled_from(LOOKALIKES), not_ascii, malformed, wrong_type.filter(lambda v: not isinstance(v, str))
)
bad_symbols = st.one_of(
    st.sampled_from(LOOKALIKES),
    not_ascii.filter(lambda s: "," not in s and s.strip(BLANKS)),
    st.sampled_from(["", " , ", ",,,"]),
    st.just([]),
    st.just(()),
    bad_symbol.map(lambda s: ["AAPL", s]),
    bad_symbol.map(lambda s: ("MSFT", s, "SPY")),
    wrong_type.filter(lambda v: not isinstance(v, (str, dict)) and v is not None),
    st.just(None),
    st.just({"AAPL": 1}),
    st.just(b"AAPL"),
)

numbers_not_times = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    st.decimals(allow_nan=False),
    st.integers(-(2**40), 2**40).map(np.int64),
    st.floats(0, 2e9).map(np.float64),
)
not_iso = st.text(max_size=25).filter(
    lambda s: s.strip(BLANKS).lower() not in ("now", "today") and not ISO_LIKE.fullmatch(s.strip(BLANKS))
)
impossible_day = st.tuples(st.integers(1000, 3000), st.integers(13, 99), st.integers(1, 28)).map(
    lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"
)
out_of_range = st.one_of(
    st.dates(max_value=params.EARLIEST - timedelta(days=1)),
    st.dates(min_value=params.LATEST + timedelta(days=1)),
    st.datetimes(max_value=datetime(1677, 9, 20)),
    st.datetimes(min_value=datetime(2262, 4, 12)),
    st.integers(1, 1676).map(lambda y: f"{y:04d}-06-01"),
    st.integers(2263, 9999).map(lambda y: f"{y:04d}-06-01T12:00Z"),
)
bad_time = st.one_of(
    numbers_not_times,
    not_iso,
    impossible_day,
    out_of_range,
    st.sampled_from(
        [
            "01/02/2024",
            "Jan 2 2024",
            "2024-01-02T25:00Z",
            "2024/01/02",
            "yesterday",
            "20240102",
            "1700000000",
            "2024-02-30",
            "２０２４-01-02",
        ]
    ),
    st.just(pd.NaT),
    st.just(np.datetime64("NaT")),
    st.just([2024, 1, 2]),
    st.just(b"2024-01-02"),
)
in_range_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
# Two days apart at least: the calendar counts in days, and both ends of one day are fine.
inverted_range = (
    st.tuples(in_range_times, in_range_times)
    .filter(lambda t: abs(t[0] - t[1]) > timedelta(days=2))
    .map(lambda t: (max(t), min(t)))
)

bad_tz = st.one_of(
    st.text(max_size=20).filter(lambda s: not known_zone(s) or not s.strip(BLANKS).isascii()),
    st.sampled_from(
        [
            "Mars/Olympus",
            "america/new_york",
            "EST5EDT '; DROP TABLE fills; --",
            "../../etc/passwd",
            "UTC\u200b",
            "Europe/Lodnon",
            "",
        ]
    ),
    st.integers(),
    st.floats(),
    st.just([]),
    st.just(b"UTC"),
    st.booleans(),
)


def bad_choice(choices, *, none_ok=True):
    """A bad value for an argument taking one of ``choices`` (any case)."""
    folded = {c.lower() for c in choices}
    text = st.text(max_size=12).filter(lambda s: s.strip(BLANKS).lower() not in folded or not s.isascii())
    others = [st.integers(), st.floats(), st.just([choices[0]]), st.just(b"x"), st.booleans()]
    if not none_ok:
        others.append(st.just(None))
    return st.one_of(text, *others)


def bad_choices(choices):
    """A bad value for an argument taking several choices ("FILL,DIV" or a list)."""
    folded = {c.lower() for c in choices}

    def all_good(text):
        parts = [p.strip(BLANKS).lower() for p in text.split(",") if p.strip(BLANKS)]
        return text.isascii() and parts and all(p in folded for p in parts)

    return st.one_of(
        st.text(max_size=12).filter(lambda v: not all_good(v)),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.just(b"x"),
        st.just({choices[0]: 1}),
        st.sampled_from(["", " , "]),
        st.just([]),
        st.just([choices[0], 5]),
        st.just([choices[0], "nope"]),
        st.just([choices[0] + "\u0307"]),
    )


def bad_count(maximum=None, *, none_ok=True):
    values = [
        st.integers(max_value=0),
        st.floats(),
        st.booleans(),
        st.text(max_size=4),
        st.decimals(allow_nan=False),
        st.just([5]),
    ]
    if maximum is not None:
        values.append(st.integers(min_value=maximum + 1))
    if not none_ok:
        values.append(st.just(None))
    return st.one_of(*values)


not_a_flag = st.one_of(st.integers(), st.text(max_size=5), st.just(None), st.floats(), st.just([True]))
bad_seconds = st.one_of(
    st.floats(max_value=-1e-9), st.just(math.inf), st.just(math.nan), st.text(max_size=4), st.booleans(), st.just([1])
)
bad_timeframe = st.one_of(
    st.text("!@#$%qxyz0 ", max_size=8),  # no unit letter or word in these
    st.sampled_from(
        [
            "60Min",
            "0Min",
            "24Hour",
            "2Day",
            "5Month",
            "1m",
            "1Year",
            "1Fortnight",
            "５Min",
            "1Mın",
            "13Month",
            "1 Min s",
        ]
    ),
    st.integers(),
    st.just(None),
    st.floats(),
)
bad_period = st.one_of(
    st.text(max_size=6).filter(lambda s: not s.isascii() or not PERIOD.fullmatch(s.strip(BLANKS).upper())),
    st.sampled_from(["0D", "1Y", "forever", "M1", "１M"]),
    st.integers(),
    st.floats(),
)


def _price(text):
    try:
        return 0 <= float(text) < 1e7
    except ValueError:
        return False


bad_price = st.one_of(
    st.floats(max_value=-0.01),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(min_value=1e7),
    st.text(max_size=3).filter(lambda s: not _price(s)),
    st.just(None),
    st.just(Decimal("sNaN")),
)
bad_marks = st.one_of(
    st.dictionaries(st.sampled_from(["AAPL", "MSFT"]), bad_price, min_size=1),
    st.dictionaries(bad_symbol.filter(lambda v: isinstance(v, str)), st.just(10.0), min_size=1),
    st.sampled_from([5, "AAPL=1", [("AAPL", 1)], b"x"]),
    st.just(pd.DataFrame({"ticker": ["AAPL"], "price": [1.0]})),
    st.just(pd.DataFrame({"symbol": ["AAPL"], "value": [1.0]})),
)


# -- every public helper, its good arguments, and the bad values for each argument ---------------

FRAME = lambda name: lambda w, *a, **k: getattr(w["svc"], name)(*a, **k)  # noqa: E731
MODULE = lambda name: lambda w, *a, **k: getattr(nb, name)(*a, **k)  # noqa: E731
ANALYTICS = lambda name: lambda w, *a, **k: getattr(analytics, name)(w["ledger"], *a, **k)  # noqa: E731
FETCH = lambda name: lambda w, *a, **k: getattr(marketdata, name)(w["svc"].broker, *a, **k)  # noqa: E731


def LIVE(function):
    return lambda w, *a, **k: function(*a, **{"hub": w["hub"], **k})


def LIVE_CLASS(cls):
    return lambda w, *a, **k: cls(k.pop("hub", w["hub"]), *a, **k)


HISTORY = {"start": "2026-11-23", "end": "2026-11-24"}
HELPERS = []  # (name, call, good kwargs, {argument: strategy})


def helper(name, call, good, bad):
    HELPERS.append((name, call, good, bad))


for face in (FRAME, MODULE):
    prefix = "svc." if face is FRAME else "nb."
    helper(
        prefix + "bars",
        face("bars"),
        {"symbols": "AAPL", "timeframe": "1Day", **HISTORY},
        {
            "symbols": bad_symbols,
            "timeframe": bad_timeframe,
            "start": bad_time,
            "end": bad_time,
            "feed": bad_choice(params.FEEDS),
            "adjustment": bad_choices(params.ADJUSTMENTS),
            "tz": bad_tz,
            "limit": bad_count(),
            "sort": bad_choice(params.SORTS, none_ok=False),
            "progress": not_a_flag,
        },
    )
    for name in ("historical_quotes", "historical_trades"):
        helper(
            prefix + name,
            face(name),
            {"symbols": "AAPL", **HISTORY},
            {
                "symbols": bad_symbols,
                "start": bad_time,
                "end": bad_time,
                "feed": bad_choice(params.FEEDS),
                "tz": bad_tz,
                "limit": bad_count(),
                "sort": bad_choice(params.SORTS, none_ok=False),
                "progress": not_a_flag,
            },
        )
    for name in ("quotes", "trades", "latest_bars", "snapshots"):
        helper(prefix + name, face(name), {"symbols": ["AAPL", "MSFT"]}, {"symbols": bad_symbols, "tz": bad_tz})
    helper(
        prefix + "orders",
        face("orders"),
        {},
        {
            "status": bad_choice(params.ORDER_STATUSES, none_ok=False),
            "symbols": bad_symbols.filter(lambda v: v is not None),
            "after": bad_time,
            "until": bad_time,
            "limit": bad_count(params.MAX_ORDERS, none_ok=False),
            "tz": bad_tz,
        },
    )
    helper(
        prefix + "activities",
        face("activities"),
        {},
        {
            "types": bad_choices(params.ACTIVITY_TYPES),
            "after": bad_time,
            "until": bad_time,
            "direction": bad_choice(params.SORTS, none_ok=False),
            "tz": bad_tz,
        },
    )
    helper(prefix + "calendar", face("calendar"), {}, {"start": bad_time, "end": bad_time, "tz": bad_tz})
    helper(
        prefix + "portfolio_history",
        face("portfolio_history"),
        {},
        {
            "period": bad_period,
            "timeframe": bad_choice(params.HISTORY_TIMEFRAMES),
            "start": bad_time,
            "end": bad_time,
            "tz": bad_tz,
        },
    )
    helper(
        prefix + "assets",
        face("assets"),
        {},
        {
            "status": bad_choice(params.ASSET_STATUSES),
            "exchange": bad_choice(params.EXCHANGES),
            "asset_class": bad_choice(params.ASSET_CLASSES),
            "attributes": bad_choices(params.ASSET_ATTRIBUTES),
        },
    )
    for name in ("account", "positions", "clock"):
        helper(prefix + name, face(name), {}, {"tz": bad_tz})

for name in ("fetch_bars", "fetch_quotes", "fetch_trades"):
    good = {"symbols": "AAPL", **HISTORY, **({"timeframe": "5Min"} if name == "fetch_bars" else {})}
    helper(
        f"marketdata.{name}",
        FETCH(name),
        good,
        {
            "symbols": bad_symbols,
            "start": bad_time,
            "end": bad_time,
            "tz": bad_tz,
            "limit": bad_count(),
            "feed": bad_choice(params.FEEDS),
            "sort": bad_choice(params.SORTS, none_ok=False),
            "progress": not_a_flag,
        },
    )

for name, function, cls in (
    ("live_quotes", live_quotes, LiveQuotes),
    ("live_trades", live_trades, LiveTrades),
    ("live_bars", live_bars, LiveBars),
):
    bad = {
        "symbols": bad_symbols,
        "tz": bad_tz,
        "wait": bad_seconds,
        "on_update": st.one_of(st.integers(), st.text(max_size=3), st.just([print])),
    }
    if name != "live_quotes":
        bad["max_rows"] = bad_count(none_ok=name == "live_bars")
    helper(
        f"live.{name}",
        LIVE(function),
        {"symbols": ["AAPL"]},
        {**bad, "hub": st.one_of(st.integers(), st.text(max_size=3), st.just(object()))},
    )
    helper(
        f"live.{cls.__name__}",
        LIVE_CLASS(cls),
        {"symbols": ["AAPL"]},
        {**bad, "hub": st.one_of(st.just(None), st.integers(), st.just(object()))},
    )

for name in ("lots", "positions", "pnl", "daily_pnl", "equity_curve"):
    bad = {
        "marks": bad_marks,
        "environment": bad_choice(("local", "paper", "live")).filter(lambda v: v is not None),
        "account_id": st.one_of(st.integers(), st.just(b"x"), st.just(["acct"])),
    }
    if name == "lots":
        bad["symbol"] = bad_symbol.filter(lambda v: v is not None)
    if name == "pnl":
        bad["by"] = bad_choices(("symbol", "user", "tag", "account"))
    if name in ("daily_pnl", "equity_curve"):
        bad["tz"] = st.one_of(bad_tz, st.just(None))
        bad["marks"] = st.one_of(
            st.just({"AAPL": 1.0}),
            st.just(5),
            st.just(pd.DataFrame({"date": ["2026-11-20"], "symbol": ["ıntc"], "price": [1.0]})),
            st.just(pd.DataFrame({"date": ["not a day"], "symbol": ["AAPL"], "price": [1.0]})),
            st.just(pd.DataFrame({"date": ["2026-11-20"], "symbol": ["AAPL"], "price": [1e12]})),
        )
    if name == "equity_curve":
        bad["starting_cash"] = st.one_of(st.just(math.nan), st.just(math.inf), st.text(max_size=4), st.just(None))
    helper(f"analytics.{name}", ANALYTICS(name), {}, bad)


def bad_call():
    """One helper, one of its arguments, one bad value for it (the others good)."""
    cases = [
        (name, call, good, argument, strategy)
        for name, call, good, bad in HELPERS
        for argument, strategy in bad.items()
    ]
    ranges = [
        (name, call, good, pair)
        for name, call, good, bad in HELPERS
        for pair in (("start", "end"), ("after", "until"))
        if pair[0] in bad and pair[1] in bad
    ]
    single = st.sampled_from(cases).flatmap(
        lambda c: st.tuples(st.just(c[0]), st.just(c[1]), st.just(c[2]), st.just(c[3]), c[4]).map(
            lambda t: (t[0], t[1], {**t[2], t[3]: t[4]}, t[3])
        )
    )
    inverted = st.sampled_from(ranges).flatmap(
        lambda c: inverted_range.map(lambda r: (c[0], c[1], {**c[2], c[3][0]: r[0], c[3][1]: r[1]}, c[3][0]))
    )
    return st.one_of(single, inverted)


def test_every_public_helper_refuses_bad_arguments_before_any_request(world, reliability_figures):
    tried, seen = [], set()

    @settings(max_examples=HELPER_EXAMPLES, **SETTINGS)
    @given(bad_call())
    def check(case):
        name, call, kwargs, argument = case
        with Quiet(world["broker"]), pytest.raises(AlpacaNbError) as info:
            call(world, **kwargs)
        assert isinstance(info.value, InvalidArgumentError), f"{name}({argument}=...): {info.value!r}"
        assert info.value.argument == argument or (
            argument in ("end", "until") and info.value.argument in ("start", "after")
        ), f"{name}: {argument}={kwargs[argument]!r} blamed {info.value.argument!r}"
        assert str(info.value)
        tried.append(name)
        seen.add((name, argument))

    check()
    every = {(name, argument) for name, _, _, bad in HELPERS for argument in bad}
    assert len(tried) >= HELPER_EXAMPLES * 0.9
    assert len(seen) >= len(every) * 0.8, f"arguments never tried: {sorted(every - seen)[:10]}"
    assert world["svc"].order_service.list() == []
    reliability_figures.add("bad_inputs_tried", len(tried))
    reliability_figures.merge("bad_inputs_by_target", {"helpers": len(tried)})


# -- order requests ------------------------------------------------------------------------------

BASE = {"symbol": "AAPL", "side": "buy", "qty": 10, "type": "market", "time_in_force": "day"}
LIMIT = {**BASE, "type": "limit", "limit_price": "190.5"}
huge = st.one_of(
    st.integers(10**9, 10**40).map(str),
    st.sampled_from(["1e9", "1e999", "1E+400", "9" * 60]),
    st.integers(10, 10**6).map(lambda n: Decimal(f"1E+{n}")),
    st.floats(1e9, 1e300),
)
huge_price = st.one_of(huge, st.integers(10**7, 10**9).map(str), st.just(Decimal("1E+7")))
not_numbers = st.one_of(
    st.text(max_size=6).filter(lambda s: not _decimal(s)),
    st.booleans(),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.just([1]),
    st.just({"qty": 1}),
    st.just(Decimal("NaN")),
    st.just(Decimal("-Infinity")),
)


def _decimal(text):
    try:
        return Decimal(text.strip()).is_finite()
    except Exception:
        return False


def leg(**values):
    return values


ORDER_MUTATIONS = st.one_of(
    bad_symbol.map(lambda v: ("symbol", {"symbol": v})),
    bad_choice(("buy", "sell"), none_ok=False).map(lambda v: ("side", {"side": v})),
    st.sampled_from(["ſell", "ſELL", "bUy\u200b", "вuy", "ＢＵＹ"]).map(lambda v: ("side", {"side": v})),
    bad_choice(("market", "limit", "stop", "stop_limit", "trailing_stop"), none_ok=False).map(
        lambda v: ("type", {"type": v})
    ),
    bad_choice(("day", "gtc", "ioc", "fok", "opg", "cls"), none_ok=False).map(
        lambda v: ("time_in_force", {"time_in_force": v})
    ),
    bad_choice(("simple", "bracket", "oco", "oto"), none_ok=False).map(lambda v: ("order_class", {"order_class": v})),
    st.one_of(huge, not_numbers, st.integers(max_value=0)).map(lambda v: ("qty", {"qty": v})),
    st.one_of(huge, not_numbers).map(lambda v: ("notional", {"qty": None, "notional": v})),
    st.one_of(huge_price, not_numbers).map(lambda v: ("limit_price", {**LIMIT, "limit_price": v})),
    st.one_of(huge_price, not_numbers).map(lambda v: ("stop_price", {"type": "stop", "stop_price": v})),
    st.one_of(huge_price, not_numbers).map(lambda v: ("trail_price", {"type": "trailing_stop", "trail_price": v})),
    st.one_of(huge, not_numbers, st.floats(100, 1e9)).map(
        lambda v: ("trail_percent", {"type": "trailing_stop", "trail_percent": v})
    ),
    st.one_of(
        st.integers(),
        st.text(max_size=5),
        st.just(None),
        st.just(b"x"),
        st.lists(st.one_of(st.integers(), st.just(None), st.just(""), st.just(b"t")), min_size=1, max_size=3).map(
            lambda xs: ["ok", *xs]
        ),
        st.just({"a": "b"}),
    )
    .filter(lambda v: v is not None)
    .map(lambda v: ("tags", {"tags": v})),
    st.one_of(st.integers(), st.just(b"id"), st.just(""), st.integers(129, 400).map(lambda n: "x" * n)).map(
        lambda v: ("client_order_id", {"client_order_id": v})
    ),
    not_a_flag.filter(lambda v: v is not None).map(lambda v: ("extended_hours", {**LIMIT, "extended_hours": v})),
    st.one_of(huge_price, not_numbers).map(
        lambda v: ("take_profit", {"order_class": "oto", "take_profit": leg(limit_price=v)})
    ),
    st.one_of(huge_price, not_numbers).map(
        lambda v: ("stop_loss", {"order_class": "oto", "stop_loss": leg(stop_price=v)})
    ),
    st.one_of(huge_price, not_numbers).map(
        lambda v: ("stop_loss", {"order_class": "oto", "stop_loss": leg(stop_price="100", limit_price=v)})
    ),
    st.dictionaries(
        st.text(max_size=6).filter(lambda k: k != "limit_price"), st.integers(), min_size=1, max_size=2
    ).map(lambda d: ("take_profit", {"order_class": "oto", "take_profit": d})),
    st.one_of(st.integers(), st.text(max_size=3), st.just([100])).map(
        lambda v: ("take_profit", {"order_class": "oto", "take_profit": v})
    ),
)


def asset_mutations(assets):
    """Requests that are well formed but that the asset forbids: only the service can refuse them."""
    unknown = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5).filter(lambda s: s not in assets)
    whole_only = sorted(s for s, a in assets.items() if not a["fractionable"] and a["tradable"])
    untradable = sorted(s for s, a in assets.items() if not a["tradable"] or a["status"] != "active")
    return st.one_of(
        unknown.map(lambda s: ("symbol", {"symbol": s})),
        unknown.map(lambda s: ("symbol", {"symbol": s.lower() + " "})),
        st.sampled_from(untradable).map(lambda s: ("symbol", {"symbol": s})),
        st.sampled_from(whole_only).map(lambda s: ("qty", {"symbol": s, "qty": "0.5"})),
        st.sampled_from(whole_only).map(lambda s: ("notional", {"symbol": s, "qty": None, "notional": 50})),
    )


@pytest.mark.parametrize("face", ["request", "place_order", "check_order"])
def test_every_bad_order_request_is_refused_before_any_request(world, reliability_figures, face):
    svc = world["svc"]
    tried = []
    mutations = ORDER_MUTATIONS if face == "request" else st.one_of(ORDER_MUTATIONS, asset_mutations(svc._assets))

    @settings(max_examples=ORDER_EXAMPLES // 3, **SETTINGS)
    @given(mutations)
    def check(mutation):
        field, change = mutation
        kwargs = {**BASE, **change}
        with Quiet(world["broker"]), pytest.raises(AlpacaNbError) as info:
            if face == "request":
                AlpacaOrderRequest(**kwargs)
            elif face == "place_order":
                svc.place_order_sync(user="bad-inputs", order_request=AlpacaOrderRequest(**kwargs))
            else:
                svc.check_order(AlpacaOrderRequest(**kwargs), user="bad-inputs")
        assert isinstance(info.value, OrderValidationError), repr(info.value)
        assert (info.value.field or "").split(".")[0] in (
            field,
            "qty",
            "type",
            "order_class",
            "time_in_force",
            "take_profit",
            "stop_loss",
        ) or field in ("symbol",), f"{field}: {change!r} blamed {info.value.field!r}: {info.value}"
        if field not in ("qty", "notional"):
            assert info.value.field.split(".")[0] == field, f"{change!r} blamed {info.value.field!r}: {info.value}"
        tried.append(field)

    check()
    assert len(tried) >= ORDER_EXAMPLES // 3 * 0.9
    assert svc.order_service.list() == []
    reliability_figures.add("bad_inputs_tried", len(tried))
    reliability_figures.merge("bad_inputs_by_target", {f"orders ({face})": len(tried)})


def test_the_bounds_hold_at_the_edges(world):
    """Just below each bound is accepted (and fits the ledger); at the bound it is refused."""
    edge = {
        "qty": MAX_QTY - Decimal("1e-9"),
        "notional": MAX_NOTIONAL - Decimal("0.01"),
        "limit_price": MAX_PRICE - Decimal("0.01"),
    }
    AlpacaOrderRequest(**{**LIMIT, "qty": edge["qty"], "limit_price": edge["limit_price"]})
    AlpacaOrderRequest(**{**BASE, "qty": None, "notional": edge["notional"]})
    with Quiet(world["broker"]):
        for change, field in (
            ({"qty": MAX_QTY}, "qty"),
            ({"qty": None, "notional": MAX_NOTIONAL}, "notional"),
            ({**LIMIT, "limit_price": MAX_PRICE}, "limit_price"),
        ):
            with pytest.raises(OrderValidationError) as info:
                AlpacaOrderRequest(**{**BASE, **change})
            assert info.value.field == field and "below" in str(info.value)
