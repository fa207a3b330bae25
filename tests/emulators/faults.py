"""Fault injection shared by every emulator: "fail the next N requests matching X".

Transport faults are carried out by the server core (tests/emulators/base.py):

    500 / 502       an error status (the emulator shapes the body)
    429 / 503       throttling in the emulator's own style (retry_after seconds)
    reset           the connection is cut (RST) before the request is handled:
                    nothing happened on the server
    reset-mid       the request is handled, then the response is cut half-way
                    (a download broken mid-transfer)
    slow            the answer is delayed by `delay` seconds
    hang            the request is read, then never answered: the connection
                    stays open and silent for `delay` seconds (or until the
                    server stops), then closes
    trickle         the whole answer (status line, headers, body) goes out one
                    byte every `delay` seconds: never silent for long, never done

An emulator may define its own kinds (SmartFile: task-failure, task-error) and
take them with `take(..., kinds=...)`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

TRANSPORT_KINDS = frozenset({"500", "502", "429", "503", "reset", "reset-mid", "slow", "hang", "trickle"})


@dataclass
class Fault:
    kind: str
    count: int = 1                 # how many matching requests fail
    method: str | None = None      # only this HTTP method (None: any)
    path: str | None = None        # regex searched in the decoded request path
    after: int = 0                 # let this many matching requests through first
    delay: float = 0.5             # for "slow", "hang" and "trickle" (seconds)
    retry_after: float = 1.0       # for throttling kinds
    hits: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path) is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """A thread-safe list of pending faults; the first match is consumed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(self, kind: str, count: int = 1, **match: Any) -> Fault:
        fault = Fault(kind, count, **match)
        with self._lock:
            self._rules.append(fault)
        return fault

    def take(self, method: str, path: str, kinds: frozenset[str] = TRANSPORT_KINDS) -> Fault | None:
        """The fault that applies to this request, if any (and count it)."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not rule.matches(method, path):
                    continue
                rule.hits += 1
                if rule.hits <= rule.after:
                    continue
                rule.count -= 1
                if rule.count <= 0:
                    self._rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_dict() for r in self._rules]
