"""What every route handler of the local broker reaches: the :class:`Sim` (clock, market,
engine, keys, faults) under ``request.app[SIM_KEY]``. Its own module so that the server and its
route modules both import it and neither imports the other."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from aiohttp import web

from ..account.engine import Engine
from ..faults import Faults
from ..market.calendar import MarketHours
from ..market.clock import SimClock
from ..market.market import Market


@dataclass
class Sim:
    """Everything a route handler can reach: ``request.app[SIM_KEY]``."""

    clock: SimClock
    hours: MarketHours
    market: Market
    engine: Engine
    key: str = field(repr=False)  # the account's keys never show in a repr or traceback
    secret: str = field(repr=False)
    seed: int
    rate_limit: int | None = 200
    rate_window: float = 60.0
    record: bool = False
    requests: collections.Counter = field(default_factory=collections.Counter)
    responses: list = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    extensions: list = field(default_factory=list)  # (name, object) added by later features


SIM_KEY = web.AppKey("sim", Sim)
