"""The one-pass merge of the local scan, the remote listing and the base:
a path unchanged on both sides is dropped, everything else is kept whole,
and a stream out of order costs pruning, never a path."""

from __future__ import annotations

import dataclasses
import io
import os
import random
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import scan
from syncagent.engine.merge import BaseBrief, Merged, merge, merge_py, sorted_listing
from syncagent.engine.records import DIR, FILE, Entry
from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.native import NATIVE
from syncagent.providers.base import Kind, RemoteEntry
from syncagent.providers.local import LocalProvider
from tests.helpers import age_files, tree, write


def _native_merge(*args: object, prune: bool = True) -> Merged:
    if NATIVE is None:
        pytest.skip("the native module is not built here (tests/unit/native checks that it is where it can be)")
    return merge(*args, prune=prune)  # type: ignore[arg-type]


# The merge's two implementations: every property below holds for both.
IMPLS = pytest.mark.parametrize("impl", [merge_py, _native_merge], ids=["python", "native"])

NAMES = ["a", "a-b", "a/b", "a/b/c", "a.txt", "a0", "B", "b", "é", "z/y", "a b"]


def _records(path: str, version: int) -> tuple[Entry, RemoteEntry, BaseBrief]:
    kind = DIR if path in ("a", "a/b", "z") else FILE
    if kind == DIR:
        return Entry(DIR, 0, 0, 7), RemoteEntry(path, Kind.DIR), (path, DIR, 0, 0, 0, "")
    return (Entry(FILE, 10, version, 7), RemoteEntry(path, Kind.FILE, 10, version, f"r{version}"),
            (path, FILE, 10, 1, 7, "r1"))


# Per path: which sides have it, and whether the local or the remote record differs from the base.
CASES = st.dictionaries(st.sampled_from(NAMES),
                        st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                        max_size=len(NAMES))


def _streams(cases: dict[str, tuple[bool, bool, bool, bool, bool]]
             ) -> tuple[list[tuple[str, Entry]], list[RemoteEntry], list[BaseBrief], set[str]]:
    local, remote, base, quiet = [], [], [], set()
    for path, (has_l, has_r, has_b, l_changed, r_changed) in cases.items():
        l, r, b = _records(path, 1)
        if l_changed and l.kind == FILE:
            l = l._replace(mtime_ns=2)
        if r_changed and r.kind == FILE:
            r = RemoteEntry(path, Kind.FILE, 10, 2, "r2")
        if has_l:
            local.append((path, l))
        if has_r:
            remote.append(r)
        if has_b:
            base.append(b)
        if has_l and has_r and has_b and (l.kind == DIR or not (l_changed or r_changed)):
            quiet.add(path)
    return sorted(local), sorted_listing(remote), sorted(base), quiet


@IMPLS
@given(CASES, st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_merge_keeps_exactly_what_is_not_quiet_and_tolerates_disorder(
        impl: Callable[..., Merged], cases: dict[str, tuple[bool, bool, bool, bool, bool]], rnd: random.Random
) -> None:
    local, remote, base, quiet = _streams(cases)
    out = impl(local, remote, base)
    assert out.local == {p: e for p, e in local if p not in quiet}
    assert out.remote == [e for e in remote if e.path not in quiet]
    assert out.changed == [b[0] for b in base if b[0] not in quiet]
    assert (out.local_count, out.remote_count) == (len(local), len(remote))
    assert out.base_files == sum(1 for b in base if b[1] == FILE)
    assert out.local_files == any(e.kind == FILE for _, e in local)
    assert out.remote_files == any(e.kind == FILE for e in remote)
    # Shuffled streams: nothing is lost; only a path whose three records met may go, and only if quiet.
    rnd.shuffle(local)
    rnd.shuffle(remote)
    rnd.shuffle(base)
    out = impl(local, remote, base)
    gone = ({p for p, _ in local} - set(out.local)) | ({e.path for e in remote} - {e.path for e in out.remote}) \
        | ({b[0] for b in base} - set(out.changed))
    assert gone <= quiet
    for p in gone:
        assert p not in out.local and p not in out.changed and all(e.path != p for e in out.remote)


@IMPLS
def test_without_prune_everything_is_kept(impl: Callable[..., Merged]) -> None:
    local, remote, base, quiet = _streams({p: (True, True, True, False, False) for p in NAMES})
    assert quiet == set(NAMES)
    out = impl(local, remote, base, prune=False)
    assert len(out.local) == len(NAMES) and len(out.remote) == len(NAMES) and len(out.changed) == len(NAMES)


@IMPLS
def test_two_remote_spellings_of_one_name_are_never_dropped(impl: Callable[..., Merged]) -> None:
    nfd = unicodedata.normalize("NFD", "é")
    l, r, b = _records("é", 1)
    twin = RemoteEntry(nfd, Kind.FILE, 10, 1, "r1")
    out = impl([("é", l)], sorted_listing([twin, r]), [b])
    assert {e.path for e in out.remote} == {"é", nfd} and out.local == {"é": l} and out.changed == ["é"]
    out = impl([("é", l)], [twin], [b])
    assert [e.path for e in out.remote] == [nfd], "a name the remote spells otherwise is re-keyed by the views"


class ShuffledProvider(LocalProvider):
    """A provider that lists in no particular order and says so."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, sorted_listing=False)

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        entries = list(super().list(path))
        random.Random(4).shuffle(entries)
        return iter(entries)


def _run(local: Path, provider: LocalProvider, state: Path) -> tuple[int, int, int, int]:
    store = Store(state)
    try:
        s = Engine(local, provider, "x", store, SyncOptions(), Reporter(out=io.StringIO(), err=io.StringIO())).sync()
    finally:
        store.close()
    assert s.errors == 0 and s.conflicts == 0
    return s.uploaded, s.downloaded, s.deleted_local + s.deleted_remote, s.moved


def test_a_sync_over_names_around_the_slash_converges_and_then_does_nothing(tmp_path: Path) -> None:
    for provider_type in (LocalProvider, ShuffledProvider):
        local, remote, state = (tmp_path / provider_type.__name__ / n for n in ("l", "r", "s"))
        for name in ("a/b.txt", "a-b.txt", "a.b/c.txt", "a0.txt", "a b/x", "é/f", "Z.txt"):
            write(local / name, name)
        write(remote / "a-c" / "from-remote.txt", "remote")
        write(remote / unicodedata.normalize("NFD", "café.txt"), "nfd on the remote")
        age_files(local, remote)   # rows recorded within a clock tick of their mtime are racy: never quiet
        assert _run(local, provider_type(remote), state)[:2] == (7, 2)
        assert tree(local) == tree(remote)
        assert _run(local, provider_type(remote), state) == (0, 0, 0, 0), "a second run is a no-op"
        assert _quiet_run_holds_nothing(local, provider_type(remote), state)
        write(local / "a-b.txt", "changed")
        (local / "a" / "b.txt").rename(local / "a" / "moved.txt")
        (remote / "a-c" / "from-remote.txt").unlink()
        assert _run(local, provider_type(remote), state) == (1, 0, 1, 1)
        assert tree(local) == tree(remote)
        assert _run(local, provider_type(remote), state) == (0, 0, 0, 0)


def _quiet_run_holds_nothing(local: Path, provider: LocalProvider, state: Path) -> bool:
    """A no-op run keeps no path of the tree in view once the merge is done."""
    store = Store(state)
    try:
        engine = Engine(local, provider, "x", store, SyncOptions(), Reporter(quiet=True))
        engine.sync()
        return engine.local.last_scan is not None and engine.local.last_scan.entries == {}
    finally:
        store.close()



@pytest.mark.parametrize("side", ["l", "r"])
def test_a_folder_that_cannot_be_read_deletes_nothing_on_the_other_side(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    for name in ("shut/b.txt", "shut/deep/c.txt", "shut-not/d.txt", "z.txt"):
        write(local / name, name)
    age_files(local)
    assert _run(local, LocalProvider(remote), state)[:2] == (4, 0)
    real = os.scandir
    shut = str(tmp_path / side / "shut")

    def scandir(path: str) -> object:
        if str(path) == shut:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(scan, "NATIVE", None)   # the refusal is faked in os.scandir: the pure-Python reader
    err = io.StringIO()
    store = Store(state)
    try:
        s = Engine(local, LocalProvider(remote), "x", store, SyncOptions(), Reporter(out=io.StringIO(), err=err)).sync()
    finally:
        store.close()
    assert (s.deleted_remote, s.deleted_local, s.uploaded, s.downloaded) == (0, 0, 0, 0)
    for root in (local, remote):
        assert (root / "shut" / "b.txt").exists() and (root / "shut" / "deep" / "c.txt").exists()
    assert "cannot read folder" in err.getvalue() and "shut" in err.getvalue()
    monkeypatch.setattr(os, "scandir", real)
    assert _run(local, LocalProvider(remote), state) == (0, 0, 0, 0), "readable again: nothing to do"


def test_racy_rows_confirmed_by_content_are_stored_so_the_next_run_is_quiet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from syncagent.engine import execute

    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    for name in ("a.txt", "d/b.txt"):
        write(local / name, name)
    age_files(local)
    monkeypatch.setattr(execute, "_racy_after", lambda: -1)   # recorded "within a clock tick"
    assert _run(local, LocalProvider(remote), state)[:2] == (2, 0)
    store = Store(state)
    try:
        racy = [(p, size, rrev) for p, _kind, size, _m, _i, rrev in store.iter_base_brief(1) if _kind == "file"]
    finally:
        store.close()
    assert all(size < 0 and rrev == "" for _, size, rrev in racy), racy
    monkeypatch.undo()
    assert not _quiet_run_holds_nothing(local, LocalProvider(remote), state), "the racy rows are compared once"
    assert _quiet_run_holds_nothing(local, LocalProvider(remote), state), "then stored as confirmed"
    store = Store(state)
    try:
        rows = {p: (size, rrev) for p, kind, size, _m, _i, rrev in store.iter_base_brief(1) if kind == "file"}
    finally:
        store.close()
    assert all(size > 0 and rrev for size, rrev in rows.values()), rows


def _random_tree(root: Path, rng: random.Random) -> None:
    """Plain folders (the native walk's runs) and folders the Python path reads (a non-ASCII name, a link)."""
    for i in range(rng.randint(60, 120)):
        folder = rng.choice(["p", "p/q", "p-q", "r", "s t", "caf\u00e9", "caf\u00e9/in", "u"])
        write(root / folder / f"f{rng.randrange(1000):03d}", f"v{i}")
    write(root / "u" / "\u00e9t\u00e9", "non-ASCII file: the folder goes to the Python path")


def _random_changes(root: Path, rng: random.Random) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for p in rng.sample(files, len(files) // 5):
        action = rng.randrange(4)
        if action == 0:
            p.unlink()
        elif action == 1:
            write(p, "changed " * rng.randint(1, 4))
        elif action == 2:
            now = time.time_ns() - rng.randint(0, 10**9)
            os.utime(p, ns=(now, now))
        else:
            p.unlink()
            write(p / "now-a-folder", "x")
    for i in range(rng.randint(1, 10)):
        write(root / rng.choice(["p", "r", "new", "caf\u00e9/in"]) / f"n{i}-{rng.randrange(100)}", "new")


@pytest.mark.parametrize("seed", range(4))
def test_the_native_merge_of_raw_walks_equals_the_python_merge_of_plain_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    if NATIVE is None:
        pytest.skip("the native module is not built here")
    rng = random.Random(seed)
    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _random_tree(local, rng)
    age_files(local)
    os.symlink("nowhere", local / "r" / "link")   # a link: that folder goes to the Python path too
    _run(local, LocalProvider(remote), state)
    _random_changes(local, rng)
    _random_changes(remote, rng)
    store = Store(state)
    try:
        pair = store.pair_id(str(local), "x")
        raw = merge(scan.walk(local, raw=True), LocalProvider(remote).merge_listing(), store.base_brief_stream(pair))
        monkeypatch.setattr(scan, "NATIVE", None)
        plain = merge_py(scan.walk(local), LocalProvider(remote).list(), store.iter_base_brief(pair))
    finally:
        store.close()
    assert raw == plain
    assert plain.local_count > 50 and 0 < len(plain.changed) < plain.local_count
