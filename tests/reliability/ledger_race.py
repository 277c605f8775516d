"""Two processes recording orders in one ledger at once, round after round, under CPU load:
how many rows are lost. Not collected by pytest (too slow for the suite: about a minute a
round under load); the figures in RELIABILITY.md come from it::

    .venv/bin/python -m tests.reliability.ledger_race --rounds 12 --orders 500 --load 2

``--load N`` keeps N busy-looping processes running meanwhile (on a 2-core machine, 2 makes
the writers' turns short and irregular, which is when a lost commit showed). Exits 1 if any
round lost a row or a worker failed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alpaca_nb.ledger import Ledger
from tests.test_ledger_sharing import WORKER, _python

BUSY = "while True: pass"


def one_round(n: int) -> tuple[list[str], list[int]]:
    """Lost client_order_ids and the workers' exit codes for one round of ``n`` orders each."""
    folder = Path(tempfile.mkdtemp(prefix="ledger-race-"))
    try:
        path, go = folder / "shared.duckdb", folder / "go"
        Ledger(path)
        workers = [
            _python(WORKER, str(path), user, str(n), str(go), "0", stderr=subprocess.PIPE) for user in ("ana", "bob")
        ]
        for worker in workers:
            worker.stdout.readline()
        go.touch()
        for worker in workers:
            worker.communicate(timeout=600)
        recorded = set(Ledger(path).sql("SELECT client_order_id FROM managed_orders")["client_order_id"])
        wanted = {f"{user}-{i:04d}" for user in ("ana", "bob") for i in range(n)}
        return sorted(wanted - recorded), [w.returncode for w in workers]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.ledger_race", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--orders", type=int, default=500, help="orders per process and round")
    parser.add_argument("--load", type=int, default=2, help="busy-looping processes meanwhile")
    args = parser.parse_args(argv)
    burners = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    bad = 0
    try:
        for number in range(1, args.rounds + 1):
            lost, codes = one_round(args.orders)
            bad += bool(lost) or codes != [0, 0]
            print(f"round {number}: lost {len(lost)} {lost[:5]} exit codes {codes}", flush=True)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"{args.rounds} rounds of 2 x {args.orders} orders, load {args.load}: {bad} round(s) lost a row or failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
