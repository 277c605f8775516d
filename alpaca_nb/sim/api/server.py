"""The local broker's HTTP server: the Alpaca REST APIs of one :class:`Sim` as one aiohttp app.

:func:`build_app` wires the route modules; keys, the per-key rate limit, injected faults,
error bodies and request counting are middlewares here, so route modules only speak about
trading and market data. What runs the app (in-process or as its own process) is
:mod:`alpaca_nb.sim.broker` / :mod:`alpaca_nb.sim.process`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from typing import Any

import msgspec
from aiohttp import web

from ..account.errors import SimError
from .http import json_response
from .state import SIM_KEY, Sim

log = logging.getLogger("alpaca_nb.sim")

TICK_SECONDS = 0.1


# Paths served without REST keys: the websocket streams authenticate in-protocol.
_OPEN_PATHS = ("/healthz",)
_STREAM_PREFIXES = (
    "/stream",
    "/v2/iex",
    "/v2/sip",
    "/v2/delayed_sip",
    "/v2/test",
    "/v2/otc",
    "/v2/boats",
    "/v2/overnight",
)


def _is_stream(path: str) -> bool:
    return any(path == p for p in _STREAM_PREFIXES)


class _RateLimiter:
    """Alpaca's per-key request budget: ``limit`` requests per rolling ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def check(self, key: str) -> dict[str, str]:
        now = time.time()
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        reset = int((hits[0] if hits else now) + self.window) + 1
        if len(hits) >= self.limit:
            headers = {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            raise SimError(429, 42910000, "rate limit exceeded", headers)
        hits.append(now)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - len(hits)),
            "X-RateLimit-Reset": str(reset),
        }


GARBLED = web.ResponseKey("garbled", bool)  # an injected garbled body (see .faults)


def _record(sim: Sim, request: web.Request, response: web.StreamResponse) -> None:
    if response.get(GARBLED):
        return
    body: Any = None
    raw = getattr(response, "body", None)
    if isinstance(raw, (bytes, bytearray)) and raw:
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = raw.decode(errors="replace")
    sim.responses.append((request.method, request.path, response.status, body))


def build_app(sim: Sim) -> web.Application:
    """The aiohttp application serving every route module against ``sim``."""
    limiter = _RateLimiter(sim.rate_limit, sim.rate_window) if sim.rate_limit else None

    @web.middleware
    async def alpaca_middleware(request: web.Request, handler):
        path = request.path
        sim.requests[(request.method, path)] += 1
        sim.requests["total"] += 1
        if path in _OPEN_PATHS or _is_stream(path):
            return await handler(request)
        limit_headers: dict[str, str] = {}
        try:
            key = request.headers.get("APCA-API-KEY-ID", "")
            secret = request.headers.get("APCA-API-SECRET-KEY", "")
            if key != sim.key or secret != sim.secret:
                raise SimError(401, 40110000, "request is not authorized")
            if limiter is not None:
                limit_headers = limiter.check(key)
            fault = sim.faults.take(request.method, path) if len(sim.faults) else None
            if fault is None:
                response = await handler(request)
            else:
                response = await _shielded(_with_fault(fault, handler, request))
        except SimError as err:
            response = json_response(err.body(), err.status, {**limit_headers, **err.headers})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = json_response({"code": exc.status * 100000 + 10000, "message": exc.reason.lower()}, exc.status)
        except Exception:  # a bug in the broker must not look like a hang to the client
            log.exception("local broker: unhandled error on %s %s", request.method, path)
            response = json_response({"code": 50010000, "message": "internal server error"}, 500)
        for name, value in limit_headers.items():
            response.headers.setdefault(name, value)
        if sim.record:
            _record(sim, request, response)
        return response

    app = web.Application(middlewares=[alpaca_middleware], client_max_size=64 * 2**20)
    app[SIM_KEY] = sim
    app.router.add_get("/healthz", _healthz)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_get("/_sim/faults", _faults_get)
    app.router.add_post("/_sim/faults", _faults_add)
    app.router.add_delete("/_sim/faults", _faults_clear)
    from . import data_api, trading_api

    app.add_routes(trading_api.routes)
    app.add_routes(data_api.routes)
    for _name, ext in sim.extensions:
        ext.install(app)
    app.cleanup_ctx.append(_ticker)
    return app


async def _with_fault(fault, handler, request: web.Request) -> web.StreamResponse:
    """Serve ``request`` through an injected fault (see :mod:`alpaca_nb.sim.faults`)."""
    await request.read()  # the body is in hand before any delay: the client may hang up meanwhile
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is not None:
        raise _fault_error(fault, fault.status)
    response = await handler(request)
    await _after_processing(fault, request, response)
    return response


async def _shielded(work) -> web.StreamResponse:
    """Run ``work`` to its end even when the client hangs up meanwhile.

    aiohttp cancels a handler whose client went away; a request held by a fault must still
    take effect after its caller timed out (the "lands late" case), as it would at Alpaca.
    """
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no warning
    return await asyncio.shield(task)


def _fault_error(fault, status: int) -> SimError:
    """An injected error answer in Alpaca's shape (a 429 with its rate-limit headers)."""
    headers = dict(fault.headers)
    if status == 429:
        headers = {**fault.rate_limit_headers(time.time()), **headers}
    return SimError(status, status * 100000, fault.message, headers)


async def _after_processing(fault, request: web.Request, response: web.StreamResponse) -> None:
    """The faults that strike once the request has taken effect (see :mod:`alpaca_nb.sim.faults`).

    Raises the replacement answer (``status_after``) or ``CancelledError`` once the connection
    is gone (``drop_after``, ``cut_body``); returns when the real answer may go out.
    """
    if fault.delay_after:
        await asyncio.sleep(fault.delay_after)
    if fault.status_after is not None:
        raise _fault_error(fault, fault.status_after)
    if fault.drop_after:
        # The request took effect; the client never hears of it.
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    if fault.cut_mode == "garbled":  # a clean answer whose JSON ends half way
        body = response.body if isinstance(response, web.Response) else None
        if isinstance(response, web.Response) and isinstance(body, (bytes, bytearray)) and body:
            response.body = bytes(body[: max(1, len(body) // 2)])
            response[GARBLED] = True  # not Alpaca's answer: not recorded for spec checks
        return
    if fault.cut_mode is not None:
        await _send_cut_off(response, request, fault.cut_mode)
        raise asyncio.CancelledError


async def _send_cut_off(response: web.StreamResponse, request: web.Request, mode: str) -> None:
    """Send ``response``'s status and headers promising its whole body, half the body, then
    close the connection: the client's read of the body ends early."""
    body = bytes(getattr(response, "body", b"") or b"")
    if not body:  # nothing to cut (a 204): the answer is lost whole, as with drop_after
        if request.transport is not None:
            request.transport.abort()
        return
    cut = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in response.headers.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            cut.headers[name] = value
    if mode == "chunked":
        cut.enable_chunked_encoding()
    else:
        cut.content_length = len(body)
    await cut.prepare(request)
    await cut.write(body[: max(1, len(body) // 2)])
    if request.transport is not None:
        request.transport.abort()


async def _faults_get(request: web.Request) -> web.Response:
    """The faults fired so far, by kind, and the rules with firings left."""
    faults = request.app[SIM_KEY].faults
    return json_response({"fired": dict(faults.fired), "rules": len(faults), "stream_rules": faults.pending_stream()})


async def _faults_add(request: web.Request) -> web.Response:
    """Add fault rules to a broker in another process (keys required, as for any route).

    Body: ``{"rest": [{...Fault keywords...}], "stream": [{"kind": "drop", ...}]}``; each list
    may be left out. A bad rule is a 422 naming it, and then no rule of the body is added.
    """
    from ..account.errors import bad_request, unprocessable
    from ..faults import Fault, StreamFault

    try:
        body = await request.json()
    except ValueError:
        raise bad_request("the body must be JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be an object with 'rest' and/or 'stream' lists")
    try:
        rest = [Fault(**rule) for rule in body.get("rest") or []]
        stream = [StreamFault(**rule) for rule in body.get("stream") or []]
    except (TypeError, ValueError) as err:
        raise unprocessable(f"invalid fault rule: {err}") from None
    faults = request.app[SIM_KEY].faults
    for rule in rest:
        faults.add(**vars(rule))
    for stream_rule in stream:
        faults.add_stream(**vars(stream_rule))
    return json_response({"added": len(rest) + len(stream)})


async def _faults_clear(request: web.Request) -> web.Response:
    request.app[SIM_KEY].faults.clear()
    return json_response({"cleared": True})


async def _healthz(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return json_response(
        {
            "service": "alpaca_nb.sim",
            "pid": os.getpid(),
            "seed": sim.seed,
            "market_hours": sim.hours.mode,
            "manual_clock": sim.clock.manual,
        }
    )


async def _reset(request: web.Request) -> web.Response:
    """Start the account afresh, as Alpaca's paper-account reset does."""
    request.app[SIM_KEY].engine.reset()
    return json_response({"status": "reset"})


async def _ticker(app: web.Application):
    """Drive the matching engine with the real-time clock (a manual clock is stepped by tests)."""
    sim = app[SIM_KEY]

    async def run() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                sim.engine.tick()
            except Exception:
                log.exception("local broker: matching engine tick failed")

    task = None if sim.clock.manual else asyncio.get_running_loop().create_task(run())
    yield
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
