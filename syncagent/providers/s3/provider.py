"""The S3 provider: a bucket (and a key prefix) as a folder tree.

Folders are key prefixes; a folder with nothing in it is kept by a marker
object `folder/` (zero bytes, as the S3 consoles and rclone do), and a
folder whose last file goes keeps a marker, so an emptied folder does not
vanish. The rev is the ETag. Content identity is MD5: a single-part ETag
is the MD5 of the content; a multipart ETag (`...-N`) is not, and such an
object has the MD5 we computed while uploading it, or none. Modification
times travel in the object's metadata (`mtime`, seconds, as rclone keeps
them); what listing cannot show (metadata) is read once per ETag with a
HEAD and kept in the pair's provider state (loaded in one query per
listing, so a no-op listing costs the ListObjectsV2 pages and nothing
more). Conditional writes (`If-None-Match: *`, `If-Match`): whether the
server enforces them is learned once per pair (a probe on a temp key, kept
in provider state) or declared (`conditional_writes`); where it does, a
single-part write is one PutObject; where it does not, a HEAD just before
is the check. Multipart uploads are always checked first (one HEAD beside
at least 16 MiB of parts) and send the headers where the server takes them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from syncagent import errors
from syncagent.log import get_logger
from syncagent.paths import TEMP_PREFIX, TEMP_SUFFIX, is_temp_name, parent
from syncagent.providers.base import ANY, Capabilities, Expect, Kind, Provider, RemoteEntry
from syncagent.providers.s3.client import DEFAULT_TUNING, Calls, Tuning
from syncagent.providers.s3.multipart import MultipartWriter, abandoned
from syncagent.providers.s3.reader import ObjectReader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, ObjectTypeDef

Entries = list[RemoteEntry]     # (inside the class, `list` is the listing method)
Keys = list[str]
Objects = list["ObjectTypeDef"]
Uploads = list[dict[str, Any]]


MARKER_FILE = ".syncagent-folder"   # the marker of folder_markers=file (hidden from listings)
META_PREFIX = "s3.m:"          # provider state: path -> [etag, mtime_ns, md5 or null]
LEARNED_KEY = "s3.learned"     # provider state: what this server was seen to do ({"conditional": bool})
DELETE_BATCH = 1000            # keys per DeleteObjects (S3's maximum)
STALE_TEMP_S = 86_400          # another machine's temp key this old is a leftover


@dataclass
class Settings:
    bucket: str
    prefix: str = ""
    multipart_threshold: int = 16 << 20
    part_size: int = 16 << 20
    conditional_writes: str = "auto"
    transfers: int = 4
    folder_markers: str = "slash"      # "slash": `a/b/`; "file": `a/b/.syncagent-folder` (rclone serve s3)
    upload_concurrency: int = 4        # parts of one multipart upload in flight


def mtime_text(mtime_ns: int) -> str:
    """Seconds with nanoseconds, as rclone writes X-Amz-Meta-Mtime."""
    return f"{mtime_ns // 1_000_000_000}.{mtime_ns % 1_000_000_000:09d}"


def parse_mtime(text: str | None) -> int | None:
    if not text:
        return None
    whole, _, frac = text.strip().partition(".")
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()):
        return None
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


class S3Provider(Provider):
    name = "s3"

    def __init__(self, client: S3Client, settings: Settings, *, host: str = "the S3 service",
                 tuning: Tuning = DEFAULT_TUNING, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.settings, self.tuning = client, settings, tuning
        self.bucket = settings.bucket
        self.prefix = "/".join(p for p in settings.prefix.split("/") if p)
        self.prefix = self.prefix + "/" if self.prefix else ""
        self.host = host
        self.calls = Calls(host, self.bucket, tuning, sleep)
        self.mode = settings.conditional_writes
        self._markers: set[str] = set()
        self._temps: dict[str, float] = {}     # temp keys the last listing saw -> LastModified (s)
        self._probe_lock = threading.Lock()
        self.capabilities = Capabilities(
            hash_kind="md5", server_move=True, server_copy=True, set_mtime=True, mtime_precision_ns=1,
            transfers=settings.transfers, expensive_bytes=True)

    def describe(self) -> str:
        return f"s3 {self.bucket}/{self.prefix}"

    def close(self) -> None:
        self.client.close()

    # ---- keys ------------------------------------------------------------------------------
    def key(self, path: str) -> str:
        return self.prefix + path

    def marker_key(self, path: str) -> str:
        """The key of the marker object that keeps folder `path` ("" = the root)."""
        base = self.key(path) + "/" if path else self.prefix
        return base + MARKER_FILE if self.settings.folder_markers == "file" else base

    @staticmethod
    def _is_marker(rel: str) -> bool:
        return not rel or rel.endswith("/") or rel.rpartition("/")[2] == MARKER_FILE

    def _path(self, key: str) -> str:
        return key[len(self.prefix):]

    def _call_kw(self, method: Callable[..., Any], kw: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = dict(self.calls(lambda: method(**kw)))
        return answer

    # ---- listing ---------------------------------------------------------------------------
    def connect(self) -> None:
        """The first request: checks the credentials and the bucket."""
        self.calls(lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1))

    def _pages(self, prefix: str, delimiter: str = "") -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": self.tuning.page_size}
            if delimiter:
                kw["Delimiter"] = delimiter
            if token:
                kw["ContinuationToken"] = token
            page = self._call_kw(self.client.list_objects_v2, kw)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        base = self.key(path) + "/" if path else self.prefix
        seen_dirs: set[str] = set()
        entries: list[RemoteEntry] = []
        listed: set[str] = set()
        cache = self._meta_cache()
        self._temps = {}
        for page in self._pages(base):
            objects: list[ObjectTypeDef] = page.get("Contents", [])
            entries.extend(self._dirs_of(objects, path, seen_dirs))
            files = [o for o in objects if not self._is_marker(self._path(o["Key"])) and not self._is_temp(o)]
            entries.extend(self._files(files, cache))
            listed.update(self._path(o["Key"]) for o in files)
        if not path:
            self._forget_unlisted(cache, listed)
        yield from sorted(entries, key=lambda e: e.path)

    def _meta_cache(self) -> dict[str, str]:
        """The remembered metadata of every object, read in one query (path -> JSON)."""
        return {key[len(META_PREFIX):]: value for key, value in self.pair.state.items(META_PREFIX)}

    def _is_temp(self, obj: ObjectTypeDef) -> bool:
        """A temp key (a probe of ours, or another tool's leftover): hidden, cleaned up later."""
        rel = self._path(obj["Key"])
        if not is_temp_name(rel.rpartition("/")[2]):
            return False
        self._temps[rel] = obj["LastModified"].timestamp()
        return True

    def _dirs_of(self, objects: Sequence[ObjectTypeDef], under: str, seen: set[str]) -> Iterator[RemoteEntry]:
        """Folders: markers (`a/b/`) and every prefix of a key."""
        for obj in objects:
            rel = self._path(obj["Key"])
            folder_of = rel[:-1] if rel.endswith("/") else parent(rel)
            if self._is_marker(rel):
                self._markers.add(folder_of)
            parts = folder_of.split("/") if folder_of else []
            for i in range(1, len(parts) + 1):
                folder = "/".join(parts[:i])
                if folder and folder not in seen and (not under or folder.startswith(under + "/")):
                    seen.add(folder)
                    yield RemoteEntry(folder, Kind.DIR)

    def _files(self, objects: Sequence[ObjectTypeDef], cache: dict[str, str]) -> Entries:
        """Entries for one page of objects; metadata this pair has not seen (by ETag) is HEADed in parallel."""
        known: Entries = []
        unknown: Objects = []
        for obj in objects:
            entry = self._cached(obj, cache)
            if entry is None:
                unknown.append(obj)
            else:
                known.append(entry)
        if unknown:
            with ThreadPoolExecutor(max_workers=self.tuning.head_workers) as pool:
                known.extend(pool.map(self._headed, unknown))
        return known

    def _cached(self, obj: ObjectTypeDef, cache: dict[str, str]) -> RemoteEntry | None:
        path, etag = self._path(obj["Key"]), str(obj.get("ETag", "")).strip('"')
        text = cache.get(path)
        if text is None:
            return None
        try:
            cached = json.loads(text)
        except ValueError:
            return None
        if not isinstance(cached, list) or len(cached) != 3 or cached[0] != etag:
            return None
        return RemoteEntry(path, Kind.FILE, int(obj.get("Size", 0)), int(cached[1]), etag, cached[2])

    def _headed(self, obj: ObjectTypeDef) -> RemoteEntry:
        path = self._path(obj["Key"])
        try:
            return self.stat(path)
        except errors.NotFound:   # gone between the listing and the HEAD: as listed, without metadata
            etag = str(obj.get("ETag", "")).strip('"')
            return RemoteEntry(path, Kind.FILE, int(obj.get("Size", 0)),
                               int(obj["LastModified"].timestamp() * 1e9), etag, etag if is_md5(etag) else None)

    def _remember(self, entry: RemoteEntry) -> None:
        self.pair.state.put(META_PREFIX + entry.path, json.dumps([entry.rev, entry.mtime_ns, entry.hash]))

    def _forget_unlisted(self, cache: dict[str, str], listed: set[str]) -> None:
        for path in cache.keys() - listed:
            self.pair.state.put(META_PREFIX + path, None)

    def stat(self, path: str) -> RemoteEntry:
        if not path:
            return RemoteEntry("", Kind.DIR)
        try:
            head = self.calls(lambda: self.client.head_object(Bucket=self.bucket, Key=self.key(path)), path=path)
        except errors.NotFound:
            if self._is_folder(path):
                return RemoteEntry(path, Kind.DIR)
            raise
        etag = str(head.get("ETag", "")).strip('"')
        meta = {k.lower(): v for k, v in head.get("Metadata", {}).items()}   # some servers capitalize
        mtime = parse_mtime(meta.get("mtime")) or int(head["LastModified"].timestamp() * 1e9)
        md5 = etag if is_md5(etag) else _b64_to_hex(meta.get("md5chksum"))
        entry = RemoteEntry(path, Kind.FILE, int(head.get("ContentLength", 0)), mtime, etag, md5)
        self._remember(entry)
        return entry

    def _is_folder(self, path: str) -> bool:
        page = next(self._pages(self.key(path) + "/", delimiter="/"))
        return bool(page.get("Contents") or page.get("CommonPrefixes"))

    def root_exists(self) -> bool:
        try:
            self.calls(lambda: self.client.head_bucket(Bucket=self.bucket))
        except errors.NotFound:
            return False
        return self._root_listed()

    def _root_listed(self) -> bool:
        if not self.prefix:
            return True
        page = next(self._pages(self.prefix, delimiter="/"))
        return bool(page.get("Contents") or page.get("CommonPrefixes"))

    def ensure_root(self) -> None:
        try:
            self.calls(lambda: self.client.head_bucket(Bucket=self.bucket))
        except errors.NotFound:
            self.calls(lambda: self.client.create_bucket(Bucket=self.bucket))
        if self.prefix:
            self._put_marker(self.marker_key(""))

    # ---- content ---------------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        def open_at(start: int, etag: str) -> Any:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(path)}
            if start:
                kw["Range"] = f"bytes={start}-"
            if etag:
                kw["IfMatch"] = f'"{etag}"'
            return self.calls(lambda: self.client.get_object(**kw), path=path)

        return io.BufferedReader(ObjectReader(open_at, path, self.tuning.attempts), 1 << 20)

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        multipart = size >= self.settings.multipart_threshold
        conditions = self._conditions(path, expect, checked=multipart)
        metadata = {"mtime": mtime_text(mtime_ns)}
        try:
            if multipart:
                etag, md5 = MultipartWriter(self.client, self.calls, self.bucket, self.pair.state,
                                            self.settings.part_size,
                                            concurrency=self.settings.upload_concurrency).upload(
                    self.key(path), stream, size, mtime_ns, metadata, conditions, path)
                etag = self._listed_etag(path, etag, md5)
            else:
                etag, md5 = self._put(path, stream, size, metadata, conditions)
        except errors.Unsupported:
            if not conditions:
                raise
            self.mode = "check"             # a server that refuses conditional headers: check first instead
            self._learn_conditional(False)
            return self.write(path, stream, size, mtime_ns, expect=expect) if _rewind(stream) else _refused(path)
        entry = RemoteEntry(path, Kind.FILE, size, mtime_ns, etag, md5)
        self._remember(entry)
        return entry

    def _conditions(self, path: str, expect: Expect, *, checked: bool = False) -> dict[str, str]:
        """The headers that make the server check `expect` at the write, where it enforces them;
        where it does not (or `checked`, unless the server alone is trusted by config), a HEAD
        just before checks it here."""
        if expect is ANY:
            return {}
        enforced = self._server_enforces()
        if not enforced or (checked and self.mode != "server"):
            current = self._current_rev(path)
            if (current is None) != (expect is None) or (current is not None and current != expect):
                raise errors.Conflict("the object changed since it was listed", path=path)
        if not enforced:
            return {}
        return {"IfNoneMatch": "*"} if expect is None else {"IfMatch": f'"{expect}"'}

    def _listed_etag(self, path: str, completed: str, md5: str) -> str:
        """The ETag listings will show for a multipart object we just completed: some servers
        (rclone serve s3) answer the completion with `...-N` and list the content's MD5. Taken
        only when it is one of those two (anything else is another writer's: the next listing
        sees a change, as it should)."""
        current = self._current_rev(path)
        return current if current is not None and current in (completed, md5) else completed

    def _current_rev(self, path: str) -> str | None:
        """The ETag of the object at `path` now (one HEAD), None if there is none."""
        try:
            head = self.calls(lambda: self.client.head_object(Bucket=self.bucket, Key=self.key(path)), path=path)
        except errors.NotFound:
            return None
        return str(head.get("ETag", "")).strip('"')

    # ---- conditional writes: declared, or learned once --------------------------------------
    def _server_enforces(self) -> bool:
        """Whether the server refuses a PutObject whose If-None-Match / If-Match fails."""
        if self.mode in ("server", "check"):
            return self.mode == "server"
        learned = self._learned().get("conditional")
        if isinstance(learned, bool):
            return learned
        with self._probe_lock:            # one probe, whichever transfer thread gets here first
            learned = self._learned().get("conditional")
            if not isinstance(learned, bool):
                learned = self._probe_conditional()
            return bool(learned)

    def _learned(self) -> dict[str, Any]:
        try:
            facts = json.loads(self.pair.state.get(LEARNED_KEY) or "{}")
        except ValueError:
            return {}
        return facts if isinstance(facts, dict) else {}

    def _learn_conditional(self, enforced: bool) -> None:
        self.pair.state.put(LEARNED_KEY, json.dumps({**self._learned(), "conditional": enforced}))

    def _probe_conditional(self) -> bool | None:
        """Write a temp key, then write it again with If-None-Match: * and with a wrong If-Match:
        a server that enforces both answers 412 twice. The key is deleted at once (a kill leaves
        a hidden temp the next clean-up removes). Learned for the pair; None (check first, learn
        nothing) when the probe itself fails."""
        key = self.prefix + f"{TEMP_PREFIX}{self.pair.tag}probe-{secrets.token_hex(6)}{TEMP_SUFFIX}"

        def put(**conditions: str) -> None:
            self.calls(lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", ContentLength=0,
                                                      **conditions))  # type: ignore[arg-type]

        enforced: bool | None = None
        try:
            put()
            enforced = _refuses(lambda: put(IfNoneMatch="*")) and \
                _refuses(lambda: put(IfMatch='"00000000000000000000000000000000"'))
        except errors.Unsupported:
            enforced = False
        except errors.ProviderError as exc:
            get_logger().info("s3: the conditional-write probe failed; checking before each write", reason=str(exc))
        finally:
            with contextlib.suppress(errors.ProviderError):
                self.calls(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))
        if enforced is not None:
            get_logger().info("s3: conditional writes", enforced=enforced, server=self.host)
            self._learn_conditional(enforced)
        return enforced

    def _put(self, path: str, stream: IO[bytes], size: int, metadata: dict[str, str],
             conditions: dict[str, str]) -> tuple[str, str]:
        data = _read_exactly(stream, size, path)   # below the multipart threshold: held once
        digest = hashlib.md5(data, usedforsecurity=False)
        answer = self.calls(lambda: self.client.put_object(
            Bucket=self.bucket, Key=self.key(path), Body=data, ContentLength=size, Metadata=metadata,
            ContentMD5=base64.b64encode(digest.digest()).decode(), ContentType="application/octet-stream",
            **conditions), path=path)  # type: ignore[arg-type]
        return str(answer["ETag"]).strip('"'), digest.hexdigest()

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        """A copy onto itself with new metadata (server-side; the ETag of a single-part object stays)."""
        key = self.key(path)
        current = self.stat(path)
        self.calls(lambda: self.client.copy_object(
            Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
            Metadata={"mtime": mtime_text(mtime_ns)}, MetadataDirective="REPLACE",
            CopySourceIfMatch=f'"{current.rev}"'), path=path)
        return self.stat(path)

    def content_hash(self, path: str) -> str | None:
        return self.stat(path).hash

    # ---- folders, copies, deletes ----------------------------------------------------------
    def _put_marker(self, key: str) -> None:
        self.calls(lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=b"", ContentLength=0))
        rel = self._path(key)
        self._markers.add(rel[:-1] if rel.endswith("/") else parent(rel))

    def mkdir(self, path: str) -> RemoteEntry:
        try:
            head = self.stat(path)
        except errors.NotFound:
            head = None
        if head is not None and head.kind is Kind.FILE:
            raise errors.AlreadyExists("a file has that name", path=path)
        parts = path.split("/")
        for i in range(1, len(parts) + 1):      # every level: a folder must not vanish with its last child
            folder = "/".join(parts[:i])
            if folder not in self._markers:
                self._put_marker(self.marker_key(folder))
        return RemoteEntry(path, Kind.DIR)

    def _keys_under(self, path: str) -> Keys:
        return [o["Key"] for page in self._pages(self.key(path) + "/") for o in page.get("Contents", [])]

    def move(self, src: str, dst: str) -> RemoteEntry:
        entry = self._copy(src, dst)
        keys = [self.key(src)] if entry.kind is Kind.FILE else [*self._keys_under(src)]
        self._delete_keys(keys)
        self._keep_parents([src])
        return entry

    def copy(self, src: str, dst: str) -> RemoteEntry:
        return self._copy(src, dst)

    def _copy(self, src: str, dst: str) -> RemoteEntry:
        entry = self.stat(src)
        with contextlib.suppress(errors.NotFound):
            self.stat(dst)
            raise errors.AlreadyExists("the target exists", path=dst)
        if entry.kind is Kind.FILE:
            return self._copy_object(src, dst)
        for key in self._keys_under(src):
            rel = self._path(key)[len(src):]
            if self._is_marker(rel):
                self._put_marker(self.marker_key(dst + (rel[:-1] if rel.endswith("/") else parent(rel))))
            else:
                self._copy_object(src + rel, dst + rel)
        self._put_marker(self.marker_key(dst))
        return RemoteEntry(dst, Kind.DIR)

    def _copy_object(self, src: str, dst: str) -> RemoteEntry:
        source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": self.key(src)}
        self.calls(lambda: self.client.copy_object(Bucket=self.bucket, Key=self.key(dst), CopySource=source,
                                                   MetadataDirective="COPY"), path=src)
        return self.stat(dst)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        entry = self.stat(path)
        if entry.kind is Kind.FILE:
            self._delete_keys([self.key(path)])
        else:
            keys = self._keys_under(path)
            if not recursive and [k for k in keys if not self._is_marker(self._path(k))]:
                raise errors.Conflict("the folder is not empty", path=path)
            self._delete_keys(keys)
            self._markers.discard(path)
        self._keep_parents([path])

    def delete_many(self, paths: Sequence[tuple[str, bool]]) -> dict[str, Exception]:
        """DeleteObjects in batches of 1000 keys; folders expand to the keys under them."""
        failed: dict[str, Exception] = {}
        owner: dict[str, str] = {}
        for path, recursive in paths:
            try:
                entry = self.stat(path)
                keys = [self.key(path)] if entry.kind is Kind.FILE else self._keys_under(path)
                if entry.kind is Kind.DIR and not recursive and [k for k in keys if not self._is_marker(self._path(k))]:
                    raise errors.Conflict("the folder is not empty", path=path)
            except errors.NotFound:
                continue
            except errors.ProviderError as exc:
                failed[path] = exc
                continue
            owner.update({k: path for k in keys})
            self._markers.discard(path)
        for key, err in self._delete_keys([*owner]).items():
            failed.setdefault(owner[key], err)
        self._keep_parents([p for p, _ in paths if p not in failed])
        return failed

    def _delete_keys(self, keys: Keys) -> dict[str, Exception]:
        failed: dict[str, Exception] = {}
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            answer = self.calls(lambda b=batch: self.client.delete_objects(  # type: ignore[misc]
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in b], "Quiet": True}))
            for err in answer.get("Errors", []):
                if err.get("Code") != "NoSuchKey":
                    failed[str(err.get("Key"))] = errors.PermanentError(f"{self.host}: {err.get('Code')}")
            for key in batch:
                self.pair.state.put(META_PREFIX + self._path(key), None)
        return failed

    def _keep_parents(self, paths: Sequence[str]) -> None:
        """A folder whose last object went would vanish from S3: keep it with a marker."""
        gone = set(paths)
        for folder in sorted({parent(p) for p in paths} - {""}):
            if folder not in self._markers and not any(folder == g or folder.startswith(g + "/") for g in gone):
                self._put_marker(self.marker_key(folder))

    # ---- abandoned uploads -----------------------------------------------------------------
    def cleanup_temps(self) -> int:
        """Temp keys the last listing saw (ours at once, anyone's after a day), and multipart
        uploads no one will finish (ours after a week, anyone's after a day)."""
        return self._cleanup_temp_keys() + self._abort_abandoned()

    def _cleanup_temp_keys(self) -> int:
        mine = TEMP_PREFIX + self.pair.tag if self.pair.tag else None
        limit = time.time() - STALE_TEMP_S
        doomed = [self.key(p) for p, modified in self._temps.items()
                  if (mine is not None and p.rpartition("/")[2].startswith(mine)) or modified < limit]
        self._temps = {}
        if not doomed:
            return 0
        with contextlib.suppress(errors.ProviderError):
            return len(doomed) - len(self._delete_keys(doomed))
        return 0

    def _abort_abandoned(self) -> int:
        uploads: Uploads = []
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            try:
                page = self._call_kw(self.client.list_multipart_uploads, kw)
            except errors.NotFound:    # rclone serve s3 answers NoSuchUpload when there are none
                break
            uploads.extend(page.get("Uploads", []))
            if not page.get("IsTruncated"):
                break
            kw = {**kw, "KeyMarker": page.get("NextKeyMarker"), "UploadIdMarker": page.get("NextUploadIdMarker")}
        writer = MultipartWriter(self.client, self.calls, self.bucket, self.pair.state, self.settings.part_size)
        gone = 0
        for key, upload_id in abandoned(uploads, self.pair.state, time.time()):
            with contextlib.suppress(errors.ProviderError):
                writer.abort(key, upload_id)
                gone += 1
        return gone


def _b64_to_hex(value: str | None) -> str | None:
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 16 else None


def _read_exactly(stream: IO[bytes], size: int, path: str) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        data = stream.read(min(1 << 20, size - len(buf)))
        if not data:
            raise errors.PermanentError(f"the source ended after {len(buf)} of {size} bytes", path=path)
        buf += data
    return bytes(buf)


def _refuses(write: Callable[[], None]) -> bool:
    """Whether the server refused this conditional write (412); False if it wrote it."""
    try:
        write()
    except errors.Conflict:
        return True
    return False


def _rewind(stream: IO[bytes]) -> bool:
    try:
        stream.seek(0)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _refused(path: str) -> RemoteEntry:
    raise errors.Unsupported("the server refused a conditional write and the source cannot be read again",
                             path=path)


def host_of(endpoint: str | None) -> str:
    return urllib.parse.urlsplit(endpoint).netloc if endpoint else "AWS S3"
