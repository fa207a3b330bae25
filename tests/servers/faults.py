"""Fault injection on the client's side of a real server: the next N requests
of one provider fail as if the network or the server had (the server itself
is real and cannot be told to fail)."""

from __future__ import annotations

import io
import threading
from typing import Any

import requests
import requests.adapters

KINDS = ("500", "503", "429", "reset")


class FaultAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose next requests fail: an HTTP status answered
    without reaching the server, or a connection reset."""

    def __init__(self, pool: int = 8, retry_after: float = 0.01) -> None:
        super().__init__(pool_connections=pool, pool_maxsize=pool, max_retries=0)
        self.pending: list[str] = []
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.injected = 0

    def inject(self, kind: str, count: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
        with self.lock:
            self.pending.extend([kind] * count)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        with self.lock:
            kind = self.pending.pop(0) if self.pending else None
            self.injected += kind is not None
        if kind is None:
            return super().send(request, *args, **kwargs)
        if kind == "reset":
            raise requests.ConnectionError("injected: connection reset by peer", request=request)
        response = requests.Response()
        response.status_code = int(kind)
        response.reason = "injected"
        response.request = request
        response.url = request.url or ""
        response.raw = io.BytesIO(b"")
        if kind in ("429", "503"):
            response.headers["Retry-After"] = str(self.retry_after)
        return response


def install(session: requests.Session, pool: int = 8) -> FaultAdapter:
    """Mount a FaultAdapter on `session` for http and https; returns it."""
    adapter = FaultAdapter(pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter
