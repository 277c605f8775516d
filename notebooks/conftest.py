"""Notebook runs (nbval) get a private data directory and never reach real credentials.

Each notebook's kernel inherits this process's environment, which the root ``conftest.py``
has scrubbed: no ALPACA_* variable, no ``.env`` (ALPACA_NB_DOTENV=off), loopback hosts only
(ALPACA_NB_LOOPBACK_ONLY=1). The local broker the notebooks start lives under a private
ALPACA_NB_HOME inside the session folder, and is stopped when the session ends.
"""

from __future__ import annotations

import os
from pathlib import Path

_HOME = Path(os.environ["HOME"]).parent / "notebooks"
_HOME.mkdir(exist_ok=True)
os.environ["ALPACA_NB_HOME"] = str(_HOME)


def pytest_sessionfinish(session, exitstatus):
    from alpaca_nb.sim import process

    process.stop(_HOME / "sim")
