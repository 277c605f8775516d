"""Two notebooks (two processes) placing orders through AlpacaService into one ledger file,
which neither has created yet: they start at once, so both create it (see
tests/test_ledger.py::test_a_new_ledger_appears_whole_even_when_two_processes_create_it_at_once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from alpaca_nb.ledger import Ledger

PLACE = textwrap.dedent("""
    import sys
    from alpaca_nb import AlpacaCredentials, AlpacaOrderRequest, AlpacaService
    from alpaca_nb.ledger import Ledger

    url, key, secret, path, user, n = sys.argv[1:7]
    svc = AlpacaService(Ledger(path)).initialize_sync(
        AlpacaCredentials(key, secret, "local"), trading_url=url, data_url=url)
    for i in range(int(n)):
        svc.place_order_sync(user=user, order_request=AlpacaOrderRequest(
            symbol="AAPL", qty=1, side="buy", type="limit", limit_price=1, time_in_force="gtc"))
    print("done", user)
""")


def test_two_processes_placing_500_orders_each_lose_none(manual_broker, tmp_path):
    path = tmp_path / "shared.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPACA_API")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PLACE,
                manual_broker.url,
                manual_broker.key,
                manual_broker.secret,
                str(path),
                user,
                "500",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for user in ("first", "second")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        assert out.startswith("done")
    ledger = Ledger(path)
    counts = ledger.sql(
        'SELECT "user", count(*) AS n, count(DISTINCT alpaca_order_id) AS ids, '
        "count(*) FILTER (WHERE status = 'open') AS open FROM managed_orders "
        'GROUP BY ALL ORDER BY "user"'
    )
    assert counts.to_dict("records") == [
        {"user": "first", "n": 500, "ids": 500, "open": 500},
        {"user": "second", "n": 500, "ids": 500, "open": 500},
    ]
    assert ledger.health().ok  # nothing set aside, no file unreadable
    assert len(manual_broker.engine.list_orders(status="all", limit=500)) == 500  # (a page of them)
    assert manual_broker.requests[("POST", "/v2/orders")] == 1000
