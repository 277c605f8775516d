"""ipywidgets to place and watch orders from a notebook, on an :class:`~alpaca_nb.service.AlpacaService`.

    from alpaca_nb.widgets import OrderTicket, Blotter, PositionsView, QuoteBoard

    OrderTicket(svc, symbol="AAPL")        # fill in, Preview, Place (LIVE asks for a real-money box)
    Blotter(svc, user="ana")               # the ledger's orders, newest first, live; cancel selected
    PositionsView(svc)                     # positions with unrealized P&L; close selected
    PnLView(svc, by="user")                # FIFO P&L at today's mid prices, refreshed on fills
    OrderView(svc, order)                  # one order: fields, history with sources, fills; cancel
    board = QuoteBoard(svc, ["SPY", "AAPL"])   # bid/ask/spread as quotes stream in
    board.close()                          # every widget's close() ends its subscriptions

Each widget takes the service first (default: :func:`alpaca_nb.default_service`), shows a
banner with the environment (LOCAL, PAPER, or LIVE in red) and the account, and reports every
error of its buttons in its ``status`` line (and on the ``alpaca_nb`` logger): nothing is
raised into the notebook, nothing is printed. Their reprs are short and stable, e.g.
``OrderTicket(environment='local')``. Drive them from code through their controls and
methods: ``ticket.symbol.value = "AAPL"; ticket.place()``, ``blotter.refresh()``, ``.frame``.
"""

from __future__ import annotations

from .blotter import Blotter
from .order import OrderView
from .pnl import PnLView
from .positions import PositionsView
from .quotes import QuoteBoard
from .ticket import OrderTicket

__all__ = ["OrderTicket", "Blotter", "OrderView", "PositionsView", "PnLView", "QuoteBoard"]
