"""Request bodies as a Django-era server reads them: url-encoded forms,
multipart/form-data (streamed part by part into spooled files) and JSON."""

from __future__ import annotations

import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import IO

READ_CHUNK = 1 << 16
SPOOL = 1 << 20


class BadForm(ValueError):
    """The body does not parse as its content type says."""


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: tempfile.SpooledTemporaryFile[bytes]
    size: int = 0


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Part] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def close(self) -> None:
        for part in self.files:
            part.data.close()


def parse_form(headers: Message, body: IO[bytes]) -> Form:
    ctype = headers.get_content_type()
    if ctype == "multipart/form-data":
        boundary = headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise BadForm("multipart body without a boundary")
        return _multipart(body, boundary.encode("latin-1"))
    data = body.read()
    if ctype == "application/json":
        return _json_form(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadForm("form body is not UTF-8") from exc
    return Form(urllib.parse.parse_qs(text, keep_blank_values=True))


def _json_form(data: bytes) -> Form:
    try:
        obj = json.loads(data or b"{}")
    except ValueError as exc:
        raise BadForm("malformed JSON body") from exc
    if not isinstance(obj, dict):
        raise BadForm("the JSON body must be an object")
    fields = {k: [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in obj.items()}
    return Form(fields)


def _multipart(body: IO[bytes], boundary: bytes) -> Form:
    form = Form()
    try:
        for headers, sink, size in _parts(body, boundary):
            disposition = Message()
            disposition["Content-Disposition"] = headers.get("content-disposition", "")
            name = _param(disposition, "name") or ""
            filename = _filename(disposition)
            if filename is None:
                sink.seek(0)
                form.fields.setdefault(name, []).append(sink.read().decode("utf-8", "replace"))
                sink.close()
            else:
                sink.seek(0)
                form.files.append(Part(name, filename, headers.get("content-type", "application/octet-stream"),
                                       sink, size))
    except BaseException:
        form.close()
        raise
    return form


def _param(msg: Message, name: str) -> str | None:
    value = msg.get_param(name, header="content-disposition")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 form (name*=UTF-8''...)
        return urllib.parse.unquote(value[2], encoding=value[0] or "utf-8")
    return str(value)


def _filename(msg: Message) -> str | None:
    """filename*= (RFC 5987) wins; a plain filename= is read the HTML5 way
    (browsers and urllib3 escape '"', CR, LF as %22, %0D, %0A)."""
    raw = msg.get_param("filename*", header="content-disposition")
    if isinstance(raw, str) and "''" in raw:
        charset, _, encoded = raw.partition("''")
        return urllib.parse.unquote(encoded, encoding=charset or "utf-8")
    value = _param(msg, "filename")
    if value is None:
        return None
    for code, char in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
        value = value.replace(code, char)
    return value


Spooled = tempfile.SpooledTemporaryFile[bytes]


def _parts(body: IO[bytes], boundary: bytes) -> Iterator[tuple[dict[str, str], Spooled, int]]:
    """Stream the parts: (headers, spooled data, size), without holding a part in memory."""
    reader = _Reader(body)
    if not reader.skip_to(b"--" + boundary):
        raise BadForm("no opening boundary")
    marker = b"\r\n--" + boundary
    while True:
        tail = reader.read_exact(2)
        if tail == b"--":
            return
        if tail != b"\r\n":
            raise BadForm("malformed boundary line")
        headers = _headers(reader.read_until(b"\r\n\r\n", limit=16384))
        sink: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(SPOOL)  # noqa: SIM115 (the Form owns it)
        size = reader.copy_until(marker, sink)
        yield headers, sink, size


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if ":" in line:
            key, _, value = line.partition(":")
            out[key.strip().lower()] = value.strip()
    return out


class _Reader:
    """A small buffered scanner over the body stream."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(READ_CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        if len(self.buf) < n:
            raise BadForm("truncated multipart body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def skip_to(self, marker: bytes) -> bool:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                del self.buf[: i + len(marker)]
                return True
            del self.buf[: max(0, len(self.buf) - len(marker))]
            if not self._fill():
                return False

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while (i := self.buf.find(marker)) < 0:
            if len(self.buf) > limit or not self._fill():
                raise BadForm("malformed part headers")
        out = bytes(self.buf[:i])
        del self.buf[: i + len(marker)]
        return out

    def copy_until(self, marker: bytes, sink: IO[bytes]) -> int:
        size = 0
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                sink.write(self.buf[:i])
                del self.buf[: i + len(marker)]
                return size + i
            keep = len(marker) - 1
            if len(self.buf) > keep:
                n = len(self.buf) - keep
                sink.write(self.buf[:n])
                size += n
                del self.buf[:n]
            if not self._fill():
                raise BadForm("multipart body ends inside a part")
