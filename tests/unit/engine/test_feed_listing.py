"""A poll without a change feed: the listing against the base. Streamed
(a sorted listing merged with the base) it finds what the plain comparison
of a listing held whole finds, in order or not."""

from __future__ import annotations

import random
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine.feed import _diff_sorted
from syncagent.engine.merge import BaseBrief, sorted_listing
from syncagent.engine.records import FILE
from syncagent.paths import IgnoreRules
from syncagent.providers.base import Kind, RemoteEntry

NAMES = ["a", "a-b", "a/b", "a/b/c", "a.tmp", "a0", "B", "b", "x/y.tmp", "é"]

# per path: (listed, in the base, listed kind is dir, base kind is dir, rev changed)
CASES = st.dictionaries(st.sampled_from(NAMES), st.tuples(*(st.booleans() for _ in range(5))), max_size=len(NAMES))


def _streams(cases: dict[str, tuple[bool, bool, bool, bool, bool]]) -> tuple[list[RemoteEntry], list[BaseBrief]]:
    listing, base = [], []
    for path, (listed, in_base, ldir, bdir, changed) in cases.items():
        if listed:
            listing.append(RemoteEntry(path, Kind.DIR if ldir else Kind.FILE, 1, 1, "r2" if changed else "r1"))
        if in_base:
            base.append((path, "dir" if bdir else "file", 1, 1, 1, "r1"))
    return sorted_listing(listing), sorted(base)


def _diff_held(listing: Iterable[RemoteEntry], base: Iterable[BaseBrief], rules: IgnoreRules
               ) -> tuple[set[str], list[str]]:
    """The oracle: the listing held as path -> (kind, rev), the base looked up in it."""
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


@given(CASES, st.booleans(), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_the_streamed_diff_finds_what_the_held_one_finds(
        cases: dict[str, tuple[bool, bool, bool, bool, bool]], with_rules: bool, rnd: random.Random) -> None:
    rules = IgnoreRules(["*.tmp"] if with_rules else [])
    listing, base = _streams(cases)
    held_changed, held_gone = _diff_held(listing, base, rules)
    changed, gone = _diff_sorted(listing, base, rules)
    assert (changed, sorted(gone)) == (held_changed, sorted(held_gone))
    rnd.shuffle(listing)
    rnd.shuffle(base)
    changed, gone = _diff_sorted(listing, base, rules)
    assert held_changed <= changed and set(held_gone) <= set(gone), "out of order: more to look at, never less"
