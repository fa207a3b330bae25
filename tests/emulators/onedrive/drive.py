"""One OneDrive drive as the emulator keeps it: items, their tags, the change
log the delta feed reads, and the recycle bin (spec §3, §5, §9).

Metadata lives in memory; file contents are blobs in a temp folder (a new
content is a new blob, swapped in under the lock). Every mutation goes
through `changed()`, which bumps the item's eTag (and cTag when the content
changed), gives it the next sequence number and appends to the log; the
item's ancestors are logged too (their size and cTag follow their contents,
so they show up in delta, as on the real service).
"""

from __future__ import annotations

import bisect
import itertools
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulators.onedrive.errors import GraphError

FORBIDDEN = set('"*:<>?/\\|')
RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d|\.lock|desktop\.ini)$", re.IGNORECASE)
MAX_NAME = 255
MAX_PATH = 400
CONFLICT_BEHAVIOURS = ("fail", "replace", "rename")


@dataclass
class Item:
    id: str
    name: str
    parent: str | None              # None: the root
    folder: bool
    created: float                  # service times
    modified: float
    fs_created: float               # fileSystemInfo (client-settable)
    fs_modified: float
    etag: int = 1
    ctag: int = 1
    size: int = 0                   # files: bytes; folders: computed
    blob: Path | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    mime: str = "application/octet-stream"
    description: str | None = None
    children: dict[str, str] = field(default_factory=dict)   # casefolded name -> id
    deleted: bool = False
    in_bin: bool = False            # the top of a deleted subtree (it holds the bin's bytes)
    seq: int = 0
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    facets: dict[str, Any] = field(default_factory=dict)   # more of them, as tests set them (package, remoteItem)


@dataclass(frozen=True)
class LogEntry:
    seq: int
    item: str
    was_under: frozenset[str]       # the item's ancestors before this change


def check_name(name: str) -> None:
    """OneDrive's name rules (spec §4; reserved names and lengths: the
    documented restrictions) -> 400 invalidRequest/invalidPath."""
    bad = (not name or name in (".", "..") or any(c in FORBIDDEN for c in name) or name != name.strip(" ")
           or name.endswith(".") or RESERVED.match(name) is not None or name.startswith("~$")
           or "_vti_" in name.lower() or len(name) > MAX_NAME or "\x00" in name)
    if bad:
        raise GraphError(400, "invalidRequest", f"The name {name[:60]!r} is not valid on OneDrive.",
                         inner="invalidPath")


class Drive:
    """One user's drive. Callers hold `lock` around every call."""

    def __init__(self, drive_id: str, owner: str, storage: Path, clock: Callable[[], float],
                 lock: threading.RLock, quota_total: int) -> None:
        self.id, self.owner, self.storage, self.clock, self.lock = drive_id, owner, storage, clock, lock
        self.quota_total = quota_total
        self.items: dict[str, Item] = {}
        self.log: list[LogEntry] = []
        self.seq = 0
        self._ids = itertools.count(101)
        now = clock()
        self.root = self._new_item("root", None, True, now, now)

    # ---- ids, blobs ----------------------------------------------------------
    def new_id(self) -> str:
        return f"{self.id.upper()}!{next(self._ids)}"

    def new_blob(self) -> Path:
        return self.storage / f"blob-{self.id}-{next(self._ids)}"

    def _new_item(self, name: str, parent: Item | None, folder: bool, fs_created: float,
                  fs_modified: float) -> Item:
        now = self.clock()
        item = Item(self.new_id(), name, parent.id if parent else None, folder, now, now,
                    int(fs_created), int(fs_modified))
        self.items[item.id] = item
        if parent is not None:
            parent.children[name.casefold()] = item.id
        self.changed(item, content=True, was_under=frozenset())
        return item

    # ---- lookups --------------------------------------------------------------
    def get(self, item_id: str) -> Item:
        item = self.items.get(item_id)
        if item is None or item.deleted:
            raise GraphError(404, "itemNotFound", "Item does not exist")
        return item

    def child(self, folder: Item, name: str) -> Item | None:
        found = folder.children.get(name.casefold())
        return self.items[found] if found is not None else None

    def walk(self, start: Item, segments: list[str]) -> Item:
        """Path addressing: names compare case-insensitively."""
        item = start
        for name in segments:
            nxt = self.child(item, name) if item.folder else None
            if nxt is None:
                raise GraphError(404, "itemNotFound", "Item does not exist")
            item = nxt
        return item

    def ancestors(self, item: Item) -> list[Item]:
        out = []
        while item.parent is not None:
            item = self.items[item.parent]
            out.append(item)
        return out

    def path_of(self, item: Item) -> str:
        """'/drive/root:/a/b' style parentReference.path of `item`'s children."""
        names = [a.name for a in reversed(self.ancestors(item))][1:] + ([item.name] if item.parent else [])
        return "/drive/root:" + ("/" + "/".join(names) if names else "")

    def is_under(self, item: Item, scope: Item) -> bool:
        return item.id == scope.id or any(a.id == scope.id for a in self.ancestors(item))

    def descendants(self, folder: Item) -> Iterator[Item]:
        """Pre-order: parents before children."""
        for child_id in list(folder.children.values()):
            child = self.items[child_id]
            yield child
            if child.folder:
                yield from self.descendants(child)

    def folder_size(self, folder: Item) -> int:
        return sum(i.size for i in self.descendants(folder) if not i.folder)

    # ---- the change log -----------------------------------------------------------
    def changed(self, item: Item, *, content: bool = False, was_under: frozenset[str] | None = None) -> None:
        """Record a change of `item` (new tags, next seq), and of its ancestors."""
        if was_under is None:
            was_under = frozenset(a.id for a in self.ancestors(item))
        self._log(item, was_under, content)
        for a in self.ancestors(item):
            self._log(a, frozenset(x.id for x in self.ancestors(a)), content=True)

    def _log(self, item: Item, was_under: frozenset[str], content: bool) -> None:
        self.seq += 1
        item.seq = self.seq
        item.etag += 1
        if content:
            item.ctag += 1
        item.modified = self.clock()
        self.log.append(LogEntry(self.seq, item.id, was_under))

    def changes_since(self, seq: int) -> list[LogEntry]:
        return self.log[bisect.bisect_right(self.log, seq, key=lambda e: e.seq):]

    # ---- quota -------------------------------------------------------------------
    def usage(self) -> tuple[int, int]:
        """(bytes of live files, bytes in the recycle bin)."""
        live = binned = 0
        for item in self.items.values():
            if item.folder:
                continue
            if not item.deleted:
                live += item.size
            elif self._binned(item):
                binned += item.size
        return live, binned

    def _binned(self, item: Item) -> bool:
        while True:
            if item.in_bin:
                return True
            if item.parent is None:
                return False
            item = self.items[item.parent]

    def check_space(self, extra: int) -> None:
        live, binned = self.usage()
        if live + binned + extra > self.quota_total:
            raise GraphError(507, "quotaLimitReached", "Insufficient Space Available")

    # ---- mutations ---------------------------------------------------------------
    def settle_name(self, parent: Item, name: str, behaviour: str, replacing: Item | None = None) -> str | Item:
        """Apply @microsoft.graph.conflictBehavior to `name` in `parent`: the
        name to use, or the existing item to replace."""
        if behaviour not in CONFLICT_BEHAVIOURS:
            raise GraphError(400, "invalidRequest", f"Invalid conflictBehavior {behaviour!r}")
        existing = self.child(parent, name)
        if existing is None or existing is replacing:
            return name
        if behaviour == "fail":
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        if behaviour == "replace":
            return existing
        stem, dot, ext = name.rpartition(".")
        stem, ext = (stem, dot + ext) if stem else (name, "")
        for n in itertools.count(1):
            candidate = f"{stem} {n}{ext}"
            if self.child(parent, candidate) is None:
                return candidate
        raise AssertionError("unreachable")

    def mkdir(self, parent: Item, name: str, behaviour: str = "fail") -> tuple[Item, bool]:
        """(folder, created)."""
        check_name(name)
        self._check_path(parent, name)
        settled = self.settle_name(parent, name, behaviour)
        if isinstance(settled, Item):
            if not settled.folder:
                raise GraphError(409, "nameAlreadyExists", "A file with that name already exists.")
            return settled, False
        now = self.clock()
        return self._new_item(settled, parent, True, now, now), True

    def _check_path(self, parent: Item, name: str) -> None:
        if len(self.path_of(parent).removeprefix("/drive/root:")) + 1 + len(name) > MAX_PATH:
            raise GraphError(400, "invalidRequest", "The path is too long.", inner="pathIsTooLong")

    def store_file(self, parent: Item, name: str, blob: Path, size: int, hashes: dict[str, str],
                   behaviour: str, fs_info: dict[str, float], target: Item | None = None,
                   mime: str = "application/octet-stream") -> tuple[Item, bool]:
        """Commit a new content (a blob already written); (item, created)."""
        if target is None:
            check_name(name)
            self._check_path(parent, name)
            settled = self.settle_name(parent, name, behaviour)
            target = settled if isinstance(settled, Item) else None
            name = settled if isinstance(settled, str) else name
        if target is not None and target.folder:
            raise GraphError(409, "nameAlreadyExists", "A folder with that name already exists.")
        self.check_space(size - (target.size if target is not None else 0))
        now = self.clock()
        created = target is None
        if target is None:
            target = self._new_item(name, parent, False, fs_info.get("created", now), fs_info.get("modified", now))
        else:
            target.fs_modified = int(fs_info.get("modified", now))
            if "created" in fs_info:
                target.fs_created = int(fs_info["created"])
        old = target.blob
        target.blob, target.size, target.hashes, target.mime = blob, size, hashes, mime
        if old is not None:
            _unlink(old)
        self.changed(target, content=True)
        return target, created

    def update(self, item: Item, *, name: str | None = None, parent: Item | None = None,
               description: str | None = None, fs_info: dict[str, float] | None = None,
               behaviour: str = "fail") -> Item:
        was_under = frozenset(a.id for a in self.ancestors(item))
        new_parent = parent or (self.items[item.parent] if item.parent else None)
        new_name = name if name is not None else item.name
        if item.parent is None and (name is not None or parent is not None):
            raise GraphError(400, "invalidRequest", "The root cannot be moved or renamed.")
        if new_parent is not None and (new_parent.id != item.parent or new_name != item.name):
            if not new_parent.folder or self.is_under(new_parent, item):
                raise GraphError(400, "invalidRequest", "Cannot move an item into itself or into a file.")
            check_name(new_name)
            self._check_path(new_parent, new_name)
            settled = self.settle_name(new_parent, new_name, behaviour, replacing=item)
            if isinstance(settled, Item):  # replace: the other item goes to the bin
                self.delete(settled)
                settled = new_name
            old_parent = self.items[item.parent] if item.parent else None
            if old_parent is not None:
                old_parent.children.pop(item.name.casefold(), None)
                self.changed(old_parent, content=True)
            item.name, item.parent = settled, new_parent.id
            new_parent.children[settled.casefold()] = item.id
        if description is not None:
            item.description = description
        if fs_info:
            item.fs_modified = int(fs_info.get("modified", item.fs_modified))
            item.fs_created = int(fs_info.get("created", item.fs_created))
        self.changed(item, was_under=was_under)
        return item

    def delete(self, item: Item) -> None:
        """To the recycle bin: the item and everything below it leave the tree
        (each logged as deleted), the bytes keep counting in the quota."""
        if item.parent is None:
            raise GraphError(403, "accessDenied", "The root cannot be deleted.")
        parent = self.items[item.parent]
        subtree = [item, *self.descendants(item)] if item.folder else [item]
        unders = {i.id: frozenset(a.id for a in self.ancestors(i)) for i in subtree}
        parent.children.pop(item.name.casefold(), None)
        item.in_bin = True
        for i in subtree:
            i.deleted = True
            self._log(i, unders[i.id], content=True)
        self.changed(parent, content=True)

    def restore(self, item: Item) -> Item:
        """Back from the recycle bin to its old folder (which must still exist)."""
        if not item.in_bin:
            raise GraphError(400, "invalidRequest", "The item is not in the recycle bin.")
        parent = self.items[item.parent] if item.parent else None
        if parent is None or parent.deleted:
            raise GraphError(409, "nameAlreadyExists", "The original folder no longer exists.")
        if self.child(parent, item.name) is not None:
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        item.in_bin = False
        parent.children[item.name.casefold()] = item.id
        for i in [item, *self.descendants_of_deleted(item)]:
            i.deleted = False
            self.changed(i, content=True)
        return item

    def descendants_of_deleted(self, folder: Item) -> Iterator[Item]:
        for child_id in folder.children.values():
            child = self.items[child_id]
            yield child
            if child.folder:
                yield from self.descendants_of_deleted(child)

    def populate(self, count: int, per_folder: int = 1000, top: str = "populated") -> None:
        """`count` empty files in folders of `per_folder` below /`top` (benchmarks:
        a big drive without a request per item). Their content is empty, no blob."""
        from tests.emulators.onedrive.transfers import Hashes

        empty = Hashes().result()
        base, _ = self.mkdir(self.root, top, "replace")
        folder = base
        for n in range(count):
            if n % per_folder == 0:
                folder, _ = self.mkdir(base, f"d{n // per_folder:05d}", "replace")
            now = self.clock()
            item = self._new_item(f"f{n:07d}.txt", folder, False, now, now)
            item.hashes = dict(empty)

    def copy_tree(self, src: Item, parent: Item, name: str) -> Item:
        """A server-side copy of a file or folder (new ids, shared contents copied)."""
        if src.folder:
            folder, _ = self.mkdir(parent, name, "fail")
            for child in [self.items[c] for c in src.children.values()]:
                self.copy_tree(child, folder, child.name)
            return folder
        blob = self.new_blob()
        if src.blob is not None:
            shutil.copyfile(src.blob, blob)
        else:
            blob.touch()
        item, _ = self.store_file(parent, name, blob, src.size, dict(src.hashes), "fail",
                                  {"created": src.fs_created, "modified": src.fs_modified}, mime=src.mime)
        return item


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
