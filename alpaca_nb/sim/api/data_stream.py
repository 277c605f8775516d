"""Alpaca's market-data stream, ``/v2/{feed}``: msgpack frames fed by the synthetic market.

The conversation, as Alpaca documents it and alpaca-py 0.44 speaks it (every server message
is a msgpack array of maps):

1. on connect: ``[{"T": "success", "msg": "connected"}]``;
2. ``{"action": "auth", "key": K, "secret": S}`` within ``auth_timeout`` seconds, answered by
   ``[{"T": "success", "msg": "authenticated"}]`` (keys in the ``APCA-API-*`` headers of the
   handshake authenticate too, as at Alpaca);
3. ``{"action": "subscribe" | "unsubscribe", "trades": [...], "quotes": [...], "bars": [...],
   "updatedBars", "dailyBars", "statuses", "lulds"}`` (``"*"`` = every symbol), answered by a
   ``subscription`` message holding the full current set of every channel;
4. data: ``t`` trades, ``q`` quotes, ``b`` minute bars when each minute closes, ``d`` the
   day's running bar after each minute, with ``t`` a msgpack Timestamp (ext type -1).

Errors are Alpaca's ``[{"T": "error", "code", "msg"}]``: 400 invalid syntax, 401 not
authenticated, 402 auth failed, 403 already authenticated, 404 auth timeout, 405 symbol limit
exceeded (subscriptions unchanged), 406 connection limit exceeded (one connection per key and
feed, as at Alpaca), 410 invalid subscribe action for this feed. After 402, 404 and 406 the
server hangs up. A client too slow to take its data (10,000 frames queued) is hung up on
without a word, where Alpaca would try to send 407 slow client first.

:class:`MarketPublisher` is one task on the server loop: every ``poll_interval`` it takes the
ticks in ``[last sent, now)`` of the symbols someone subscribed to, so each tick goes out once
and in time order however the clock moves (real time, or a manual clock stepped by a test).
``delayed_sip`` runs 15 minutes behind, as Alpaca's does. ``updatedBars`` (late trades) and
``statuses`` (halts) can be subscribed to but the synthetic market never produces them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
from aiohttp import WSMsgType, web

from ..market.assets import PROFILES
from ..market.bars import parse_timeframe, to_ns
from ..market.calendar import ny_date
from ..market.tape import MINUTE_NS, PRICE_SCALE, QUOTE_VENUES, VENUES
from .connection import StreamConnection

if TYPE_CHECKING:  # pragma: no cover
    from .streams import StreamServer

log = logging.getLogger("alpaca_nb.sim")

FEEDS = ("iex", "sip", "delayed_sip", "test", "otc", "boats", "overnight")
FEED_DELAY_NS = {"delayed_sip": 15 * 60 * 10**9}
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
_FOLLOW_TRADES = ("corrections", "cancelErrors")  # implied by trades, reported with them
_OTHER_STREAMS = ("orderbooks", "news")  # channels of the crypto / news streams
_LIMITED = ("trades", "quotes")  # what Alpaca's symbol limit counts
_SYMBOL = re.compile(r"^(\*|[A-Z0-9][A-Z0-9.\-/]{0,20})$")
MAX_TICKS_PER_POLL = 5_000  # per symbol and channel: a clock jump of hours sends the latest
FRAME_MESSAGES = 1_000  # messages per frame, as Alpaca batches them
_ONE_MINUTE = parse_timeframe("1Min")
_SCALE = float(PRICE_SCALE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DataStreamConnection(StreamConnection):
    """One market-data websocket: authentication, subscriptions, and what it is sent."""

    def __init__(self, server: StreamServer, ws: web.WebSocketResponse, request: web.Request, feed: str):
        super().__init__(ws, request, feed)
        self.server = server
        self.feed = feed
        self.subs: dict[str, set[str]] = {ch: set() for ch in CHANNELS}

    # -- sending --------------------------------------------------------------------------
    def reply(self, *messages: Mapping[str, Any]) -> None:
        self.send(msgpack.packb(list(messages)))

    def error(self, code: int, msg: str) -> None:
        self.reply({"T": "error", "code": code, "msg": msg})

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subs[channel]
        return symbol in chosen or "*" in chosen

    # -- the conversation -----------------------------------------------------------------
    async def serve(self, headers: Mapping[str, str]) -> None:
        self.reply({"T": "success", "msg": "connected"})
        if "APCA-API-KEY-ID" in headers and not self._authenticate(
            headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")
        ):
            return
        timer = asyncio.get_running_loop().call_later(self.server.auth_timeout, self._auth_timeout)
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    self.error(400, "invalid syntax")  # msgpack only
                    continue
                if msg.type is not WSMsgType.BINARY:
                    continue
                try:
                    request = msgpack.unpackb(msg.data)
                except (ValueError, msgpack.UnpackException):
                    request = None
                if not isinstance(request, dict):
                    self.error(400, "invalid syntax")
                    continue
                if not self._handle(request):
                    break
        finally:
            timer.cancel()

    def _auth_timeout(self) -> None:
        if self.key is None and not self.ws.closed:
            self.error(404, "auth timeout")
            asyncio.get_running_loop().create_task(self.close())

    def _handle(self, request: dict) -> bool:
        """Answer one client message; False ends the connection."""
        action = request.get("action")
        if action == "auth":
            if self.key is not None:
                self.error(403, "already authenticated")
                return True
            return self._authenticate(request.get("key"), request.get("secret"))
        if action in ("subscribe", "unsubscribe"):
            if self.key is None:
                self.error(401, "not authenticated")
            else:
                self._subscribe(request, add=action == "subscribe")
            return True
        self.error(400, "invalid syntax")
        return True

    def _authenticate(self, key: Any, secret: Any) -> bool:
        sim = self.server.sim
        if key != sim.key or secret != sim.secret:
            self.error(402, "auth failed")
            return False
        holder = self.server.data_sessions.get((self.feed, key))
        if holder is not None and holder is not self:
            self.error(406, "connection limit exceeded")
            return False
        self.key = key
        self.server.data_sessions[(self.feed, key)] = self
        self.reply({"T": "success", "msg": "authenticated"})
        return True

    def _subscribe(self, request: dict, *, add: bool) -> None:
        changes: dict[str, list[str]] = {}
        for channel, symbols in request.items():
            if channel == "action" or channel in _FOLLOW_TRADES:
                continue
            if channel in _OTHER_STREAMS:
                self.error(410, "invalid subscribe action for this feed")
                return
            if (
                channel not in CHANNELS
                or not isinstance(symbols, list)
                or not all(isinstance(s, str) and _SYMBOL.match(s) for s in symbols)
            ):
                self.error(400, "invalid syntax")
                return
            changes[channel] = symbols
        new = {ch: set(chosen) for ch, chosen in self.subs.items()}
        for channel, symbols in changes.items():
            if add:
                new[channel].update(symbols)
            else:
                new[channel].difference_update(symbols)
        limit = self.server.symbol_limit
        if add and limit is not None:
            counted = set().union(*(new[ch] for ch in _LIMITED)) - {"*"}
            if len(counted) > limit:
                self.error(405, "symbol limit exceeded")
                return
        self.subs = new
        self.reply(self.subscription())

    def subscription(self) -> dict[str, Any]:
        """The ``subscription`` message: every channel's full current set."""
        msg: dict[str, Any] = {"T": "subscription"}
        for channel in CHANNELS:
            msg[channel] = sorted(self.subs[channel])
        for channel in _FOLLOW_TRADES:
            msg[channel] = msg["trades"]
        return msg


class MarketPublisher:
    """Sends the synthetic market's ticks and bars to subscribed connections as the clock moves."""

    def __init__(self, server: StreamServer, poll_interval: float = 0.05):
        self.server = server
        self.poll_interval = poll_interval
        self.cursors: dict[str, tuple[int, int]] = {}  # feed -> (next tick ns, next bar minute ns)
        self.sent = 0  # data messages sent, for tests and benches

    async def run(self) -> None:
        while True:
            try:
                self.publish()  # the first call, before anyone connects, sets the cursors to now
            except Exception:  # a bad tick must not end the stream for everyone
                log.exception("local broker: market-data publisher failed")
            await asyncio.sleep(self.poll_interval)

    def publish(self) -> None:
        """Send every tick in ``[cursor, now)`` and every minute bar closed since the last call."""
        now = to_ns(self.server.sim.clock.now()) + 1
        by_feed: dict[str, list[DataStreamConnection]] = defaultdict(list)
        for conn in list(self.server.connections):
            if isinstance(conn, DataStreamConnection) and conn.key is not None and any(conn.subs.values()):
                by_feed[conn.feed].append(conn)
        for feed in FEEDS:
            end = now - FEED_DELAY_NS.get(feed, 0)
            cursor = self.cursors.get(feed)
            if cursor is None or end <= cursor[0]:
                if cursor is None:
                    self.cursors[feed] = (end, end // MINUTE_NS * MINUTE_NS)
                continue
            if by_feed.get(feed):
                self._publish(by_feed[feed], cursor[0], end, cursor[1], end // MINUTE_NS * MINUTE_NS)
            self.cursors[feed] = (end, end // MINUTE_NS * MINUTE_NS)

    def _publish(self, conns: list[DataStreamConnection], lo: int, hi: int, bar_lo: int, bar_hi: int) -> None:
        market = self.server.sim.market
        wanted = {ch: _symbols(c.subs[ch] for c in conns) for ch in ("trades", "quotes", "bars", "dailyBars")}
        ticks: list[tuple[int, str, str, dict]] = []  # (t, channel, symbol, message)
        for symbol in wanted["trades"]:
            got, _ = market.ticks(symbol, lo, hi, MAX_TICKS_PER_POLL, desc=True)
            ticks.extend(_trade_messages(symbol, got))
        for symbol in wanted["quotes"]:
            got, _ = market.ticks(symbol, lo, hi, MAX_TICKS_PER_POLL, desc=True, by_quote=True)
            ticks.extend(_quote_messages(symbol, got))
        ticks.sort(key=lambda row: row[0])
        bars: list[tuple[int, str, str, dict]] = []
        if bar_hi > bar_lo:
            for symbol in wanted["bars"] | wanted["dailyBars"]:
                minute, _ = market.bars(symbol, _ONE_MINUTE, bar_lo, bar_hi - 1, MAX_TICKS_PER_POLL, until_ns=bar_hi)
                if not len(minute):
                    continue
                if symbol in wanted["bars"]:
                    bars.extend(_bar_messages(symbol, minute, "b", "bars"))
                if symbol in wanted["dailyBars"]:
                    day = market.day_summary(symbol, ny_date(_dt(bar_hi - 1)), bar_hi)
                    bars.extend(_bar_messages(symbol, day, "d", "dailyBars"))
        rows = ticks + bars
        if not rows:
            return
        for conn in conns:
            mine = [msg for _t, channel, symbol, msg in rows if conn.wants(channel, symbol)]
            for i in range(0, len(mine), FRAME_MESSAGES):
                if not conn.send(msgpack.packb(mine[i : i + FRAME_MESSAGES])):
                    break
            self.sent += len(mine)


def _symbols(chosen: Iterable[set[str]]) -> set[str]:
    union: set[str] = set().union(*chosen)
    if "*" in union:
        return set(PROFILES)
    return {s for s in union if s in PROFILES}


def _stamps(ns: np.ndarray) -> list[msgpack.Timestamp]:
    return [msgpack.Timestamp.from_unix_nano(t) for t in ns.tolist()]


def _trade_messages(symbol: str, ticks) -> list[tuple[int, str, str, dict]]:
    if not len(ticks):
        return []
    lot = PROFILES[symbol].lot
    out = []
    for t, stamp, i, x, p, s in zip(
        ticks.t.tolist(),
        _stamps(ticks.t),
        ticks.id.tolist(),
        VENUES[ticks.venue].tolist(),
        (ticks.price / _SCALE).tolist(),
        ticks.size.tolist(),
        strict=False,
    ):
        out.append(
            (
                t,
                "trades",
                symbol,
                {
                    "T": "t",
                    "S": symbol,
                    "i": i,
                    "x": x,
                    "p": p,
                    "s": s,
                    "c": ["@", "I"] if s < lot else ["@"],
                    "z": ticks.tape,
                    "t": stamp,
                },
            )
        )
    return out


def _quote_messages(symbol: str, ticks) -> list[tuple[int, str, str, dict]]:
    if not len(ticks):
        return []
    out = []
    for t, stamp, bx, bp, bs, ax, ap, as_ in zip(
        ticks.qt.tolist(),
        _stamps(ticks.qt),
        QUOTE_VENUES[ticks.bid_venue].tolist(),
        (ticks.bid / _SCALE).tolist(),
        ticks.bid_size.tolist(),
        QUOTE_VENUES[ticks.ask_venue].tolist(),
        (ticks.ask / _SCALE).tolist(),
        ticks.ask_size.tolist(),
        strict=False,
    ):
        out.append(
            (
                t,
                "quotes",
                symbol,
                {
                    "T": "q",
                    "S": symbol,
                    "bx": bx,
                    "bp": bp,
                    "bs": bs,
                    "ax": ax,
                    "ap": ap,
                    "as": as_,
                    "c": ["R"],
                    "z": ticks.tape,
                    "t": stamp,
                },
            )
        )
    return out


def _bar_messages(symbol: str, bars, kind: str, channel: str) -> list[tuple[int, str, str, dict]]:
    vw = np.round(bars.pv / np.maximum(bars.v, 1) / _SCALE, 6).tolist()
    out = []
    for t, stamp, o, h, l, c, v, n, w in zip(  # noqa: E741 (Alpaca's field names)
        bars.t.tolist(),
        _stamps(bars.t),
        (bars.o / _SCALE).tolist(),
        (bars.h / _SCALE).tolist(),
        (bars.l / _SCALE).tolist(),
        (bars.c / _SCALE).tolist(),
        bars.v.tolist(),
        bars.n.tolist(),
        vw,
        strict=False,
    ):
        out.append(
            (
                t,
                channel,
                symbol,
                {"T": kind, "S": symbol, "o": o, "h": h, "l": l, "c": c, "v": v, "n": n, "vw": w, "t": stamp},
            )
        )
    return out


def _dt(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)
