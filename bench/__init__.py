"""alpaca_nb's benchmarks: each module measures one path against alpaca-py on a local broker.

Run them all with ``python -m bench`` (or ``make bench``); one with ``python -m bench bars``.
Figures and the exact commands are recorded in ``bench/RESULTS.md``.
"""
