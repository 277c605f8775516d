"""Alpaca's two websocket streams, served by the local broker on its own host and port.

- ``/stream``, the **trading stream** (JSON): ``authenticate`` is answered by an
  ``authorization`` message (``authorized`` / ``unauthorized``), ``listen`` by ``listening``;
  then every trade update the matching engine emits (``new``, ``fill``, ``canceled``, ...) is
  sent as it happens, in the engine's order, as ``{"stream": "trade_updates", "data": {...}}``.
  Replies are binary frames carrying JSON, as Alpaca's paper stream sends them; the client may
  send text or binary frames.
- ``/v2/{feed}``, the **market-data stream** (msgpack): see :mod:`.data_stream`.

:class:`StreamServer` is a broker extension: ``sim.extensions.append(("streams",
StreamServer(sim)))`` before the app is built, and ``build_app`` calls :meth:`install`. It
counts connections (``opened``, :meth:`open_connections`) so tests can prove that a client
reuses its connection, and :meth:`drop_all` hangs up every websocket from the broker side so
tests can prove that clients reconnect. Injected faults (``sim.faults.add_stream``: drops,
duplicates, reordering; see :mod:`alpaca_nb.sim.faults`) act on the trade updates as they are broadcast.

The engine calls its listeners from whichever thread ticks it (the server loop, or a test's
thread); :meth:`_on_trade_update` encodes the event at once (a snapshot of the order as it was)
and hands it to the server loop with ``call_soon_threadsafe``, which keeps the engine's order.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from .connection import StreamConnection

if TYPE_CHECKING:  # pragma: no cover
    from .data_stream import DataStreamConnection
    from .state import Sim

log = logging.getLogger("alpaca_nb.sim")

HEARTBEAT = 30.0  # seconds between pings: a vanished client frees its slot this fast
_encode = msgspec.json.Encoder().encode  # Decimal -> "1.5", aware datetime -> RFC 3339


class StreamServer:
    """Both websocket streams of one broker, their connections and the market-data publisher.

    ``auth_timeout``: seconds a market-data client has to authenticate (Alpaca: 10).
    ``symbol_limit``: most distinct symbols one market-data connection may hold in trades and
    quotes (Alpaca's free IEX plan: 30; ``None`` = no limit). ``poll_interval``: how often the
    publisher looks for new market ticks.
    """

    name = "streams"

    def __init__(
        self, sim: Sim, *, auth_timeout: float = 10.0, symbol_limit: int | None = None, poll_interval: float = 0.05
    ):
        self.sim = sim
        self.auth_timeout = auth_timeout
        self.symbol_limit = symbol_limit
        self.opened: collections.Counter[str] = collections.Counter()  # accepted, per stream kind
        self.connections: set[StreamConnection] = set()
        self.data_sessions: dict[tuple[str, str], DataStreamConnection] = {}  # (feed, key) -> conn
        from .data_stream import MarketPublisher  # it builds on StreamConnection, defined here

        self.publisher = MarketPublisher(self, poll_interval)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._held: list[bytes] | None = None  # trade updates held by a "reorder" stream fault
        self._hold_size = 0
        self._held_group = 0  # numbers the reorder groups, for their flush timers

    # -- wiring -----------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        """Add both stream routes and the lifecycle (publisher task, close on shutdown)."""
        from .data_stream import FEEDS

        app.router.add_get("/stream", self._trading_handler)
        for feed in FEEDS:
            app.router.add_get(f"/v2/{feed}", self._data_handler)
        app.on_shutdown.append(self._close_all)
        app.cleanup_ctx.append(self._lifecycle)

    async def _lifecycle(self, app: web.Application):
        self.loop = asyncio.get_running_loop()
        self.sim.engine.add_listener(self._on_trade_update)
        publisher = self.loop.create_task(self.publisher.run())
        yield
        self.sim.engine.remove_listener(self._on_trade_update)
        publisher.cancel()
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()
        self.data_sessions.clear()
        try:
            await publisher
        except asyncio.CancelledError:
            pass
        self.loop = None

    async def _close_all(self, app: web.Application) -> None:
        """Server shutdown: say goodbye (1001 going away), briefly, then hang up on the rest."""
        conns = list(self.connections)
        closing = [asyncio.ensure_future(conn.ws.close(code=1001, message=b"server shutting down")) for conn in conns]
        if closing:
            await asyncio.wait(closing, timeout=0.2)
        for conn in conns:
            conn.abort()

    # -- what tests look at ------------------------------------------------------------------
    def open_connections(self) -> dict[str, int]:
        """Websockets open right now, per stream kind (``trading``, ``iex``, ...)."""
        return dict(collections.Counter(c.kind for c in list(self.connections)))

    def drop_all(self) -> int:
        """Hang up every websocket from the broker side (no close frame); returns how many.

        Safe from any thread; the broker keeps serving and accepts reconnections.
        """
        loop = self.loop
        if loop is None:
            return 0

        async def drop() -> int:
            return self._abort_all()

        if _running_in(loop):
            return self._abort_all()
        return asyncio.run_coroutine_threadsafe(drop(), loop).result(5)

    def _abort_all(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    # -- trading stream ----------------------------------------------------------------------
    def _on_trade_update(self, event: dict[str, Any]) -> None:
        """Engine listener (any thread): snapshot the event now, send it on the server loop."""
        loop = self.loop
        if loop is None or not any(c.kind == "trading" for c in list(self.connections)):
            return
        frame = _encode({"stream": "trade_updates", "data": event})
        try:
            loop.call_soon_threadsafe(self._broadcast_trade_update, frame, event.get("event"))
        except RuntimeError:  # loop closed during shutdown
            pass

    def _broadcast_trade_update(self, frame: bytes, event: str | None = None) -> None:
        """Send one trade update to every listener, through the injected stream faults."""
        if self._held is not None:  # a reorder group is filling up
            self._held.append(frame)
            if len(self._held) >= self._hold_size:
                self._flush_held()
            return
        fault = self.sim.faults.take_stream(event) if self.sim.faults.pending_stream() else None
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "reorder":
            self._held, self._hold_size = [frame], fault.hold
            self._held_group += 1
            asyncio.get_running_loop().call_later(fault.flush_after, self._flush_held, self._held_group)
            return
        if kind != "drop_before":
            self._send_trading(frame)
        if kind == "duplicate":
            self._send_trading(frame)
        elif kind in ("drop", "drop_before"):
            for conn in [c for c in list(self.connections) if c.kind == "trading"]:
                conn.send_then_hang_up()

    def _flush_held(self, group: int | None = None) -> None:
        """Send the held reorder group, last event first; ``group`` (from the flush timer)
        must still be the one held, so a timer never flushes a later group early."""
        if group is not None and group != self._held_group:
            return
        held, self._held = self._held, None
        self._held_group += 1
        for frame in reversed(held or []):
            self._send_trading(frame)

    def _trading_listeners(self) -> list[StreamConnection]:
        return [c for c in list(self.connections) if c.kind == "trading" and c.listening]

    def _send_trading(self, frame: bytes) -> None:
        for conn in self._trading_listeners():
            conn.send(frame)

    async def _trading_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=2**20, heartbeat=HEARTBEAT)
        await ws.prepare(request)
        conn = StreamConnection(ws, request, "trading")
        self._register(conn)
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if not self._trading_message(conn, msg.data):
                    break
        finally:
            await self._unregister(conn)
        return ws

    def _trading_message(self, conn: StreamConnection, raw: str | bytes) -> bool:
        """Answer one client message; False closes the connection."""
        try:
            msg = json.loads(raw)
            action, data = msg.get("action"), msg.get("data") or {}
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, AttributeError):
            conn.send(_encode({"stream": "error", "data": {"error_message": "invalid syntax"}}))
            return True
        if action in ("authenticate", "auth"):
            key = data.get("key_id", msg.get("key"))
            secret = data.get("secret_key", msg.get("secret"))
            ok = key == self.sim.key and secret == self.sim.secret
            conn.send(
                _encode(
                    {
                        "stream": "authorization",
                        "data": {"action": "authenticate", "status": "authorized" if ok else "unauthorized"},
                    }
                )
            )
            if ok:
                conn.key = key
            return ok
        if action == "listen":
            if conn.key is None:
                conn.send(_encode({"stream": "authorization", "data": {"action": "listen", "status": "unauthorized"}}))
                return False
            streams = data.get("streams") or []
            wanted = [s for s in streams if s == "trade_updates"] if isinstance(streams, list) else []
            conn.send(_encode({"stream": "listening", "data": {"streams": wanted}}))
            conn.listening = bool(wanted)
            return True
        conn.send(_encode({"stream": "error", "data": {"error_message": "invalid syntax"}}))
        return True

    # -- market-data stream ------------------------------------------------------------------
    async def _data_handler(self, request: web.Request) -> web.WebSocketResponse:
        from .data_stream import DataStreamConnection

        feed = request.path.rsplit("/", 1)[-1]
        ws = web.WebSocketResponse(max_msg_size=2**22, heartbeat=HEARTBEAT)
        await ws.prepare(request)
        conn = DataStreamConnection(self, ws, request, feed)
        self._register(conn)
        try:
            await conn.serve(request.headers)
        finally:
            await self._unregister(conn)
        return ws

    # -- bookkeeping -------------------------------------------------------------------------
    def _register(self, conn: StreamConnection) -> None:
        self.opened[conn.kind] += 1
        self.connections.add(conn)
        conn.start_writer()

    async def _unregister(self, conn: StreamConnection) -> None:
        self.connections.discard(conn)
        if conn.key is not None and self.data_sessions.get((conn.kind, conn.key)) is conn:
            del self.data_sessions[(conn.kind, conn.key)]
        if not conn.ws.closed:
            try:
                await conn.close()
            except (ConnectionError, RuntimeError):
                pass
        elif conn.writer is not None:
            conn.writer.cancel()


def _running_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def streams_of(sim: Sim) -> StreamServer | None:
    """The broker's :class:`StreamServer`, if one is installed."""
    for name, ext in sim.extensions:
        if name == StreamServer.name:
            return ext
    return None


def ensure_streams(sim: Sim, **options: Any) -> StreamServer:
    """Add a :class:`StreamServer` to ``sim`` unless it has one (call before the app is built)."""
    existing = streams_of(sim)
    if existing is None:
        existing = StreamServer(sim, **options)
        sim.extensions.append((StreamServer.name, existing))
    return existing
