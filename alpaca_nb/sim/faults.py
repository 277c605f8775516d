"""Fault injection: make the local broker misbehave on purpose, for tests.

    broker.faults.add(path="/v2/orders", method="POST", status=504)          # refuse, unprocessed
    broker.faults.add(path="/v2/orders", method="POST", drop_after=True)     # process, then hang up
    broker.faults.add(path="/v2/account", delay=3)                           # answer late

Each rule fires ``times`` times (default once) on requests whose method and path match.
``status`` answers before the request is processed (nothing changes at the broker);
``drop_after`` lets the request take effect and then closes the connection without an
answer, the ambiguous case a client must resolve without resubmitting; ``delay`` sleeps before
processing, and ``delay_after`` after processing but before answering.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Fault:
    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int | None = None
    delay: float = 0.0
    delay_after: float = 0.0
    drop_after: bool = False
    message: str = "injected fault"

    def matches(self, method: str, path: str) -> bool:
        return ((self.method is None or self.method.upper() == method)
                and (self.path is None or self.path == path or
                     (self.path.endswith("*") and path.startswith(self.path[:-1]))))


class Faults:
    """The rules in force, consulted by the server for every REST request (thread-safe)."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, **kwargs) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching rule, used up by one firing."""
        with self._lock:
            for fault in self._rules:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for f in self._rules if f.times > 0)
