"""The byte streams of WebDAV transfers.

`UploadBody` hands requests exactly `size` bytes of the caller's stream, a
chunk at a time, with a Content-Length (so the server never sees chunked
encoding and the file is never read whole). `RangeReader` is a download
that resumes where it broke with `Range: bytes=<pos>-` and `If-Range:
<etag>`, so a resumed answer is the same version of the file or nothing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import IO

import requests
import urllib3.exceptions

from syncagent import errors

_BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class UploadBody:
    """`size` bytes of `stream`: requests sends it with a Content-Length and
    reads it `chunk` bytes at a time; `seek`/`tell` let a retry start over
    when the stream can seek."""

    def __init__(self, stream: IO[bytes], size: int, chunk: int) -> None:
        self.stream, self.size, self.chunk = stream, size, chunk
        self.sent = 0
        try:
            self.start: int | None = stream.tell() if stream.seekable() else None
        except (OSError, ValueError, AttributeError):
            self.start = None

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.sent
        if left <= 0:
            return b""
        want = left if n is None or n < 0 else min(n, left)
        data = self.stream.read(min(want, self.chunk))
        if not data:
            raise errors.PermanentError(f"the source ended after {self.sent} of {self.size} bytes")
        self.sent += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.chunk):
            yield chunk

    @property
    def rewindable(self) -> bool:
        return self.start is not None

    def tell(self) -> int:
        return self.sent

    def seek(self, pos: int) -> None:
        if self.start is None:
            raise OSError("the source stream cannot seek")
        self.stream.seek(self.start + pos)
        self.sent = pos


Opener = Callable[[int, str], requests.Response]   # (start, etag) -> an open streamed response


class RangeReader(io.RawIOBase):
    def __init__(self, open_at: Opener, path: str, attempts: int, backoff: Callable[[int], None]) -> None:
        self._open_at, self.path = open_at, path
        self._attempts, self._backoff = attempts, backoff
        self._response: requests.Response | None = open_at(0, "")
        self.etag = self._response.headers.get("ETag", "")
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
        if self._response is None:
            raise urllib3.exceptions.ProtocolError("no open response")
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
        response = self._open_at(self.pos, self.etag)
        if response.status_code != 206 or self._total(response, self.pos) != self.size:
            # If-Range did not match (a 200 with the whole new file), or the size moved
            response.close()
            raise errors.Conflict("the file changed during the download", path=self.path)
        self._response = response

    @staticmethod
    def _total(response: requests.Response, start: int) -> int:
        """The whole file's size from Content-Range/Content-Length (-1: unknown)."""
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if total.isdigit():
            return int(total)
        length = response.headers.get("Content-Length", "")
        return int(length) + start if length.isdigit() else -1

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        super().close()
