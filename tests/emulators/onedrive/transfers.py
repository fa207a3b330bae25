"""The pre-authenticated URLs the emulator hands out (spec §5.6, §5.7, §5.10):
upload sessions (`/_upload/{id}`), download URLs (`/_download/{token}`) and
copy monitors (`/_monitor/{id}`). None of them takes a bearer token; with
`strict_upload_auth` a fragment that carries one is refused with 401, as the
docs warn it may be.

Upload-session policies (the docs leave them open, spec §0.1-2, §9.10):
fragments must arrive in order (a start below the next expected byte is a
416 fragmentOverlap, above it a 416 fragmentOutOfOrder); with
`strict_fragments` a non-final fragment whose length is not a multiple of
320 KiB is a 400; every fragment must be under 60 MiB (413). If-Match and
conflictBehavior are checked when the session is created and again when the
last byte commits the file.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from syncagent.providers.onedrive.quickxor import QuickXorHash
from tests.emulators.base import Request, Response
from tests.emulators.onedrive.drive import Drive, Item
from tests.emulators.onedrive.errors import GraphError
from tests.emulators.onedrive.views import ctag, download_claims, etag, stamp

FRAGMENT_UNIT = 327_680
MAX_FRAGMENT = 60 * 1024 * 1024
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
COPY = 1 << 16


class Hashes:
    """The digests Graph reports in `file.hashes`, computed as bytes arrive."""

    def __init__(self, sha1: bool = True) -> None:
        self.qx = QuickXorHash()
        self.sha1 = hashlib.sha1() if sha1 else None

    def update(self, data: bytes) -> None:
        self.qx.update(data)
        if self.sha1 is not None:
            self.sha1.update(data)

    def result(self) -> dict[str, str]:
        out = {"quickXorHash": self.qx.b64digest()}
        if self.sha1 is not None:
            out["sha1Hash"] = self.sha1.hexdigest().upper()
        return out


def spool_body(body: IO[bytes], blob: Path, hashes: Hashes) -> int:
    size = 0
    with open(blob, "wb") as out:
        while chunk := body.read(COPY):
            out.write(chunk)
            hashes.update(chunk)
            size += len(chunk)
    return size


def tag_matches(item: Item, value: str | None) -> bool:
    """If-Match: the current eTag or cTag (quotes and `*` allowed)."""
    if value is None:
        return True
    value = value.strip()
    return value == "*" or value.strip('"') in (etag(item), ctag(item))


@dataclass
class UploadSession:
    id: str
    drive: Drive
    parent: str                      # folder id the file goes into
    name: str
    target: str | None               # an item replaced by id
    behaviour: str
    if_match: str | None
    file_size: int | None
    fs_info: dict[str, float]
    blob: Path
    expires: float
    hashes: Hashes
    total: int | None = None
    received: int = 0
    committed: dict[str, Any] | None = None


@dataclass
class CopyJob:
    drive: Drive
    source: str
    parent: str
    name: str
    due: float
    polls_needed: int
    polls: int = 0
    status: str = "inProgress"
    resource: str | None = None
    error: str | None = None


@dataclass
class Transfers:
    """Sessions and copy jobs of every drive; `commit` and `render` come from the app."""

    clock: Callable[[], float]
    lock: threading.RLock
    commit: Callable[[UploadSession], tuple[Item, bool]]
    render: Callable[[Drive, Item], dict[str, Any]]
    drives: Callable[[], dict[str, Drive]]
    session_lifetime: float = 3600.0
    strict_fragments: bool = True
    strict_upload_auth: bool = True
    copy_delay: float = 0.0
    copy_polls: int = 1
    copy_done_status: int = 303
    sessions: dict[str, UploadSession] = field(default_factory=dict)
    jobs: dict[str, CopyJob] = field(default_factory=dict)

    # ---- upload sessions -------------------------------------------------------------
    def session(self, sid: str) -> UploadSession:
        found = self.sessions.get(sid)
        if found is None or self.clock() >= found.expires:
            if found is not None:
                self._drop(found)
            raise GraphError(404, "itemNotFound", "The upload session was not found.", inner="uploadSessionNotFound")
        return found

    def _drop(self, session: UploadSession) -> None:
        self.sessions.pop(session.id, None)
        session.blob.unlink(missing_ok=True)

    def status_body(self, session: UploadSession) -> dict[str, Any]:
        ranges = [] if session.total is not None and session.received >= session.total else [f"{session.received}-"]
        return {"expirationDateTime": stamp(session.expires), "nextExpectedRanges": ranges}

    def upload(self, req: Request, sid: str) -> Response:
        if self.strict_upload_auth and req.headers.get("Authorization"):
            raise GraphError(401, "unauthenticated", "Do not send an Authorization header to an upload URL.")
        with self.lock:
            session = self.session(sid)
            if req.method == "GET":
                return Response.json(200, self.status_body(session))
            if req.method == "DELETE":
                self._drop(session)
                return Response(204)
            if req.method != "PUT":
                raise GraphError(405, "invalidRequest", "Method not allowed on an upload URL.")
            _, end, total = self._check_fragment(req, session)
            with open(session.blob, "ab") as out:
                while chunk := req.body.read(COPY):
                    out.write(chunk)
                    session.hashes.update(chunk)
            session.received, session.total = end + 1, total
            session.expires = self.clock() + self.session_lifetime
            if session.received < total:
                return Response.json(202, self.status_body(session))
            item, created = self.commit(session)
            self._drop(session)
            return Response.json(201 if created else 200, self.render(session.drive, item))

    def _check_fragment(self, req: Request, session: UploadSession) -> tuple[int, int, int]:
        m = CONTENT_RANGE.match(req.headers.get("Content-Range") or "")
        if m is None:
            raise GraphError(400, "invalidRequest", "Content-Range is missing or malformed.", inner="invalidRange")
        start, end, total = (int(g) for g in m.groups())
        length = end - start + 1
        if end < start or end >= total or req.body_size != length:
            raise GraphError(400, "invalidRequest", "Content-Range does not match the body.", inner="invalidRange")
        if (session.total is not None and total != session.total) or \
                (session.file_size is not None and total != session.file_size):
            raise GraphError(400, "invalidRequest", "The declared total size changed.", inner="fragmentLengthMismatch")
        if start < session.received:
            raise GraphError(416, "invalidRange", "Uploaded fragment overlaps with existing data.",
                             inner="fragmentOverlap")
        if start > session.received:
            raise GraphError(416, "invalidRange", "The fragment is out of order.", inner="fragmentOutOfOrder")
        if length > MAX_FRAGMENT:
            raise GraphError(413, "invalidRequest", "The fragment is too large.", inner="maxFragmentLengthExceeded")
        if self.strict_fragments and end + 1 < total and length % FRAGMENT_UNIT:
            raise GraphError(400, "invalidRange", "A fragment must be a multiple of 320 KiB.", inner="invalidRange")
        return start, end, total

    # ---- downloads -------------------------------------------------------------------
    def download(self, req: Request, token: str) -> Response:
        claims = download_claims(token)
        with self.lock:
            drive = self.drives().get(claims[0]) if claims else None
            item = drive.items.get(claims[1]) if drive is not None and claims else None
            if claims is None or drive is None or item is None or item.deleted or item.folder:
                raise GraphError(404, "itemNotFound", "Item does not exist")
            if self.clock() >= claims[3]:
                raise GraphError(401, "unauthenticated", "The download URL has expired.")
            if item.ctag != claims[2]:
                # policy: a download URL serves the content it was issued for, or nothing
                raise GraphError(404, "itemNotFound", "The content of this download URL has changed.")
            blob, size = item.blob, item.size
            # opened under the lock: no swap races; closed by on_close. An item made by
            # `populate` has no blob: it is empty.
            stream: IO[bytes] = open(blob, "rb") if blob is not None else io.BytesIO()  # noqa: SIM115
        start, end = 0, size - 1
        status, headers = 200, {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        wanted = req.headers.get("Range")
        if wanted and size:
            parsed = _parse_range(wanted, size)
            if parsed is None:
                stream.close()
                return Response(416, b"", {"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        stream.seek(start)
        return Response(status, stream, headers, length=max(0, end - start + 1), on_close=stream.close)

    # ---- copy monitors ---------------------------------------------------------------
    def start_copy(self, jid: str, job: CopyJob) -> None:
        self.jobs[jid] = job
        self.tick()

    def tick(self) -> None:
        """Finish the copies that are due (the service copies in the background)."""
        now = self.clock()
        for job in self.jobs.values():
            if job.status == "inProgress" and now >= job.due and job.polls >= job.polls_needed:
                self._finish(job)

    def _finish(self, job: CopyJob) -> None:
        try:
            source = job.drive.get(job.source)
            parent = job.drive.get(job.parent)
            job.resource = job.drive.copy_tree(source, parent, job.name).id
            job.status = "completed"
        except GraphError as exc:
            job.status, job.error = "failed", exc.code

    def monitor(self, jid: str) -> Response:
        with self.lock:
            job = self.jobs.get(jid)
            if job is None:
                raise GraphError(404, "itemNotFound", "The operation was not found.")
            job.polls += 1
            self.tick()
            if job.status == "inProgress":
                return Response.json(202, {"operation": "ItemCopy", "percentageComplete": 50.0, "status": "inProgress"})
            if job.status == "failed":
                return Response.json(200, {"operation": "ItemCopy", "status": "failed",
                                           "error": {"code": job.error, "message": "The copy failed."}})
            return Response.json(self.copy_done_status, {"percentageComplete": 100.0, "resourceId": job.resource,
                                                         "status": "completed"})


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    m = re.match(r"^bytes=(\d*)-(\d*)$", value.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n else None
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)
