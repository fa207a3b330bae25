"""A GetObject download that resumes where it broke: `Range: bytes=<pos>-`
with `If-Match: <etag>`, so the rest comes from the same version of the
object or the download fails with Conflict."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import urllib3.exceptions

from syncagent import errors
from syncagent.retry import backoff_delay

Opener = Callable[[int, str], Any]   # (start, etag) -> a GetObject answer

_BROKEN = (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError)


class ObjectReader(io.RawIOBase):
    def __init__(self, open_at: Opener, path: str, attempts: int,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._open_at, self.path, self._attempts, self._sleep = open_at, path, attempts, sleep
        self._answer: Any = open_at(0, "")
        self.etag = str(self._answer.get("ETag", "")).strip('"')
        self.size = int(self._answer.get("ContentLength", -1))
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.size >= 0:
            return 0
        failures = 0
        while True:
            try:
                data: bytes = self._answer["Body"].read(len(buffer))
                if not data and self.pos < self.size:
                    raise urllib3.exceptions.ProtocolError("the body ended early")
            except _BROKEN as exc:
                failures += 1
                self._resume(failures, exc)
                continue
            buffer[: len(data)] = data
            self.pos += len(data)
            return len(data)

    def _resume(self, failures: int, exc: BaseException) -> None:
        self._drop()
        if failures >= self._attempts:
            raise errors.TransientError(f"download broke after {self.pos} bytes: {type(exc).__name__}",
                                        path=self.path) from exc
        self._sleep(backoff_delay(failures - 1))
        self._answer = self._open_at(self.pos, self.etag)   # a changed object: 412 -> Conflict

    def _drop(self) -> None:
        if self._answer is not None:
            body = self._answer.get("Body")
            if body is not None:
                body.close()
            self._answer = None

    def close(self) -> None:
        self._drop()
        super().close()
