"""Finding the user's local broker, or starting it, for the ``local`` environment.

The broker runs as a detached process recorded under ``$ALPACA_NB_HOME/sim`` so that every
notebook and every restarted kernel reaches the same local account.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from .secret import Secret
from .sim import home as sim_home
from .sim import process

log = logging.getLogger("alpaca_nb")


def local_broker_url(home: Path | None = None) -> str:
    """The URL of the running local broker, started in the background when none answers.

    Prints one line when it starts a broker (the only thing alpaca_nb ever prints).
    """
    state_dir = sim_home.sim_dir(home)
    info = sim_home.read_registry(state_dir)
    if info:
        return str(info["url"])
    info = process.start_detached(state_dir)
    print(
        f"alpaca_nb: started the local broker at {info['url']} (state in {state_dir}; "
        "stop it with `alpaca-nb sim stop`)",
        file=sys.stderr,
    )
    return str(info["url"])


def local_keys() -> tuple[Secret, Secret]:
    """The keys the local broker accepts when the user configured none (the user's own
    ``ALPACA_API_KEY`` pair when set), masked: whichever frame holds them shows no key."""
    key, secret = map(Secret, sim_home.default_keys())
    return key, secret
