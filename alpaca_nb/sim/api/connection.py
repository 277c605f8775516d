"""One websocket of the local broker's streams, either stream: a bounded send queue drained by
a writer task. Its own module so that the trading stream (:mod:`.streams`) and the market-data
stream (:mod:`.data_stream`) both build on it without importing each other's module."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

SEND_QUEUE_LIMIT = 10_000  # frames buffered per connection before it counts as a slow client
_HANG_UP: Any = object()  # queue marker: abort once the frames queued before it are out


class StreamConnection:
    """One websocket: a bounded send queue drained by a writer task, so sends keep their order."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, kind: str):
        self.ws = ws
        self.kind = kind  # "trading" or a feed name
        self.transport = request.transport
        self.key: str | None = None  # set once authenticated
        self.listening = False  # trading stream: listens to trade_updates
        self.queue: asyncio.Queue[Any] = asyncio.Queue()  # bytes, None (close) or _HANG_UP
        self.writer: asyncio.Task | None = None

    def send(self, frame: bytes) -> bool:
        """Queue one binary frame; False (and a hang-up) when the client cannot keep up."""
        if self.queue.qsize() >= SEND_QUEUE_LIMIT:
            self.abort()
            return False
        self.queue.put_nowait(frame)
        return True

    async def write_forever(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None:
                return
            if frame is _HANG_UP:
                self.abort()
                return
            try:
                await self.ws.send_bytes(frame)
            except (ConnectionError, RuntimeError):  # closing underneath us: the reader ends it
                return

    def start_writer(self) -> None:
        self.writer = asyncio.get_running_loop().create_task(self.write_forever())

    async def close(self) -> None:
        """Flush what is queued, then close politely."""
        self.queue.put_nowait(None)
        if self.writer is not None:
            try:
                await asyncio.wait_for(self.writer, 1.0)
            except (TimeoutError, asyncio.CancelledError):
                pass
        await self.ws.close()

    def send_then_hang_up(self) -> None:
        """Hang up (as :meth:`abort`) once every frame queued so far has been written."""
        self.queue.put_nowait(_HANG_UP)

    def abort(self) -> None:
        """Hang up at once, like a network failure: no close frame."""
        if self.transport is not None:
            self.transport.abort()
        if self.writer is not None:
            self.writer.cancel()
