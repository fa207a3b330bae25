"""What changed on the remote since the base: the poller's question.

With a change feed (`capabilities.change_feed`), the provider answers from
its cursor in O(changes): a quiet poll is one request. Without one, the
listing is compared with the base (no local walk, no hashing). Either way
the answer is the set of paths a partial run must look at, or None for
"look at everything" (no base yet, the root is gone, the feed was reset).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncagent.engine.merge import BaseBrief, remote_key
from syncagent.engine.records import FILE
from syncagent.engine.state import Store
from syncagent.paths import IgnoreRules, parent
from syncagent.providers.base import Deleted, Provider, RemoteEntry


@dataclass(frozen=True)
class RemoteChanges:
    """`paths`: what a run must look at (None: everything). `cursor`: the
    feed position after them, to be committed with the base of the run that
    syncs them (so a failed run asks again from the old position)."""

    paths: set[str] | None
    cursor: str | None = None


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


def from_listing(remote: Provider, store: Store, pair: int, rules: IgnoreRules) -> RemoteChanges:
    """The listing compared with the base, no local walk, no hashing. A
    provider that lists in path order (`sorted_listing`) is merged with the
    base as both stream, holding only what changed; any other listing is
    held as (kind, rev) per path with the base streamed against it (100,000
    files: ~50 MB less at the peak than full base rows beside the listing)."""
    if remote.capabilities.sorted_listing:
        changed, gone = _diff_sorted(remote.list(), store.iter_base_brief(pair), rules)
    else:
        changed, gone = _diff_held(remote.list(), store.iter_base_brief(pair), rules)
    skipped = remote.skipped()
    changed.update(p for p in gone if p not in skipped)   # a skipped name is never a deletion
    return RemoteChanges(_outermost(changed))


def _diff_held(listing: Iterable[RemoteEntry], base: Iterable[BaseBrief], rules: IgnoreRules
               ) -> tuple[set[str], list[str]]:
    listed: dict[str, tuple[str, str]] = {}
    for e in listing:
        if not (rules and rules.matches(e.path, e.kind == "dir")):
            listed[e.path] = (e.kind, e.rev)
    changed: set[str] = set()
    gone: list[str] = []
    for path, kind, _size, _mtime_ns, _ino, rrev in base:
        found = listed.pop(path, None)
        if found is None:
            if not (rules and rules.matches(path, kind == "dir")):
                gone.append(path)
        elif found[0] != kind or (kind == FILE and found[1] != rrev):
            changed.add(path)
    changed.update(listed)              # new on the remote
    return changed, gone


def _diff_sorted(listing: Iterable[RemoteEntry], base: Iterable[BaseBrief], rules: IgnoreRules
                 ) -> tuple[set[str], list[str]]:
    """Both streams in one order (merge.py): a path is unchanged when its two
    records meet and agree. Out of order, a path only comes out as both new
    and gone: a partial run then looks at it, which costs a stat, never a file."""
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
        elif e is not None:             # one path on both: compared as _diff_held does
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
