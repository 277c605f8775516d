"""Tests for tests/openapi_check.py: the OpenAPI response checker the broker fixtures rely on.

Bodies here are written the way Alpaca documents them (the spec's own examples, Alpaca's docs);
each mutation must fail with a message that names the template, the status and the JSON
pointer of the bad value.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_check import (
    ALLOWANCES,
    Allowance,
    _apply,
    _error_validators,
    _fast_accepts,
    _plan,
    _specs,
    _validator,
    spec_dir,
    spec_operation,
    validate_response,
)

ORDER_ID = "7b08df51-c1ac-453c-99f9-323a5f075f0d"

# EquityOrderResponse from the spec's components/examples, plus the fields Alpaca now adds.
ORDER: dict[str, Any] = {
    "id": ORDER_ID,
    "client_order_id": "5680c4bc-9ac1-4a12-a44c-df427ba53032",
    "created_at": "2023-12-12T22:31:24.668464435Z",
    "updated_at": "2023-12-12T22:31:24.668464435Z",
    "submitted_at": "2023-12-12T22:31:24.577215743Z",
    "filled_at": None,
    "expired_at": None,
    "expires_at": "2024-03-11T20:00:00Z",
    "canceled_at": None,
    "failed_at": None,
    "replaced_at": None,
    "replaced_by": None,
    "replaces": None,
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "asset_class": "us_equity",
    "notional": None,
    "qty": "2",
    "filled_qty": "0",
    "filled_avg_price": None,
    "order_class": "",
    "order_type": "limit",
    "type": "limit",
    "side": "buy",
    "position_intent": "buy_to_open",
    "time_in_force": "gtc",
    "limit_price": "150",
    "stop_price": None,
    "status": "accepted",
    "extended_hours": False,
    "legs": None,
    "trail_percent": None,
    "trail_price": None,
    "hwm": None,
    "subtag": None,
    "source": None,
}

ACCOUNT: dict[str, Any] = {
    "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98",
    "account_number": "010203ABCD",
    "status": "ACTIVE",
    "crypto_status": "ACTIVE",
    "currency": "USD",
    "buying_power": "262113.632",
    "regt_buying_power": "80680.36",
    "daytrading_buying_power": "262113.632",
    "non_marginable_buying_power": "40340.18",
    "options_buying_power": "40340.18",
    "cash": "-23140.2",
    "accrued_fees": "0",
    "pending_transfer_in": "0",
    "portfolio_value": "103820.56",
    "pattern_day_trader": False,
    "trading_blocked": False,
    "transfers_blocked": False,
    "account_blocked": False,
    "created_at": "2019-06-12T22:47:07.99658Z",
    "trade_suspended_by_user": False,
    "multiplier": "4",
    "shorting_enabled": True,
    "equity": "103820.56",
    "last_equity": "103529.24",
    "long_market_value": "126960.76",
    "short_market_value": "0",
    "initial_margin": "63480.38",
    "maintenance_margin": "38088.228",
    "last_maintenance_margin": "38000.832",
    "sma": "0",
    "daytrade_count": 0,
    "balance_asof": "2023-09-27",
    "options_approved_level": 2,
    "options_trading_level": 1,
    "intraday_adjustments": "0",
    "pending_reg_taf_fees": "0",
}

POSITION: dict[str, Any] = {
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "exchange": "NASDAQ",
    "asset_class": "us_equity",
    "asset_marginable": False,
    "avg_entry_price": "174.78",
    "qty": "2",
    "qty_available": "2",
    "side": "long",
    "market_value": "348.58",
    "cost_basis": "349.56",
    "unrealized_pl": "-0.98",
    "unrealized_plpc": "-0.0028035244307129",
    "unrealized_intraday_pl": "-0.98",
    "unrealized_intraday_plpc": "-0.0028035244307129",
    "current_price": "174.29",
    "lastday_price": "174.61",
    "change_today": "-0.0018326556325525",
}

ASSET: dict[str, Any] = {
    "id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "class": "us_equity",
    "exchange": "NASDAQ",
    "symbol": "AAPL",
    "name": "Apple Inc. Common Stock",
    "status": "active",
    "tradable": True,
    "marginable": True,
    "maintenance_margin_requirement": 30,
    "margin_requirement_long": "30",
    "margin_requirement_short": "100",
    "shortable": True,
    "easy_to_borrow": True,
    "borrow_status": "easy_to_borrow",
    "fractionable": True,
    "attributes": ["has_options"],
}

CLOCK = {
    "timestamp": "2025-06-24T14:15:22.123456789-04:00",
    "is_open": True,
    "next_open": "2025-06-25T09:30:00-04:00",
    "next_close": "2025-06-24T16:00:00-04:00",
}

CALENDAR = [
    {
        "date": "2025-01-02",
        "open": "09:30",
        "close": "16:00",
        "session_open": "0400",
        "session_close": "2000",
        "settlement_date": "2025-01-03",
    },
]

FILL = {
    "id": "20220202135509981::2d7be4ff-d1f3-43e9-856a-0f5cf5c5088e",
    "activity_type": "FILL",
    "transaction_time": "2022-02-02T18:55:09.981482Z",
    "type": "fill",
    "price": "174.78",
    "qty": "2",
    "side": "buy",
    "symbol": "AAPL",
    "leaves_qty": "0",
    "order_id": "b5abe576-6a8a-49f3-a353-46b72c1ccae9",
    "cum_qty": "2",
    "order_status": "filled",
}

DIVIDEND = {
    "id": "20190801011955195::5f596936-6f23-4cef-bdf1-3806aae57dbf",
    "activity_type": "DIV",
    "activity_sub_type": "SDIV",
    "date": "2019-08-01",
    "created_at": "2021-05-10T14:01:04.650275Z",
    "net_amount": "1.02",
    "symbol": "T",
    "qty": "2",
    "per_share_amount": "0.51",
    "currency": "USD",
    "status": "executed",
}

PORTFOLIO_HISTORY = {
    "timestamp": [1697722200, 1697723100, 1697724000],
    "equity": [2773.79, 2769.04, 2768.65],
    "profit_loss": [-0.37, -5.12, -5.51],
    "profit_loss_pct": [-0.0001, -0.0018, -0.002],
    "base_value": 2774.16,
    "base_value_asof": "2023-10-18",
    "timeframe": "15Min",
    "cashflow": {},
}

BAR = {
    "t": "2022-01-03T09:00:00Z",
    "o": 178.26,
    "h": 178.34,
    "l": 177.76,
    "c": 178.08,
    "v": 60937,
    "n": 1727,
    "vw": 177.954244,
}
BAR2 = {"t": "2022-01-03T09:01:00Z", "o": 178.08, "h": 178.1, "l": 178, "c": 178.05, "v": 1200, "n": 31, "vw": 178.04}
QUOTE = {
    "t": "2021-02-06T13:35:08.946977536Z",
    "ax": "C",
    "ap": 387.7,
    "as": 1,
    "bx": "N",
    "bp": 387.67,
    "bs": 1,
    "c": ["R"],
    "z": "C",
}
TRADE = {"t": "2022-01-03T09:00:00.086175744Z", "x": "P", "p": 178.26, "s": 246, "c": ["@", "T"], "i": 1, "z": "C"}
BARS = {"bars": {"AAPL": [BAR, BAR2], "MSFT": [BAR]}, "next_page_token": "QUFQTHxNfDIwMjI=", "currency": "USD"}
SNAPSHOTS = {
    "AAPL": {"latestTrade": TRADE, "latestQuote": QUOTE, "minuteBar": BAR2, "dailyBar": BAR, "prevDailyBar": BAR},
    "MSFT": {"latestTrade": TRADE, "latestQuote": QUOTE, "minuteBar": BAR, "dailyBar": BAR, "prevDailyBar": BAR},
}
ERROR = {"code": 40310000, "message": "insufficient buying power"}

GOOD: list[tuple[str, str, int, Any]] = [
    ("POST", "/v2/orders", 200, ORDER),
    (
        "GET",
        "/v2/orders",
        200,
        [
            ORDER,
            {
                **ORDER,
                "status": "filled",
                "filled_qty": "2",
                "filled_avg_price": "149.98",
                "filled_at": "2023-12-12T22:31:25Z",
            },
        ],
    ),
    ("GET", f"/v2/orders/{ORDER_ID}", 200, ORDER),
    ("PATCH", f"/v2/orders/{ORDER_ID}", 200, {**ORDER, "replaces": ORDER_ID}),
    ("GET", "/v2/orders:by_client_order_id", 200, ORDER),
    (
        "GET",
        "/v2/orders",
        200,
        [
            {
                **ORDER,
                "order_class": "bracket",
                "legs": [{**ORDER, "side": "sell", "type": "stop", "stop_price": "140", "limit_price": None}],
            }
        ],
    ),
    ("DELETE", f"/v2/orders/{ORDER_ID}", 204, None),
    ("DELETE", "/v2/orders", 207, [{"id": ORDER_ID, "status": 200, "body": ORDER}]),
    ("GET", "/v2/account", 200, ACCOUNT),
    ("GET", "/v2/positions", 200, [POSITION]),
    ("GET", "/v2/positions/AAPL", 200, POSITION),
    ("DELETE", "/v2/positions/AAPL", 200, {**ORDER, "side": "sell", "type": "market"}),
    ("DELETE", "/v2/positions", 207, [{"symbol": "AAPL", "status": 200, "body": ORDER}]),
    ("GET", "/v2/assets", 200, [ASSET, {**ASSET, "cusip": None, "status": "inactive"}]),
    ("GET", "/v2/assets/AAPL", 200, ASSET),
    ("GET", "/v2/clock", 200, CLOCK),
    ("GET", "/v2/calendar", 200, CALENDAR),
    ("GET", "/v2/account/activities", 200, [FILL, DIVIDEND]),
    ("GET", "/v2/account/activities/FILL", 200, [FILL]),
    ("GET", "/v2/account/portfolio/history", 200, PORTFOLIO_HISTORY),
    ("GET", "/v2/stocks/bars", 200, BARS),
    ("GET", "/v2/stocks/bars", 200, {"bars": {}, "next_page_token": None}),
    ("GET", "/v2/stocks/AAPL/bars", 200, {"bars": [BAR], "symbol": "AAPL", "next_page_token": None}),
    ("GET", "/v2/stocks/quotes", 200, {"quotes": {"AAPL": [QUOTE]}, "next_page_token": None}),
    ("GET", "/v2/stocks/AAPL/quotes", 200, {"quotes": [QUOTE], "symbol": "AAPL", "next_page_token": None}),
    ("GET", "/v2/stocks/trades", 200, {"trades": {"AAPL": [TRADE]}, "next_page_token": None}),
    ("GET", "/v2/stocks/AAPL/trades", 200, {"trades": [TRADE], "symbol": "AAPL", "next_page_token": None}),
    ("GET", "/v2/stocks/bars/latest", 200, {"bars": {"AAPL": BAR}}),
    ("GET", "/v2/stocks/quotes/latest", 200, {"quotes": {"AAPL": QUOTE}}),
    ("GET", "/v2/stocks/trades/latest", 200, {"trades": {"AAPL": TRADE}}),
    ("GET", "/v2/stocks/AAPL/bars/latest", 200, {"bar": BAR, "symbol": "AAPL"}),
    ("GET", "/v2/stocks/AAPL/quotes/latest", 200, {"quote": QUOTE, "symbol": "AAPL"}),
    ("GET", "/v2/stocks/AAPL/trades/latest", 200, {"trade": TRADE, "symbol": "AAPL"}),
    ("GET", "/v2/stocks/snapshots", 200, SNAPSHOTS),
    ("GET", "/v2/stocks/AAPL/snapshot", 200, {"symbol": "AAPL", **SNAPSHOTS["AAPL"]}),
    ("POST", "/v2/orders", 403, ERROR),
    ("POST", "/v2/orders", 422, {"code": 42210000, "message": "qty must be > 0"}),
    ("GET", f"/v2/orders/{ORDER_ID}", 404, {"code": 40410000, "message": "order not found"}),
    ("GET", "/v2/stocks/bars", 400, {"code": 40010000, "message": "invalid timeframe"}),
    ("GET", "/v2/account", 401, {"code": 40110000, "message": "request is not authorized"}),
    ("GET", "/v2/clock", 429, {"code": 42910000, "message": "rate limit exceeded"}),
]


@pytest.mark.parametrize(("method", "path", "status", "body"), GOOD, ids=[f"{m} {p} {s}" for m, p, s, _ in GOOD])
def test_documented_bodies_pass(method: str, path: str, status: int, body: Any) -> None:
    validate_response(method, path, status, copy.deepcopy(body))


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (request, mutated body, fragments the message must contain)
BAD: list[tuple[str, tuple[str, str, int], Any, list[str]]] = [
    (
        "order missing time_in_force",
        ("GET", f"/v2/orders/{ORDER_ID}", 200),
        _without(ORDER, "time_in_force"),
        [
            "GET /v2/orders/{order_id} -> 200",
            "#/components/schemas/Order",
            "at (root)",
            "'time_in_force' is a required property",
        ],
    ),
    (
        "order qty as a number",
        ("POST", "/v2/orders", 200),
        {**ORDER, "qty": 2.0},
        ["POST /v2/orders -> 200", "at /qty", "2.0 is not of type 'string'"],
    ),
    (
        "order status not in enum",
        ("GET", "/v2/orders:by_client_order_id", 200),
        {**ORDER, "status": "open"},
        ["GET /v2/orders:by_client_order_id -> 200", "at /status", "'open' is not one of"],
    ),
    (
        "order id not a uuid",
        ("GET", "/v2/orders", 200),
        [ORDER, {**ORDER, "id": "12345"}],
        ["array of #/components/schemas/Order", "at /1/id", "'12345' is not a 'uuid'"],
    ),
    (
        "order created_at not RFC 3339",
        ("PATCH", f"/v2/orders/{ORDER_ID}", 200),
        {**ORDER, "created_at": "2023-12-12 22:31:24"},
        ["at /created_at", "is not a 'date-time'"],
    ),
    (
        "order null filled_qty",
        ("POST", "/v2/orders", 200),
        {**ORDER, "filled_qty": None},
        ["at /filled_qty", "None is not of type 'string' (the spec does not mark it nullable)"],
    ),
    (
        "order leg without side",
        ("GET", "/v2/orders", 200),
        [{**ORDER, "order_class": "oto", "legs": [_without(ORDER, "side")]}],
        ["at /0/legs/0", "'side' is a required property"],
    ),
    (
        "position missing asset_marginable",
        ("GET", "/v2/positions", 200),
        [_without(POSITION, "asset_marginable")],
        ["GET /v2/positions -> 200", "at /0", "'asset_marginable' is a required property"],
    ),
    (
        "position market_value as a number",
        ("GET", "/v2/positions/AAPL", 200),
        {**POSITION, "market_value": 348.58},
        ["GET /v2/positions/{symbol_or_asset_id} -> 200", "at /market_value"],
    ),
    (
        "account status lower case",
        ("GET", "/v2/account", 200),
        {**ACCOUNT, "status": "active"},
        ["GET /v2/account -> 200", "at /status", "'active' is not one of"],
    ),
    ("account without id", ("GET", "/v2/account", 200), _without(ACCOUNT, "id"), ["'id' is a required property"]),
    ("asset exchange empty", ("GET", "/v2/assets", 200), [{**ASSET, "exchange": ""}], ["at /0/exchange"]),
    (
        "clock with date-only timestamp",
        ("GET", "/v2/clock", 200),
        {**CLOCK, "next_open": "2025-06-25"},
        ["at /next_open", "is not a 'date-time'"],
    ),
    (
        "calendar without settlement_date",
        ("GET", "/v2/calendar", 200),
        [_without(CALENDAR[0], "settlement_date")],
        ["at /0", "'settlement_date'"],
    ),
    (
        "portfolio history with a null equity",
        ("GET", "/v2/account/portfolio/history", 200),
        {**PORTFOLIO_HISTORY, "equity": [1.0, None, 2.0]},
        ["at /equity/1"],
    ),
    (
        "bar with null vw",
        ("GET", "/v2/stocks/bars", 200),
        {**BARS, "bars": {"AAPL": [BAR, {**BAR2, "vw": None}]}},
        ["GET /v2/stocks/bars -> 200", "#/components/schemas/stock_bars_resp", "at /bars/AAPL/1/vw"],
    ),
    (
        "bar price as a string",
        ("GET", "/v2/stocks/AAPL/bars", 200),
        {"bars": [{**BAR, "c": "178.08"}], "symbol": "AAPL", "next_page_token": None},
        ["GET /v2/stocks/{symbol}/bars -> 200", "at /bars/0/c", "is not of type 'number'"],
    ),
    (
        "bars without next_page_token",
        ("GET", "/v2/stocks/bars", 200),
        {"bars": {}},
        ["'next_page_token' is a required property"],
    ),
    (
        "bars wrapped as null",
        ("GET", "/v2/stocks/bars", 200),
        {"bars": None, "next_page_token": None},
        ["at /bars", "None is not of type 'object'"],
    ),
    (
        "quote with bad tape",
        ("GET", "/v2/stocks/quotes/latest", 200),
        {"quotes": {"AAPL": {**QUOTE, "z": "D"}}},
        ["at /quotes/AAPL/z", "'D' is not one of"],
    ),
    (
        "trade with fractional size",
        ("GET", "/v2/stocks/trades/latest", 200),
        {"trades": {"AAPL": {**TRADE, "s": 1.5}}},
        ["at /trades/AAPL/s"],
    ),
    (
        "snapshot quote without ask price",
        ("GET", "/v2/stocks/snapshots", 200),
        {"AAPL": {**SNAPSHOTS["AAPL"], "latestQuote": _without(QUOTE, "ap")}},
        ["GET /v2/stocks/snapshots -> 200", "at /AAPL/latestQuote", "'ap' is a required property"],
    ),
    (
        "snapshot bar with bad timestamp",
        ("GET", "/v2/stocks/AAPL/snapshot", 200),
        {**SNAPSHOTS["AAPL"], "dailyBar": {**BAR, "t": "2022-01-03T25:00:00Z"}},
        ["at /dailyBar/t", "is not a 'date-time'"],
    ),
    (
        "error code as a string",
        ("POST", "/v2/orders", 403),
        {"code": "40310000", "message": "x"},
        ["POST /v2/orders -> 403", "at /code", "is not of type 'integer'"],
    ),
    (
        "error without message",
        ("GET", "/v2/stocks/bars", 429),
        {"code": 42910000},
        ["GET /v2/stocks/bars -> 429", "'message' is a required property"],
    ),
    (
        "error as plain text",
        ("GET", f"/v2/orders/{ORDER_ID}", 500),
        "Internal Server Error",
        ["GET /v2/orders/{order_id} -> 500", "is not of type 'object'"],
    ),
    (
        "cancel-all item with a bad id",
        ("DELETE", "/v2/orders", 207),
        [{"id": "nope", "status": 200}],
        ["DELETE /v2/orders -> 207", "at /0/id"],
    ),
]


@pytest.mark.parametrize(("request_", "body", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_mutated_bodies_fail_with_a_precise_message(
    request_: tuple[str, str, int], body: Any, fragments: list[str]
) -> None:
    with pytest.raises(AssertionError) as info:
        validate_response(*request_, body)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "body: " in message  # an excerpt of what was sent


def test_every_failure_is_listed_not_just_the_first() -> None:
    body = {**ORDER, "qty": 1, "side": "long", "id": "x"}
    with pytest.raises(AssertionError) as info:
        validate_response("POST", "/v2/orders", 200, body)
    message = str(info.value)
    assert "(3 errors)" in message
    assert all(f"at /{key}" in message for key in ("qty", "side", "id"))


@pytest.mark.parametrize(
    ("method", "path", "spec", "template"),
    [
        ("GET", "/v2/orders:by_client_order_id", "trading", "/v2/orders:by_client_order_id"),
        ("GET", f"/v2/orders/{ORDER_ID}", "trading", "/v2/orders/{order_id}"),
        ("DELETE", f"/v2/orders/{ORDER_ID}/", "trading", "/v2/orders/{order_id}"),
        ("GET", "/v2/orders", "trading", "/v2/orders"),
        ("GET", "/v2/stocks/bars", "market-data", "/v2/stocks/bars"),
        ("GET", "/v2/stocks/AAPL/bars", "market-data", "/v2/stocks/{symbol}/bars"),
        ("GET", "/v2/stocks/bars/latest", "market-data", "/v2/stocks/bars/latest"),
        ("GET", "/v2/stocks/AAPL/bars/latest", "market-data", "/v2/stocks/{symbol}/bars/latest"),
        ("GET", "/v2/stocks/quotes/latest", "market-data", "/v2/stocks/quotes/latest"),
        ("GET", "/v2/stocks/snapshots", "market-data", "/v2/stocks/snapshots"),
        ("GET", "/v2/stocks/AAPL/snapshot", "market-data", "/v2/stocks/{symbol}/snapshot"),
        ("GET", "/v2/stocks/meta/exchanges", "market-data", "/v2/stocks/meta/exchanges"),
        ("GET", "/v2/assets/AAPL", "trading", "/v2/assets/{symbol_or_asset_id}"),
        ("GET", "/v2/assets/fixed_income/us_treasuries", "trading", "/v2/assets/fixed_income/us_treasuries"),
        ("GET", "/v2/positions/AAPL", "trading", "/v2/positions/{symbol_or_asset_id}"),
        ("GET", "/v2/account", "trading", "/v2/account"),
        ("GET", "/v2/account/activities", "trading", "/v2/account/activities"),
        ("GET", "/v2/account/activities/FILL", "trading", "/v2/account/activities/{activity_type}"),
        ("GET", "/v2/account/portfolio/history", "trading", "/v2/account/portfolio/history"),
        ("GET", "/v2/clock", "trading", "/v2/clock"),
        ("GET", "/v2/calendar", "trading", "/v2/calendar"),
        ("GET", "/v2/watchlists:by_name", "trading", "/v2/watchlists:by_name"),
    ],
)
def test_path_matching_picks_the_right_template(method: str, path: str, spec: str, template: str) -> None:
    found_spec, found_template, operation = spec_operation(method, path)
    assert (found_spec, found_template) == (spec, template)
    assert "responses" in operation


@pytest.mark.parametrize(
    ("method", "path", "fragment"),
    [
        ("GET", "/v2/nope", "no path template"),
        ("GET", "/v2/orders:by_client_order_id/x", "no path template"),
        ("GET", "//v2/orders", "no path template"),  # a url_override with a trailing slash
        ("GET", "/v2/positions/BTC/USD", "no path template"),  # unencoded crypto pair
        ("PUT", "/v2/orders", "has no PUT operation"),
        ("POST", "/v2/clock", "has no POST operation"),
    ],
)
def test_unknown_paths_and_methods_are_rejected(method: str, path: str, fragment: str) -> None:
    with pytest.raises(AssertionError, match=fragment):
        spec_operation(method, path)


def test_error_answers_to_unknown_routes_are_held_to_the_error_shape() -> None:
    validate_response("GET", "/v2/nope", 404, {"code": 40410000, "message": "not found"})
    validate_response("PUT", "/v2/orders", 405, {"code": 40510000, "message": "not allowed"})
    with pytest.raises(AssertionError, match=r"PUT /v2/orders -> 405 .*has no PUT operation"):
        validate_response("PUT", "/v2/orders", 405, "405: Method Not Allowed")
    with pytest.raises(AssertionError, match="no path template"):
        validate_response("GET", "/v2/nope", 200, {})


def test_no_content_responses() -> None:
    path = f"/v2/orders/{ORDER_ID}"
    validate_response("DELETE", path, 204, None)
    with pytest.raises(AssertionError, match="declares no content, but the body is"):
        validate_response("DELETE", path, 204, {})
    with pytest.raises(AssertionError, match="declares no content"):
        validate_response("DELETE", path, 204, ORDER)
    with pytest.raises(AssertionError, match="expected a JSON body"):
        validate_response("GET", path, 200, None)


def test_undeclared_success_status_fails() -> None:
    with pytest.raises(AssertionError, match=r"status 201 is not declared.*declared: 200"):
        validate_response("GET", f"/v2/orders/{ORDER_ID}", 201, ORDER)


def test_a1_activities_are_chosen_by_activity_type() -> None:
    path = "/v2/account/activities"
    # A fill must satisfy TradingActivities: a non-uuid order_id fails ...
    with pytest.raises(AssertionError, match=r"at /0/order_id"):
        validate_response("GET", path, 200, [{**FILL, "order_id": "nope"}])
    # ... and a non-trade activity is held to NonTradeActivities (status enum).
    with pytest.raises(AssertionError, match=r"at /0/status"):
        validate_response("GET", path, 200, [{**DIVIDEND, "status": "done"}])
    with pytest.raises(AssertionError, match=r"'activity_type' is a required property"):
        validate_response("GET", f"{path}/FILL", 200, [_without(FILL, "activity_type")])
    with pytest.raises(AssertionError, match=r"'BOGUS' is not one of"):
        validate_response("GET", path, 200, [{**DIVIDEND, "activity_type": "BOGUS"}])


def test_a2_non_trade_date_accepts_a_date_or_a_date_time_only() -> None:
    path = "/v2/account/activities"
    validate_response("GET", path, 200, [{**DIVIDEND, "date": "2019-08-01T00:00:00Z"}])
    with pytest.raises(AssertionError, match=r"at /0/date"):
        validate_response("GET", path, 200, [{**DIVIDEND, "date": "08/01/2019"}])


def test_a3_close_all_failure_items_carry_an_error_body() -> None:
    failed = {
        "symbol": "AAPL",
        "status": 403,
        "body": {
            "code": 40310000,
            "message": "insufficient qty available for order",
            "available": "0",
            "existing_qty": "10",
            "held_for_orders": "10",
            "symbol": "AAPL",
        },
    }
    validate_response("DELETE", "/v2/positions", 207, [failed])
    # An error body with a 200 status, or an order with a 403, still fails.
    with pytest.raises(AssertionError, match=r"at /0/body.*'notional' is a required"):
        validate_response("DELETE", "/v2/positions", 207, [{**failed, "status": 200}])
    with pytest.raises(AssertionError, match=r"at /0"):
        validate_response("DELETE", "/v2/positions", 207, [{**failed, "body": ORDER}])


def test_a4_a5_snapshot_parts_may_be_null_but_bars_may_not() -> None:
    body = {"AAPL": {**SNAPSHOTS["AAPL"], "prevDailyBar": None, "minuteBar": None}, "INVALID": None}
    validate_response("GET", "/v2/stocks/snapshots", 200, body)
    validate_response(
        "GET", "/v2/stocks/AAPL/snapshot", 200, {"symbol": "AAPL", **SNAPSHOTS["AAPL"], "latestQuote": None}
    )
    with pytest.raises(AssertionError, match=r"at /bars/AAPL/0"):
        validate_response("GET", "/v2/stocks/bars", 200, {"bars": {"AAPL": [None]}, "next_page_token": None})
    with pytest.raises(AssertionError, match=r"at /bar"):
        validate_response("GET", "/v2/stocks/AAPL/bars/latest", 200, {"bar": None, "symbol": "AAPL"})


def test_every_allowance_documents_why() -> None:
    names = {a.name for a in ALLOWANCES}
    assert names == {"A1", "A2", "A3", "A4", "A5"}
    assert all(a.reason and a.pointer.startswith("/") for a in ALLOWANCES)


def test_an_allowance_whose_quirk_is_gone_stops_loading() -> None:
    docs = {"trading": {"components": {"schemas": {"X": {"type": "string", "format": "date"}}}}}
    stale = Allowance("Z", "trading", "/components/schemas/X", {"format": "date-time"}, lambda node, _doc: node, "test")
    with pytest.raises(RuntimeError, match="allowance Z no longer matches"):
        _apply(docs, stale)


def test_unresolvable_refs_raise_instead_of_passing() -> None:
    with pytest.raises(RuntimeError, match="unresolvable"):
        _validator("trading", "/components/schemas/DoesNotExist")
    # every response schema of the specs resolves completely
    specs = _specs()
    for name, doc in specs.docs.items():
        for template, item in doc["paths"].items():
            escaped = template.replace("~", "~0").replace("/", "~1")
            for method, operation in item.items():
                if not isinstance(operation, dict):
                    continue
                for status, response in operation.get("responses", {}).items():
                    schema = response.get("content", {}).get("application/json", {})
                    if "schema" in schema:
                        _validator(
                            name, f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
                        )


def test_spec_dir_defaults_inside_the_repo_and_honours_the_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh clone with nothing beside it has the specs: they live in tests/openapi/."""
    monkeypatch.delenv("ALPACA_OPENAPI_DIR", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert spec_dir() == repo / "tests" / "openapi"
    for name in ("trading-api.json", "market-data-api.json", "SOURCE.md"):
        assert (spec_dir() / name).is_file(), name
    monkeypatch.setenv("ALPACA_OPENAPI_DIR", str(tmp_path))
    assert spec_dir() == tmp_path


def test_ten_thousand_validations_take_seconds() -> None:
    bodies = [b for b in GOOD if b[2] < 300]
    validate_response(*bodies[0])  # load the specs outside the timing
    start = time.perf_counter()
    for i in range(10_000):
        validate_response(*bodies[i % len(bodies)])
    elapsed = time.perf_counter() - start
    assert elapsed < 15, f"10,000 validations took {elapsed:.1f} s"


REPLACEMENTS: list[Any] = [
    None,
    0,
    -1,
    1.5,
    1 << 40,
    True,
    "",
    "x",
    "2020-02-30T00:00:00Z",
    "2020-01-01",
    "2020-01-01T10:00:00",
    "7b08df51-c1ac-453c-99f9-323a5f075f0g",
    [],
    {},
    ["x"],
    {"x": 1},
]


def _nodes(body: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    for key, value in items:
        yield from _nodes(value, (*path, key))


def _mutate(body: Any, path: tuple[Any, ...], rng: random.Random) -> Any:
    if not path:
        return rng.choice(REPLACEMENTS)
    mutated = copy.deepcopy(body)
    parent = mutated
    for key in path[:-1]:
        parent = parent[key]
    if rng.random() < 0.2:
        del parent[path[-1]]
    else:
        value = parent[path[-1]]
        choices = REPLACEMENTS + ([value + "x", value.upper()] if isinstance(value, str) else [])
        parent[path[-1]] = rng.choice(choices)
    return mutated


def test_the_compiled_fast_path_never_accepts_what_the_oas_validator_rejects() -> None:
    """The accelerator may only short-cut "valid": check it against OAS30Validator."""
    pytest.importorskip("fastjsonschema")
    rng = random.Random(20261125)
    checked = rejected = 0
    for method, path, status, body in GOOD:
        if body is None:
            continue
        spec, template, _ = spec_operation(method, path)
        plan = _plan(spec, template, method.lower(), status)
        slow, fast = (plan.validator, plan.fast) if plan.kind == "schema" else _error_validators()
        if fast is None:
            continue
        nodes = list(_nodes(body))
        for _ in range(60):
            mutated = _mutate(body, rng.choice(nodes), rng)
            slow_ok = next(slow.iter_errors(mutated), None) is None
            fast_ok = _fast_accepts(fast, mutated)
            assert slow_ok or not fast_ok, f"fast path accepted {mutated!r} for {method} {path}"
            assert fast_ok or not slow_ok, f"fast path rejected valid {mutated!r} ({path})"
            checked += 1
            rejected += not slow_ok
    assert checked > 1500 and rejected > checked // 2  # the mutations did exercise failures
