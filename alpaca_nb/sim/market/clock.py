"""The local broker's clock: the wall clock, or a manual one that tests step.

The synthetic market and the matching engine read time only from here, so a test that uses a
manual clock gets the same prices and fills on every run.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Real time by default; ``manual=True`` freezes time at ``start`` until advanced.

    A real-time clock started at ``start`` runs from there at wall-clock speed (useful to replay
    a past session); without ``start`` it is the wall clock.
    """

    def __init__(self, start: datetime | None = None, *, manual: bool = False):
        self.manual = manual
        self._lock = threading.Lock()
        origin = start or datetime.now(UTC)
        if origin.tzinfo is None:
            origin = origin.replace(tzinfo=UTC)
        self._now = origin.astimezone(UTC)
        self._offset = (self._now - datetime.now(UTC)) if start else timedelta(0)

    def now(self) -> datetime:
        if self.manual:
            with self._lock:
                return self._now
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        """Move a manual clock forward by ``seconds``; returns the new time."""
        self._require_manual()
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, t: datetime) -> None:
        """Move a manual clock to ``t`` (never backwards: fills cannot be undone)."""
        self._require_manual()
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        with self._lock:
            if t < self._now:
                raise ValueError(f"cannot move the clock back from {self._now} to {t}")
            self._now = t.astimezone(UTC)

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of market time pass (advance a manual clock, else really sleep)."""
        if self.manual:
            self.advance(seconds)
        else:
            time.sleep(seconds)

    def _require_manual(self) -> None:
        if not self.manual:
            raise RuntimeError("this clock follows real time; start the broker with manual_clock=True to step it")
