"""Where the engine keeps its orders, with the indexes that keep 10,000 of them fast.

* ``orders`` by id and ``by_client_id``; ``all`` in submission order, whose ``submitted_at``
  strictly increases (the engine stamps each order uniquely), so ``after`` / ``until`` pages
  are a bisection away;
* ``open`` (everything not final, held legs included) and ``open_by_symbol``, each in
  submission order: matching and quantity checks never look at closed orders;
* what open opening orders reserve of buying power, kept as a running total.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

from .orders import Order

ZERO = Decimal(0)


class OrderBook:
    """All orders of the account and their indexes. Call :meth:`changed` after any mutation."""

    def __init__(self, reserve_of: Callable[[Order], Decimal]):
        self._reserve_of = reserve_of
        self._empty()

    def _empty(self) -> None:
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.all: list[Order] = []
        self.open: dict[str, Order] = {}
        self.open_by_symbol: dict[str, dict[str, Order]] = {}
        self._reserved: dict[str, Decimal] = {}
        self._working_sides: dict[str, dict[str, int]] = {}  # symbol -> side -> count
        self._counted: set[str] = set()
        self.reserved_total = ZERO
        self.version: dict[str, int] = {}  # per symbol: bumps when its open orders change

    def __len__(self) -> int:
        return len(self.orders)

    def add(self, order: Order) -> None:
        """Register a new order (it must be the latest submitted)."""
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order
        self.all.append(order)
        self.changed(order)

    def changed(self, order: Order) -> None:
        """Keep the open indexes and the buying-power reservation in step with ``order``."""
        symbol = order.symbol
        self.version[symbol] = self.version.get(symbol, 0) + 1
        if order.is_open:
            self.open[order.id] = order
            self.open_by_symbol.setdefault(symbol, {})[order.id] = order
            new = self._reserve_of(order)
        else:
            self.open.pop(order.id, None)
            by_symbol = self.open_by_symbol.get(symbol)
            if by_symbol is not None:
                by_symbol.pop(order.id, None)
                if not by_symbol:
                    del self.open_by_symbol[symbol]
            new = ZERO
        working = order.is_open and order.status != "held"
        if working != (order.id in self._counted):
            sides = self._working_sides.setdefault(symbol, {"buy": 0, "sell": 0})
            sides[order.side] += 1 if working else -1
            (self._counted.add if working else self._counted.discard)(order.id)
        old = self._reserved.pop(order.id, ZERO)
        if new:
            self._reserved[order.id] = new
        self.reserved_total += new - old

    def rename_client_id(self, order: Order, old: str) -> None:
        self.by_client_id.pop(old, None)
        self.by_client_id[order.client_order_id] = order

    def reserved_by(self, order: Order) -> Decimal:
        return self._reserved.get(order.id, ZERO)

    def working_sides(self, symbol: str) -> set[str]:
        """Sides with at least one open, non-held order in ``symbol``."""
        sides = self._working_sides.get(symbol, {})
        return {side for side, n in sides.items() if n > 0}

    def symbol_open(self, symbol: str) -> list[Order]:
        return list(self.open_by_symbol.get(symbol, {}).values())

    def clear(self) -> None:
        """Forget every order (the account was reset or is being restored)."""
        self._empty()

    # ---- queries -----------------------------------------------------------------------------
    def select(
        self,
        *,
        status: str = "open",
        after: datetime | None = None,
        until: datetime | None = None,
        direction: str = "desc",
        symbols: set[str] | None = None,
        side: str | None = None,
        top_level_only: bool = False,
    ) -> Iterator[Order]:
        """Orders matching the filters, newest first for ``desc``; ``after``/``until`` are
        exclusive bounds on ``submitted_at``."""
        if status == "open":
            pool = list(self.open.values())  # already in submission order
        else:
            pool = self.all
        lo = 0 if after is None else bisect_right(pool, after, key=_submitted)
        hi = len(pool) if until is None else bisect_left(pool, until, key=_submitted)
        indexes = range(hi - 1, lo - 1, -1) if direction == "desc" else range(lo, hi)
        for i in indexes:
            o = pool[i]
            if status == "closed" and o.is_open:
                continue
            if symbols is not None and o.symbol not in symbols:
                continue
            if side is not None and o.side != side:
                continue
            if top_level_only and o.parent_id is not None:
                continue
            yield o


def _submitted(order: Order) -> datetime:
    return order.submitted_at
