"""MetadiskProvider: a folder tree in one Metadisk bucket.

Content goes to the bucket by address (api.py, datachannel.py); names,
folders, sizes and times live in the bucket's manifest (store.py). Moves,
copies, folders and times are manifest edits: no bytes cross for them.
Changes are staged locally and written to the bucket's manifest when the
engine commits a batch (`batch_committed`) or the provider closes.
"""

from __future__ import annotations

import posixpath
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from syncagent import errors
from syncagent.providers.base import ANY, Capabilities, Expect, Kind, PairContext, Provider, Quota, RemoteEntry
from syncagent.providers.metadisk import manifest as mf
from syncagent.providers.metadisk.api import Bridge
from syncagent.providers.metadisk.content import HASH_KIND, ContentHasher
from syncagent.providers.metadisk.datachannel import open_download
from syncagent.providers.metadisk.manifest import Item
from syncagent.providers.metadisk.store import ManifestStore
from syncagent.providers.metadisk.transport import Api, Tuning

_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
HASH_CHUNK = 1 << 20


class MetadiskProvider(Provider):
    name = "metadisk"
    capabilities = Capabilities(
        hash_kind=HASH_KIND, server_move=True, server_copy=True, set_mtime=True, ids=True,
        forbidden_chars="/\x00", max_name_length=255, expensive_bytes=True, transfers=4, quota=True)

    def __init__(self, api: Api, bucket: str, root: str = "/", *, tuning: Tuning | None = None,
                 writer: str | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api = api
        self.bridge = Bridge(api)
        self.bucket = bucket
        self.prefix = root.strip("/")
        self.tuning = tuning or api.tuning
        self.writer = writer or socket.gethostname() or "host"
        self.clock, self.sleep = clock, sleep
        self._bucket_id: str | None = None
        self._store: ManifestStore | None = None

    # ---- plumbing ------------------------------------------------------------------------
    def attach(self, pair: PairContext) -> None:
        if self._store is not None:
            self._store.flush()
        super().attach(pair)
        self._store = None

    def describe(self) -> str:
        return f"metadisk:{self.bucket}/{self.prefix}"

    def bucket_id(self, *, create: bool = False) -> str:
        if self._bucket_id is None:
            found = self._find_bucket()
            if found is None:
                if not create:
                    raise errors.NotFound(f"no bucket {self.bucket!r} in this Metadisk account")
                found = str(self.bridge.create_bucket(self.bucket)["id"])
            self._bucket_id = found
        return self._bucket_id

    def _find_bucket(self) -> str | None:
        buckets = self.bridge.buckets()
        if _OBJECT_ID.match(self.bucket) and any(b.get("id") == self.bucket for b in buckets):
            return self.bucket
        named = [str(b["id"]) for b in buckets if b.get("name") == self.bucket]
        if len(named) > 1:
            raise errors.PermanentError(f"{len(named)} buckets are named {self.bucket!r}: give the id instead "
                                        f"({', '.join(named)})")
        return named[0] if named else None

    @property
    def store(self) -> ManifestStore:
        if self._store is None:
            self._store = ManifestStore(self.bridge, self.bucket_id(), self.pair.state, self.tuning, self.writer,
                                        clock=self.clock, sleep=self.sleep)
        return self._store

    # ---- account extras: keys and buckets ----------------------------------------
    def account_keys(self) -> list[str]:
        registered: list[dict[str, Any]] = self.bridge.keys()   # a Bridge call, not a mapping's keys
        return [str(k.get("key")) for k in registered]

    def add_account_key(self, public_key: str) -> None:
        self.bridge.add_key(public_key)

    def remove_account_key(self, public_key: str) -> None:
        self.bridge.remove_key(public_key)

    def containers(self) -> list[dict[str, Any]]:
        return [dict(b) for b in self.bridge.buckets()]

    def create_container(self, name: str) -> dict[str, Any]:
        return dict(self.bridge.create_bucket(name))

    def remove_container(self, name: str) -> None:
        buckets = self.bridge.buckets()
        ids = [str(b["id"]) for b in buckets if b.get("id") == name or b.get("name") == name]
        if not ids:
            raise errors.NotFound(f"no bucket {name!r} in this Metadisk account")
        if len(ids) > 1:
            raise errors.PermanentError(f"{len(ids)} buckets are named {name!r}: give the id ({', '.join(ids)})")
        self.bridge.delete_bucket(ids[0])

    def batch_committed(self) -> None:
        """The engine committed a batch of base rows: write our staged changes into the manifest now."""
        if self._store is not None and self._store.flush():
            self.pair.state.commit()

    def close(self) -> None:
        try:
            if self._store is not None and self._store.flush():
                self.pair.state.commit()
        finally:
            self.api.close()

    # ---- paths ---------------------------------------------------------------------------
    def _full(self, path: str) -> str:
        path = path.strip("/")
        return f"{self.prefix}/{path}" if self.prefix and path else (self.prefix or path)

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def _entry(self, full: str, item: Item | None) -> RemoteEntry:
        rel = self._rel(full)
        if item is None or item.kind == mf.DIR:
            return RemoteEntry(rel, Kind.DIR, rev=item.v if item else "", id=item.i if item else None)
        return RemoteEntry(rel, Kind.FILE, size=item.s, mtime_ns=item.m, rev=item.v, hash=item.h, id=item.i)

    def _lookup(self, full: str) -> Item | None:
        """The live item at `full`, a folder implied by what lies below it, or None."""
        found = self.store.get(full)
        if found is not None and found.live:
            return found
        if full == "" or full in self.store.index().implied:
            return Item(mf.DIR, "", (), "")
        return None

    def _require(self, path: str) -> tuple[str, Item]:
        full = self._full(path)
        item = self._lookup(full)
        if item is None:
            raise errors.NotFound("no such file or folder", path=path)
        return full, item

    def _now(self) -> float:
        return self.clock()

    # ---- listing -------------------------------------------------------------------------
    def root_exists(self) -> bool:
        try:
            self.bucket_id()
        except errors.NotFound:
            return False
        return not self.prefix or self._lookup(self.prefix) is not None

    def ensure_root(self) -> None:
        self.bucket_id(create=True)
        if self.prefix:
            self._mkdirs(self.prefix)

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        self.store.refresh()
        start = self._full(path)
        if path and self._lookup(start) is None:
            raise errors.NotFound("no such folder", path=path)
        out: dict[str, Item | None] = {}
        for full, item in self.store.iter_live(start):
            if full == start:
                continue
            out[full] = item
            parent = posixpath.dirname(full)
            while parent and parent != start and parent not in out:
                out[parent] = None      # a folder implied by an item below it
                parent = posixpath.dirname(parent)
        for full in sorted(out, key=lambda p: p.split("/")):
            yield self._entry(full, out[full])

    def stat(self, path: str) -> RemoteEntry:
        full, item = self._require(path)
        return self._entry(full, item if item.v else None)

    def content_hash(self, path: str) -> str | None:
        found = self._lookup(self._full(path))
        return found.h if found is not None and found.kind == mf.FILE else None

    # ---- content -------------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        _, item = self._require(path)
        if item.kind != mf.FILE:
            raise errors.PermanentError("is a folder", path=path)
        return open_download(self.bridge, self.bucket_id(), item.h, item.s, self.tuning, path=path, sleep=self.sleep)

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        full = self._full(path)
        current = self._check_target(full, path, expect)
        address = self._known_address(stream, size)
        if address is None:
            entry = self.bridge.upload(self.bucket_id(), stream, size, posixpath.basename(full), error_path=path)
            address = entry.hash
        # the target may have changed while the bytes travelled: check again before naming them
        current = self._check_target(full, path, expect)
        item = mf.successor(self.store.get(full), mf.FILE, now=self._now(), writer=self.writer,
                            h=address, s=size, m=mtime_ns, i=current.i if current is not None else None)
        self.store.stage({full: item})
        return self._entry(full, item)

    def _check_target(self, full: str, path: str, expect: Expect) -> Item | None:
        parent = posixpath.dirname(full)
        if parent and self._lookup(parent) is None:
            raise errors.NotFound("the parent folder does not exist", path=path)
        current = self._lookup(full)
        if current is not None and current.kind != mf.FILE:
            raise errors.AlreadyExists("a folder has this name", path=path)
        if expect is not ANY:
            rev = current.v if current is not None else None
            if rev != expect:
                raise errors.Conflict("the file changed on Metadisk since it was listed", path=path)
        return current

    def _known_address(self, stream: IO[bytes], size: int) -> str | None:
        """The content address when this content is already in the bucket under a live path
        (equal files are stored once); None when it must be uploaded. Hashes first only when
        the stream can be rewound."""
        try:
            if not stream.seekable():
                return None
            start = stream.tell()
        except (OSError, ValueError):
            return None
        hasher = ContentHasher()
        while chunk := stream.read(HASH_CHUNK):
            hasher.update(chunk)
        stream.seek(start)
        if hasher.size != size:
            return None   # the upload will find out what the source holds now
        address = hasher.hexdigest()
        return address if address in self.store.index().addresses else None

    def mkdir(self, path: str) -> RemoteEntry:
        full = self._full(path)
        self._mkdirs(full)
        return self._entry(full, self._lookup(full))

    def _mkdirs(self, full: str) -> None:
        changes: dict[str, Item] = {}
        parts = full.split("/")
        for n in range(1, len(parts) + 1):
            p = "/".join(parts[:n])
            current = self._lookup(p)
            if current is not None and current.kind == mf.FILE:
                raise errors.AlreadyExists("a file has this name", path=self._rel(p) or p)
            if current is None or not current.v:
                changes[p] = mf.successor(self.store.get(p), mf.DIR, now=self._now(), writer=self.writer)
        if changes:
            self.store.stage(changes)

    def move(self, src: str, dst: str) -> RemoteEntry:
        return self._relocate(src, dst, keep=False)

    def copy(self, src: str, dst: str) -> RemoteEntry:
        return self._relocate(src, dst, keep=True)

    def _relocate(self, src: str, dst: str, *, keep: bool) -> RemoteEntry:
        """A move or copy is a manifest edit: the content addresses stay."""
        full_src, item = self._require(src)
        full_dst = self._full(dst)
        if self._lookup(full_dst) is not None:
            raise errors.AlreadyExists("the destination exists", path=dst)
        if full_dst == full_src or full_dst.startswith(full_src + "/"):
            raise errors.PermanentError("cannot move a folder into itself", path=dst)
        parent = posixpath.dirname(full_dst)
        if parent:
            self._mkdirs(parent)
        now, changes = self._now(), {}
        moving = [(full_src, item)] + [(p, it) for p, it in self.store.iter_live(full_src) if p != full_src]
        for old, it in moving:
            new = full_dst + old[len(full_src):]
            fields = {"h": it.h, "s": it.s, "m": it.m, "i": mf.new_id() if keep else it.i}
            kind = it.kind if it.v else mf.DIR
            changes[new] = mf.successor(self.store.get(new), kind, now=now, writer=self.writer, **fields)
            if not keep and it.v:
                changes[old] = mf.successor(it, mf.GONE, now=now, writer=self.writer, i=it.i)
        self.store.stage(changes)
        return self._entry(full_dst, changes[full_dst])

    def delete(self, path: str, *, recursive: bool = False) -> None:
        full, item = self._require(path)
        below = [(p, it) for p, it in self.store.iter_live(full) if p != full]
        if below and not recursive:
            raise errors.PermanentError("the folder is not empty", path=path)
        now = self._now()
        changes = {p: mf.successor(it, mf.GONE, now=now, writer=self.writer, i=it.i) for p, it in below}
        if item.v:
            changes[full] = mf.successor(item, mf.GONE, now=now, writer=self.writer, i=item.i)
        self.store.stage(changes)

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        full, item = self._require(path)
        if item.kind != mf.FILE:
            raise errors.Unsupported("folders carry no time on Metadisk", path=path)
        new = mf.successor(item, mf.FILE, now=self._now(), writer=self.writer, h=item.h, s=item.s, m=mtime_ns)
        self.store.stage({full: new})
        return self._entry(full, new)

    # ---- extras ----------------------------------------------------------------------------
    def quota(self) -> Quota:
        bucket = self.bridge.bucket(self.bucket_id())
        self.store.refresh()
        used = sum(e.size for e in self.store.content.values())
        storage = bucket.get("storage")
        return Quota(used, int(storage) * 10**9 if isinstance(storage, int | float) else None)

    def info(self, path: str) -> dict[str, Any]:
        _, item = self._require(path)
        out: dict[str, Any] = {**super().info(path), "bucket": self.bucket_id(), "kind": "dir"}
        if item.kind == mf.FILE:
            pointers = self.bridge.pointers(self.bucket_id(), item.h, error_path=path) if item.s else []
            out.update(kind="file", content_address=item.h, version=item.v, written_by=item.w,
                       shards=[{"hash": p.hash, "channel": p.channel} for p in pointers])
        assert self.store.cached is not None
        out["manifest_generation"] = self.store.cached.doc.generation
        return out

    def whoami(self) -> str:
        return self.api.creds.email

