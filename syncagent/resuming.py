"""A streaming HTTP download that resumes where it broke: the one used by
every provider that downloads over `requests` (SmartFile, OneDrive, WebDAV).

The body is read from the socket as the caller asks; when the connection
breaks mid-file, or the body stalls (syncagent.http.StallCheck), the rest is
asked for again from the position reached: `open_at(start, attempts)` sends
the provider's request (`Range: bytes=<start>-` and whatever validator the
service has: If-Range, a fresh pre-authenticated URL for the same cTag).
Every resume spends from the same retry budget as the opening request
(syncagent.retry.Attempts), so a download gets `RetryPolicy.attempts` tries
in all, never a product of two loops. A resumed answer must be a 206 for a
file of the same total size, or the download fails with Conflict (it
changed under us); an opener that knows better raises it itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import requests
import urllib3.exceptions

from syncagent import errors
from syncagent.http import StallCheck
from syncagent.retry import Attempts

Opener = Callable[[int, Attempts], requests.Response]

_BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class ResumingReader(io.RawIOBase):
    """`size`: the file's size where the caller knows it (an empty file is
    then not even opened); else it is read from the first answer (-1: the
    server does not say, and a break cannot be resumed)."""

    def __init__(self, open_at: Opener, path: str, attempts: Attempts,
                 stall: Callable[[], StallCheck], size: int | None = None) -> None:
        self._open_at, self.path = open_at, path
        self._attempts, self._new_stall = attempts, stall
        self._response: requests.Response | None = None
        self.size, self.pos = (size if size is not None else -1), 0
        if size != 0:
            self._response = open_at(0, attempts)
            if size is None:
                self.size = self._total(self._response, 0)
        self._stall = stall()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.size >= 0:
            return 0
        while True:
            try:
                n = self._read_some(buffer)
            except (*_BROKEN, errors.TransientError) as exc:
                self._resume(exc)
                continue
            self.pos += n
            return n

    def _read_some(self, buffer: memoryview) -> int:
        if self._response is None:
            raise urllib3.exceptions.ProtocolError("no open response")
        # read1: what has arrived, at once (a break loses nothing already handed out)
        data = self._response.raw.read1(len(buffer), decode_content=True)
        if not data:
            if self.size < 0 or self.pos >= self.size:
                return 0
            raise urllib3.exceptions.ProtocolError("the body ended early")
        self._stall.progress(len(data))
        buffer[: len(data)] = data
        return len(data)

    def _resume(self, exc: BaseException) -> None:
        self._drop()
        err = exc if isinstance(exc, errors.TransientError) else errors.TransientError(
            f"download broke after {self.pos} bytes: {type(exc).__name__}", path=self.path)
        if err is not exc:
            err.__cause__ = exc
        self._attempts.failed(err, may_retry=self.size >= 0)
        response = self._open_at(self.pos, self._attempts)
        if self._total(response, self.pos) != self.size:
            response.close()
            raise errors.Conflict("the file changed during the download", path=self.path)
        self._response = response
        self._stall = self._new_stall()

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
