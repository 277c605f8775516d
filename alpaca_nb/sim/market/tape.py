"""The synthetic tape: every trade and quote of one symbol on one New York day, from a seed.

Trades are the primitive; everything else is derived from them (minute bars here, longer bars
in :mod:`.bars`), so the data API can never contradict itself. How a day is made:

1. A **day anchor** per symbol and calendar day: a mean-reverting random walk of the log price
   (Ornstein-Uhlenbeck, half-life about a year) around the symbol's base price, defined for
   every day from 1970 to 2099. Day ``d`` opens at anchor ``d`` and ends at anchor ``d+1``, so
   consecutive days join up (in ``nyse`` mode the walk over a weekend shows as a gap).
2. **Trade times**: every minute of the day's trading window gets ``1 + Poisson(rate)`` trades
   (busier near the open and close) at random nanoseconds, strictly increasing.
3. **Prices**: a Brownian bridge between the two anchors gives the mid price at each trade;
   the quote around it is a whole number of ticks wide ($0.01, or $0.0001 below $1) and the
   trade prints at the bid, the ask or inside.
4. **Quotes**: one quote shortly before each trade (after the previous one), so the latest
   quote at any trade's time brackets it: ``bid <= price <= ask``.

Each (seed, symbol, day) has its own random stream, so a day is reproducible alone, in any
order, by any number of :class:`~alpaca_nb.sim.market.market.Market` instances. Prices are integers
in units of $0.0001 (``PRICE_SCALE``) so that cents stay exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from .assets import ASSETS, TAPE, Profile

PRICE_SCALE = 10_000  # price units per dollar
MINUTE_NS = 60_000_000_000
EPOCH = date(1970, 1, 1)  # day index 0
LAST_DAY = date(2099, 12, 31)
N_DAYS = (LAST_DAY - EPOCH).days + 2
ANCHOR_DAY = date(2026, 1, 1)  # the walk passes through the base price on this day
HALF_LIFE_DAYS = 365
SPREAD_BPS = 0.3  # typical quoted spread in basis points, before tick rounding

# Trade venues (Alpaca's exchange codes), weighted by a plausible share of volume; the
# listing exchange's own code is boosted per symbol. D = FINRA ADF (off-exchange).
VENUES = np.array(list("DQNPKZVUJYXBAH"))
VENUE_WEIGHTS = np.array([30, 14, 6, 9, 8, 7, 3, 3, 3, 3, 2, 2, 1, 1], dtype=float)
QUOTE_VENUES = np.array(list("QNPKZVUJYXBAH"))
_EXCHANGE = {a["symbol"]: a["exchange"] for a in ASSETS}
_PRIMARY = {"NASDAQ": "Q", "NYSE": "N", "ARCA": "P", "BATS": "Z", "AMEX": "A", "NYSEARCA": "P"}


def day_index(d: date) -> int:
    return (d - EPOCH).days


def symbol_key(symbol: str) -> int:
    """A stable 64-bit number per symbol (``hash()`` is salted per process, so not that)."""
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "little")


@lru_cache(maxsize=256)
def log_anchors(seed: int, symbol: str, base_price: float, daily_vol: float) -> np.ndarray:
    """Log price at the start of every day index 0..N_DAYS-1 (read-only array).

    OU recursion x[k+1] = a*x[k] + e[k], solved in one vectorised pass:
    x[j] = a**(j-1) * sum_{i<j} a**(-i) e[i]. Terms grow like a**-i, at most ~1e41 here, and
    the rounding error stays ~eps/(1-a), far below a cent.
    """
    a = 0.5 ** (1 / HALF_LIFE_DAYS)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, symbol_key(symbol), 0])))
    e = rng.standard_normal(N_DAYS - 1) * daily_vol
    k = np.arange(N_DAYS - 1, dtype=float)
    partial = np.cumsum(e * np.exp(-k * np.log(a)))
    x = np.empty(N_DAYS)
    x[0] = 0.0
    x[1:] = np.exp(k * np.log(a)) * partial
    x += np.log(base_price) - x[day_index(ANCHOR_DAY)]
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False)
class DayTape:
    """Trades and quotes of one symbol for one New York day, as numpy columns.

    ``t``/``qt`` are UTC nanoseconds since the epoch; prices are in 1/10000 dollar; the trade
    id of trade ``j`` is ``first_id + j``. The whole day is generated at once: the market cuts
    it at the clock.
    """

    symbol: str
    day: date
    start_ns: int
    end_ns: int
    first_id: int
    # trades
    t: np.ndarray
    price: np.ndarray
    size: np.ndarray
    venue: np.ndarray  # index into VENUES
    # quotes: quote j is the last one before trade j
    qt: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    bid_venue: np.ndarray  # index into QUOTE_VENUES
    ask_venue: np.ndarray
    tape: str

    @property
    def n(self) -> int:
        return len(self.t)


def _intensity(minutes: int, continuous: bool) -> np.ndarray:
    """Relative trading activity per minute: busy near the open and the close."""
    if not continuous:
        u = (np.arange(minutes) + 0.5) / minutes
        return 0.6 + 1.6 * (2 * u - 1) ** 2
    # Continuous mode: the window starts at New York midnight; the regular-hours minutes
    # (09:30-16:00 local) trade like a session, the rest of the day thinly.
    m = np.arange(minutes)
    inside = (m >= 570) & (m < 960)
    u = np.clip((m - 570 + 0.5) / 390, 0, 1)
    return np.where(inside, 0.6 + 1.6 * (2 * u - 1) ** 2, 0.15)


@lru_cache(maxsize=64)
def _venue_table(exchange: str) -> np.ndarray:
    """256-entry lookup: a random byte -> trade venue index, the listing exchange boosted."""
    weights = VENUE_WEIGHTS.copy()
    weights[np.flatnonzero(VENUES == _PRIMARY.get(exchange, "P"))] += 15
    edges = np.cumsum(weights) / weights.sum() * 256
    return np.searchsorted(edges, np.arange(256) + 0.5).astype(np.uint8)


def build_day(seed: int, symbol: str, prof: Profile, d: date, window: tuple[int, int], continuous: bool) -> DayTape:
    """Generate the tape of ``symbol`` for New York day ``d`` trading in ``window`` (ns).

    Hot path (hundreds of days per large bar request), hence the shape: the discrete choices
    of a trade are the eight bytes of one random 64-bit word, and the price path is drawn
    per minute and interpolated, so a day of ~5,000 trades costs well under a millisecond.
    """
    start_ns, end_ns = window
    k = day_index(d)
    anchors = log_anchors(seed, symbol, prof.base_price, prof.daily_vol)
    bits = np.random.PCG64(np.random.SeedSequence([seed, symbol_key(symbol), 1, k]))
    rng = np.random.Generator(bits)
    minutes = (end_ns - start_ns) // MINUTE_NS

    # 1 + geometric(mean = rate) trades per minute: every minute trades, bursts happen.
    rate = prof.trades_per_min * _intensity(minutes, continuous)
    counts = 1 + np.floor(np.log(rng.random(minutes)) / np.log(rate / (1 + rate))).astype(np.int64)
    n = int(counts.sum())
    minute = np.repeat(np.arange(minutes, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    rank = np.arange(n, dtype=np.int64) - np.repeat(first, counts)
    unit = rng.random((4, n))
    byte = bits.random_raw(n).view(np.uint8).reshape(n, 8)

    # Stratified times: the r-th of c trades in a minute falls in the r-th c-th of it (1 us
    # clear of the edges), so times come out strictly increasing with no sort.
    per = np.repeat((MINUTE_NS - 2_000) / counts, counts)
    offset = 1_000 + ((rank + unit[0]) * per).astype(np.int64)
    t = start_ns + minute * MINUTE_NS + offset

    # Brownian bridge from today's anchor to tomorrow's at each minute edge, interpolated
    # to the trade times, plus a little per-trade noise.
    w = np.concatenate(([0.0], np.cumsum(rng.standard_normal(minutes)) / np.sqrt(minutes)))
    edge_tau = np.arange(minutes + 1) / minutes
    lo, hi = anchors[k], anchors[k + 1]
    path = lo + edge_tau * (hi - lo) + prof.daily_vol * (w - edge_tau * w[-1])
    step = np.diff(path)
    log_mid = path[minute] + step[minute] * (offset / MINUTE_NS)
    log_mid += (unit[1] - 0.5) * (prof.daily_vol / np.sqrt(minutes))
    mid = np.exp(log_mid) * PRICE_SCALE

    # $0.01 ticks, or $0.0001 below $1 (a scalar in the common case: faster arithmetic).
    tick = 100 if mid.min() >= PRICE_SCALE else np.where(mid >= PRICE_SCALE, 100, 1)
    width = np.maximum(1, np.rint(mid * (SPREAD_BPS * 1e-4) / tick)).astype(np.int64)
    width += (byte[:, 0] < 77) + (byte[:, 1] < 26)  # wider 30% / 10% of the time
    spread = width * tick
    bid = np.maximum(tick, (np.floor((mid - spread / 2) / tick) * tick).astype(np.int64))
    ask = bid + spread
    side = byte[:, 2]  # 45% at the bid, 45% at the ask
    price = np.where(side < 115, bid, np.where(side < 230, ask, bid + (width // 2) * tick))

    lot = prof.lot
    lots = np.minimum(1 + np.floor(np.log(unit[2]) * (1 / np.log(0.55))), 50).astype(np.int64)
    if lot > 1:
        odd = byte[:, 3] < 90  # 35% odd lots
        size = np.where(odd, 1 + (unit[3] * (lot - 1)).astype(np.int64), lots * lot)
    else:
        size = lots

    exchange = _EXCHANGE.get(symbol, "ARCA")
    # Each quote lands strictly between the previous trade (or the window start) and its trade.
    gap = np.diff(t, prepend=start_ns)
    lead = 1 + (unit[3] * np.minimum(gap - 1, 20_000_000)).astype(np.int64)
    n_quote_venues = len(QUOTE_VENUES)
    return DayTape(
        symbol=symbol,
        day=d,
        start_ns=start_ns,
        end_ns=end_ns,
        first_id=k * 10_000_000 + 1,
        t=t,
        price=price,
        size=size,
        venue=_venue_table(exchange)[byte[:, 4]],
        qt=t - lead,
        bid=bid,
        ask=ask,
        bid_size=(1 + byte[:, 5] % 10) * np.int64(lot),
        ask_size=(1 + byte[:, 6] % 10) * np.int64(lot),
        bid_venue=byte[:, 7] % n_quote_venues,
        ask_venue=(byte[:, 4] // 16 + byte[:, 3]) % n_quote_venues,
        tape=TAPE.get(exchange, "B"),
    )


@dataclass(frozen=True, eq=False)
class Bars:
    """OHLCV columns of bars (one-minute bars, or bars merged from them), prices in 1/10000 $.

    ``t`` is each bar's start in ns; ``pv`` the sum of price*size, so that the volume-weighted
    price stays exact however bars are merged.
    """

    t: np.ndarray
    o: np.ndarray
    h: np.ndarray
    l: np.ndarray  # noqa: E741
    c: np.ndarray
    v: np.ndarray
    n: np.ndarray
    pv: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def take(self, sl: slice | np.ndarray) -> Bars:
        return Bars(*(getattr(self, f)[sl] for f in BAR_FIELDS))

    @staticmethod
    def concat(parts: list[Bars]) -> Bars:
        if len(parts) == 1:
            return parts[0]
        return Bars(*(np.concatenate([getattr(p, f) for p in parts]) for f in BAR_FIELDS))


BAR_FIELDS = ("t", "o", "h", "l", "c", "v", "n", "pv")
EMPTY_BARS = Bars(*(np.empty(0, dtype=np.float64 if f == "pv" else np.int64) for f in BAR_FIELDS))


def minute_bars(t: np.ndarray, price: np.ndarray, size: np.ndarray) -> Bars:
    """Aggregate trades (sorted by time) into one-minute bars, minute start = floor(t)."""
    if len(t) == 0:
        return EMPTY_BARS
    minute = t // MINUTE_NS
    first = np.flatnonzero(np.diff(minute, prepend=minute[0] - 1))
    last = np.append(first[1:], len(t)) - 1
    return Bars(
        t=minute[first] * MINUTE_NS,
        o=price[first],
        h=np.maximum.reduceat(price, first),
        l=np.minimum.reduceat(price, first),
        c=price[last],
        v=np.add.reduceat(size, first),
        n=last - first + 1,
        pv=np.add.reduceat(price * size.astype(np.float64), first),
    )


@dataclass(frozen=True, eq=False)
class Ticks:
    """A run of trades (and the quote before each) of one symbol, as numpy columns.

    Row ``j``: trade at ``t[j]`` (price, size, venue, id) and the quote at ``qt[j]`` that
    stood just before it. ``tape`` is the symbol's SIP tape letter.
    """

    t: np.ndarray
    price: np.ndarray
    size: np.ndarray
    venue: np.ndarray
    id: np.ndarray
    qt: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    bid_venue: np.ndarray
    ask_venue: np.ndarray
    tape: str

    def __len__(self) -> int:
        return len(self.t)

    @staticmethod
    def of(tape: DayTape, lo: int, hi: int) -> Ticks:
        sl = slice(lo, hi)
        return Ticks(
            tape.t[sl],
            tape.price[sl],
            tape.size[sl],
            tape.venue[sl],
            tape.first_id + np.arange(lo, hi, dtype=np.int64),
            tape.qt[sl],
            tape.bid[sl],
            tape.ask[sl],
            tape.bid_size[sl],
            tape.ask_size[sl],
            tape.bid_venue[sl],
            tape.ask_venue[sl],
            tape.tape,
        )

    @staticmethod
    def concat(parts: list[Ticks], tape: str) -> Ticks:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return Ticks._of_columns([np.empty(0, np.int64) for _ in TICK_FIELDS], tape)
        return Ticks._of_columns([np.concatenate([getattr(p, f) for p in parts]) for f in TICK_FIELDS], tape)

    def take(self, sl: slice) -> Ticks:
        return Ticks._of_columns([getattr(self, f)[sl] for f in TICK_FIELDS], self.tape)

    @staticmethod
    def _of_columns(columns: list[np.ndarray], tape: str) -> Ticks:
        """A Ticks from its array columns in :data:`TICK_FIELDS` order."""
        t, price, size, venue, id_, qt, bid, ask, bid_size, ask_size, bid_venue, ask_venue = columns
        return Ticks(t, price, size, venue, id_, qt, bid, ask, bid_size, ask_size, bid_venue, ask_venue, tape)


TICK_FIELDS = (
    "t",
    "price",
    "size",
    "venue",
    "id",
    "qt",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "bid_venue",
    "ask_venue",
)
