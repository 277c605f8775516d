"""Live trade updates and market data inside a running notebook kernel.

    import alpaca_nb.stream as st
    hub = st.stream_hub()                  # the account of alpaca_nb.connect()

    def on_update(u):                      # runs on the hub's thread: keep it short
        print(u.event, u.symbol, u.qty)
    hub.on_trade_update(on_update)         # returns once the stream is live
    hub.subscribe_quotes(["AAPL"], lambda q: ...)
    hub.on_gap(lambda gap: ...)            # after a reconnect: what may have been missed
    hub.stop()                             # < 1 s

The rules a notebook user must know:

- **One background event-loop thread per account, one connection per stream kind.** Hubs live
  in a registry keyed by account and endpoint, so re-running a cell reuses the hub and its
  connections: it never opens a second one (Alpaca refuses a second market-data connection per
  key with 406). Re-subscribing a plain function of the same name (the usual re-run of a cell
  that defines ``def on_update``) *replaces* its earlier subscription instead of doubling it.
- **Callbacks run on the hub's thread**, in the order messages arrive. A callback that raises
  is logged on the ``alpaca_nb`` logger and kept in :attr:`StreamHub.errors` (and counted in
  ``error_count``); the stream carries on. ``async def`` callbacks run as tasks on that loop.
- **Reconnects are automatic**, with backoff (0.25 s doubling to 30 s), resubscribing
  everything. When a dropped stream is back, every ``on_gap`` listener gets a :class:`Gap`
  (which stream, from when to when) so a ledger can fetch what happened meanwhile.

Why a small client of our own rather than alpaca-py's ``TradingStream`` /
``StockDataStream``: their ``run()`` calls ``asyncio.run()`` and fails inside a kernel;
``stop()`` waits on a 5 s receive poll; each channel holds one handler per symbol (a second
subscriber silently replaces the first); subscribing from another thread blocks on the loop;
the data stream busy-spins until something is subscribed; and they sit on the deprecated
``websockets.legacy``. Driving their private ``_run_forever()`` on our loop would tie us to
internals that change between releases while keeping the 5 s stop and the one-handler limit.
The protocol itself is small (authenticate, listen or subscribe, decode), so here it is spoken
directly over aiohttp's websocket client (aiohttp is already a dependency: the local broker is
an aiohttp app): stop takes milliseconds and any number of subscribers share one connection.
The tests still run alpaca-py's own clients against the local broker, so the broker is proven
to speak what they expect.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .stream_wire import Bar, DataConnection, Gap, Quote, Trade, TradeUpdate, TradingConnection, normalize_symbols

log = logging.getLogger("alpaca_nb")

CHANNELS = ("trade_updates", "trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")
DEFAULT_WAIT = 5.0  # seconds a subscribe call waits for the stream to be live


class CallbackError(NamedTuple):
    """A callback that raised: when, which subscription, the exception and its traceback."""

    at: datetime
    subscription: str
    error: BaseException
    traceback: str


class Subscription:
    """A callback on one channel (and a set of symbols, or all of them); ``cancel()`` ends it."""

    def __init__(
        self,
        hub: StreamHub,
        channel: str,
        symbols: frozenset[str] | None,
        fn: Callable[[Any], Any],
        name: str | None,
        *,
        weak: bool = False,
    ):
        self.hub = hub
        self.channel = channel
        self.symbols = symbols  # None: every symbol ("*")
        self.name = name or getattr(fn, "__qualname__", repr(fn)).rsplit("<locals>.", 1)[-1]
        self.replace_key = name if name is not None else _replace_key(fn)
        self._fn = weakref.WeakMethod(fn) if weak else None
        self._strong = None if weak else fn
        self.calls = 0
        self.failures = 0
        self.active = True
        self.live = threading.Event()  # set while the server is sending this channel

    def callback(self) -> Callable[[Any], Any] | None:
        return self._fn() if self._fn is not None else self._strong

    def cancel(self) -> None:
        """Stop calling back (idempotent). The connection closes when nothing is left on it."""
        self.hub._remove(self)

    def wait(self, timeout: float = DEFAULT_WAIT) -> bool:
        """Block until the server is sending this subscription's data; False on timeout."""
        return self.live.wait(timeout)

    def __repr__(self) -> str:
        what = "*" if self.symbols is None else ",".join(sorted(self.symbols))
        where = self.channel if self.channel in ("trade_updates", "gaps") else f"{self.channel}[{what}]"
        state = ("live" if self.live.is_set() else "pending") if self.active else "cancelled"
        return f"<Subscription {where} -> {self.name}: {state}, {self.calls} calls, {self.failures} failures>"


class StreamHub:
    """Both streams of one account on one background event-loop thread.

    Get it with :func:`stream_hub` (which reuses hubs); the constructor is for tests. Connections
    open on the first subscription and close when the last one is cancelled.
    """

    def __init__(self, key: str, secret: str, trading_stream_url: str, data_stream_url: str):
        self._lock = threading.RLock()
        self._subs: dict[str, tuple[Subscription, ...]] = {c: () for c in (*CHANNELS, "gaps")}
        self.errors: deque[CallbackError] = deque(maxlen=200)
        self.error_count = 0
        self.gaps: deque[Gap] = deque(maxlen=200)
        self.trading = TradingConnection(self, trading_stream_url, key, secret)
        self.market_data = DataConnection(self, data_stream_url, key, secret)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.stopped = False

    # -- subscribing ---------------------------------------------------------------------------
    def on_trade_update(
        self, fn: Callable[[TradeUpdate], Any], *, name: str | None = None, wait: float | None = DEFAULT_WAIT
    ) -> Subscription:
        """Call ``fn(update)`` for every :class:`TradeUpdate` of the account (every event type)."""
        return self._add("trade_updates", None, fn, name, wait)

    def subscribe_quotes(
        self,
        symbols: str | Iterable[str],
        fn: Callable[[Quote], Any],
        *,
        name: str | None = None,
        wait: float | None = DEFAULT_WAIT,
    ) -> Subscription:
        """Call ``fn(quote)`` for each :class:`Quote` of ``symbols`` (``"*"``: every symbol)."""
        return self.subscribe("quotes", symbols, fn, name=name, wait=wait)

    def subscribe_trades(
        self,
        symbols: str | Iterable[str],
        fn: Callable[[Trade], Any],
        *,
        name: str | None = None,
        wait: float | None = DEFAULT_WAIT,
    ) -> Subscription:
        """Call ``fn(trade)`` for each market :class:`Trade` of ``symbols``."""
        return self.subscribe("trades", symbols, fn, name=name, wait=wait)

    def subscribe_bars(
        self,
        symbols: str | Iterable[str],
        fn: Callable[[Bar], Any],
        *,
        name: str | None = None,
        wait: float | None = DEFAULT_WAIT,
    ) -> Subscription:
        """Call ``fn(bar)`` with each one-minute :class:`Bar` of ``symbols`` as its minute closes."""
        return self.subscribe("bars", symbols, fn, name=name, wait=wait)

    def subscribe(
        self,
        channel: str,
        symbols: str | Iterable[str],
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        wait: float | None = DEFAULT_WAIT,
        weak: bool = False,
    ) -> Subscription:
        """Any market-data channel: trades, quotes, bars, updatedBars, dailyBars, statuses.

        ``weak=True`` holds a bound method weakly: the subscription ends with its object.
        """
        if channel not in CHANNELS or channel == "trade_updates":
            raise ValueError(f"unknown market-data channel {channel!r}: use one of {', '.join(CHANNELS[1:])}")
        return self._add(channel, normalize_symbols(symbols), fn, name, wait, weak=weak)

    def on_gap(self, fn: Callable[[Gap], Any], *, name: str | None = None) -> Subscription:
        """Call ``fn(gap)`` when a dropped stream is back: a :class:`Gap` says what was missed."""
        return self._add("gaps", None, fn, name, None)

    def _add(
        self,
        channel: str,
        symbols: frozenset[str] | None,
        fn: Callable[[Any], Any],
        name: str | None,
        wait: float | None,
        *,
        weak: bool = False,
    ) -> Subscription:
        if not callable(fn):
            raise TypeError(f"the callback must be callable, got {fn!r}")
        if self.stopped:
            raise RuntimeError("this stream hub was stopped: get a fresh one with stream_hub()")
        sub = Subscription(self, channel, symbols, fn, name, weak=weak)
        with self._lock:
            kept = []
            for old in self._subs[channel]:
                if sub.replace_key is not None and old.replace_key == sub.replace_key:
                    old.active = False
                    log.info("alpaca_nb stream: %s replaces its earlier subscription", sub.name)
                else:
                    kept.append(old)
            self._subs[channel] = (*kept, sub)
        self._changed(channel)
        if wait and channel != "gaps" and not self._on_loop_thread():
            self._wait_live(sub, wait)
        return sub

    def _wait_live(self, sub: Subscription, timeout: float) -> None:
        """Return once ``sub`` is live, its connection failed for good, or ``timeout`` passed."""
        conn = self.trading if sub.channel == "trade_updates" else self.market_data
        deadline = time.monotonic() + timeout
        while not sub.live.wait(0.02):
            if conn.state == "failed":
                return  # the connection logged why (bad keys, no subscription)
            if time.monotonic() > deadline:
                log.warning(
                    "alpaca_nb stream: %s is not live after %.1f s (%s); it keeps trying",
                    conn.kind,
                    timeout,
                    conn.last_error or conn.state,
                )
                return

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            sub.active = False
            sub.live.clear()
            self._subs[sub.channel] = tuple(s for s in self._subs[sub.channel] if s is not sub)
        if not self.stopped:
            self._changed(sub.channel)

    def subscriptions(self, channel: str | None = None) -> list[Subscription]:
        """The active subscriptions (of one channel, or all)."""
        with self._lock:
            chosen = [channel] if channel else list(self._subs)
            return [s for c in chosen for s in self._subs[c]]

    def wanted(self, channel: str) -> tuple[Subscription, ...]:
        return self._subs[channel]

    # -- delivery (on the hub's thread) ----------------------------------------------------------
    def deliver(self, channel: str, symbol: str | None, record: Any) -> None:
        for sub in self._subs[channel]:
            if self.stopped:  # stop() returns promptly even with a backlog of messages
                return
            if sub.active and (sub.symbols is None or symbol in sub.symbols):
                self._invoke(sub, record)

    def _invoke(self, sub: Subscription, record: Any) -> None:
        fn = sub.callback()
        if fn is None:  # a weakly held owner is gone
            sub.cancel()
            return
        sub.calls += 1
        try:
            result = fn(record)
        except Exception as exc:
            self._report(sub, exc)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or self._report(sub, t.exception()))

    def _report(self, sub: Subscription, exc: BaseException) -> None:
        sub.failures += 1
        self.error_count += 1
        text = "".join(traceback.format_exception(exc))
        self.errors.append(CallbackError(datetime.now(UTC), sub.name, exc, text))
        if sub.failures <= 3 or sub.failures % 100 == 0:
            log.error(
                "alpaca_nb stream: callback %s failed (%d so far; the stream carries on): %r\n%s",
                sub.name,
                sub.failures,
                exc,
                text if sub.failures <= 3 else "",
            )

    def report_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        log.warning(
            "alpaca_nb stream: %s was down (noticed %s, live again %s, %d attempt(s)); "
            "catch up from %s; told %d gap listener(s)",
            gap.stream,
            gap.noticed.isoformat(),
            gap.end.isoformat(),
            gap.attempts,
            gap.start.isoformat(),
            len(self._subs["gaps"]),
        )
        self.deliver("gaps", None, gap)

    # -- the background loop ---------------------------------------------------------------------
    def _changed(self, channel: str) -> None:
        conn = self.trading if channel == "trade_updates" else self.market_data
        if channel == "gaps":
            return
        loop = self._ensure_loop()
        loop.call_soon_threadsafe(conn.changed)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None:
                started = threading.Event()

                def run() -> None:
                    loop = asyncio.new_event_loop()
                    asyncio.set_event_loop(loop)
                    self.loop = loop
                    started.set()
                    try:
                        loop.run_forever()
                    finally:
                        loop.close()

                self._thread = threading.Thread(target=run, name=f"alpaca_nb-stream-{id(self):x}", daemon=True)
                self._thread.start()
                started.wait()
            return self.loop

    def _on_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self, timeout: float = 1.0) -> float:
        """Close both connections and end the thread; returns the seconds it took (< 1 s)."""
        t0 = time.perf_counter()
        with _REGISTRY_LOCK:
            for key, hub in list(_HUBS.items()):
                if hub is self:
                    del _HUBS[key]
        with self._lock:
            if self.stopped:
                return 0.0
            self.stopped = True
            for channel in self._subs:
                for sub in self._subs[channel]:
                    sub.active = False
                    sub.live.clear()
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return time.perf_counter() - t0

        async def shutdown() -> None:
            await asyncio.gather(self.trading.close(), self.market_data.close(), return_exceptions=True)

        future = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        future.add_done_callback(lambda _f: loop.call_soon_threadsafe(loop.stop))
        if threading.current_thread() is thread:  # stop() from a callback: do not wait for ourselves
            return time.perf_counter() - t0
        try:
            future.result(timeout)
        except Exception:  # timeout or a failed close: stop the loop regardless
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        return time.perf_counter() - t0

    # -- what the user sees ----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Connection states, counts and the last error of both streams."""
        return {
            "trade_updates": self.trading.status(),
            "market_data": self.market_data.status(),
            "subscriptions": len(self.subscriptions()),
            "callback_errors": self.error_count,
            "gaps": len(self.gaps),
            "stopped": self.stopped,
        }

    def __repr__(self) -> str:
        t, m = self.trading, self.market_data
        state = "stopped" if self.stopped else f"trade_updates {t.state}, market data {m.state}"
        return (
            f"<StreamHub {t.url} {state}; {len(self.subscriptions())} subscriptions, "
            f"{self.error_count} callback errors, {len(self.gaps)} gaps>"
        )


def _replace_key(fn: Callable[..., Any]) -> str | None:
    """Plain named functions are identified by name, so a re-run cell replaces, not doubles."""
    if not inspect.isfunction(fn) or "<" in fn.__qualname__:
        return None  # lambdas, closures, bound methods: each subscription is its own
    return f"{fn.__module__}.{fn.__qualname__}"


# -- the registry: one hub per account and endpoint, surviving cell re-runs ----------------------
_HUBS: dict[tuple[str, str, str], StreamHub] = {}
_REGISTRY_LOCK = threading.Lock()


def stream_hub(
    service: Any = None,
    *,
    key: str | None = None,
    secret: str | None = None,
    url: str | None = None,
    trading_url: str | None = None,
    data_url: str | None = None,
    feed: str | None = None,
) -> StreamHub:
    """The :class:`StreamHub` of an account, created on first use and reused afterwards.

    With no arguments: the account of :func:`alpaca_nb.connect` (the default service). Or give
    ``key``/``secret`` and the broker's REST ``url`` (both APIs on one host, as the local broker
    serves them) or ``trading_url``/``data_url``; ``feed`` is iex (default), sip or delayed_sip.

    >>> hub = stream_hub(key="local-key", secret="local-secret", url="http://127.0.0.1:8765")
    """
    from .broker import Endpoints
    from .errors import InvalidArgumentError
    from .secret import Secret

    if key is None:
        if service is None:
            from .session import default_service

            service = default_service()
        broker = service._require()
        key, secret = broker.credentials.api_key, broker.credentials.api_secret
        endpoints = broker.endpoints
        feed = feed or (service.settings.feed if service.settings else "iex")
    else:
        if secret is None or not (url or trading_url):
            raise InvalidArgumentError(
                "give key, secret and the broker's url (or trading_url and data_url)",
                "secret" if secret is None else "url",
            )
        key, secret = Secret(key), Secret(secret)  # masked in every repr and traceback from here on
        endpoints = Endpoints((trading_url or url).rstrip("/"), (data_url or url).rstrip("/"))
    trading_ws, data_ws = endpoints.trading_stream_url, endpoints.data_stream_url(feed or "iex")
    with _REGISTRY_LOCK:
        hub = _HUBS.get((key, trading_ws, data_ws))
        if hub is None:
            hub = _HUBS[(key, trading_ws, data_ws)] = StreamHub(key, secret, trading_ws, data_ws)
        return hub


def stop_all(timeout: float = 1.0) -> None:
    """Stop every hub of this process (each within ``timeout``)."""
    with _REGISTRY_LOCK:
        hubs = list(_HUBS.values())
    for hub in hubs:
        hub.stop(timeout)


def on_trade_update(fn: Callable[[TradeUpdate], Any], **kwargs: Any) -> Subscription:
    """:meth:`StreamHub.on_trade_update` on the default account's hub."""
    return stream_hub().on_trade_update(fn, **kwargs)


def subscribe_quotes(symbols: str | Iterable[str], fn: Callable[[Quote], Any], **kwargs: Any) -> Subscription:
    """:meth:`StreamHub.subscribe_quotes` on the default account's hub."""
    return stream_hub().subscribe_quotes(symbols, fn, **kwargs)


def subscribe_trades(symbols: str | Iterable[str], fn: Callable[[Trade], Any], **kwargs: Any) -> Subscription:
    """:meth:`StreamHub.subscribe_trades` on the default account's hub."""
    return stream_hub().subscribe_trades(symbols, fn, **kwargs)


def subscribe_bars(symbols: str | Iterable[str], fn: Callable[[Bar], Any], **kwargs: Any) -> Subscription:
    """:meth:`StreamHub.subscribe_bars` on the default account's hub."""
    return stream_hub().subscribe_bars(symbols, fn, **kwargs)


def on_gap(fn: Callable[[Gap], Any], **kwargs: Any) -> Subscription:
    """:meth:`StreamHub.on_gap` on the default account's hub."""
    return stream_hub().on_gap(fn, **kwargs)


__all__ = [
    "StreamHub",
    "Subscription",
    "TradeUpdate",
    "Quote",
    "Trade",
    "Bar",
    "Gap",
    "CallbackError",
    "stream_hub",
    "stop_all",
    "on_trade_update",
    "subscribe_quotes",
    "subscribe_trades",
    "subscribe_bars",
    "on_gap",
]
