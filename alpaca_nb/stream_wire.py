"""Alpaca's two websocket protocols, client side: connect, authenticate, subscribe, decode, reconnect.

Used by :mod:`alpaca_nb.stream`, which owns the loop thread and the subscribers. One
:class:`TradingConnection` (``/stream``: JSON, ``authenticate`` then ``listen``) and one
:class:`DataConnection` (``/v2/{feed}``: msgpack, ``auth`` then ``subscribe``) per account.
Each runs one task on the hub's loop that keeps its websocket open while something is
subscribed, reconnects with backoff when it drops, resubscribes everything, and then reports
the gap. Messages become the immutable records below; a list of them is a DataFrame away
(``pd.DataFrame(records)``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import aiohttp
import msgpack
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .stream import StreamHub

log = logging.getLogger("alpaca_nb")

BACKOFF_FIRST, BACKOFF_MAX = 0.25, 30.0
HEARTBEAT = 20.0  # seconds between pings: a silently dead connection is found this fast
HANDSHAKE_TIMEOUT = 10.0
_UTC = UTC


# -- records ------------------------------------------------------------------------------------
class TradeUpdate(NamedTuple):
    """One event of an order's life (``new``, ``fill``, ``canceled``, ...), as it happened.

    ``order`` is Alpaca's full order JSON at that moment; money and quantities are exact
    Decimals; ``price``/``qty``/``position_qty``/``execution_id`` are set for fills only.
    """

    event: str
    order: dict
    timestamp: pd.Timestamp
    execution_id: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    position_qty: Decimal | None = None

    @property
    def symbol(self) -> str:
        return self.order.get("symbol", "")

    @property
    def order_id(self) -> str:
        return self.order.get("id", "")

    @property
    def client_order_id(self) -> str:
        return self.order.get("client_order_id", "")


class Quote(NamedTuple):
    """A top-of-book quote; fields are the columns of :data:`alpaca_nb.frames.QUOTE_COLUMNS`."""

    symbol: str
    timestamp: pd.Timestamp
    bid_price: float
    bid_size: float
    bid_exchange: str
    ask_price: float
    ask_size: float
    ask_exchange: str
    conditions: str
    tape: str


class Trade(NamedTuple):
    """A trade printed by the market (not an order fill of this account: see TradeUpdate)."""

    symbol: str
    timestamp: pd.Timestamp
    price: float
    size: float
    exchange: str
    id: int
    conditions: str
    tape: str


class Bar(NamedTuple):
    """One bar; ``timestamp`` is when it begins (minute bars: sent when the minute closes)."""

    symbol: str
    timestamp: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int
    vwap: float


class Gap(NamedTuple):
    """A stretch when a stream was down: anything stamped after ``start`` may have been missed.

    ``start`` is the last point the stream is known to have delivered everything up to: the
    server's timestamp on the last message received (messages arrive in order), or the moment
    the connection went live when none came. ``noticed`` is when the drop was detected and
    ``end`` when the stream was live again; catch up on ``[start, end]``.
    """

    stream: str  # "trade_updates" or "market_data"
    start: datetime
    end: datetime
    noticed: datetime
    attempts: int  # connection attempts it took

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def normalize_symbols(symbols: str | Iterable[str]) -> frozenset[str] | None:
    """``"AAPL"``, ``"aapl,msft"`` or a list -> upper-case set; ``"*"`` -> None (every symbol).

    Checked by :func:`alpaca_nb.params.symbols` (ASCII, Alpaca's grammar): a bad one raises
    :class:`~alpaca_nb.errors.InvalidArgumentError` before anything subscribes.
    """
    from .params import symbols as checked_symbols

    names = checked_symbols(symbols, allow_all=True)
    return None if names == ["*"] else frozenset(names)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _stamp(value: Any) -> pd.Timestamp:
    if isinstance(value, int):
        return pd.Timestamp(value, unit="ns", tz="UTC")
    if isinstance(value, msgpack.Timestamp):
        return pd.Timestamp(value.to_unix_nano(), unit="ns", tz="UTC")
    return pd.Timestamp(value).tz_convert("UTC") if value is not None else pd.NaT


def _joined(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))


def trade_update(data: dict) -> TradeUpdate:
    return TradeUpdate(
        data.get("event", ""),
        data.get("order") or {},
        _stamp(data.get("timestamp")),
        data.get("execution_id"),
        _dec(data.get("price")),
        _dec(data.get("qty")),
        _dec(data.get("position_qty")),
    )


def market_record(msg: dict) -> tuple[str, Any] | None:
    """An Alpaca market-data message -> (channel, record); None for other messages."""
    kind, symbol = msg.get("T"), msg.get("S", "")
    if kind == "q":
        return "quotes", Quote(
            symbol,
            _stamp(msg.get("t")),
            float(msg.get("bp", "nan")),
            float(msg.get("bs", "nan")),
            msg.get("bx", ""),
            float(msg.get("ap", "nan")),
            float(msg.get("as", "nan")),
            msg.get("ax", ""),
            _joined(msg.get("c")),
            msg.get("z", ""),
        )
    if kind == "t":
        return "trades", Trade(
            symbol,
            _stamp(msg.get("t")),
            float(msg.get("p", "nan")),
            float(msg.get("s", "nan")),
            msg.get("x", ""),
            int(msg.get("i", 0)),
            _joined(msg.get("c")),
            msg.get("z", ""),
        )
    if kind in ("b", "u", "d"):
        channel = {"b": "bars", "u": "updatedBars", "d": "dailyBars"}[kind]
        vw = msg.get("vw")
        return channel, Bar(
            symbol,
            _stamp(msg.get("t")),
            float(msg["o"]),
            float(msg["h"]),
            float(msg["l"]),
            float(msg["c"]),
            float(msg["v"]),
            int(msg.get("n") or 0),
            float("nan") if vw is None else float(vw),
        )
    if kind == "s":
        return "statuses", {k: (_stamp(v) if k == "t" else v) for k, v in msg.items()}
    return None


# -- connections ---------------------------------------------------------------------------------
class StreamRefused(Exception):
    """The server said no (connection limit, ...): retried with backoff."""


class StreamFatal(Exception):
    """The server said no for good (bad keys, no subscription): retried only on a new subscription."""


class _Connection:
    """One websocket kept open while subscribers want it; the shared reconnect loop."""

    kind = ""
    channels: tuple[str, ...] = ()

    def __init__(self, hub: StreamHub, url: str, key: str, secret: str):
        self.hub, self.url = hub, url
        self._key, self._secret = key, secret
        self.state = "idle"  # idle | connecting | live | reconnecting | failed | closed
        self.opened = 0  # websockets opened over the hub's life
        self.last_error: str | None = None
        self.last_message: datetime | None = None  # when the last message was received
        self.covered: datetime | None = None  # everything up to here was delivered
        self._lost_at: datetime | None = None
        self._gap_start: datetime | None = None
        self._attempts = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None

    # called on the hub's loop whenever subscriptions change
    def changed(self) -> None:
        if self.state == "closed":
            return
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self.state == "failed":
            self.state = "connecting"  # a new subscription is worth one more try
        self._wake.set()
        if self.ws is not None and not self.ws.closed:
            if not self.wanted():
                asyncio.ensure_future(self.ws.close())
            elif self.state == "live":
                asyncio.ensure_future(self._resync())

    def wanted(self) -> bool:
        return any(self.hub.wanted(c) for c in self.channels)

    def subs(self):
        return [s for c in self.channels for s in self.hub.wanted(c)]

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "url": self.url,
            "opened": self.opened,
            "last_error": self.last_error,
            "last_message": self.last_message,
        }

    async def _run(self) -> None:
        while True:
            if not self.wanted():  # nobody listens: nothing to catch up on later either
                self.state, self._lost_at, self.covered, self._attempts = "idle", None, None, 0
                await self._wake.wait()
                self._wake.clear()
                continue
            was_live = False
            try:
                self.state = "connecting" if self._lost_at is None else "reconnecting"
                if self._session is None:
                    self._session = aiohttp.ClientSession()
                self.ws = await self._session.ws_connect(
                    self.url,
                    heartbeat=HEARTBEAT,
                    headers=self.headers(),
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=0.5),
                )
                self.opened += 1
                await asyncio.wait_for(self.handshake(self.ws), HANDSHAKE_TIMEOUT)
                self.state, was_live, self.last_error = "live", True, None
                self._went_live()
                await self.read(self.ws)
            except asyncio.CancelledError:
                raise
            except StreamFatal as exc:
                self.state, self.last_error = "failed", str(exc)
                log.error("alpaca_nb stream: %s refused for good: %s (subscribe again to retry)", self.kind, exc)
                await self._drop()
                self._wake.clear()
                await self._wake.wait()
                continue
            except Exception as exc:  # network errors, refusals, protocol surprises: reconnect
                if self.wanted():  # else we closed it ourselves: nothing is subscribed any more
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("alpaca_nb stream: %s connection lost: %s", self.kind, self.last_error)
            finally:
                for sub in self.subs():
                    sub.live.clear()
            await self._drop()
            if not self.wanted():
                continue
            if was_live:
                self._lost_at, self._gap_start, self._attempts = datetime.now(_UTC), self.covered, 0
            self._attempts += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._attempts - 1)) * random.uniform(0.8, 1.2)
            self.state = "reconnecting"
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def _went_live(self) -> None:
        self.mark_live()
        now = datetime.now(_UTC)
        self.covered = now
        if self._lost_at is not None:
            gap = Gap(self.kind, self._gap_start or self._lost_at, now, self._lost_at, self._attempts)
            self._lost_at, self._attempts = None, 0
            self.hub.report_gap(gap)
        self._attempts = 0

    async def _drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            try:
                await ws.close()
            except Exception:  # already broken: nothing to close politely
                pass

    async def close(self) -> None:
        """End for good (the hub is stopping)."""
        self.state = "closed"
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self._drop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.last_message = datetime.now(_UTC)
                try:
                    self.on_message(msg.data)
                except Exception as exc:  # one message we cannot read must not end the stream
                    self.last_error = f"unreadable message: {exc!r}"
                    log.error(
                        "alpaca_nb stream: %s sent a message alpaca_nb cannot read (%r): %.200r",
                        self.kind,
                        exc,
                        msg.data,
                    )
            elif msg.type is aiohttp.WSMsgType.ERROR:
                raise ConnectionError(f"websocket error: {ws.exception()!r}")
        raise ConnectionError(f"the server closed the stream (code {ws.close_code})")

    # subclasses
    def headers(self) -> dict[str, str]:
        return {}

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        raise NotImplementedError

    async def _resync(self) -> None:
        """Subscriptions changed while live: tell the server (market data) or just mark them."""
        self.mark_live()

    def mark_live(self) -> None:
        """Set ``live`` on the subscriptions the server is serving now."""
        for sub in self.subs():
            sub.live.set()

    def on_message(self, data: str | bytes) -> None:
        raise NotImplementedError


class TradingConnection(_Connection):
    """``/stream``: authenticate, listen to trade_updates, deliver :class:`TradeUpdate` records."""

    kind = "trade_updates"
    channels = ("trade_updates",)

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str(
            json.dumps({"action": "authenticate", "data": {"key_id": self._key, "secret_key": self._secret}})
        )
        reply = await self._receive(ws)
        if reply.get("stream") != "authorization" or reply.get("data", {}).get("status") != "authorized":
            raise StreamFatal(f"the trading stream refused the keys: {reply}")
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        while True:
            reply = await self._receive(ws)
            if reply.get("stream") == "listening":
                if "trade_updates" not in (reply.get("data") or {}).get("streams", []):
                    raise StreamFatal(f"the trading stream would not listen to trade_updates: {reply}")
                return

    @staticmethod
    async def _receive(ws: aiohttp.ClientWebSocketResponse) -> dict:
        msg = await ws.receive()
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise ConnectionError(f"the trading stream closed during the handshake ({msg.type.name})")
        return json.loads(msg.data)

    def on_message(self, data: str | bytes) -> None:
        msg = json.loads(data)
        if msg.get("stream") == "trade_updates":
            update = trade_update(msg.get("data") or {})
            if update.timestamp is not pd.NaT:
                self.covered = update.timestamp
            self.hub.deliver("trade_updates", None, update)


class DataConnection(_Connection):
    """``/v2/{feed}``: auth, subscribe to what subscribers want, deliver quotes, trades, bars."""

    kind = "market_data"
    channels = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses")

    def __init__(self, hub: StreamHub, url: str, key: str, secret: str):
        super().__init__(hub, url, key, secret)
        self.requested: dict[str, set[str]] = {}
        self.acked: dict[str, list[str]] = {}
        self._sync_lock: asyncio.Lock | None = None

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/msgpack"}

    def desired(self) -> dict[str, set[str]]:
        want: dict[str, set[str]] = {}
        for channel in self.channels:
            subs = self.hub.wanted(channel)
            if subs:
                want[channel] = (
                    {"*"} if any(s.symbols is None for s in subs) else set().union(*(s.symbols for s in subs))
                )
        return want

    async def handshake(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        first = await self._receive(ws)
        if first[0].get("msg") != "connected":
            raise ConnectionError(f"unexpected greeting from the market-data stream: {first}")
        await ws.send_bytes(msgpack.packb({"action": "auth", "key": self._key, "secret": self._secret}))
        reply = (await self._receive(ws))[0]
        if reply.get("T") == "error":
            code, text = reply.get("code"), reply.get("msg")
            if code in (402, 409):
                raise StreamFatal(f"{text} ({code})")
            raise StreamRefused(f"{text} ({code})")
        self.requested, self.acked = {}, {}
        self._sync_lock = asyncio.Lock()
        if await self._send_changes(ws):
            while True:  # live once the server confirms the (re)subscription
                reply = (await self._receive(ws))[0]
                if reply.get("T") == "subscription":
                    self.acked = {c: reply.get(c) or [] for c in self.channels}
                    return
                if reply.get("T") == "error":
                    self.last_error = f"{reply.get('msg')} ({reply.get('code')})"
                    log.error("alpaca_nb stream: the market-data stream says %s", self.last_error)
                    return

    async def _resync(self) -> None:
        if self.ws is not None and self._sync_lock is not None:
            try:
                await self._send_changes(self.ws)
            except (ConnectionError, RuntimeError) as exc:  # the reader notices the drop
                log.debug("alpaca_nb stream: subscription change not sent: %r", exc)

    async def _send_changes(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Send the difference between what is wanted and what was asked; True if any."""
        async with self._sync_lock:
            want = self.desired()
            add = {c: sorted(s - self.requested.get(c, set())) for c, s in want.items()}
            drop = {c: sorted(s - want.get(c, set())) for c, s in self.requested.items()}
            add = {c: s for c, s in add.items() if s}
            drop = {c: s for c, s in drop.items() if s}
            if add:
                await ws.send_bytes(msgpack.packb({"action": "subscribe", **add}))
            if drop:
                await ws.send_bytes(msgpack.packb({"action": "unsubscribe", **drop}))
            self.requested = want
            if not add and not drop:
                self.mark_live()
            return bool(add or drop)

    @staticmethod
    async def _receive(ws: aiohttp.ClientWebSocketResponse) -> list[dict]:
        msg = await ws.receive()
        if msg.type is aiohttp.WSMsgType.BINARY:
            return msgpack.unpackb(msg.data, timestamp=2)
        if msg.type is aiohttp.WSMsgType.TEXT:
            return json.loads(msg.data)
        raise ConnectionError(f"the market-data stream closed during the handshake ({msg.type.name})")

    def mark_live(self) -> None:
        for sub in self.subs():
            acked = set(self.acked.get(sub.channel, ()))
            if "*" in acked or (sub.symbols is not None and sub.symbols <= acked):
                sub.live.set()

    def on_message(self, data: str | bytes) -> None:
        msgs = msgpack.unpackb(data, timestamp=2) if isinstance(data, bytes) else json.loads(data)
        for msg in msgs:
            got = market_record(msg)
            if got is not None:
                stamp = getattr(got[1], "timestamp", None)
                if stamp is not None and stamp is not pd.NaT:
                    self.covered = stamp
                self.hub.deliver(got[0], msg.get("S"), got[1])
            elif msg.get("T") == "subscription":
                self.acked = {c: msg.get(c) or [] for c in self.channels}
                self.mark_live()
            elif msg.get("T") == "error":
                self.last_error = f"{msg.get('msg')} ({msg.get('code')})"
                log.error("alpaca_nb stream: the market-data stream says %s", self.last_error)
