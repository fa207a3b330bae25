"""The manifest kept in the bucket, read and written safely by many machines.

Every manifest version is an object of the bucket named
`.syncagent-manifest-<generation>-<host>.json.gz` that lists the versions
it merged (`parents`). The *heads* are those no other one lists; a reader
merges them all (manifest.merge), so two heads are a consistent state, not
a broken one. A write is read-merge-write:

1. list the bucket, fetch heads not seen yet, merge them: the current view;
2. put this machine's pending changes on top (a change that raced with
   another machine's change to the same path keeps both);
3. upload the result with generation + 1 and the heads as parents;
4. list again: if a head other than ours appeared, another machine wrote
   concurrently: read, merge and write again (a few rounds, then leave the
   heads for the next reader to merge: nothing is lost either way);
5. delete the manifests ours supersedes, and content that has been
   unreferenced for longer than the grace period (a concurrent writer that
   just uploaded the same bytes names them in its manifest well before).

Cached in provider state (committed with the engine's base): the view and
its heads, so an unchanged bucket costs one listing; the pending changes,
so a crash between an upload and the manifest write loses nothing.
"""

from __future__ import annotations

import io
import json
import posixpath
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from syncagent import errors
from syncagent.log import get_logger
from syncagent.providers.base import ProviderState
from syncagent.providers.metadisk import manifest as mf
from syncagent.providers.metadisk.api import Bridge, FileEntry
from syncagent.providers.metadisk.datachannel import open_download
from syncagent.providers.metadisk.manifest import Item, Manifest
from syncagent.providers.metadisk.transport import Tuning

VIEW_KEY = "view"
PENDING_PREFIX = "p/"
MAX_MANIFEST = 256 << 20


@dataclass
class Cached:
    heads: frozenset[str]
    doc: Manifest


class ManifestStore:
    def __init__(self, bridge: Bridge, bucket_id: str, state: ProviderState, tuning: Tuning, writer: str,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.bridge, self.bucket_id, self.tuning, self.writer = bridge, bucket_id, tuning, writer
        self.clock, self.sleep = clock, sleep
        self.lock = threading.RLock()
        self.log = get_logger()
        self.state = state
        self.cached: Cached | None = self._load_view()
        self.pending: dict[str, Item] = {k[len(PENDING_PREFIX):]: Item.from_json(json.loads(v))
                                         for k, v in state.items(PENDING_PREFIX)}
        self._docs: dict[str, Manifest] = {}
        self._sizes: dict[str, int] = {}
        self._collectable: set[str] = set()
        self._combined: dict[str, Item] | None = None
        self._index: Index | None = None
        self.content: dict[str, FileEntry] = {}     # the bucket's content entries at the last listing
        self.races = 0                              # concurrent writers detected (tests, logs)

    # ---- state ----------------------------------------------------------------------------
    def _load_view(self) -> Cached | None:
        text = self.state.get(VIEW_KEY)
        if not text:
            return None
        try:
            obj = json.loads(text)
            doc = Manifest(int(obj["generation"]), (), {p: Item.from_json(o) for p, o in obj["items"].items()},
                           {str(h): float(t) for h, t in obj["garbage"].items()})
            return Cached(frozenset(obj["heads"]), doc)
        except (ValueError, KeyError, TypeError):
            return None   # an old or damaged cache: the bucket is the truth

    def _save_view(self) -> None:
        assert self.cached is not None
        doc = self.cached.doc
        self.state.put(VIEW_KEY, json.dumps({
            "heads": sorted(self.cached.heads), "generation": doc.generation,
            "items": {p: it.to_json() for p, it in doc.items.items()}, "garbage": doc.garbage},
            separators=(",", ":"), ensure_ascii=False))

    # ---- the view ---------------------------------------------------------------------------
    def items(self) -> dict[str, Item]:
        """Path -> item (tombstones included): the bucket's tree with this machine's pending changes."""
        with self.lock:
            if self.cached is None:
                self.refresh()
            if self._combined is None:
                assert self.cached is not None
                self._combined = mf.overlay(self.cached.doc.items, self.pending)
                self._index = None
            return self._combined

    def get(self, path: str) -> Item | None:
        return self.items().get(path)

    def index(self) -> Index:
        """Folders implied by what lies below them, and the addresses live files use."""
        with self.lock:
            items = self.items()
            if self._index is None or self._index.stale:
                self._index = Index.of(items)
            return self._index

    def stage(self, changes: dict[str, Item]) -> None:
        """Record local changes (new versions); they reach the bucket at the next flush."""
        with self.lock:
            combined = self.items()
            for path, item in changes.items():
                self.pending[path] = item
                self.state.put(PENDING_PREFIX + path, json.dumps(item.to_json(), ensure_ascii=False))
                current = combined.get(path)
                combined[path] = item
                if current is not None and current.v not in item.a:
                    self._combined = None       # not a successor (cannot happen from the provider): merge anew
                if self._index is not None:
                    self._index.changed(path, current, item)

    def refresh(self) -> list[FileEntry]:
        """List the bucket; merge new heads into the view. Returns the listing."""
        for _ in range(self.tuning.attempts):
            listing = self.bridge.files(self.bucket_id)
            try:
                self._adopt_listing(listing)
                return listing
            except errors.NotFound:
                continue   # a head was superseded and deleted while we read it: list again
        raise errors.TransientError("the bucket's manifests kept changing while they were read")

    def _adopt_listing(self, listing: list[FileEntry]) -> None:
        self._sizes.update((e.hash, e.size) for e in listing if mf.is_manifest_name(e.filename))
        heads = self._heads(listing)
        with self.lock:
            self.content = {e.hash: e for e in listing if not mf.is_manifest_name(e.filename)}
            if self.cached is not None and heads == self.cached.heads:
                return
            if heads:
                doc = mf.merge(self._doc(h) for h in sorted(heads))
            elif self.cached is not None and self.cached.heads:
                doc = Manifest()   # every manifest is gone (the bucket was emptied by hand)
            else:
                doc = self._adopted(listing) if self.cached is None else self.cached.doc
            self.cached = Cached(heads, doc)
            self._combined = self._index = None
            self._save_view()

    def _heads(self, listing: list[FileEntry]) -> frozenset[str]:
        present = {e.hash for e in listing if mf.is_manifest_name(e.filename)}
        if self.cached is not None and present == self.cached.heads:
            return self.cached.heads
        parents = {p for h in present for p in self._doc(h).parents}
        return frozenset(present - parents)

    def _doc(self, address: str) -> Manifest:
        found = self._docs.get(address)
        if found is None:
            with open_download(self.bridge, self.bucket_id, address, self._manifest_size(address),
                               self.tuning, path=".manifest", sleep=self.sleep) as f:
                data = f.read(MAX_MANIFEST)
            try:
                found = self._docs[address] = Manifest.decode(data)
            except ValueError as exc:
                raise errors.PermanentError(f"the bucket's manifest {address} does not read: {exc}") from exc
        return found

    def _manifest_size(self, address: str) -> int:
        if address not in self._sizes:
            raise errors.NotFound(f"manifest {address} is gone")
        return self._sizes[address]

    def _adopted(self, listing: list[FileEntry]) -> Manifest:
        """A bucket with files and no manifest yet (another client filled it): its files
        become items at their file names, the same way on every machine."""
        items: dict[str, Item] = {}
        for e in sorted(listing, key=lambda e: e.hash):
            name = _clean_name(e.filename) or e.hash
            if name in items:
                stem, ext = posixpath.splitext(name)
                name = f"{stem} ({e.hash[:8]}){ext}"
            items[name] = Item(mf.FILE, f"000000000000-{e.hash[:8]}", (), e.hash[:16], e.hash, e.size, 0, "", 0.0)
        return Manifest(items=items)

    # ---- writing ------------------------------------------------------------------------------
    def flush(self) -> bool:
        """Write the pending changes into the bucket's manifest; True if there were any."""
        with self.lock:
            snapshot = dict(self.pending)
        if not snapshot:
            return False
        written = False
        for round_ in range(max(1, self.tuning.manifest_races)):
            listing = self.refresh()
            mine = self._write_round(snapshot, listing)
            written = True
            after = self.refresh()
            assert self.cached is not None
            heads = self.cached.heads
            if not any(h != mine and mine not in self._doc(h).parents for h in heads):
                if heads == {mine}:
                    self._collect(listing_after=after)
                break
            self.races += 1
            self.log.warning("metadisk: another machine wrote the manifest at the same time; merging again",
                             heads=len(self.cached.heads), round=round_ + 1)
            self.sleep(random.uniform(0, self.tuning.backoff_base))
        if written:
            self._clear(snapshot)
        return True

    def _write_round(self, snapshot: dict[str, Item], listing: list[FileEntry]) -> str:
        assert self.cached is not None
        now = self.clock()
        current = self.cached
        items = mf.overlay(current.doc.items, snapshot)
        horizon = now - self.tuning.tombstone_days * 86400
        items = {p: it for p, it in items.items() if it.live or it.t >= horizon}
        referenced = {it.h for it in items.values() if it.kind == mf.FILE}
        content = {e.hash for e in listing if not mf.is_manifest_name(e.filename)}
        garbage = {h: t for h, t in current.doc.garbage.items() if h in content and h not in referenced}
        # only content a manifest already marked may go: what another machine uploaded a moment ago
        # and has not named yet is marked now and named by that machine long before its grace ends
        self._collectable = set(garbage)
        for h in sorted(content - referenced - set(garbage)):
            garbage[h] = now
        doc = Manifest(current.doc.generation + 1, tuple(sorted(current.heads)), items, garbage)
        data = doc.encode()
        entry = self.bridge.upload(self.bucket_id, io.BytesIO(data), len(data),
                                   mf.manifest_filename(doc.generation, self.writer), error_path=".manifest")
        self._docs[entry.hash] = doc
        self._sizes[entry.hash] = entry.size
        return entry.hash

    def _collect(self, listing_after: list[FileEntry]) -> None:
        """After a clean write: drop the manifests ours supersedes, and content unreferenced past its grace."""
        assert self.cached is not None
        head = next(iter(self.cached.heads))
        doc = self._docs[head]
        present = {e.hash for e in listing_after}
        for old in doc.parents:
            if old in present and old != head:
                self._delete(old)
        now = self.clock()
        for h, since in sorted(doc.garbage.items()):
            if now - since >= self.tuning.gc_grace and h in present and h in self._collectable:
                self._delete(h)

    def _delete(self, address: str) -> None:
        try:
            self.bridge.delete_file(self.bucket_id, address)
        except errors.NotFound:
            pass
        except errors.ProviderError as exc:   # a leftover, not a failure: the next write tries again
            self.log.warning("metadisk: could not delete an old object", error=str(exc))

    def _clear(self, snapshot: dict[str, Item]) -> None:
        with self.lock:
            for path, item in snapshot.items():
                if self.pending.get(path) == item:
                    del self.pending[path]
                    self.state.put(PENDING_PREFIX + path, None)

    def iter_live(self, prefix: str) -> Iterator[tuple[str, Item]]:
        for path, item in self.items().items():
            if item.live and (not prefix or path == prefix or path.startswith(prefix + "/")):
                yield path, item


class Index:
    """Derived from the items, kept current as items are added (a removal rebuilds it lazily)."""

    def __init__(self, implied: set[str], addresses: dict[str, int]) -> None:
        self.implied, self.addresses = implied, addresses
        self.stale = False

    @classmethod
    def of(cls, items: dict[str, Item]) -> Index:
        index = cls(set(), {})
        for path, item in items.items():
            index._add(path, item)
        return index

    def _add(self, path: str, item: Item) -> None:
        if not item.live:
            return
        parent = posixpath.dirname(path)
        while parent and parent not in self.implied:
            self.implied.add(parent)
            parent = posixpath.dirname(parent)
        if item.kind == mf.FILE:
            self.addresses[item.h] = self.addresses.get(item.h, 0) + 1

    def changed(self, path: str, before: Item | None, after: Item) -> None:
        if before is not None and before.live:
            if not after.live:
                self.stale = True      # a folder may no longer be implied: recount on next use
            if before.kind == mf.FILE:
                self.addresses[before.h] -= 1
                if not self.addresses[before.h]:
                    del self.addresses[before.h]
        self._add(path, after)


def _clean_name(filename: str) -> str:
    name = filename.replace("/", "_").replace("\\", "_").replace("\x00", "").strip()
    return "" if name in (".", "..") or mf.is_manifest_name(name) else name
