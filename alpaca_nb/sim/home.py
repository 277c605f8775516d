"""Where the local broker keeps its account, and how a running broker process is found.

Layout under ``$ALPACA_NB_HOME`` (default ``~/.alpaca_nb``)::

    sim/state.sqlite   the account: orders, positions, cash, activities (survives restarts)
    sim/broker.json    the running broker process: pid, url, seed (removed on clean stop)
    sim/broker.log     that process's output
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

LOCAL_KEY = "local-key"
LOCAL_SECRET = "local-secret"


def home_dir() -> Path:
    """``$ALPACA_NB_HOME`` or ``~/.alpaca_nb``: the toolkit's per-user data directory."""
    raw = os.environ.get("ALPACA_NB_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".alpaca_nb"


def sim_dir(home: Path | None = None) -> Path:
    return (home or home_dir()) / "sim"


def default_keys() -> tuple[str, str]:
    """The broker's keys when none are given: the user's Alpaca variables, else the local pair."""
    key, secret = os.environ.get("ALPACA_API_KEY"), os.environ.get("ALPACA_API_SECRET")
    if key and secret:
        return key, secret
    return LOCAL_KEY, LOCAL_SECRET


def registry_path(state_dir: Path | None = None) -> Path:
    return (state_dir or sim_dir()) / "broker.json"


def read_registry(state_dir: Path | None = None) -> dict | None:
    """The running broker recorded in ``state_dir``, if it answers its health check."""
    path = registry_path(state_dir)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if healthy(info.get("url", ""), info.get("pid")) else None


def write_registry(state_dir: Path, info: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = registry_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, registry_path(state_dir))


def clear_registry(state_dir: Path, pid: int) -> None:
    """Remove the registry file if it still names process ``pid`` (never another broker's)."""
    path = registry_path(state_dir)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def healthy(url: str, pid: int | None = None, timeout: float = 1.0) -> bool:
    """True when a local broker answers ``GET /healthz`` at ``url`` (and is process ``pid``)."""
    if not url.startswith("http://127.0.0.1") and not url.startswith("http://localhost"):
        return False
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as resp:
            info = json.loads(resp.read())
    except (OSError, ValueError):
        return False
    return info.get("service") == "alpaca_nb.sim" and (pid is None or info.get("pid") == pid)
