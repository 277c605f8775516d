"""The reliability suite's figures: what was tried and what held, for RELIABILITY.md.

Every test in tests/reliability/ may record counts through the session-wide
``reliability_figures`` fixture::

    def test_bad_orders(reliability_figures):
        ...
        reliability_figures.add("bad_inputs_tried", tried)          # add to a count
        reliability_figures.record("secrets_found", 0)               # set a value
        reliability_figures.merge("faults_by_kind", {"status:429": 3})  # add into a mapping

When ``RELIABILITY_REPORT`` names a file (``make reliability`` sets it), the figures are
written there as JSON when the session ends, with the tests' outcomes; ``figures.py`` renders
them into RELIABILITY.md. Without it the figures are only collected, so a test costs nothing
extra under ``make test``. (The variable is not called ``ALPACA_...``: the root conftest drops
every such variable.)
"""

from __future__ import annotations

import collections
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPORT_VARIABLE = "RELIABILITY_REPORT"


class Figures:
    """Counts shared by the whole session (thread-safe: harness threads may record too)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, name: str, amount: int | float = 1) -> None:
        """Add ``amount`` to the count ``name`` (created at 0)."""
        with self._lock:
            self.values[name] = self.values.get(name, 0) + amount

    def record(self, name: str, value: Any) -> None:
        """Set ``name`` to ``value`` (a number, string, list or mapping that JSON can hold)."""
        with self._lock:
            self.values[name] = value

    def merge(self, name: str, counts: Mapping[str, int | float]) -> None:
        """Add each of ``counts`` into the mapping ``name`` (e.g. faults by kind)."""
        with self._lock:
            target = self.values.setdefault(name, {})
            for key, amount in counts.items():
                target[key] = target.get(key, 0) + amount

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.values, default=str))


FIGURES = Figures()
_OUTCOMES: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="session")
def reliability_figures() -> Figures:
    """The session's :class:`Figures` (session-scoped, so hypothesis tests may use it too)."""
    return FIGURES


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or report.outcome != "passed":
        _OUTCOMES[report.outcome] += 1


def pytest_sessionfinish(session, exitstatus) -> None:
    target = os.environ.get(REPORT_VARIABLE)
    if not target:
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"figures": FIGURES.as_json(), "tests": dict(_OUTCOMES), "exit_status": int(exitstatus)}
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
