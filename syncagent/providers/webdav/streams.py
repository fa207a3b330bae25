"""The byte streams of WebDAV transfers.

`UploadBody` hands requests exactly `size` bytes of the caller's stream, a
chunk at a time, with a Content-Length (so the server never sees chunked
encoding and the file is never read whole). Downloads use the shared
resuming reader (syncagent/resuming.py) with `If-Range: <etag>`.
"""

from __future__ import annotations

from collections.abc import Iterator
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
