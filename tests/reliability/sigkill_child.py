"""The process test_sigkill.py kills: a kernel placing orders into a shared ledger, forever.

It runs in a child started by a ``forkserver`` (alpaca_nb already imported, so a child is
ready in a fraction of a second) and writes what it does to ``log_path``, one line per step,
before and after each call: ``ready``, ``start <n>``, then ``placed <n> <client_order_id>``,
``unknown <n> <client_order_id>`` or ``refused <n> <outcome> <ErrorType>``. A line cut short by
the SIGKILL is ignored by the reader. Not a test module (no ``test_`` prefix).
"""

from __future__ import annotations

import random


def run(url: str, key: str, secret: str, ledger_path: str, user: str, first_n: int, log_path: str, seed: int) -> None:
    from faultkit import Intent, intent_tag, place, place_again

    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import Ledger

    rng = random.Random(seed)
    with open(log_path, "a", buffering=1) as log:
        svc = AlpacaService(Ledger(ledger_path)).initialize_sync(
            AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url, timeout=2.0
        )
        if rng.random() < 0.5:
            svc.sync()  # a restarted kernel catching up (and killed in it)
        log.write("ready\n")
        n = first_n
        while True:
            if rng.random() < 0.2:
                request = AlpacaOrderRequest(symbol=rng.choice(["AAPL", "SPY"]), qty=1, side="buy", type="market")
            else:
                request = AlpacaOrderRequest(
                    symbol=rng.choice(["AAPL", "MSFT", "F"]),
                    qty=1,
                    side="buy",
                    type="limit",
                    limit_price=f"{1 + rng.randrange(300) / 100:.2f}",
                    time_in_force="gtc",
                )
            intent = Intent(n, user, request)
            log.write(f"start {n} {intent_tag(n)}\n")
            place(svc, intent)
            if intent.outcome == "unknown" and rng.random() < 0.5:
                log.write(f"unknown {n} {intent.client_order_id}\n")
                place_again(svc, intent)
            if intent.outcome in ("placed", "unknown"):
                log.write(f"{intent.outcome} {n} {intent.client_order_id}\n")
            else:
                log.write(f"refused {n} {intent.outcome} {type(intent.error).__name__}\n")
            n += 1
            if rng.random() < 0.03:
                svc.sync()
