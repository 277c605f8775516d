"""Fault injection: make the local broker misbehave on purpose, for tests.

REST rules (``broker.faults.add(...)``), consulted by the server for every authenticated request::

    faults.add(path="/v2/orders", method="POST", status=504)          # refuse, unprocessed
    faults.add(path="/v2/orders", method="POST", drop_after=True)     # process, then hang up
    faults.add(path="/v2/orders", method="POST", cut_body=True)       # process, answer half a body
    faults.add(path="/v2/orders", method="POST", cut_body="chunked")  # the same, chunked encoding
    faults.add(path="/v2/orders", method="POST", status_after=503)    # process, then answer 503
    faults.add(path="/v2/orders:by_client_order_id", status=429)      # refuse the lookup
    faults.add(path="/v2/account", delay=3)                           # answer late

A rule matches on ``method`` (any when None) and ``path`` (exact, or a prefix ending in ``*``;
the path is the URL's path without the query, so the lookup by ``client_order_id`` is
``/v2/orders:by_client_order_id``). It fires ``times`` times (default once); the first rule
that matches and has firings left is used up. What a firing does:

``status``
    Answer ``status`` *before* the request is processed: nothing changes at the broker. The
    body is Alpaca's ``{"code": status * 100000, "message": message}``; a 429 also carries
    ``X-RateLimit-Limit``/``-Remaining: 0``/``-Reset`` (now + ``reset_in`` seconds, default 60,
    beyond any client's bounded wait), and ``headers`` adds any others.
``status_after``
    Let the request take effect, then answer ``status_after`` (500, 502, 503, 504...) with the
    same body: the "5xx after processing" case, whose outcome the client cannot know.
``drop_after``
    Let the request take effect, then close the connection without any answer.
``cut_body``
    Let the request take effect, send the real answer's status and headers promising the
    whole body (``True`` or ``"length"``: a ``Content-Length``; ``"chunked"``: chunked
    transfer encoding), send only the first half of the body, then close the connection. The
    client sees an incomplete read (requests: ``ChunkedEncodingError``). An answer without a
    body (a cancel's 204) is dropped whole, as with ``drop_after``. ``"garbled"`` sends a
    complete answer whose body is only the first half of the real one (its ``Content-Length``
    says so): the transfer ends cleanly, and the JSON cannot be read.
``delay`` / ``delay_after``
    Sleep before processing / after processing but before answering (combine with any of the
    above). A faulted request is carried through even when its client hangs up meanwhile, so
    ``delay`` beyond the client's timeout is the request that "lands late" (after the caller
    gave up), and ``delay_after`` beyond it the "timeout after processing" case.

Websocket rules for the ``trade_updates`` stream (``broker.faults.add_stream(kind, ...)``),
applied on the broker's side to the events it sends to every listening trading connection::

    faults.add_stream("drop", event="partial_fill")  # send the next partial fill, then hang up
    faults.add_stream("drop_before", event="fill")   # hang up instead of sending the next fill
    faults.add_stream("duplicate", times=5)          # send each of the next 5 events twice
    faults.add_stream("reorder", hold=3)             # send the next 3 events in reverse order

``event`` (a name or a tuple of names such as ``"fill"``, ``"partial_fill"``, ``"new"``,
``"canceled"``; None = any) selects the events a rule fires on, ``times`` how many firings it
has. ``drop`` hangs up every trading connection (no close frame, as a network failure) once
the events queued before it and the event itself are written; ``drop_before`` hangs up the
same way without writing the event, so it is lost for the connections open at the time.
Either way the stream accepts reconnections at once, and events emitted while a client is
away are never replayed (as on Alpaca): a follower must catch up by a REST sync.
``reorder`` holds the matching event and the next ``hold - 1`` events (any kind) and sends the
group reversed; a group that is not complete ``flush_after`` seconds (default 0.5) after its
first event is sent reversed as it is.

A broker in its own process (``alpaca-nb sim serve``) takes the same rules over HTTP, with
the API keys as for any route: ``POST /_sim/faults`` with ``{"rest": [{...keywords of
add...}], "stream": [{"kind": "drop", ...}]}`` (a bad rule is a 422 and adds nothing),
``GET /_sim/faults`` for ``{"fired": {...}, "rules": n, "stream_rules": n}``, ``DELETE
/_sim/faults`` to clear.

``faults.fired`` counts firings by kind (``"status:429"``, ``"status_after:503"``,
``"drop_after"``, ``"cut_body:length"``, ``"delay"``, ``"stream:drop"``...), for reports;
``faults.clear()`` removes every rule (REST and stream), ``len(faults)`` counts rules with
firings left.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

STREAM_KINDS = ("drop", "drop_before", "duplicate", "reorder")


@dataclass
class Fault:
    """One REST rule; see the module docstring for what each field does."""

    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int | None = None
    status_after: int | None = None
    delay: float = 0.0
    delay_after: float = 0.0
    drop_after: bool = False
    cut_body: bool | str = False
    reset_in: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected fault"

    def __post_init__(self) -> None:
        if self.cut_body not in (False, True, "length", "chunked", "garbled"):
            raise ValueError(f"cut_body must be True, 'length', 'chunked' or 'garbled', not {self.cut_body!r}")
        after = [self.status_after is not None, self.drop_after, bool(self.cut_body)]
        if sum(after) > 1:
            raise ValueError("give at most one of status_after, drop_after and cut_body")
        if self.status is not None and any(after):
            raise ValueError(
                "status answers before processing: it cannot be combined with status_after, drop_after or cut_body"
            )

    @property
    def cut_mode(self) -> str | None:
        """``"length"``, ``"chunked"`` or ``"garbled"`` when the body is to be cut, else None."""
        if not self.cut_body:
            return None
        return self.cut_body if self.cut_body in ("chunked", "garbled") else "length"

    @property
    def kind(self) -> str:
        """A short name for reports: ``status:429``, ``status_after:503``, ``cut_body:length``..."""
        if self.status is not None:
            return f"status:{self.status}"
        if self.status_after is not None:
            return f"status_after:{self.status_after}"
        if self.drop_after:
            return "drop_after"
        if self.cut_body:
            return f"cut_body:{self.cut_mode}"
        if self.delay_after:
            return "delay_after"
        return "delay"

    def rate_limit_headers(self, now: float) -> dict[str, str]:
        """The headers a 429 answer carries, as Alpaca sends them."""
        return {
            "X-RateLimit-Limit": "200",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(now + self.reset_in)),
        }

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or self.path == path or (self.path.endswith("*") and path.startswith(self.path[:-1]))
        )


@dataclass
class StreamFault:
    """One trade_updates rule; see the module docstring."""

    kind: str
    times: int = 1
    event: str | tuple[str, ...] | None = None
    hold: int = 3
    flush_after: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in STREAM_KINDS:
            raise ValueError(f"stream fault kind must be one of {', '.join(STREAM_KINDS)}, not {self.kind!r}")
        if self.hold < 2:
            raise ValueError("hold must be at least 2 (a group of one cannot be reordered)")

    def matches(self, event: str | None) -> bool:
        if self.event is None:
            return True
        names = (self.event,) if isinstance(self.event, str) else tuple(self.event)
        return event in names


class Faults:
    """The rules in force, consulted by the server (thread-safe)."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._stream_rules: list[StreamFault] = []
        self._lock = threading.Lock()
        self.fired: collections.Counter[str] = collections.Counter()

    def add(self, **kwargs) -> Fault:
        """Add a REST rule (keywords of :class:`Fault`)."""
        fault = Fault(**kwargs)
        with self._lock:
            self._rules.append(fault)
        return fault

    def add_stream(self, kind: str, **kwargs) -> StreamFault:
        """Add a trade_updates rule: ``kind`` is drop, drop_before, duplicate or reorder."""
        fault = StreamFault(kind, **kwargs)
        with self._lock:
            self._stream_rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._stream_rules.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching REST rule, used up by one firing."""
        with self._lock:
            for fault in self._rules:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    self.fired[fault.kind] += 1
                    return fault
        return None

    def take_stream(self, event: str | None) -> StreamFault | None:
        """The first matching trade_updates rule, used up by one firing."""
        with self._lock:
            for fault in self._stream_rules:
                if fault.times > 0 and fault.matches(event):
                    fault.times -= 1
                    self.fired[f"stream:{fault.kind}"] += 1
                    return fault
        return None

    def pending_stream(self) -> int:
        """Stream rules with firings left."""
        with self._lock:
            return sum(1 for f in self._stream_rules if f.times > 0)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for f in self._rules if f.times > 0)
