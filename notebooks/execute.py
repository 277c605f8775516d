"""Re-execute notebooks in place and store their outputs (what nbval compares against).

    .venv/bin/python notebooks/execute.py notebooks/*.ipynb     (or: make notebooks)

Runs against a fresh local broker in a temporary ALPACA_NB_HOME, as CI does.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def main(paths: list[str]) -> int:
    home = Path(tempfile.mkdtemp(prefix="alpaca_nb-execute-"))
    os.environ["ALPACA_NB_HOME"] = str(home)
    for name in ("ALPACA_API_KEY", "ALPACA_API_SECRET", "ALPACA_ENVIRONMENT", "ALPACA_NB_LEDGER"):
        os.environ.pop(name, None)
    try:
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(
                notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}
            ).execute()
            nbformat.write(notebook, path)
            print(f"executed {path}")
    finally:
        from alpaca_nb.sim import process

        process.stop(home / "sim")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or sorted(str(p) for p in Path(__file__).parent.glob("*.ipynb"))))
