"""A streaming multipart/form-data body with one file part.

requests would build a multipart body in memory; this one reads the source a
chunk at a time as the connection asks for bytes, so an upload never holds
the file in RAM. It knows its length up front, so the request carries a
Content-Length (no chunked encoding), and it hashes what it sends.
"""

from __future__ import annotations

import hashlib
import secrets
import urllib.parse
from collections.abc import Iterator
from typing import IO

CHUNK = 1 << 16


class ShortStream(Exception):
    """The source ended before `size` bytes: the caller's file shrank."""


def _disposition(field: str, filename: str) -> str:
    # filename= the HTML5 way (urllib3 and browsers escape '"', CR, LF);
    # filename*= (RFC 5987) carries the exact name for servers that read it.
    quoted = filename.translate({34: "%22", 13: "%0D", 10: "%0A"})
    exact = urllib.parse.quote(filename, safe="")
    return f'form-data; name="{field}"; filename="{quoted}"; filename*=UTF-8\'\'{exact}'


class MultipartBody:
    """File-like (read/tell/len) so requests streams it with a Content-Length."""

    def __init__(self, field: str, filename: str, source: IO[bytes], size: int,
                 content_type: str = "application/octet-stream") -> None:
        self.boundary = secrets.token_hex(16)
        self.head = (f"--{self.boundary}\r\nContent-Disposition: {_disposition(field, filename)}\r\n"
                     f"Content-Type: {content_type}\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.source, self.size = source, size
        self.sha256 = hashlib.sha256()
        self.max_read = 0
        self._pos = 0
        self._sent_source = 0
        self._length = len(self.head) + size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._pos

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        out = bytearray()
        while len(out) < n and self._pos < self._length:
            out += self._next(n - len(out))
        return bytes(out)

    def _next(self, n: int) -> bytes:
        head_end = len(self.head)
        body_end = head_end + self.size
        if self._pos < head_end:
            chunk = self.head[self._pos: self._pos + n]
        elif self._pos < body_end:
            chunk = self._from_source(min(n, body_end - self._pos, CHUNK))
        else:
            start = self._pos - body_end
            chunk = self.tail[start: start + n]
        self._pos += len(chunk)
        return chunk

    def _from_source(self, n: int) -> bytes:
        chunk = self.source.read(n)
        if not chunk:
            raise ShortStream(f"the file ended after {self._sent_source} of {self.size} bytes")
        self.max_read = max(self.max_read, len(chunk))
        self.sha256.update(chunk)
        self._sent_source += len(chunk)
        return chunk
