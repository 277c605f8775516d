"""QuoteBoard: live quotes for a set of symbols, updating as they arrive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets
import pandas as pd

from .. import frames
from ..errors import OrderValidationError
from ..live import LiveQuotes
from ._base import ServiceWidget, Throttle, guarded, money, quantity, split_list, table_html


def _spread(row: dict) -> str:
    """In cents for prices of $1 and above (their tick), four decimals below."""
    if pd.isna(row["spread"]):
        return ""
    return f"{row['spread']:.2f}" if row["bid_price"] >= 1 else f"{row['spread']:.4f}"


COLUMNS = [
    ("symbol", lambda r: r["symbol"]),
    ("bid size", lambda r: quantity(r["bid_size"])),
    ("bid", lambda r: money(r["bid_price"])),
    ("ask", lambda r: money(r["ask_price"])),
    ("ask size", lambda r: quantity(r["ask_size"])),
    ("spread", _spread),
    (
        "time (UTC)",
        lambda r: "" if pd.isna(r["timestamp"]) else pd.Timestamp(r["timestamp"]).strftime("%H:%M:%S.%f")[:-3],
    ),
]


class QuoteBoard(ServiceWidget):
    """Bid, ask, sizes, spread and time of each symbol: the latest quote when a symbol is added
    (one REST call), then every quote from the market-data stream (redrawn at most
    ``1 / interval`` times a second), so a quiet symbol is never blank. Edit the symbols box (comma-separated) or call
    :meth:`set_symbols` / :meth:`add` / :meth:`remove`. ``frame`` is the latest quote per symbol;
    :meth:`close` ends the subscriptions."""

    def __init__(self, service: Any = None, symbols: Iterable[str] | str = ("SPY",), *, interval: float = 0.25):
        super().__init__(service)
        self._hub = self.service.streams
        self._quotes: dict[str, LiveQuotes] = {}
        self._seed: dict[str, pd.DataFrame] = {}  # the REST quote a symbol starts with
        self._throttle = Throttle(self.render, interval)
        self.on_close(self._stop_all)
        self.symbols_input = widgets.Text(
            description="Symbols",
            continuous_update=False,
            placeholder="SPY, AAPL",
            layout=widgets.Layout(width="420px"),
        )
        self.table = widgets.HTML("")
        self.children = [self.banner, self.symbols_input, self.table, self.status]
        self.set_symbols(split_list(symbols) if isinstance(symbols, str) else symbols)
        self.symbols_input.observe(lambda change: self.set_symbols(split_list(change["new"])), "value")

    @property
    def symbols(self) -> list[str]:
        """The symbols on the board, in the order given."""
        return list(self._quotes)

    def __repr__(self) -> str:
        return f"QuoteBoard(environment={self.environment.value!r}, symbols={self.symbols})"

    @property
    def frame(self) -> pd.DataFrame:
        """The latest quote of each symbol that has quoted (board order), indexed by ``symbol``,
        plus ``spread``."""
        parts = []
        for symbol, live in list(self._quotes.items()):  # a copy: safe across threads
            part = live.df
            parts.append(self._seed.get(symbol) if part.empty else part)  # the stream's is newer
        quoted = [part for part in parts if part is not None and not part.empty]
        frame = pd.concat(quoted) if quoted else frames.latest_quotes_frame({})
        return frame.assign(spread=frame["ask_price"] - frame["bid_price"])

    @guarded("change symbols")
    def set_symbols(self, symbols: Iterable[str]) -> list[str]:
        """Show exactly ``symbols``: new ones are subscribed, dropped ones stopped."""
        wanted = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
        for symbol in wanted:
            if symbol not in self._quotes and self.service.asset(symbol) is None:
                raise OrderValidationError(f"symbol {symbol!r} is not a known asset: check the ticker", "symbol")
        for symbol in [s for s in self._quotes if s not in wanted]:
            self._quotes.pop(symbol).stop()
            self._seed.pop(symbol, None)
        new = [s for s in wanted if s not in self._quotes]
        for symbol in new:
            self._quotes[symbol] = LiveQuotes(self._hub, [symbol], on_update=lambda _live: self._throttle.poke())
        if new:  # after subscribing: any quote the stream sends from now on is newer than these
            latest = self.service.quotes(new)
            self._seed.update({symbol: latest.loc[[symbol]] for symbol in latest.index})
        self._quotes = {s: self._quotes[s] for s in wanted}  # in the order asked for
        text = ", ".join(self.symbols)
        if self.symbols_input.value != text:
            self.symbols_input.value = text
        self.render()
        return self.symbols

    def add(self, symbol: str) -> list[str]:
        """Add one symbol to the board."""
        return self.set_symbols([*self.symbols, symbol])

    def remove(self, symbol: str) -> list[str]:
        """Take one symbol off the board."""
        return self.set_symbols([s for s in self.symbols if s != symbol.strip().upper()])

    @property
    def live(self) -> bool:
        """True while any of the board's subscriptions is active."""
        return any(q.live for q in self._quotes.values())

    @guarded("show quotes")
    def render(self) -> None:
        frame = self.frame.reindex(self.symbols).rename_axis("symbol").reset_index()
        self.table.value = table_html(frame, COLUMNS, empty="No symbols: type some above")

    def _stop_all(self) -> None:
        self._throttle.stop()
        for quotes in self._quotes.values():
            quotes.stop()
