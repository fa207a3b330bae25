"""What changed on the remote since the base: the poller's question.

With a change feed (`capabilities.change_feed`), the provider answers from
its cursor in O(changes): a quiet poll is one request. Without one, the
listing is compared with the base (no local walk, no hashing). Either way
the answer is the set of paths a partial run must look at, or None for
"look at everything" (no base yet, the root is gone, the feed was reset).
"""

from __future__ import annotations

from collections.abc import Iterable

from syncagent.engine.merge import BaseBrief, remote_key
from syncagent.engine.records import FILE
from syncagent.engine.spill import Spill
from syncagent.engine.state import Store
from syncagent.paths import IgnoreRules, parent
from syncagent.providers.base import Deleted, Provider, RemoteEntry

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from typing import Final


class RemoteChanges:
    """`paths`: what a run must look at (None: everything). `cursor`: the
    feed position after them, to be committed with the base of the run that
    syncs them (so a failed run asks again from the old position).
    (A plain class: a dataclass compiles its methods when every sync imports this module.)"""

    __slots__ = ("cursor", "paths")

    def __init__(self, paths: set[str] | None, cursor: str | None = None) -> None:
        self.paths: Final = paths
        self.cursor: Final = cursor

    def __repr__(self) -> str:
        return f"RemoteChanges(paths={self.paths!r}, cursor={self.cursor!r})"


def from_feed(remote: Provider, store: Store, pair: int, rules: IgnoreRules) -> RemoteChanges:
    cursor = store.get_cursor(pair)
    batch = remote.changes(cursor)
    if cursor is None or batch.reset:
        return RemoteChanges(None, batch.cursor)
    paths: set[str] = set()
    for change in batch.changes:
        is_dir = isinstance(change, RemoteEntry) and change.kind == "dir"
        if rules and rules.matches(change.path, is_dir):
            continue
        paths.add(change.path)
        if isinstance(change, Deleted):
            continue
    if not paths:
        # nothing to sync: the new position can be kept at once
        store.set_cursor(pair, batch.cursor)
    return RemoteChanges(_outermost(paths), batch.cursor)


def from_listing(remote: Provider, store: Store, pair: int, rules: IgnoreRules, spill: Spill) -> RemoteChanges:
    """The listing compared with the base, no local walk, no hashing: both
    streams in one order, merged as they come, holding only what changed. A
    provider that does not list in that order (`sorted_listing`) is sorted
    first, on disk past a bound (spill.py)."""
    listing = remote.list()
    if not remote.capabilities.sorted_listing:
        listing = spill.sort_listing(listing)
    changed, gone = _diff_sorted(listing, store.iter_base_brief(pair), rules)
    skipped = remote.skipped()
    changed.update(p for p in gone if p not in skipped)   # a skipped name is never a deletion
    return RemoteChanges(_outermost(changed))


def _diff_sorted(listing: Iterable[RemoteEntry], base: Iterable[BaseBrief], rules: IgnoreRules
                 ) -> tuple[set[str], list[str]]:
    """Both streams in one order (merge.py): a path is unchanged when its two
    records meet and agree. Out of order, a path only comes out as both new
    and gone: a partial run then looks at it, which costs a stat, never a file.
    A remote spelling of a base path (NFD) counts as both new and gone, a
    second spelling listed for one name as new."""
    changed: set[str] = set()
    gone: list[str] = []
    lit, bit = iter(listing), iter(base)
    e, b = next(lit, None), next(bit, None)
    while e is not None or b is not None:
        ekey = remote_key(e) if e is not None else None
        if b is None or (ekey is not None and ekey < b[0]):
            if e is not None and not (rules and rules.matches(e.path, e.kind == "dir")):
                changed.add(e.path)     # new on the remote
            e = next(lit, None)
        elif ekey is None or b[0] < ekey:
            if not (rules and rules.matches(b[0], b[1] == "dir")):
                gone.append(b[0])
            b = next(bit, None)
        elif e is not None:             # one path on both
            if rules and rules.matches(e.path, e.kind == "dir"):
                if not rules.matches(b[0], b[1] == "dir"):
                    gone.append(b[0])
            elif e.path != b[0]:        # spelled otherwise on the remote (NFD)
                changed.add(e.path)
                gone.append(b[0])
            elif e.kind != b[1] or (b[1] == FILE and e.rev != b[5]):
                changed.add(e.path)
            e, b = next(lit, None), next(bit, None)
    return changed, gone


def _outermost(paths: set[str]) -> set[str] | None:
    """A partial run scans below each path, so children of a dirty folder go.
    Non-ASCII names ask for a whole run (a partial run cannot match NFC/NFD
    spellings of one name)."""
    if any(not p.isascii() for p in paths):
        return None
    return {p for p in paths if not _has_dirty_ancestor(p, paths)}


def _has_dirty_ancestor(path: str, paths: set[str]) -> bool:
    q = parent(path)
    while q:
        if q in paths:
            return True
        q = parent(q)
    return False
