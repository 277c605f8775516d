"""The local market's calendar (NYSE rules, computed) and asset universe, without a server."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from alpaca_nb.sim.market.assets import ASSETS, PROFILES, SYMBOLS, asset, filter_assets
from alpaca_nb.sim.market.calendar import MarketHours, ny_midnight, nyse_early_closes, nyse_holidays, settlement_date

UTC = UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- holidays


def test_2026_holidays_match_nyse_published_list():
    assert sorted(nyse_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 4, 3),
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),  # July 4 is a Saturday
        date(2026, 9, 7),
        date(2026, 11, 26),
        date(2026, 12, 25),
    ]
    assert sorted(nyse_early_closes(2026)) == [date(2026, 11, 27), date(2026, 12, 24)]


@pytest.mark.parametrize(
    "day, closed",
    [
        (date(2022, 6, 20), True),  # Juneteenth on a Sunday -> Monday
        (date(2021, 6, 18), False),  # no Juneteenth before 2022
        (date(2027, 6, 18), True),  # Juneteenth on a Saturday -> Friday
        (date(2027, 7, 5), True),  # July 4 on a Sunday -> Monday
        (date(2022, 12, 26), True),  # Christmas on a Sunday -> Monday
        (date(2021, 12, 31), False),  # New Year 2022 on a Saturday: not observed the Friday before
        (date(2028, 1, 3), False),  # ... nor the Monday after
        (date(1997, 1, 20), False),  # MLK Day only from 1998
        (date(1998, 1, 19), True),
        (date(2024, 3, 29), True),  # Good Friday (computed from Easter)
        (date(2025, 4, 18), True),
        (date(2030, 4, 19), True),
        (date(2026, 11, 26), True),  # Thanksgiving
    ],
)
def test_holiday_rules_cover_observance_and_history(day, closed):
    assert (day in nyse_holidays(day.year)) is closed
    assert MarketHours("nyse").is_trading_day(day) is (not closed)


def test_early_closes_only_on_ordinary_weekdays():
    assert date(2025, 7, 3) in nyse_early_closes(2025)  # Thursday before July 4
    assert date(2026, 7, 2) not in nyse_early_closes(2026)  # July 3 2026 is the holiday
    assert date(2021, 12, 24) not in nyse_early_closes(2021)  # observed Christmas holiday
    assert date(2023, 12, 24) not in nyse_early_closes(2023)  # a Sunday


# --------------------------------------------------------------------------- sessions


def test_nyse_sessions_in_utc_follow_daylight_saving_and_early_closes():
    hours = MarketHours("nyse")
    assert hours.session_of_day(date(2026, 3, 6)) == (utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21))
    assert hours.session_of_day(date(2026, 3, 9)) == (utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20))
    assert hours.session_of_day(date(2026, 11, 27)) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18))
    assert hours.session_of_day(date(2026, 11, 26)) is None
    assert hours.session_of_day(date(2026, 11, 28)) is None


def test_nyse_open_and_next_edges_around_thanksgiving():
    hours = MarketHours("nyse")
    during = utc(2026, 11, 25, 15)
    assert hours.is_open(during)
    assert hours.next_close(during) == utc(2026, 11, 25, 21)
    assert hours.next_open(during) == utc(2026, 11, 27, 14, 30)  # skips Thanksgiving
    evening = utc(2026, 11, 25, 21)  # the close itself is closed
    assert not hours.is_open(evening)
    assert hours.session(evening) is None
    assert hours.next_close(evening) == utc(2026, 11, 27, 18)  # the early close
    assert not hours.is_open(utc(2026, 11, 27, 18, 30))
    assert hours.next_open(utc(2026, 11, 27, 19)) == utc(2026, 11, 30, 14, 30)
    assert hours.previous_session(utc(2026, 11, 26, 15)) == (utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21))


def test_trading_days_count_november_2026():
    days = MarketHours("nyse").trading_days(date(2026, 11, 1), date(2026, 11, 30))
    assert len(days) == 20  # 21 weekdays minus Thanksgiving
    assert date(2026, 11, 26) not in [d for d, _, _ in days]
    assert days[0] == (date(2026, 11, 2), utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21))


def test_continuous_mode_trades_every_minute_and_closes_at_new_york_midnight():
    hours = MarketHours()
    assert hours.mode == "continuous"
    sunday_night = utc(2026, 11, 29, 8)
    assert hours.is_open(sunday_night)
    assert hours.next_close(sunday_night) == utc(2026, 11, 30, 5)  # midnight EST
    days = hours.trading_days(date(2026, 3, 7), date(2026, 3, 9))
    assert [d for d, _, _ in days] == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    spring = hours.session_of_day(date(2026, 3, 8))
    assert spring[1] - spring[0] == timedelta(hours=23)  # DST starts that night
    assert spring[0] == ny_midnight(date(2026, 3, 8)) == utc(2026, 3, 8, 5)


def test_calendar_entries_as_alpaca_prints_them():
    nyse, continuous = MarketHours("nyse"), MarketHours("continuous")
    assert nyse.calendar_day(date(2026, 11, 27)) == {
        "date": "2026-11-27",
        "open": "09:30",
        "close": "13:00",
        "session_open": "0400",
        "session_close": "1700",
        "settlement_date": "2026-11-30",
    }
    assert nyse.calendar_day(date(2026, 11, 26)) is None
    # Continuous mode: every day, with times alpaca-py's "%H:%M" parser accepts.
    assert continuous.calendar_day(date(2026, 11, 26))["close"] == "23:59"


def test_settlement_skips_weekends_holidays_and_bank_holidays():
    assert settlement_date(date(2026, 11, 25)) == date(2026, 11, 27)  # T+1 over Thanksgiving
    assert settlement_date(date(2026, 10, 9)) == date(2026, 10, 13)  # Columbus Day Monday
    assert settlement_date(date(2023, 3, 1)) == date(2023, 3, 3)  # T+2 before May 2024


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="continuous"):
        MarketHours("24/7")


# --------------------------------------------------------------------------- assets


def test_universe_in_alpaca_asset_shape_validates_against_the_spec():
    from openapi_check import validate_response

    assert 38 <= len(ASSETS) <= 50
    validate_response("GET", "/v2/assets", 200, ASSETS)
    validate_response("GET", "/v2/assets/AAPL", 200, asset("AAPL"))
    assert [(a["class"], a["exchange"], a["symbol"]) for a in ASSETS] == sorted(
        (a["class"], a["exchange"], a["symbol"]) for a in ASSETS
    )


def test_ids_are_stable_uuid5_and_lookups_work_both_ways():
    aapl = asset("AAPL")
    assert uuid.UUID(aapl["id"]).version == 5
    assert len({a["id"] for a in ASSETS}) == len(ASSETS)
    assert asset(aapl["id"]) == aapl
    assert asset(aapl["id"].upper())["symbol"] == "AAPL"
    assert asset("aapl")["symbol"] == "AAPL"
    assert asset("BRK.B")["exchange"] == "NYSE"
    assert asset("NOPE") is None


def test_universe_covers_the_flags_an_engine_must_respect():
    by = {a["symbol"]: a for a in ASSETS}
    assert not by["BRK.A"]["fractionable"] and by["BRK.A"]["tradable"]
    assert not by["AMC"]["shortable"] and not by["AMC"]["marginable"]
    assert by["GME"]["shortable"] and not by["GME"]["easy_to_borrow"]
    assert by["GME"]["borrow_status"] == "hard_to_borrow"
    inactive = [a for a in ASSETS if a["status"] == "inactive"]
    assert inactive and all(not a["tradable"] for a in inactive)
    assert {"NASDAQ", "NYSE", "ARCA"} <= {a["exchange"] for a in ASSETS}
    assert set(PROFILES) == set(SYMBOLS)
    assert all(p.base_price > 0 and 0 < p.daily_vol < 0.1 for p in PROFILES.values())


def test_asset_returns_a_copy():
    first = asset("SPY")
    first["attributes"].append("ipo")
    first["tradable"] = False
    assert asset("SPY")["tradable"] and "ipo" not in asset("SPY")["attributes"]


def test_filter_assets_like_get_v2_assets():
    active = filter_assets(status="active")
    assert active and all(a["status"] == "active" for a in active)
    assert len(active) + len(filter_assets(status="inactive")) == len(ASSETS)
    assert {a["symbol"] for a in filter_assets(exchange="ARCA")} >= {"SPY", "IWM"}
    assert filter_assets(asset_class="crypto") == []
    with_options = filter_assets(attributes=["has_options", "ipo"])
    assert "AAPL" in {a["symbol"] for a in with_options}
    assert "MTUM" not in {a["symbol"] for a in with_options}
