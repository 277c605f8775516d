"""The local broker in-process: :func:`make_sim` assembles it, :class:`LocalBroker` serves it on a background thread.

``LocalBroker`` is a context manager with a clean shutdown (tests, notebooks); the process
that serves the user's account (:mod:`.process`) uses the same :func:`make_sim`.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from pathlib import Path

from aiohttp import web

from .account.engine import Engine
from .api.server import build_app
from .api.state import Sim
from .api.streams import StreamServer, streams_of
from .home import default_keys
from .market.calendar import MarketHours
from .market.clock import SimClock
from .market.market import Market


def make_sim(
    *,
    seed: int = 42,
    key: str | None = None,
    secret: str | None = None,
    state_path: Path | None = None,
    market_hours: str = "continuous",
    manual_clock: bool = False,
    start: datetime | None = None,
    rate_limit: int | None = 200,
    rate_window: float = 60.0,
    record: bool = False,
) -> Sim:
    """Assemble clock, hours, market and engine; keys default as DESIGN.md says."""
    if (key is None) != (secret is None):
        raise ValueError("give both key and secret, or neither")
    if key is None or secret is None:
        key, secret = default_keys()
    clock = SimClock(start, manual=manual_clock)
    hours = MarketHours(market_hours)
    market = Market(seed, hours, clock)
    engine = Engine(market, hours, clock, state_path)
    sim = Sim(
        clock=clock,
        hours=hours,
        market=market,
        engine=engine,
        key=key,
        secret=secret,
        seed=seed,
        rate_limit=rate_limit,
        rate_window=rate_window,
        record=record,
    )
    sim.extensions.append((StreamServer.name, StreamServer(sim)))
    return sim


class LocalBroker:
    """An in-process local broker on a background thread and an ephemeral port.

    >>> with LocalBroker(seed=7) as broker:
    ...     client = TradingClient(broker.key, broker.secret, url_override=broker.url)

    ``state_dir=None`` keeps the account in memory; give a directory to persist it.
    ``manual_clock=True`` freezes the market until :meth:`step` is called.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 42,
        key: str | None = None,
        secret: str | None = None,
        state_dir: Path | str | None = None,
        market_hours: str = "continuous",
        manual_clock: bool = False,
        start: datetime | None = None,
        rate_limit: int | None = 200,
        rate_window: float = 60.0,
        record: bool = False,
    ):
        state_path = Path(state_dir) / "state.sqlite" if state_dir is not None else None
        if state_path is not None:
            state_path.parent.mkdir(parents=True, exist_ok=True)
        self.sim = make_sim(
            seed=seed,
            key=key,
            secret=secret,
            state_path=state_path,
            market_hours=market_hours,
            manual_clock=manual_clock,
            start=start,
            rate_limit=rate_limit,
            rate_window=rate_window,
            record=record,
        )
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # what tests and notebooks reach for
    key = property(lambda self: self.sim.key)
    secret = property(lambda self: self.sim.secret)
    engine = property(lambda self: self.sim.engine)
    market = property(lambda self: self.sim.market)
    clock = property(lambda self: self.sim.clock)
    hours = property(lambda self: self.sim.hours)
    requests = property(lambda self: self.sim.requests)
    faults = property(lambda self: self.sim.faults)
    responses = property(lambda self: self.sim.responses)

    @property
    def streams(self):
        """The websocket side: connection counts, ``drop_all()``."""
        return streams_of(self.sim)

    def drop_streams(self) -> int:
        """Close every websocket from the broker's side (clients should reconnect)."""
        return self.streams.drop_all()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "broker not started"
        return self._loop

    def __repr__(self) -> str:
        state = "running" if self._thread else "stopped"
        return f"LocalBroker({self.url}, seed={self.sim.seed}, {state})"

    def start(self) -> LocalBroker:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # report bind errors to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            if self._runner is not None:  # set by _serve, which succeeded
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"alpaca_nb-sim-{id(self):x}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread = None
            raise failure[0]
        return self

    async def _serve(self) -> None:
        # A short shutdown_timeout: open websockets must not hold stop() for aiohttp's 60 s.
        self._runner = web.AppRunner(
            build_app(self.sim), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Close every connection and the listening socket; returns when the thread is gone."""
        if self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None
        self.sim.engine.close()

    def step(self, seconds: float = 1.0) -> None:
        """Advance a manual clock by ``seconds`` and let the matching engine act."""
        self.sim.clock.advance(seconds)
        self.sim.engine.tick()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
