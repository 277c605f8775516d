"""The live guard: no real-money order leaves without it.

In the LIVE environment every request that makes the broker create an order is checked before
it is sent: placing (brackets, OCO and OTO included), replacing (the order that results, at its
new size and prices), closing one position and closing all. Each order the broker would create
is priced at what it can execute at, against the latest quote (:mod:`alpaca_nb.exposure`:
a marketable order counts at the market, never at its limit or stop; a missing quote
refuses), and admitted by :class:`LiveGuard` or refused with
:class:`~alpaca_nb.errors.LiveTradingNotArmed`. A refused request changes nothing at the
broker (the guard's own reads, the quote and the order or positions being priced, may go out
first; unarmed, nothing goes out at all).

Closing counts each closing order: a market order for the position's qty (or the qty or
percentage asked) at the bid (long) or the ask (short). Close-all is all or nothing: every
closing order must be within the per-order cap (there is no total cap), and each counts
against the orders per minute, so all of them must fit in what is left of the minute.

Arming (``svc.arm_live(...)``) sets two caps, dollars per order and orders per minute, for some
minutes. Arming with ``tighten_only=True`` (what the ticket does) stays within the caps last
armed in code: each cap is the lower of the two, and the arming ends no later. The per-minute
count is never reset: re-arming and disarming keep the orders already counted (one per request
sent; a bracket is one).
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import AlpacaNbError, InvalidArgumentError, LiveTradingNotArmed, NotFoundError
from .exposure import Exposure, OrderShape, Quote, exposure
from .models import AlpacaOrderRequest
from .order_rules import order_id_path, symbol_path

WINDOW = 60.0  # seconds of the per-minute order count


# -- arming and caps ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCaps:
    """The caps in force: dollars per order, orders per rolling minute, and when arming ends
    (``time.monotonic()`` seconds)."""

    max_order_notional: Decimal
    max_orders_per_minute: int
    until: float

    def tightened_by(self, ceiling: LiveCaps | None) -> LiveCaps:
        """These caps, but no looser than ``ceiling`` on any of the three."""
        if ceiling is None:
            return self
        return LiveCaps(
            min(self.max_order_notional, ceiling.max_order_notional),
            min(self.max_orders_per_minute, ceiling.max_orders_per_minute),
            min(self.until, ceiling.until),
        )

    def __str__(self) -> str:
        n = self.max_orders_per_minute
        return f"up to ${self.max_order_notional:,.2f} per order, {n} order{'s' if n != 1 else ''} a minute"


def _caps(max_order_notional: Any, max_orders_per_minute: Any, minutes: Any, now: float) -> LiveCaps:
    """Checked caps, or :class:`InvalidArgumentError` naming the argument."""
    try:
        cap = Decimal(str(max_order_notional))
    except (InvalidOperation, ValueError):
        cap = Decimal("NaN")
    if isinstance(max_order_notional, bool) or not cap.is_finite() or cap <= 0:
        raise InvalidArgumentError(
            f"max_order_notional={max_order_notional!r}: give a positive number of "
            "dollars, e.g. max_order_notional=1000",
            "max_order_notional",
        )
    if (
        isinstance(max_orders_per_minute, bool)
        or not isinstance(max_orders_per_minute, numbers.Integral)
        or max_orders_per_minute < 1
    ):
        raise InvalidArgumentError(
            f"max_orders_per_minute={max_orders_per_minute!r}: give a whole number of "
            "at least 1, e.g. max_orders_per_minute=10",
            "max_orders_per_minute",
        )
    if isinstance(minutes, bool) or not isinstance(minutes, numbers.Real) or not math.isfinite(minutes) or minutes < 0:
        raise InvalidArgumentError(
            f"minutes={minutes!r}: give how many minutes arming lasts, e.g. minutes=60", "minutes"
        )
    return LiveCaps(cap, int(max_orders_per_minute), now + float(minutes) * 60)


@dataclass(eq=False)
class LiveGuard:
    """Per-session arming, caps and the per-minute order count for real-money orders.

    One guard lives as long as its service: :meth:`arm` and :meth:`disarm` change the caps in
    force, never the count of orders admitted in the last minute. Thread-safe: two threads
    cannot both take the last slot of a minute.
    """

    clock: Callable[[], float] = time.monotonic
    _caps: LiveCaps | None = field(default=None, repr=False)
    _ceiling: LiveCaps | None = field(default=None, repr=False)  # the caps armed in code
    _recent: deque[float] = field(default_factory=deque, repr=False)  # monotonic times of recent orders
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(
        self,
        *,
        max_order_notional: Any = 1_000,
        max_orders_per_minute: Any = 10,
        minutes: Any = 60.0,
        tighten_only: bool = False,
    ) -> LiveCaps:
        """Arm with these caps for ``minutes``; returns the caps in force.

        From code (``tighten_only=False``) the caps replace any others, and bound every later
        ``tighten_only`` arming. With ``tighten_only=True`` (the ticket) each cap is the lower
        of these and code's, and arming ends no later than code's; once code's arming has
        expired the ticket cannot arm until code arms again.
        """
        with self._lock:
            now = self.clock()
            caps = _caps(max_order_notional, max_orders_per_minute, minutes, now)
            if not tighten_only:
                self._ceiling = self._caps = caps
                return caps
            if self._ceiling is not None and self._ceiling.until <= now:
                raise LiveTradingNotArmed(
                    "live trading armed in code (arm_live) has expired, and the ticket "
                    "cannot arm beyond it: call svc.arm_live(...) again in code"
                )
            self._caps = caps.tightened_by(self._ceiling)
            return self._caps

    def disarm(self) -> None:
        """No live order until armed again (the per-minute count and code's caps are kept)."""
        with self._lock:
            self._caps = None

    @property
    def caps(self) -> LiveCaps | None:
        """The caps in force, or None when not armed (expired caps are still returned)."""
        return self._caps

    def require_armed(self) -> LiveCaps:
        """The caps in force; :class:`LiveTradingNotArmed` when not armed or expired."""
        caps = self._caps
        if caps is None:
            raise not_armed()
        if self.clock() > caps.until:
            raise LiveTradingNotArmed("live trading was armed but the arming expired: call arm_live(...) again")
        return caps

    def admit(self, exposures: Iterable[Exposure]) -> None:
        """Count the orders as sent, or refuse them all: each must be within the per-order cap,
        and together they must fit in what is left of the minute's order count."""
        exposures = list(exposures)
        with self._lock:
            caps = self.require_armed()
            for exposure in exposures:
                if exposure.dollars > caps.max_order_notional:
                    raise LiveTradingNotArmed(
                        f"{exposure.what}: order notional ${exposure.dollars:,.2f} ({exposure.basis}) exceeds "
                        f"the live cap ${caps.max_order_notional:,.2f}: place a smaller order or re-arm with a "
                        "higher max_order_notional"
                    )
            now = self.clock()
            while self._recent and self._recent[0] <= now - WINDOW:
                self._recent.popleft()
            if len(self._recent) + len(exposures) > caps.max_orders_per_minute:
                left = max(0, caps.max_orders_per_minute - len(self._recent))
                raise LiveTradingNotArmed(
                    f"more than {caps.max_orders_per_minute} live orders in a minute ({len(exposures)} to send, "
                    f"{left} left): wait, or re-arm with a higher max_orders_per_minute"
                )
            self._recent.extend([now] * len(exposures))


def not_armed() -> LiveTradingNotArmed:
    return LiveTradingNotArmed(
        "this is the LIVE environment (real money): call service.arm_live(max_order_notional=..., "
        "max_orders_per_minute=...) in this session before placing orders"
    )


# -- what is about to be sent -------------------------------------------------------------------


@dataclass(frozen=True)
class Replacement:
    """``PATCH /v2/orders/{alpaca_order_id}`` with ``changes`` (qty, limit_price, stop_price, trail)."""

    alpaca_order_id: str
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Closing:
    """``DELETE /v2/positions/{symbol}``: all of it, ``qty`` shares or ``percentage`` percent."""

    symbol: str
    qty: Any = None
    percentage: Any = None


@dataclass(frozen=True)
class ClosingAll:
    """``DELETE /v2/positions``: one closing order per position."""


# -- the check, for each way an order leaves ------------------------------------------------------


def check_live(service: Any, guard: LiveGuard | None, subject: Any) -> None:
    """Price what ``subject`` would make the broker create and admit it through ``guard``, or
    raise :class:`LiveTradingNotArmed` having sent nothing that changes the account.

    ``subject`` is an :class:`~alpaca_nb.models.AlpacaOrderRequest` (place), a
    :class:`Replacement`, a :class:`Closing` or :class:`ClosingAll`. Arming is checked first, so
    an unarmed service sends no request at all; a missing order or position raises
    :class:`~alpaca_nb.errors.NotFoundError` as the request itself would.
    """
    if guard is None:
        raise not_armed()
    guard.require_armed()
    orders = _orders(service, subject)
    symbols = sorted({o.symbol for o in orders if o.qty is not None})
    quotes = _quotes(service, symbols) if symbols else {}
    guard.admit([exposure(o, quotes.get(o.symbol)) for o in orders])


def _orders(service: Any, subject: Any) -> list[OrderShape]:
    if isinstance(subject, AlpacaOrderRequest):
        return [OrderShape.of_request(subject)]
    broker = service._require()
    try:
        if isinstance(subject, Replacement):
            order = broker.call(
                broker.trading.get,
                f"/orders/{order_id_path(subject.alpaca_order_id)}",
                {"nested": True},
                what="look up the order to replace (live guard)",
            )
            return [OrderShape.of_alpaca(order, subject.changes)]
        if isinstance(subject, Closing):
            symbol = symbol_path(subject.symbol)
            position = broker.call(
                broker.trading.get, f"/positions/{symbol}", what=f"look up the {symbol} position to close (live guard)"
            )
            return [OrderShape.closing(position, subject.qty, subject.percentage)]
        if isinstance(subject, ClosingAll):
            positions = broker.call(broker.trading.get, "/positions", what="list positions to close (live guard)")
            return [OrderShape.closing(p) for p in positions or ()]
    except NotFoundError:
        raise
    except AlpacaNbError as err:
        raise LiveTradingNotArmed(f"the live guard could not price this request ({err}): nothing was sent") from None
    raise TypeError(f"the live guard cannot price {type(subject).__name__}")


def _quotes(service: Any, symbols: list[str]) -> dict[str, Quote]:
    """The latest quote of each symbol; a failed lookup refuses (fails closed)."""
    try:
        answer = service._latest("quotes", symbols)
    except AlpacaNbError as err:
        raise LiveTradingNotArmed(
            f"the latest quote for {', '.join(symbols)} could not be read ({err}): the live guard prices every "
            "order at the market and refuses one it cannot price; nothing was sent"
        ) from None
    found = (answer or {}).get("quotes") or {}
    return {s: Quote.of_alpaca(s, found[s]) for s in symbols if isinstance(found.get(s), Mapping)}
