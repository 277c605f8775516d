"""The local broker as its own process: serve, start detached, stop, reset.

One broker process per state directory serves the user's local account; it records itself in
``broker.json`` (see :mod:`alpaca_nb.sim.home`) so that every notebook finds the same one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from .api.server import build_app
from .broker import make_sim
from .home import clear_registry, read_registry, registry_path, sim_dir, write_registry

STATE_FILE = "state.sqlite"


def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 42,
    key: str | None = None,
    secret: str | None = None,
    state_dir: Path | None = None,
    market_hours: str = "continuous",
    rate_limit: int | None = 200,
    announce=print,
) -> None:
    """Serve until SIGINT/SIGTERM. Prints the URL once listening, on one line."""
    state_dir = Path(state_dir or sim_dir())
    state_dir.mkdir(parents=True, exist_ok=True)
    sim = make_sim(
        seed=seed,
        key=key,
        secret=secret,
        state_path=state_dir / STATE_FILE,
        market_hours=market_hours,
        rate_limit=rate_limit,
    )

    async def main() -> None:
        runner = web.AppRunner(build_app(sim), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        bound = runner.addresses[0][1]
        url = f"http://{host}:{bound}"
        write_registry(
            state_dir,
            {
                "pid": os.getpid(),
                "url": url,
                "port": bound,
                "seed": seed,
                "market_hours": market_hours,
                "started_at": datetime.now(UTC).isoformat(),
            },
        )
        announce(f"alpaca_nb local broker listening on {url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            clear_registry(state_dir, os.getpid())
            await runner.cleanup()
            sim.engine.close()

    asyncio.run(main())


def start_detached(
    state_dir: Path | None = None, *, seed: int = 42, market_hours: str = "continuous", timeout: float = 20.0
) -> dict:
    """Start a broker process that outlives this one, or return the one already running."""
    state_dir = Path(state_dir or sim_dir())
    running = read_registry(state_dir)
    if running:
        return running
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(state_dir / "broker.log", "ab")
    cmd = [
        sys.executable,
        "-m",
        "alpaca_nb.sim",
        "serve",
        "--state-dir",
        str(state_dir),
        "--seed",
        str(seed),
        "--market-hours",
        market_hours,
    ]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_registry(state_dir)
        if info:
            # Another process may have won a start race: use whichever broker is recorded.
            if info["pid"] != proc.pid:
                proc.terminate()
            return info
        if proc.poll() is not None and not registry_path(state_dir).exists():
            break
        time.sleep(0.05)
    tail = (state_dir / "broker.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the local broker did not start within {timeout:.0f} s; its log says:\n{tail}")


def stop(state_dir: Path | None = None, timeout: float = 10.0) -> bool:
    """Stop the recorded broker process; False when none was running."""
    state_dir = Path(state_dir or sim_dir())
    info = read_registry(state_dir)
    if not info:
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(info["pid"], signal.SIGKILL)
    return True


def reset(state_dir: Path | None = None, key: str | None = None, secret: str | None = None) -> str:
    """Start the local account afresh: through the running broker, else by removing its file."""
    from .home import default_keys

    state_dir = Path(state_dir or sim_dir())
    info = read_registry(state_dir)
    if info:
        if key is None or secret is None:
            key, secret = default_keys()
        req = urllib.request.Request(
            f"{info['url']}/_sim/reset",
            method="POST",
            data=b"",
            headers={"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret},
        )
        with urllib.request.urlopen(req, timeout=10):
            pass
        return f"reset the account of the broker at {info['url']}"
    removed = False
    for suffix in ("", "-wal", "-shm"):
        path = state_dir / f"{STATE_FILE}{suffix}"
        if path.exists():
            path.unlink()
            removed = True
    return f"removed {state_dir / STATE_FILE}" if removed else "nothing to reset"
