"""Multipart uploads that survive a restart.

The upload id, what it is for (size, mtime, part size) and the parts done
live in the pair's provider state (key `s3.mp:<key>`); the upload id is
committed as soon as it exists, so a killed run's next attempt at the same
file finds it. On resume the server's own ListParts is the truth: a part is
skipped only when its ETag is the MD5 of the bytes we would send now.
Uploads no one will finish are aborted by the provider's clean-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from syncagent import errors
from syncagent.log import get_logger
from syncagent.providers.base import ProviderState
from syncagent.providers.s3.client import Calls

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger()

STATE_PREFIX = "s3.mp:"
_commit_lock = threading.Lock()


@dataclass
class Upload:
    key: str
    upload_id: str
    size: int
    mtime_ns: int
    part_size: int
    started: float
    parts: dict[int, str]          # part number -> ETag (as the server gave it)

    def record(self) -> str:
        return json.dumps({"id": self.upload_id, "size": self.size, "mtime_ns": self.mtime_ns,
                           "part_size": self.part_size, "started": self.started,
                           "parts": {str(n): e for n, e in sorted(self.parts.items())}})

    @classmethod
    def load(cls, key: str, text: str | None) -> Upload | None:
        try:
            d = json.loads(text or "null")
            return cls(key, str(d["id"]), int(d["size"]), int(d["mtime_ns"]), int(d["part_size"]),
                       float(d.get("started", 0)), {int(n): str(e) for n, e in d.get("parts", {}).items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class MultipartWriter:
    """One file uploaded in parts: resumed where a previous run left it when it is the same source."""

    def __init__(self, client: S3Client, calls: Calls, bucket: str, state: ProviderState, part_size: int,
                 chunk: int = 1 << 20) -> None:
        self.client, self.calls, self.bucket, self.state = client, calls, bucket, state
        self.part_size, self.chunk = part_size, chunk

    def upload(self, key: str, stream: IO[bytes], size: int, mtime_ns: int, metadata: dict[str, str],
               conditions: dict[str, str], path: str) -> tuple[str, str]:
        """Upload and complete; returns (ETag, MD5 hex of the whole content)."""
        upload = self._resume_or_start(key, size, mtime_ns, metadata, path)
        done = self._server_parts(upload, path)
        whole = hashlib.md5(usedforsecurity=False)
        count = max(1, -(-size // upload.part_size))
        for number in range(1, count + 1):
            data = self._read_part(stream, min(upload.part_size, size - (number - 1) * upload.part_size), path)
            whole.update(data)
            digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if done.get(number, "").strip('"') == digest:
                upload.parts[number] = done[number]
                continue
            upload.parts[number] = self._put_part(upload, number, data, digest, path)
            self.state.put(STATE_PREFIX + key, upload.record())
        etag = self._complete(upload, conditions, path)
        self.state.put(STATE_PREFIX + key, None)
        return etag, whole.hexdigest()

    def _resume_or_start(self, key: str, size: int, mtime_ns: int, metadata: dict[str, str], path: str) -> Upload:
        old = Upload.load(key, self.state.get(STATE_PREFIX + key))
        if old is not None and (old.size, old.mtime_ns, old.part_size) == (size, mtime_ns, self.part_size):
            log.info("s3: resuming a multipart upload", path=path, parts_done=len(old.parts))
            return old
        if old is not None:
            self.abort(key, old.upload_id)
        made = self.calls(lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=metadata, ContentType="application/octet-stream"), path=path)
        upload = Upload(key, made["UploadId"], size, mtime_ns, self.part_size, time.time(), {})
        self.state.put(STATE_PREFIX + key, upload.record())
        with _commit_lock:   # the id must outlive a kill of this run: durable now, not with the next batch
            self.state.commit()
        return upload

    def _server_parts(self, upload: Upload, path: str) -> dict[int, str]:
        """The parts the server holds for this upload (none if it is gone)."""
        if not upload.parts:
            return {}
        parts: dict[int, str] = {}
        marker = 0
        while True:
            try:
                page = self.calls(lambda m=marker: self.client.list_parts(  # type: ignore[misc]
                    Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, PartNumberMarker=m), path=path)
            except errors.NotFound:
                return {}
            parts.update({int(p["PartNumber"]): str(p["ETag"]) for p in page.get("Parts", [])})
            if not page.get("IsTruncated"):
                return parts
            marker = int(page.get("NextPartNumberMarker", 0))

    def _read_part(self, stream: IO[bytes], length: int, path: str) -> bytes:
        buf = bytearray()
        while len(buf) < length:
            data = stream.read(min(self.chunk, length - len(buf)))
            if not data:
                raise errors.PermanentError(f"the source ended early ({len(buf)} of {length} bytes of a part)",
                                            path=path)
            buf += data
        return bytes(buf)

    def _put_part(self, upload: Upload, number: int, data: bytes, digest: str, path: str) -> str:
        import base64

        md5 = base64.b64encode(bytes.fromhex(digest)).decode()
        answer = self.calls(lambda: self.client.upload_part(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, PartNumber=number, Body=data,
            ContentMD5=md5, ContentLength=len(data)), path=path)
        return str(answer["ETag"])

    def _complete(self, upload: Upload, conditions: dict[str, str], path: str) -> str:
        parts: list[Any] = [{"PartNumber": n, "ETag": e} for n, e in sorted(upload.parts.items())]
        answer = self.calls(lambda: self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, MultipartUpload={"Parts": parts},
            **conditions), path=path)  # type: ignore[arg-type]
        return str(answer["ETag"]).strip('"')

    def abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(errors.NotFound):
            self.calls(lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id))
        self.state.put(STATE_PREFIX + key, None)


def abandoned(uploads: list[dict[str, Any]], state: ProviderState, now: float,
              ours_max_age: float = 7 * 86400, others_max_age: float = 86400) -> list[tuple[str, str]]:
    """The (key, upload id) pairs to abort: ours (recorded in state) untouched for a week,
    anyone else's started more than a day ago (another machine may be uploading right now)."""
    out: list[tuple[str, str]] = []
    for u in uploads:
        key, upload_id = str(u["Key"]), str(u["UploadId"])
        ours = Upload.load(key, state.get(STATE_PREFIX + key))
        initiated = u.get("Initiated")
        started = initiated.timestamp() if initiated is not None else now
        if ours is not None and ours.upload_id == upload_id:
            if now - ours.started > ours_max_age:
                out.append((key, upload_id))
        elif now - started > others_max_age:
            out.append((key, upload_id))
    return out

