"""Kernels SIGKILLed at random moments while placing orders: nothing lost, nothing doubled.

A broker runs in its own process (as ``alpaca-nb sim serve`` does for notebooks); rounds of
child processes share one ledger file and place orders (see ``sigkill_child.py``), with the
broker holding, dropping or cutting some answers so that kills also land mid-request. Each
child is killed with SIGKILL at a random moment: while starting, syncing, writing its intent,
waiting for an answer or recording it. The next round's children are the restarted kernels of
the same users. At the end a fresh service syncs once: every order at the broker is on record
once, attributed to the user whose intent it was, and ``reconcile()`` is empty.
"""

from __future__ import annotations

import multiprocessing
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import sigkill_child
from faultkit import Intent, audit, broker_orders_rest, reconcile_rows, service

ROUNDS = 8
CHILDREN = 3  # per round: 24 SIGKILLs in all
KEY, SECRET = "sigkill-key", "sigkill-secret"


def start_broker(state_dir: Path) -> tuple[subprocess.Popen, str]:
    """``python -m alpaca_nb.sim serve`` in its own process; returns it and its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alpaca_nb.sim",
            "serve",
            "--state-dir",
            str(state_dir),
            "--rate-limit",
            "0",
            "--key",
            KEY,
            "--secret",
            SECRET,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert "listening on" in line, line + proc.stderr.read()[-2000:]
    return proc, line.rsplit(" ", 1)[-1].strip()


def add_faults(url: str, rng: random.Random) -> None:
    """Some answers held, lost, cut off or refused this round: kills land mid-request too."""
    post = {"path": "/v2/orders", "method": "POST"}
    menu = [
        {**post, "delay_after": round(rng.uniform(0.1, 0.8), 2), "times": 3},
        {**post, "drop_after": True},
        {**post, "cut_body": True},
        {**post, "status": 503},
        {**post, "status_after": 502},
        {"path": "/v2/orders:by_client_order_id", "status": 429, "times": 2},
    ]
    rules = rng.sample(menu, k=3)
    answer = requests.post(
        f"{url}/_sim/faults",
        json={"rest": rules},
        timeout=10,
        headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET},
    )
    assert answer.status_code == 200, answer.text


def read_intents(log_path: Path, user: str) -> list[Intent]:
    """What a killed child's log says it tried; its last intent may have been cut short."""
    intents: dict[int, Intent] = {}
    for line in log_path.read_text().splitlines():
        words = line.split()
        if len(words) < 2 or not words[1].isdigit():
            continue
        n = int(words[1])
        if words[0] == "start" and len(words) == 3:
            intents[n] = Intent(n, user, None, outcome="killed")  # until a later line says more
        elif n in intents and words[0] in ("placed", "unknown") and len(words) == 3:
            intents[n].outcome, intents[n].client_order_id = words[0], words[2]
        elif n in intents and words[0] == "refused" and len(words) == 4:
            intents[n].outcome = words[2]
            intents[n].error = RuntimeError(words[3])
    return list(intents.values())


def _kill_at_random_moments(children: list, rng: random.Random) -> int:
    """SIGKILL each child at a random moment of its own: most some time after it is ready
    (placing orders), some while it is still starting or syncing. Returns how many died so."""
    now = time.monotonic()
    plan = []
    for child, log_path, user in children:
        early = rng.random() < 0.15
        plan.append([child, log_path, user, rng.uniform(0.0, 0.4 if early else 1.2), now if early else None])
    deadline = now + 90
    while plan:
        assert time.monotonic() < deadline, "children never got ready"
        for entry in list(plan):
            child, log_path, user, after, since = entry
            if since is None and "ready" in log_path.read_text():
                since = entry[4] = time.monotonic()
            assert child.is_alive(), f"{user} ended before its kill:\n{log_path.read_text()[-2000:]}"
            if since is not None and time.monotonic() >= since + after:
                child.kill()  # SIGKILL
                child.join(30)
                assert child.exitcode == -signal.SIGKILL
                plan.remove(entry)
        time.sleep(0.01)
    return len(children)


def test_sigkilled_kernels_lose_and_duplicate_nothing(tmp_path, reliability_figures):
    rng = random.Random(20_261_124)
    broker, url = start_broker(tmp_path / "broker")
    ledger_path = tmp_path / "shared.duckdb"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["__main__", "alpaca_nb", "alpaca_nb.service", "alpaca_nb.ledger", "faultkit", "sigkill_child"]
    )
    intents: list[Intent] = []
    kills, killed_before_ready = 0, 0
    try:
        for round_ in range(ROUNDS):
            add_faults(url, rng)
            children = []
            for k in range(CHILDREN):
                log_path = tmp_path / f"round{round_}-kid{k}.log"
                log_path.touch()
                child = context.Process(
                    target=sigkill_child.run,
                    daemon=True,
                    args=(
                        url,
                        KEY,
                        SECRET,
                        str(ledger_path),
                        f"kid-{k}",
                        round_ * 100_000 + k * 10_000,
                        str(log_path),
                        rng.randrange(2**32),
                    ),
                )
                child.start()
                children.append((child, log_path, f"kid-{k}"))
            kills += _kill_at_random_moments(children, rng)
            for _child, log_path, user in children:
                killed_before_ready += "ready" not in log_path.read_text()
                intents.extend(read_intents(log_path, user))
        requests.delete(
            f"{url}/_sim/faults", timeout=10, headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        )
        time.sleep(0.5)  # market orders fill at the next ticks

        svc = service(url, ledger_path, key=KEY, secret=SECRET)  # the restart
        svc.sync()
        assert reconcile_rows(svc) == []
        at_broker = broker_orders_rest(url, KEY, SECRET)
        found = audit(svc.order_service.list(), intents, at_broker)
        assert not found.problems(), found.problems()
        svc.UNPLACED_AFTER = 0.0  # every killed request has landed or never will
        svc.sync()
        found = audit(svc.order_service.list(), intents, broker_orders_rest(url, KEY, SECRET))
        assert not found.problems(allow_unresolved=False), found.problems(allow_unresolved=False)
        assert reconcile_rows(svc) == []
        assert kills >= 20 and len(at_broker) > 0
        fired = requests.get(
            f"{url}/_sim/faults", timeout=10, headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        ).json()["fired"]
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.communicate(timeout=30)
    reliability_figures.add("sigkills", kills)
    reliability_figures.add("orders", len(intents))
    reliability_figures.add("duplicates", len(found.duplicates) + len(found.foreign))
    reliability_figures.add("lost", len(found.lost))
    reliability_figures.add("not_placed_but_at_broker", len(found.not_placed_but_there))
    reliability_figures.merge("faults_by_kind", fired)
    reliability_figures.record(
        "sigkill_run",
        {
            "kills": kills,
            "killed_while_starting": killed_before_ready,
            "intents": len(intents),
            "killed_mid_intent": sum(1 for i in intents if i.outcome == "killed"),
            "at_broker": len(at_broker),
            "outcomes": dict(found.outcomes),
        },
    )
