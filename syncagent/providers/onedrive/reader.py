"""A download that streams and resumes where it broke (spec §5.7).

The item's metadata gives its pre-authenticated `@microsoft.graph.downloadUrl`
(fetched without the bearer token), its size and its cTag. When the body
breaks or stalls, the rest is asked for with `Range: bytes=<pos>-`; if the
URL has expired, the item is asked for again and must still have the same
cTag (the same content), else the download fails with Conflict. Every
resume spends from the one retry budget of the download.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import requests
import urllib3.exceptions

from syncagent import errors
from syncagent.http import StallCheck
from syncagent.providers.onedrive.transport import Graph
from syncagent.retry import Attempts

_BROKEN = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
_STALE_URL = (errors.AuthError, errors.NotFound, errors.PermanentError)


class DownloadReader(io.RawIOBase):
    def __init__(self, graph: Graph, meta: Callable[[], dict[str, Any]], path: str) -> None:
        self.graph, self._meta, self.path = graph, meta, path
        self._attempts: Attempts = graph.attempts(f"download {path[-60:]}")
        item = meta()
        if "file" not in item:
            raise errors.NotFound("not a file", path=path)
        self.size = int(item.get("size") or 0)
        self.ctag = item.get("cTag")
        self.url = self._url_of(item)
        self.pos = 0
        self._response: requests.Response | None = None
        self._stall = self._new_stall()
        if self.size:
            self._response = self._open(0)

    def _url_of(self, item: dict[str, Any]) -> str:
        url = item.get("@microsoft.graph.downloadUrl")
        if not isinstance(url, str) or not url:
            raise errors.PermanentError("OneDrive gave no download URL", path=self.path)
        return url

    def _new_stall(self) -> StallCheck:
        return StallCheck(self.graph.tuning.timeouts, self.url, path=self.path)

    def _open(self, start: int) -> requests.Response:
        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            response = self.graph.call("GET", self.url, auth=False, stream=True, path=self.path, headers=headers,
                                       attempts=self._attempts)
        except _STALE_URL:
            item = self._meta()           # the URL expired: a fresh one, for the same content only
            if item.get("cTag") != self.ctag or int(item.get("size") or 0) != self.size:
                raise errors.Conflict("the file changed during the download", path=self.path) from None
            self.url = self._url_of(item)
            response = self.graph.call("GET", self.url, auth=False, stream=True, path=self.path, headers=headers,
                                       attempts=self._attempts)
        if start and response.status_code != 206:
            response.close()
            raise errors.TransientError("OneDrive did not resume the download", path=self.path)
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        if start and total.isdigit() and int(total) != self.size:
            response.close()
            raise errors.Conflict("the file changed during the download", path=self.path)
        return response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self.pos < self.size:
            try:
                n = self._read_some(buffer)
            except (*_BROKEN, errors.TransientError) as exc:
                self._resume(exc)
                continue
            self.pos += n
            return n
        return 0

    def _read_some(self, buffer: memoryview) -> int:
        if self._response is None:
            raise urllib3.exceptions.ProtocolError("no open response")
        # read1: what has arrived (a break loses nothing already received)
        data = self._response.raw.read1(len(buffer), decode_content=True)
        if not data:
            raise urllib3.exceptions.ProtocolError("the body ended early")
        self._stall.progress(len(data))
        buffer[: len(data)] = data
        return len(data)

    def _resume(self, exc: BaseException) -> None:
        self._drop()
        err = exc if isinstance(exc, errors.TransientError) else errors.TransientError(
            f"download broke after {self.pos} bytes: {type(exc).__name__}", path=self.path)
        self._attempts.failed(err)
        self._response = self._open(self.pos)
        self._stall = self._new_stall()

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._drop()
        super().close()
