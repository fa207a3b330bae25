"""The local scan, the remote listing and the base, merged in one pass.

All three come in one order, ascending code-point order of the NFC path
(scan.walk, a provider's sorted listing or the engine's sort of it, the
base's primary key), so a path unchanged on both sides since the base is
recognised when its three records meet and dropped at once: a no-op run
over a big tree holds one folder of each side, not three trees. What is
not quiet is kept whole for the views and the pure planner, which need
every changed path together (moves pair adds with deletes across the tree).

The merge never trusts the order for correctness: a path is dropped only
when all three records were seen at one step and agree. A stream that
breaks the order (an odd name a provider sorts otherwise) only keeps more
paths in view, each with all it has, never loses one.
"""

from __future__ import annotations

from collections.abc import Iterable

from syncagent.engine.records import FILE, Entry
from syncagent.native import NATIVE
from syncagent.paths import nfc
from syncagent.providers.base import RemoteEntry

# (path, kind, size, mtime_ns, ino, rrev): the base row as Store.iter_base_brief streams it
BaseBrief = tuple[str, str, int, int, int, str]


class Merged:
    """What is left of the three streams: the paths a run must look at.
    (A plain class: every sync imports this module, and a dataclass would import inspect.)"""

    def __init__(self, local: dict[str, Entry] | None = None, remote: list[RemoteEntry] | None = None,
                 changed: list[str] | None = None, local_count: int = 0, remote_count: int = 0,
                 base_files: int = 0, local_files: bool = False, remote_files: bool = False) -> None:
        self.local: dict[str, Entry] = {} if local is None else local
        self.remote: list[RemoteEntry] = [] if remote is None else remote
        self.changed: list[str] = [] if changed is None else changed  # base paths not quiet: full rows loaded
        self.local_count, self.remote_count, self.base_files = local_count, remote_count, base_files
        self.local_files, self.remote_files = local_files, remote_files

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Merged) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Merged({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def remote_key(e: RemoteEntry) -> str:
    """The merge key of a remote entry: its NFC path."""
    path = e.path
    return path if path.isascii() else nfc(path)


def sorted_listing(entries: Iterable[RemoteEntry]) -> list[RemoteEntry]:
    """A listing of a provider that does not declare `sorted_listing`, put in merge order."""
    return sorted(entries, key=remote_key)


def merge(local: Iterable[tuple[str, Entry]], remote: Iterable[RemoteEntry], base: Iterable[BaseBrief],
          *, prune: bool = True) -> Merged:
    """Merge the three streams; with `prune`, drop every path whose local
    entry (size, mtime, inode) and remote rev match its base row. `prune`
    off (a case-insensitive remote: the name-clash check needs every name)
    keeps all. The native module's twin of this loop runs where it is built."""
    if NATIVE is not None:
        local_kept, remote_kept, changed, *counts = NATIVE.merge(local, remote, base, prune, nfc)
        return Merged(local_kept, remote_kept, changed, *counts)
    return merge_py(local, remote, base, prune=prune)


def merge_py(local: Iterable[tuple[str, Entry]], remote: Iterable[RemoteEntry], base: Iterable[BaseBrief],
             *, prune: bool = True) -> Merged:
    """merge() in Python: the reference the native loop is tested against."""
    out = Merged()
    lit, rit, bit = iter(local), iter(remote), iter(base)
    lhead, rhead, bhead = next(lit, None), next(rit, None), next(bit, None)
    rkey = remote_key(rhead) if rhead is not None else None
    keep_local, keep_remote, keep_base = out.local.__setitem__, out.remote.append, out.changed.append
    local_count = remote_count = base_files = 0
    local_files = remote_files = False
    while True:   # the hot loop of a no-op run: plain locals, few calls
        key = lhead[0] if lhead is not None else rkey if rkey is not None else \
            bhead[0] if bhead is not None else None
        if key is None:
            break
        if rkey is not None and rkey < key:
            key = rkey
        if bhead is not None and bhead[0] < key:
            key = bhead[0]
        l = r = b = None
        twins: list[RemoteEntry] | None = None
        if lhead is not None and lhead[0] == key:
            l, lhead = lhead[1], next(lit, None)
            local_count += 1
            if not local_files and l.kind == FILE:
                local_files = True
        if rkey == key and rhead is not None:
            r = rhead
            rhead = next(rit, None)
            rkey = None if rhead is None else rhead.path if rhead.path.isascii() else nfc(rhead.path)
            while rkey == key and rhead is not None:
                # two spellings of one name (NFC and NFD): never quiet, and the views skip the name
                twins = twins or []
                twins.append(rhead)
                rhead = next(rit, None)
                rkey = None if rhead is None else remote_key(rhead)
            remote_count += 1 + (len(twins) if twins else 0)
            if not remote_files and (r.kind == FILE or (twins and any(e.kind == FILE for e in twins))):
                remote_files = True
        if bhead is not None and bhead[0] == key:
            b, bhead = bhead, next(bit, None)
            if b[1] == FILE:
                base_files += 1
        if prune and l is not None and r is not None and b is not None and twins is None and r.path == key:
            # unchanged on both sides since the base: size, mtime and inode here, the rev there
            if b[1] == FILE:
                if (l.kind == FILE and r.kind == FILE and l.size == b[2] and l.mtime_ns == b[3] and l.ino == b[4]
                        and r.rev == b[5]):
                    continue
            elif l.kind == b[1] and r.kind == b[1]:
                continue
        if l is not None:
            keep_local(key, l)
        if r is not None:
            keep_remote(r)
            if twins:
                out.remote.extend(twins)
        if b is not None:
            keep_base(key)
    out.local_count, out.remote_count, out.base_files = local_count, remote_count, base_files
    out.local_files, out.remote_files = local_files, remote_files
    return out
