"""One million minute bars into a DataFrame: alpaca_nb's fast path against alpaca-py's ``.df``.

10 symbols x 100,000 one-minute bars from one in-process local broker (continuous market hours,
so every minute of the ~69 days before the manual clock has a bar; no rate limit). Each round
times, on the same broker and the same request:

- ``raw pages``: only fetching the 100 pages of JSON (what neither path can avoid: the broker
  generating and serialising the bars, and HTTP);
- ``alpaca_nb``: :func:`alpaca_nb.marketdata.fetch_bars` (raw pages, msgspec, numpy);
- ``alpaca-py``: ``StockHistoricalDataClient.get_stock_bars(StockBarsRequest(...)).df``;

and, to separate the client's work from the broker's, the decoding of the same pages already in
memory: :func:`alpaca_nb.marketdata.bars_frame` against what alpaca-py does with them
(``json.loads``, merge per symbol, ``BarSet(...).df``).

The two frames are checked to hold the same numbers and timestamps. Usage::

    python -m bench.bars [--symbols 10] [--minutes 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta

import msgspec

SYMBOLS = ("AAPL", "AMZN", "GOOGL", "JPM", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA")
NOW = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)  # the broker's manual clock
TARGET = 5.0  # alpaca_nb must be at least this many times faster than alpaca-py


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _timed(fn):
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bars", description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=len(SYMBOLS), help="how many symbols (at most 10)")
    parser.add_argument("--minutes", type=int, default=100_000, help="one-minute bars per symbol")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds (the best is reported)")
    args = parser.parse_args(argv)

    import pandas as pd
    from alpaca.data.historical import StockHistoricalDataClient
    from alpaca.data.models import BarSet
    from alpaca.data.requests import StockBarsRequest
    from alpaca.data.timeframe import TimeFrame

    from alpaca_nb.broker import Broker, Endpoints
    from alpaca_nb.marketdata import PAGE_LIMIT, bars_frame, fetch_bars, time_param
    from alpaca_nb.models import AlpacaCredentials
    from alpaca_nb.sim import LocalBroker

    symbols = list(SYMBOLS[: args.symbols])
    start = NOW - timedelta(minutes=args.minutes)
    end = NOW - timedelta(minutes=1)  # end is inclusive at Alpaca
    expected = len(symbols) * args.minutes
    print(
        f"bars benchmark: {len(symbols)} symbols x {args.minutes:,} one-minute bars "
        f"({start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC), {args.rounds} round(s)"
    )

    with LocalBroker(seed=7, rate_limit=None, manual_clock=True, start=NOW) as local:
        broker = Broker(
            AlpacaCredentials(local.key, local.secret, "local"), Endpoints(local.url, local.url), timeout=300
        )
        client = StockHistoricalDataClient(local.key, local.secret, url_override=local.url)
        request = StockBarsRequest(
            symbol_or_symbols=symbols, timeframe=TimeFrame.Minute, start=start, end=end, feed="iex"
        )

        def raw_pages() -> list[bytes]:
            params = {
                "symbols": ",".join(symbols),
                "timeframe": "1Min",
                "start": time_param(start, "start"),
                "end": time_param(end, "end"),
                "feed": "iex",
                "limit": PAGE_LIMIT,
            }
            bodies = []
            while True:
                bodies.append(broker.get_bytes("data", "/stocks/bars", params))
                token = page_token(bodies[-1])
                if not token:
                    return bodies
                params["page_token"] = token

        def ours() -> pd.DataFrame:
            return fetch_bars(broker, symbols, "1Min", start, end, feed="iex", progress=False)

        def theirs() -> pd.DataFrame:
            return client.get_stock_bars(request).df

        def decode_ours() -> pd.DataFrame:
            return bars_frame(bodies)

        def decode_theirs() -> pd.DataFrame:
            # What alpaca-py does with the same pages: json, merge per symbol, models, .df.
            merged: dict[str, list] = {}
            for body in bodies:
                for symbol, bars in json.loads(body)["bars"].items():
                    merged.setdefault(symbol, []).extend(bars)
            return BarSet(merged).df

        results: dict[str, list[float]] = {
            "raw pages": [],
            "alpaca_nb": [],
            "alpaca-py": [],
            "decode alpaca_nb": [],
            "decode alpaca-py": [],
        }
        frame = other = bodies = None
        for round_ in range(1, args.rounds + 1):
            del bodies
            seconds, bodies = _timed(raw_pages)
            results["raw pages"].append(seconds)
            del frame, other
            seconds, frame = _timed(ours)
            results["alpaca_nb"].append(seconds)
            seconds, other = _timed(theirs)
            results["alpaca-py"].append(seconds)
            results["decode alpaca_nb"].append(_timed(decode_ours)[0])
            results["decode alpaca-py"].append(_timed(decode_theirs)[0])
            print(f"  round {round_}: " + ", ".join(f"{name} {times[-1]:.2f} s" for name, times in results.items()))
        pages, size = len(bodies), sum(map(len, bodies))

        if len(frame) != expected or len(other) != expected:
            print(f"FAIL: expected {expected:,} bars, got alpaca_nb {len(frame):,}, alpaca-py {len(other):,}")
            return 1
        # The same numbers and the same timestamps (alpaca-py's columns may be fewer: it drops
        # all-null ones; its timestamps are microseconds, its counts floats).
        pd.testing.assert_frame_equal(frame[list(other.columns)], other, check_dtype=False, check_index_type=False)
        best = {name: min(times) for name, times in results.items()}
        ratio = best["alpaca-py"] / best["alpaca_nb"]
        print(f"  {pages} pages, {size / 2**20:.0f} MiB of JSON, {expected:,} bars; best of {args.rounds}:")
        print(f"  end to end   raw pages only (broker + HTTP)  {best['raw pages']:6.2f} s")
        print(f"               alpaca_nb fetch_bars            {best['alpaca_nb']:6.2f} s")
        print(f"               alpaca-py get_stock_bars().df   {best['alpaca-py']:6.2f} s")
        print(f"  same pages   alpaca_nb bars_frame            {best['decode alpaca_nb']:6.2f} s")
        print(
            f"  in memory    alpaca-py json + BarSet().df    {best['decode alpaca-py']:6.2f} s "
            f"({best['decode alpaca-py'] / best['decode alpaca_nb']:.0f}x)"
        )
        print(f"  alpaca_nb is {ratio:.1f}x faster end to end (target >= {TARGET:g}x); peak RSS {_rss_gib():.1f} GiB")
        return 0 if ratio >= TARGET else 1


class _Token(msgspec.Struct):
    next_page_token: str | None = None


def page_token(body: bytes) -> str | None:
    """The page's ``next_page_token``, skipping over the bars without building them."""
    return msgspec.json.decode(body, type=_Token).next_page_token


if __name__ == "__main__":
    sys.exit(main())
