"""Notebook runs (nbval) get a private data directory and never reach real credentials.

Each notebook's kernel inherits this process's environment: the local broker it starts lives
under a temporary ALPACA_NB_HOME and is stopped when the session ends.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="alpaca_nb-notebooks-"))
os.environ["ALPACA_NB_HOME"] = str(_HOME)
for _name in ("ALPACA_API_KEY", "ALPACA_API_SECRET", "ALPACA_ENVIRONMENT", "ALPACA_NB_LEDGER",
              "ALPACA_TRADING_URL", "ALPACA_DATA_URL"):
    os.environ.pop(_name, None)


def pytest_sessionfinish(session, exitstatus):
    from alpaca_nb.sim import process

    process.stop(_HOME / "sim")
