"""What changed on the remote since the base: the poller's question.

With a change feed (`capabilities.change_feed`), the provider answers from
its cursor in O(changes): a quiet poll is one request. Without one, the
listing is compared with the base (no local walk, no hashing). Either way
the answer is the set of paths a partial run must look at, or None for
"look at everything" (no base yet, the root is gone, the feed was reset).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """The listing held as (kind, rev) per path, the base streamed against
    it: a poll of a big tree holds one compact copy of it, never the base's
    full rows beside the listing (100,000 files: ~50 MB less at the peak)."""
    listed: dict[str, tuple[str, str]] = {}
    for e in remote.list():
        if not (rules and rules.matches(e.path, e.kind == "dir")):
            listed[e.path] = (e.kind, e.rev)
    skipped = remote.skipped()
    changed: set[str] = set()
    for path, kind, _size, _mtime_ns, _ino, rrev in store.iter_base_brief(pair):
        found = listed.pop(path, None)
        if found is None:
            if path not in skipped and not (rules and rules.matches(path, kind == "dir")):
                changed.add(path)       # gone from the remote
        elif found[0] != kind or (kind == FILE and found[1] != rrev):
            changed.add(path)
    changed.update(listed)              # new on the remote
    return RemoteChanges(_outermost(changed))


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
