"""Graph's error answers (spec §6.1): `{"error": {"code", "message", "innerError"}}`."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.emulators.base import Response


class GraphError(Exception):
    """An answer other than success, shaped the way Graph shapes it."""

    def __init__(self, status: int, code: str, message: str, *, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, code, message)
        self.status, self.code, self.message, self.inner = status, code, message, inner
        self.headers = headers or {}

    def response(self) -> Response:
        inner: dict[str, Any] = {"request-id": str(uuid.uuid4()),
                                 "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
        if self.inner:
            inner["code"] = self.inner
        body = {"error": {"code": self.code, "message": self.message, "innerError": inner}}
        return Response.json(self.status, body, **self.headers)
