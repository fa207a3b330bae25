"""A streaming download that resumes where it broke.

The body is read from the socket as the caller asks; when the connection
breaks mid-file, the rest is asked for with `Range: bytes=<pos>-` (spec §4.6)
a bounded number of times. A resumed answer must describe a file of the same
total size, or the download fails with Conflict (it changed under us).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import requests
import urllib3.exceptions

from syncagent import errors

Opener = Callable[[int], requests.Response]

_BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class ResumingReader(io.RawIOBase):
    def __init__(self, open_at: Opener, path: str, attempts: int, backoff: Callable[[int], None]) -> None:
        self._open_at, self.path = open_at, path
        self._attempts, self._backoff = attempts, backoff
        self._response: requests.Response | None = open_at(0)
        self.size = self._total(self._response, 0)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.size >= 0:
            return 0
        failures = 0
        while True:
            try:
                n = self._read_some(buffer)
            except _BROKEN as exc:
                failures += 1
                self._resume(failures, exc)
                continue
            self.pos += n
            return n

    def _read_some(self, buffer: memoryview) -> int:
        assert self._response is not None
        data = self._response.raw.read(len(buffer), decode_content=True)
        if not data:
            if self.size < 0 or self.pos >= self.size:
                return 0
            raise urllib3.exceptions.ProtocolError("the body ended early")
        buffer[: len(data)] = data
        return len(data)

    def _resume(self, failures: int, exc: BaseException) -> None:
        self._drop()
        if failures >= self._attempts or self.size < 0:
            raise errors.TransientError(f"download broke after {self.pos} bytes: {type(exc).__name__}",
                                        path=self.path) from exc
        self._backoff(failures)
        response = self._open_at(self.pos)
        if self._total(response, self.pos) != self.size:
            response.close()
            raise errors.Conflict("the file changed during the download", path=self.path)
        self._response = response

    def _total(self, response: requests.Response, start: int) -> int:
        """The whole file's size from Content-Range/Content-Length (-1: unknown)."""
        if start and response.status_code != 206:
            response.close()
            raise errors.TransientError("the server cannot resume a download", path=self.path)
        content_range = response.headers.get("Content-Range", "")
        if content_range.rpartition("/")[2].isdigit():
            return int(content_range.rpartition("/")[2])
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else -1

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        super().close()
