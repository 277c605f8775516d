"""alpaca_nb.stream inside a real Jupyter kernel (ipykernel driven by nbclient).

The broker runs in this test process; the kernel is another process that reaches it over
loopback, as a notebook reaches the user's local broker. The broker counts the websockets it
accepts, so "re-running the cell opens no second connection" is checked where it matters.
"""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from test_sim_streams import start_broker, wait_for

from alpaca_nb.sim.api.streams import streams_of

SETUP = """\
import asyncio, time
import alpaca_nb.stream as st
from alpaca_nb.live import live_quotes
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import MarketOrderRequest
KEY, SECRET, URL = {key!r}, {secret!r}, {url!r}
updates = []
"""

SUBSCRIBE = """\
hub = st.stream_hub(key=KEY, secret=SECRET, url=URL)
def on_update(u):
    updates.append((u.event, u.order_id))
sub = hub.on_trade_update(on_update)
print("live:", sub.live.is_set(), "subscriptions:", len(hub.subscriptions("trade_updates")))
"""

PLACE = """\
order = TradingClient(KEY, SECRET, url_override=URL).submit_order(
    MarketOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="day"))
deadline = time.monotonic() + 10
while ("fill", str(order.id)) not in updates and time.monotonic() < deadline:
    await asyncio.sleep(0.02)          # the kernel's own event loop stays free
print("events:", [event for event, oid in updates if oid == str(order.id)])
"""

LIVE_FRAME = """\
quotes = live_quotes("*", hub=hub)
print("quoted:", quotes.wait(1, timeout=10), list(quotes.df.dtypes.astype(str))[:2])
quotes.stop()
"""


def text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.get("output_type") == "stream")


@pytest.mark.timeout(120)
def test_notebook_subscribes_sees_updates_and_reruns_without_a_second_connection(request):
    broker = start_broker(request)  # real time: the engine fills market orders at once
    server = streams_of(broker.sim)
    sources = [
        SETUP.format(key=broker.key, secret=broker.secret, url=broker.url),
        SUBSCRIBE,
        PLACE,
        LIVE_FRAME,
        "st.stop_all()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=False)
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        client.execute_cell(nb.cells[1], 1)
        assert text(nb.cells[1]) == "live: True subscriptions: 1\n"
        client.execute_cell(nb.cells[2], 2)
        assert text(nb.cells[2]) == "events: ['pending_new', 'new', 'fill']\n"

        client.execute_cell(nb.cells[1], 1)  # the user re-runs the subscribe cell
        assert text(nb.cells[1]) == "live: True subscriptions: 1\n"
        client.execute_cell(nb.cells[2], 2)  # each event once: no doubled callback
        assert text(nb.cells[2]) == "events: ['pending_new', 'new', 'fill']\n"
        assert server.opened["trading"] == 1 and server.open_connections() == {"trading": 1}

        client.execute_cell(nb.cells[3], 3)
        assert text(nb.cells[3]) == "quoted: True ['datetime64[ns, UTC]', 'float64']\n"
        assert server.opened["iex"] == 1
        client.execute_cell(nb.cells[4], 4)
        wait_for(lambda: server.open_connections() == {}, what="the kernel's streams closed")
