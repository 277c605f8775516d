"""A local broker that speaks Alpaca's wire protocol, so everything runs with no account.

It depends on nothing else in ``alpaca_nb`` and could ship alone. In-process::

    from alpaca_nb.sim import LocalBroker
    with LocalBroker(seed=7) as broker:
        TradingClient(broker.key, broker.secret, url_override=broker.url).get_account()

As a process: ``alpaca-nb sim --port 8765 --seed 7`` (or ``python -m alpaca_nb.sim``).

Three layers, imports pointing down only: ``api/`` (the REST routes and the two websocket
streams) -> ``account/`` (the engine: orders, fills, cash, positions, persistence) ->
``market/`` (the synthetic tape, bars, assets, calendar, clock). This folder runs them:
``broker`` (in-process), ``process`` (its own process), ``__main__``; ``home`` (where the
account lives, the default keys) and ``faults`` (injected failures, read by ``api/``) import
nothing of the package.
"""

from __future__ import annotations

from .home import LOCAL_KEY, LOCAL_SECRET


def __getattr__(name: str):
    if name == "LocalBroker":  # lazily: the server pulls in aiohttp, numpy and the engine
        from .broker import LocalBroker

        return LocalBroker
    raise AttributeError(f"module 'alpaca_nb.sim' has no attribute {name!r}")


__all__ = ["LocalBroker", "LOCAL_KEY", "LOCAL_SECRET"]
