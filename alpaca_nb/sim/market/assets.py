"""The local broker's asset universe: ~40 well-known US equities in Alpaca's Asset JSON shape.

Each asset carries, besides what ``GET /v2/assets`` shows, a base price (the level its
synthetic price wanders around in 2026), a daily volatility and a trading intensity that the
market generator uses. The flags cover the cases an order engine must refuse or treat
differently: not fractionable (BRK.A, AMC, BBBY), not shortable (AMC), hard to borrow (GME,
AMC), not marginable (AMC), and inactive / not tradable (TWTR, BBBY)::

    >>> asset("AAPL")["exchange"], asset("AAPL")["fractionable"]
    ('NASDAQ', True)
    >>> asset(asset("SPY")["id"])["symbol"]        # look up by id too
    'SPY'
    >>> asset("NOPE") is None
    True
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Ids are uuid5 of the symbol in a namespace of our own: stable across runs and machines.
ASSET_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "assets.sim.alpaca-nb")

# NYSE-listed -> tape A, NASDAQ -> tape C, everything else (ARCA, BATS, AMEX) -> tape B.
TAPE = {"NYSE": "A", "NASDAQ": "C", "ARCA": "B", "BATS": "B", "AMEX": "B", "NYSEARCA": "B"}


@dataclass(frozen=True)
class Profile:
    """How the synthetic market moves a symbol (not part of Alpaca's asset JSON)."""

    base_price: float  # price level around 2026-01-01
    daily_vol: float  # standard deviation of daily log returns
    trades_per_min: float  # mean extra trades per regular-hours minute (each minute has >= 1)
    lot: int  # typical round lot (1 for very high-priced shares)


# symbol, name, exchange, base price, daily vol, trades/min, flags
# flags: f = not fractionable, s = not shortable, h = hard to borrow, m = not marginable,
#        x = inactive and not tradable, o = has options
_UNIVERSE: list[tuple[str, str, str, float, float, float, str]] = [
    ("AAPL", "Apple Inc. Common Stock", "NASDAQ", 230.00, 0.016, 4.5, "o"),
    ("MSFT", "Microsoft Corporation Common Stock", "NASDAQ", 420.00, 0.015, 4.0, "o"),
    ("NVDA", "NVIDIA Corporation Common Stock", "NASDAQ", 180.00, 0.030, 5.0, "o"),
    ("AMZN", "Amazon.com, Inc. Common Stock", "NASDAQ", 220.00, 0.020, 4.0, "o"),
    ("GOOGL", "Alphabet Inc. Class A Common Stock", "NASDAQ", 250.00, 0.018, 3.5, "o"),
    ("GOOG", "Alphabet Inc. Class C Capital Stock", "NASDAQ", 252.00, 0.018, 2.5, "o"),
    ("META", "Meta Platforms, Inc. Class A Common Stock", "NASDAQ", 700.00, 0.022, 3.5, "o"),
    ("TSLA", "Tesla, Inc. Common Stock", "NASDAQ", 400.00, 0.035, 5.0, "o"),
    ("AVGO", "Broadcom Inc. Common Stock", "NASDAQ", 340.00, 0.025, 2.5, "o"),
    ("COST", "Costco Wholesale Corporation Common Stock", "NASDAQ", 900.00, 0.012, 1.5, "o"),
    ("NFLX", "Netflix, Inc. Common Stock", "NASDAQ", 110.00, 0.022, 2.5, "o"),
    ("AMD", "Advanced Micro Devices, Inc. Common Stock", "NASDAQ", 160.00, 0.030, 4.0, "o"),
    ("INTC", "Intel Corporation Common Stock", "NASDAQ", 35.00, 0.025, 3.0, "o"),
    ("QCOM", "QUALCOMM Incorporated Common Stock", "NASDAQ", 165.00, 0.020, 2.0, "o"),
    ("ADBE", "Adobe Inc. Common Stock", "NASDAQ", 350.00, 0.020, 1.5, "o"),
    ("CSCO", "Cisco Systems, Inc. Common Stock", "NASDAQ", 68.00, 0.013, 2.5, "o"),
    ("PEP", "PepsiCo, Inc. Common Stock", "NASDAQ", 145.00, 0.011, 1.5, "o"),
    ("SBUX", "Starbucks Corporation Common Stock", "NASDAQ", 85.00, 0.018, 1.5, "o"),
    ("QQQ", "Invesco QQQ Trust, Series 1", "NASDAQ", 600.00, 0.012, 5.0, "o"),
    ("JPM", "JPMorgan Chase & Co. Common Stock", "NYSE", 300.00, 0.014, 2.5, "o"),
    ("V", "Visa Inc.", "NYSE", 340.00, 0.012, 2.0, "o"),
    ("MA", "Mastercard Incorporated Common Stock", "NYSE", 570.00, 0.012, 1.5, "o"),
    ("WMT", "Walmart Inc. Common Stock", "NYSE", 100.00, 0.011, 2.5, "o"),
    ("JNJ", "Johnson & Johnson Common Stock", "NYSE", 190.00, 0.010, 1.5, "o"),
    ("PG", "Procter & Gamble Company (The) Common Stock", "NYSE", 150.00, 0.010, 1.5, "o"),
    ("XOM", "Exxon Mobil Corporation Common Stock", "NYSE", 115.00, 0.015, 2.0, "o"),
    ("KO", "Coca-Cola Company (The) Common Stock", "NYSE", 70.00, 0.009, 1.5, "o"),
    ("DIS", "Walt Disney Company (The) Common Stock", "NYSE", 112.00, 0.016, 2.0, "o"),
    ("BAC", "Bank of America Corporation Common Stock", "NYSE", 50.00, 0.016, 3.0, "o"),
    ("BA", "Boeing Company (The) Common Stock", "NYSE", 220.00, 0.022, 2.0, "o"),
    ("F", "Ford Motor Company Common Stock", "NYSE", 12.00, 0.020, 3.0, "o"),
    ("BRK.B", "Berkshire Hathaway Inc. Class B", "NYSE", 490.00, 0.009, 1.5, "o"),
    ("BRK.A", "Berkshire Hathaway Inc. Class A", "NYSE", 735000.00, 0.009, 0.5, "f"),
    ("GME", "GameStop Corporation Common Stock", "NYSE", 24.00, 0.045, 2.5, "ho"),
    ("AMC", "AMC Entertainment Holdings, Inc. Class A Common Stock", "NYSE", 3.00, 0.050, 4.0, "fshm"),
    ("SPY", "SPDR S&P 500 ETF Trust", "ARCA", 670.00, 0.010, 6.0, "o"),
    ("IWM", "iShares Russell 2000 ETF", "ARCA", 240.00, 0.014, 3.0, "o"),
    ("GLD", "SPDR Gold Trust, SPDR Gold Shares", "ARCA", 380.00, 0.010, 2.0, "o"),
    ("TLT", "iShares 20+ Year Treasury Bond ETF", "NASDAQ", 90.00, 0.009, 2.0, "o"),
    ("DIA", "SPDR Dow Jones Industrial Average ETF Trust", "ARCA", 460.00, 0.010, 1.5, "o"),
    ("MTUM", "iShares MSCI USA Momentum Factor ETF", "BATS", 240.00, 0.012, 0.5, ""),
    ("TWTR", "Twitter, Inc. Common Stock", "NYSE", 53.70, 0.020, 1.0, "x"),
    ("BBBY", "Bed Bath & Beyond Inc. Common Stock", "NASDAQ", 0.08, 0.060, 0.5, "xfshm"),
]


def _asset_json(symbol: str, name: str, exchange: str, flags: str) -> dict:
    active = "x" not in flags
    marginable = "m" not in flags
    easy = "h" not in flags and "s" not in flags
    # Alpaca's house requirement: 30% for ordinary stocks, 100% for names it will not lend on.
    margin = 30 if marginable and easy else 100
    attributes = ["has_options"] if "o" in flags else []
    if "f" not in flags and active:
        attributes.append("fractional_eh_enabled")
    return {
        "id": str(uuid.uuid5(ASSET_NAMESPACE, symbol)),
        "class": "us_equity",
        "exchange": exchange,
        "symbol": symbol,
        "name": name,
        "status": "active" if active else "inactive",
        "tradable": active,
        "marginable": marginable,
        "maintenance_margin_requirement": margin,
        "margin_requirement_long": str(margin),
        "margin_requirement_short": str(margin if "s" not in flags else 100),
        "shortable": "s" not in flags,
        "easy_to_borrow": easy,
        "borrow_status": "easy_to_borrow" if easy else "hard_to_borrow",
        "fractionable": "f" not in flags,
        "attributes": attributes,
    }


def _sort_key(a: dict) -> tuple:
    return (a["class"], a["exchange"], a["symbol"])  # Alpaca's documented order


ASSETS: list[dict] = sorted((_asset_json(s, n, x, f) for s, n, x, _p, _v, _t, f in _UNIVERSE), key=_sort_key)
PROFILES: dict[str, Profile] = {s: Profile(p, v, t, 1 if p >= 5000 else 100) for s, _n, _x, p, v, t, _f in _UNIVERSE}
SYMBOLS: tuple[str, ...] = tuple(a["symbol"] for a in ASSETS)

_BY_KEY: dict[str, dict] = {a["symbol"]: a for a in ASSETS} | {a["id"]: a for a in ASSETS}


def asset(symbol_or_id: str) -> dict | None:
    """The asset JSON for a symbol (any case) or an asset id, or None when unknown.

    Returns a copy: callers may add or change keys without touching the universe.
    """
    key = str(symbol_or_id).strip()
    found = _BY_KEY.get(key) or _BY_KEY.get(key.upper()) or _BY_KEY.get(key.lower())
    return dict(found, attributes=list(found["attributes"])) if found else None


def profile(symbol: str) -> Profile | None:
    """How the synthetic market moves ``symbol``; None for symbols outside the universe."""
    return PROFILES.get(symbol)


def tape(symbol: str) -> str:
    """The SIP tape of a listed symbol: "A" NYSE, "B" ARCA/BATS/AMEX, "C" NASDAQ."""
    found = _BY_KEY.get(symbol)
    return TAPE[found["exchange"]] if found else "B"


def filter_assets(
    *,
    status: str | None = None,
    asset_class: str | None = None,
    exchange: str | None = None,
    attributes: list[str] | None = None,
) -> list[dict]:
    """``GET /v2/assets`` filtering: all statuses by default, class ``us_equity`` by default;
    with ``attributes``, assets having any of them."""
    wanted_class = asset_class or "us_equity"
    out = []
    for a in ASSETS:
        if status and a["status"] != status:
            continue
        if a["class"] != wanted_class:
            continue
        if exchange and a["exchange"] != exchange:
            continue
        if attributes and not set(attributes) & set(a["attributes"]):
            continue
        out.append(dict(a, attributes=list(a["attributes"])))
    return out
