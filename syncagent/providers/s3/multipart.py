"""Multipart uploads that survive a restart.

The upload id, what it is for (size, mtime, part size) and the parts done
live in the pair's provider state (key `s3.mp:<key>`); the upload id is
committed as soon as it exists, so a killed run's next attempt at the same
file finds it. On resume the server's own ListParts is the truth: a part is
skipped only when its ETag is the MD5 of the bytes we would send now.
Uploads no one will finish are aborted by the provider's clean-up.

Parts go up in parallel, `concurrency` at a time: the caller's thread reads
the source in order (the whole-file MD5 needs the bytes in order) and hands
each part to a small pool, waiting while `concurrency` parts are in flight.
Memory is bounded by (concurrency + 1) parts, whatever the file's size. A
part is recorded in provider state as soon as the server has it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

from syncagent import errors
from syncagent.log import get_logger
from syncagent.providers.base import ProviderState
from syncagent.providers.s3.client import Calls

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
                 chunk: int = 1 << 20, concurrency: int = 4) -> None:
        self.client, self.calls, self.bucket, self.state = client, calls, bucket, state
        self.part_size, self.chunk, self.concurrency = part_size, chunk, max(1, concurrency)
        self._lock = threading.Lock()

    def upload(self, key: str, stream: IO[bytes], size: int, mtime_ns: int, metadata: dict[str, str],
               conditions: dict[str, str], path: str) -> tuple[str, str]:
        """Upload and complete; returns (ETag, MD5 hex of the whole content)."""
        upload, resumed = self._resume_or_start(key, size, mtime_ns, metadata, path)
        done = self._server_parts(upload, path) if resumed else {}
        whole = hashlib.md5(usedforsecurity=False)
        count = max(1, -(-size // upload.part_size))
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="s3-part") as pool:
            in_flight: set[Future[None]] = set()
            try:
                for number in range(1, count + 1):
                    data = self._read_part(stream, min(upload.part_size, size - (number - 1) * upload.part_size),
                                           path)
                    whole.update(data)
                    in_flight = self._wait(in_flight, self.concurrency - 1)
                    in_flight.add(pool.submit(self._send_part, upload, number, data, done.get(number), path))
                    del data
                self._wait(in_flight, 0)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        etag = self._complete(upload, conditions, path)
        self.state.put(STATE_PREFIX + key, None)
        return etag, whole.hexdigest()

    @staticmethod
    def _wait(in_flight: set[Future[None]], at_most: int) -> set[Future[None]]:
        """Wait until at most `at_most` parts are in flight; a failed part raises its error."""
        while len(in_flight) > at_most:
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                future.result()
        return in_flight

    def _send_part(self, upload: Upload, number: int, data: bytearray, on_server: str | None, path: str) -> None:
        """One part (in a pool thread): skipped when the server already holds these bytes."""
        digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
        etag = on_server if on_server is not None and on_server.strip('"') == digest else \
            self._put_part(upload, number, data, digest, path)
        with self._lock:
            upload.parts[number] = etag
            self.state.put(STATE_PREFIX + upload.key, upload.record())

    def _resume_or_start(self, key: str, size: int, mtime_ns: int, metadata: dict[str, str],
                         path: str) -> tuple[Upload, bool]:
        """The upload to continue (True) or a new one (False)."""
        old = Upload.load(key, self.state.get(STATE_PREFIX + key))
        if old is not None and (old.size, old.mtime_ns, old.part_size) == (size, mtime_ns, self.part_size):
            get_logger().info("s3: resuming a multipart upload", path=path, parts_done=len(old.parts))
            return old, True
        if old is not None:
            self.abort(key, old.upload_id)
        made = self.calls(lambda: self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=metadata, ContentType="application/octet-stream"), path=path)
        upload = Upload(key, made["UploadId"], size, mtime_ns, self.part_size, time.time(), {})
        self.state.put(STATE_PREFIX + key, upload.record())
        with _commit_lock:   # the id must outlive a kill of this run: durable now, not with the next batch
            self.state.commit()
        return upload, False

    def _server_parts(self, upload: Upload, path: str) -> dict[int, str]:
        """The parts the server holds for this upload (none if it is gone): the truth, whatever
        the state recorded (parts done after its last commit count too)."""
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

    def _read_part(self, stream: IO[bytes], length: int, path: str) -> bytearray:
        """The next `length` bytes, read into one buffer of that size (no second copy)."""
        buf = bytearray(length)
        view = memoryview(buf)
        got = 0
        while got < length:
            data = stream.read(min(self.chunk, length - got))
            if not data:
                raise errors.PermanentError(f"the source ended early ({got} of {length} bytes of a part)",
                                            path=path)
            view[got:got + len(data)] = data
            got += len(data)
        view.release()
        return buf

    def _put_part(self, upload: Upload, number: int, data: bytearray, digest: str, path: str) -> str:
        import base64

        md5 = base64.b64encode(bytes.fromhex(digest)).decode()
        answer = self.calls(lambda: self.client.upload_part(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, PartNumber=number,
            Body=cast(bytes, data),   # botocore takes a bytearray as a blob (the stubs say bytes): no copy
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

