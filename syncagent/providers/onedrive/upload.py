"""Uploads (spec §5.5, §5.6): a simple PUT up to 4 MiB, an upload session above.

An upload session's URL and what it is for (size, mtime, expectation) are
kept in provider state and committed at once, so an upload cut by a crash
resumes after a restart: the file is read again from the start, the bytes
the service already holds are hashed but not sent, and the session carries
on from `nextExpectedRanges`. An expired or vanished session is started
over. Fragments are a multiple of 320 KiB; a fragment whose answer was lost
is recognised by the session's status (416 overlap), not sent twice.

Every byte read is fed to a QuickXorHash; the service's hash of the result
must match it, or the upload is reported as failed (a resumed prefix that
was not what we read now, or damage on the way).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from syncagent import errors
from syncagent.providers.base import ANY, Expect, ProviderState
from syncagent.providers.onedrive.items import content_hash, format_time
from syncagent.providers.onedrive.quickxor import QuickXorHash
from syncagent.providers.onedrive.transport import Graph, RangeMismatch

CONFLICT = "@microsoft.graph.conflictBehavior"


def read_exact(stream: IO[bytes], n: int, chunk: int, hasher: QuickXorHash) -> bytes:
    """`n` bytes (fewer only at the end of the stream), read `chunk` at a time."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        data = stream.read(min(chunk, left))
        if not data:
            break
        hasher.update(data)
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


class ReadAhead:
    """Reads (and hashes) the next fragment while the current one is on the
    wire: reading and hashing hold the GIL, waiting for the service does
    not. At most two fragments are in memory."""

    def __init__(self, stream: IO[bytes], sizes: list[int], chunk: int, hasher: QuickXorHash) -> None:
        self.queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(stream, sizes, chunk, hasher), daemon=True,
                                       name="onedrive-read-ahead")

    def __enter__(self) -> ReadAhead:
        self.thread.start()
        return self

    def _run(self, stream: IO[bytes], sizes: list[int], chunk: int, hasher: QuickXorHash) -> None:
        for want in sizes:
            try:
                data: bytes | BaseException = read_exact(stream, want, chunk, hasher)
            except BaseException as exc:  # handed to the consumer, raised there
                data = exc
            while not self.stop.is_set():
                try:
                    self.queue.put(data, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if self.stop.is_set() or isinstance(data, BaseException) or len(data) < want:
                return

    def next(self) -> bytes:
        data = self.queue.get()
        if isinstance(data, BaseException):
            raise data
        return data

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        with contextlib.suppress(queue.Empty):
            self.queue.get_nowait()
        self.thread.join()


def expect_args(expect: Expect) -> tuple[str, dict[str, str]]:
    """(conflictBehavior, headers) for the engine's expectation."""
    if expect is None:
        return "fail", {}
    if expect is ANY or not isinstance(expect, str):
        return "replace", {}
    return "replace", {"If-Match": expect}


def conflict_of(err: errors.ProviderError, path: str) -> errors.ProviderError:
    """409 (the name appeared) and 412 (the eTag moved on) both mean: not what the engine expected."""
    if isinstance(err, errors.AlreadyExists | errors.Conflict):
        return errors.Conflict(f"the file changed on OneDrive since it was listed ({err})", path=path)
    return err


class Uploader:
    def __init__(self, graph: Graph, state: Callable[[], ProviderState],
                 clock: Callable[[], float] = time.time) -> None:
        self.graph, self._state, self.clock = graph, state, clock

    # ---- simple ----------------------------------------------------------------------------
    def simple(self, path: str, remote: str, stream: IO[bytes], size: int, expect: Expect) -> dict[str, Any]:
        hasher = QuickXorHash()
        data = read_exact(stream, size, self.graph.tuning.chunk, hasher)
        if len(data) != size:
            raise errors.Conflict("the file got shorter while it was read", path=path)
        behaviour, headers = expect_args(expect)
        try:
            item = self.graph.json("PUT", self.graph.action(remote, "content"), path=path, params={CONFLICT: behaviour},
                                   headers={**headers, "Content-Type": "application/octet-stream"}, data=data)
        except errors.ProviderError as err:
            raise conflict_of(err, path) from err
        self._verify(item, hasher, path)
        return item

    # ---- sessions ----------------------------------------------------------------------------
    def session(self, path: str, remote: str, stream: IO[bytes], size: int, mtime_ns: int,
                expect: Expect) -> dict[str, Any]:
        key = f"upload:{path}"
        wanted = {"size": size, "mtime_ns": mtime_ns, "expect": _expect_text(expect)}
        url, offset = self._resume(key, wanted)
        if url is None:
            url = self._create(path, remote, size, mtime_ns, expect)
            self._state().put(key, json.dumps({**wanted, "url": url, "created": self.clock()}))
            self._state().commit()   # durable now: a crash mid-upload can resume
            offset = 0
        hasher = QuickXorHash()
        skipped = read_exact(stream, offset, self.graph.tuning.chunk, hasher)
        if len(skipped) != offset:
            self._forget(key, url)
            raise errors.Conflict("the file got shorter while it was read", path=path)
        try:
            item = self._send(path, url, stream, size, offset, hasher)
        except (errors.Conflict, errors.AlreadyExists) as err:
            self._forget(key, url)
            raise conflict_of(err, path) from err
        except errors.NotFound:
            self._forget(key, None)
            raise errors.TransientError("the upload session expired; the upload starts over next time",
                                        path=path) from None
        self._state().put(key, None)
        self._verify(item, hasher, path)
        return item

    def _create(self, path: str, remote: str, size: int, mtime_ns: int, expect: Expect) -> str:
        behaviour, headers = expect_args(expect)
        spec: dict[str, Any] = {CONFLICT: behaviour}
        if mtime_ns:
            spec["fileSystemInfo"] = {"lastModifiedDateTime": format_time(mtime_ns)}
        try:
            answer = self.graph.json("POST", self.graph.action(remote, "createUploadSession"), path=path,
                                     json={"item": spec}, headers=headers)
        except errors.ProviderError as err:
            raise conflict_of(err, path) from err
        url = answer.get("uploadUrl")
        if not isinstance(url, str) or not url:
            raise errors.PermanentError("OneDrive gave no upload URL", path=path)
        return url

    def _resume(self, key: str, wanted: dict[str, Any]) -> tuple[str | None, int]:
        """A saved session for the same upload, and where it stands (None: start a new one)."""
        raw = self._state().get(key)
        saved = json.loads(raw) if raw else None
        if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in wanted.items()):
            if saved:
                self._forget(key, saved.get("url"))
            return None, 0
        url = str(saved["url"])
        try:
            status = self.graph.json("GET", url, auth=False)
        except errors.NotFound:
            self._state().put(key, None)
            return None, 0
        return url, _next_offset(status)

    def _send(self, path: str, url: str, stream: IO[bytes], size: int, offset: int,
              hasher: QuickXorHash) -> dict[str, Any]:
        step = self.graph.tuning.fragment
        sizes = [min(step, size - at) for at in range(offset, size, step)]
        with ReadAhead(stream, sizes, self.graph.tuning.chunk, hasher) as fragments:
            for want in sizes:
                data = fragments.next()
                if len(data) < want:
                    raise errors.Conflict("the file got shorter while it was read", path=path)
                answer = self._fragment(path, url, data, offset, size)
                if answer.get("id"):
                    return answer
                offset += len(data)
                expected = _next_offset(answer)
                if expected != offset:
                    raise errors.TransientError(f"the upload session expects byte {expected}, not {offset}",
                                                path=path)
        raise errors.TransientError("the upload session did not complete the file", path=path)

    def _fragment(self, path: str, url: str, data: bytes, offset: int, size: int) -> dict[str, Any]:
        """PUT one fragment; a 416 after a lost answer is settled by asking the session."""
        end = offset + len(data) - 1
        headers = {"Content-Range": f"bytes {offset}-{end}/{size}", "Content-Type": "application/octet-stream"}
        try:
            return self.graph.json("PUT", url, auth=False, path=path, headers=headers, data=data)
        except RangeMismatch:
            pass
        status = self.graph.json("GET", url, auth=False, path=path)
        if _next_offset(status) == end + 1:
            return status
        raise errors.TransientError("the upload session lost track of a fragment", path=path)

    def _forget(self, key: str, url: str | None) -> None:
        self._state().put(key, None)
        if url:
            with contextlib.suppress(errors.ProviderError):  # it expires on its own
                self.graph.call("DELETE", url, auth=False)

    def _verify(self, item: dict[str, Any], hasher: QuickXorHash, path: str) -> None:
        got = content_hash(item)
        if got is not None and got != hasher.hexdigest():
            raise errors.PermanentError("OneDrive holds different bytes than were read (hash mismatch)", path=path)

    def stale_sessions(self, max_age: float) -> int:
        """Drop saved sessions older than `max_age` seconds (the service expires them anyway)."""
        gone = 0
        for key, raw in list(self._state().items("upload:")):
            saved = json.loads(raw)
            if self.clock() - float(saved.get("created") or 0) > max_age:
                self._forget(key, saved.get("url"))
                gone += 1
        return gone


def _expect_text(expect: Expect) -> str:
    return "none" if expect is None else "any" if expect is ANY else f"rev:{expect}"


def _next_offset(status: dict[str, Any]) -> int:
    ranges = status.get("nextExpectedRanges")
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], str):
        start = ranges[0].split("-", 1)[0]
        if start.isdigit():
            return int(start)
    return 0
