"""The native module: built by the install where it can be, and doing
exactly what the Python loops it replaces do, on the same trees."""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import sysconfig
import time
import unicodedata
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from syncagent.engine import execute, scan
from syncagent.engine.merge import Merged, merge_py
from syncagent.engine.plan import Mode
from syncagent.engine.records import DIR, FILE, Base, Entry
from syncagent.engine.report import Reporter
from syncagent.engine.scan import Scan, walk
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.native import NATIVE
from syncagent.paths import IgnoreRules, nfc
from syncagent.providers.base import Kind, RemoteEntry
from syncagent.providers.local import LocalProvider
from tests.helpers import age_files, tree, write


def _buildable() -> bool:
    include = sysconfig.get_paths()["include"]
    return Path(include, "Python.h").exists() and shutil.which("cc") is not None


def test_the_install_built_the_native_module_where_it_can() -> None:
    if os.environ.get("SYNCAGENT_NATIVE") == "0":
        pytest.skip("SYNCAGENT_NATIVE=0 asks for the pure-Python path")
    if not _buildable():
        pytest.skip("no C compiler or Python headers here: the pure-Python path is the one that runs")
    assert NATIVE is not None, "a compiler and Python.h are here but `pip install` did not build _native.c"


@pytest.fixture
def native() -> object:
    if NATIVE is None:
        pytest.skip("the native module is not built here")
    return NATIVE


def _odd_tree(root: Path) -> None:
    """Plain folders (the native reader's) beside every case it hands back to Python."""
    for name in ("a.txt", "a-b/x", "a/b/c.txt", "a/b-c", "a0", "B", "b/.syncignore", "z/y/x/w",
                 "skip/me.log", "keep.log", "e\u0301t\u00e9/f.txt", "plain/caf\u00e9", "empty/.keep"):
        write(root / name, name * 3)
    (root / "plain" / ".syncagent-1234.tmp").write_bytes(b"leftover")
    (root / "a" / ".syncagent-x.tmp").write_bytes(b"leftover")
    os.symlink("a.txt", root / "link")
    os.symlink("/etc", root / "a" / "b" / "dirlink")
    os.mkfifo(root / "z" / "fifo")
    os.makedirs(root / "nothing")
    os.utime(root / "a.txt", ns=(1, 1_700_000_000_123_456_789))


def _walked(root: Path, rules: IgnoreRules | None, use_native: bool, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[list[tuple[str, Entry]], Scan]:
    monkeypatch.setattr(scan, "NATIVE", NATIVE if use_native else None)
    result = Scan(root)
    items = list(walk(root, rules, into=result))
    result.temps.sort()
    return items, result


@pytest.mark.usefixtures("native")
@pytest.mark.parametrize("excludes", [(), ("*.log", "z/")])
def test_the_native_reader_walks_like_the_python_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      excludes: tuple[str, ...]) -> None:
    _odd_tree(tmp_path)
    rules = IgnoreRules.load(tmp_path, list(excludes))
    fast, fast_scan = _walked(tmp_path, rules, True, monkeypatch)
    slow, slow_scan = _walked(tmp_path, rules, False, monkeypatch)
    assert fast == slow
    assert [p for p, _ in fast] == sorted(p for p, _ in fast)
    for field in ("skipped", "ignored", "disk", "temps", "unfit"):
        assert getattr(fast_scan, field) == getattr(slow_scan, field), field
    assert ("a.txt", Entry(FILE, 15, 1_700_000_000_123_456_789, os.lstat(tmp_path / "a.txt").st_ino)) in fast
    assert ("link" in fast_scan.skipped and "z/fifo" in fast_scan.skipped) or excludes
    assert sorted(fast_scan.temps) == ["a/.syncagent-x.tmp", "plain/.syncagent-1234.tmp"]


@pytest.mark.usefixtures("native")
def test_the_native_listing_builds_the_remote_entries_the_python_one_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _odd_tree(tmp_path)
    monkeypatch.setattr(scan, "NATIVE", NATIVE)
    fast = list(LocalProvider(tmp_path).list())
    monkeypatch.setattr(scan, "NATIVE", None)
    slow = list(LocalProvider(tmp_path).list())
    assert fast == slow
    entry = next(e for e in fast if e.path == "a.txt")
    st = os.lstat(tmp_path / "a.txt")
    assert entry == RemoteEntry("a.txt", Kind.FILE, 15, st.st_mtime_ns, f"{st.st_mtime_ns}-15-{st.st_ino}",
                                None, str(st.st_ino))
    assert type(entry.kind) is Kind
    with pytest.raises(AttributeError):
        entry.path = "other"  # type: ignore[misc]   # still the frozen dataclass


def test_a_folder_the_native_reader_cannot_open_goes_to_the_python_path(native: object, tmp_path: Path) -> None:
    assert NATIVE is not None
    assert NATIVE.read_folder(str(tmp_path / "missing"), "", "", False) is None
    write(tmp_path / "d" / unicodedata.normalize("NFD", "é"), "x")
    assert NATIVE.read_folder(str(tmp_path / "d"), "d/", "d/", False) is None   # a name that is not ASCII


def test_the_native_merge_refuses_what_is_not_a_record(native: object) -> None:
    assert NATIVE is not None
    with pytest.raises(TypeError):
        NATIVE.merge([("a", None, "x")], [], [42], True, str)
    with pytest.raises(AttributeError):
        NATIVE.merge([], [object()], [], True, str)
    with pytest.raises(ZeroDivisionError):
        NATIVE.merge((1 / 0 for _ in "x"), [], [], True, str)


def _sync(local: Path, remote: Path, state: Path, mode: Mode) -> tuple[int, ...]:
    store = Store(state)
    try:
        s = Engine(local, LocalProvider(remote), "x", store, SyncOptions(mode=mode),
                   Reporter(out=io.StringIO(), err=io.StringIO())).sync()
    finally:
        store.close()
    return s.uploaded, s.downloaded, s.deleted_local + s.deleted_remote, s.moved, s.conflicts, s.errors


def _undated(files: dict[str, str]) -> dict[str, str]:
    """The tree with the time taken out of conflict copies' names: the two runs may straddle a second."""
    return {re.sub(r"(\(conflict [^)]*) \d{4}-\d\d-\d\d \d{6}\)", r"\1)", k): v for k, v in files.items()}


@pytest.mark.usefixtures("native")
def test_a_two_way_sync_gives_the_same_result_with_and_without_the_native_loops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for use_native in (True, False):
        monkeypatch.setattr(scan, "NATIVE", NATIVE if use_native else None)
        monkeypatch.setattr("syncagent.engine.merge.NATIVE", NATIVE if use_native else None)
        top = tmp_path / str(use_native)
        local, remote, state = top / "l", top / "r", top / "s"
        for i in range(30):
            write(local / f"d{i % 4}" / f"f{i}.txt", f"v1 {i}")
        first = _sync(local, remote, state, Mode.TWO_WAY)
        for i in range(0, 30, 3):
            write(local / f"d{i % 4}" / f"f{i}.txt", f"local {i}")
        for i in range(0, 30, 5):
            write(remote / f"d{i % 4}" / f"f{i}.txt", f"remote {i} changed")
        (remote / "d1" / "f1.txt").unlink()
        os.rename(local / "d2", local / "d2-moved")
        second = _sync(local, remote, state, Mode.TWO_WAY)
        third = _sync(local, remote, state, Mode.TWO_WAY)
        results.append((first, second, third, _undated(tree(local)), _undated(tree(remote))))
    assert results[0] == results[1]
    first, second, third, local_tree, remote_tree = results[0]
    assert first[0] == 30 and second[4] > 0 and third[:5] == (0, 0, 0, 0, 0)
    assert local_tree == remote_tree


class _Spy:
    """The native module with every Readahead a walk makes kept for inspection."""

    def __init__(self) -> None:
        self.made: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(NATIVE, name)

    def readahead(self, root: str, limit: int) -> Any:
        assert NATIVE is not None
        self.made.append(NATIVE.readahead(root, limit))
        return self.made[-1]


def _folders(root: Path) -> int:
    return 1 + sum(len(dirs) for _, dirs, _ in os.walk(root))


@pytest.mark.usefixtures("native")
def test_the_read_ahead_thread_serves_every_folder_of_a_plain_walk(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(40):
        write(tmp_path / f"d{i % 7}" / f"s{i % 5}" / f"f{i}", "x")
        write(tmp_path / f"d{i % 7}-x" / f"f{i}", "x")   # "-" sorts before "/": not depth-first
    spy = _Spy()
    monkeypatch.setattr(scan, "NATIVE", spy)
    fast = list(walk(tmp_path))
    monkeypatch.setattr(scan, "NATIVE", None)
    assert fast == list(walk(tmp_path))
    assert spy.made[0].stats() == (_folders(tmp_path), _folders(tmp_path))


@pytest.mark.usefixtures("native")
@pytest.mark.parametrize("limit", [1, 2, 64])
def test_a_walk_out_of_byte_order_or_past_ignored_folders_reads_those_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    _odd_tree(tmp_path)
    for name in ("\u00e9t\u00e9/a/b", "e\u0301te\u0301/x", "\u00e9/q", "e/z", "big/" + "/".join("abcdef")):
        write(tmp_path / name / "f", name)
    for i in range(60):
        write(tmp_path / "big" / f"s{i}" / "t" / "f", "x")
    rules = IgnoreRules.load(tmp_path, ["big/", "*.log"])
    monkeypatch.setattr(scan, "READ_AHEAD", limit)
    spy = _Spy()
    monkeypatch.setattr(scan, "NATIVE", spy)
    fast, fast_scan = Scan(tmp_path), Scan(tmp_path)
    fast_items = list(walk(tmp_path, rules, into=fast_scan))
    monkeypatch.setattr(scan, "NATIVE", None)
    slow_scan = Scan(tmp_path)
    assert fast_items == list(walk(tmp_path, rules, into=slow_scan))
    assert fast_scan.skipped == slow_scan.skipped and fast_scan.ignored == slow_scan.ignored
    assert fast_scan.disk == slow_scan.disk and sorted(fast_scan.temps) == sorted(slow_scan.temps)
    del fast
    read, taken = spy.made[0].stats()
    below_big = _folders(tmp_path / "big")
    assert taken < read
    # The ignored folder is dropped when the walk goes past it; the thread reads at most its window below it.
    assert read <= _folders(tmp_path) - below_big + 2 * limit + 8


@pytest.mark.usefixtures("native")
def test_a_walk_left_early_stops_its_read_ahead_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(300):
        write(tmp_path / f"d{i:03d}" / "f", "x")
    spy = _Spy()
    monkeypatch.setattr(scan, "NATIVE", spy)
    monkeypatch.setattr(scan, "READ_AHEAD", 4)
    walking = cast(Generator[tuple[str, Entry], None, None], walk(tmp_path))
    assert [p for p, _ in itertools.islice(walking, 3)] == ["d000", "d000/f", "d001"]
    walking.close()
    read, _ = spy.made[0].stats()
    assert read < 300
    time.sleep(0.05)
    assert spy.made[0].stats()[0] == read, "the thread was joined: it reads nothing more"


def _store_with_base(tmp_path: Path, rows: list[tuple[str, Base]]) -> tuple[Store, int]:
    store = Store(tmp_path / "state")
    pair = store.pair_id(str(tmp_path / "l"), "remote")
    store.write_base(pair, rows, [])
    return store, pair


def _base_rows(n: int) -> list[tuple[str, Base]]:
    rows = []
    for i in range(n):
        path = f"d{i % 13}/\u00e9t\u00e9-{i}" if i % 97 == 0 else f"d{i % 13}/f{i:05d}"
        kind = DIR if i % 50 == 0 else FILE
        rows.append((path, Base(kind, i, 1_700_000_000_000_000_000 + i, 2**40 + i, None,
                                "" if i % 7 == 0 else f"rev-{i}", None, None, 0, 0)))
    return rows


@pytest.mark.usefixtures("native")
def test_the_base_reader_yields_the_rows_the_cursor_does_across_chunks(tmp_path: Path) -> None:
    store, pair = _store_with_base(tmp_path, _base_rows(10_000))
    try:
        reader = store.base_brief_stream(pair)
        assert type(reader).__name__ == "BaseReader"
        assert list(reader) == list(store.iter_base_brief(pair))
        with store.db.atomic():   # something uncommitted here: the other connection would not see it
            assert type(store.base_brief_stream(pair)).__name__ != "BaseReader"
    finally:
        store.close()


@pytest.mark.usefixtures("native")
def test_the_merge_over_the_base_reader_keeps_what_the_python_merge_keeps(tmp_path: Path) -> None:
    rows = _base_rows(9_000)
    store, pair = _store_with_base(tmp_path, rows)
    try:
        local, remote = [], []
        for i, (path, b) in enumerate(rows):
            if i % 11 == 3:
                continue   # gone on both sides
            size = b.size + (1 if i % 17 == 0 else 0)
            local.append((path, Entry(b.kind, size if b.kind == FILE else 0, b.mtime_ns if b.kind == FILE else 0,
                                      b.ino)))
            rev = b.rrev + ("x" if i % 19 == 0 else "")
            remote.append(RemoteEntry(path, Kind(b.kind), b.size, b.mtime_ns, rev) if b.kind == FILE
                          else RemoteEntry(path, Kind.DIR))
        local.append(("zz-new", Entry(FILE, 1, 1, 1)))
        local.sort()
        remote.sort(key=lambda e: e.path)
        assert NATIVE is not None
        got = Merged(*NATIVE.merge(local, remote, store.base_brief_stream(pair), True, str))
        want = merge_py(local, remote, store.iter_base_brief(pair))
        assert got == want
        assert 500 < len(got.changed) < 2000 and "zz-new" in got.local
    finally:
        store.close()


def _unrolled(items: list[Any], remote: bool) -> list[Any]:
    """A raw walk or listing with each RawRun replaced by the items it stands for."""
    assert NATIVE is not None
    out: list[Any] = []
    for item in items:
        run = item if remote else item[1]
        if isinstance(run, NATIVE.RawRun):
            assert len(run) > 0
            out.extend(run.items(remote))
        else:
            out.append(item)
    return out


def _mixed_tree(root: Path) -> None:
    """Plain folders (raw runs) beside folders the Python path reads, temps between files, a plain folder
    below a folder whose name is not ASCII, files after subfolders."""
    _odd_tree(root)
    for i in range(40):
        write(root / f"p{i % 3}" / f"f{i:03d}", f"file {i}")
    write(root / "p1" / "sub" / "x", "x")
    write(root / "p1" / "zz-after-sub", "after")
    (root / "p2" / ".syncagent-9.tmp").write_bytes(b"leftover")
    write(root / "caf\u00e9" / "plain" / "inner.txt", "inner")


@pytest.mark.usefixtures("native")
def test_a_raw_walk_stands_for_exactly_the_items_of_the_plain_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _mixed_tree(tmp_path)
    raw_scan, plain_scan = Scan(tmp_path), Scan(tmp_path)
    raw_items = list(walk(tmp_path, into=raw_scan, raw=True))
    plain = list(walk(tmp_path, into=plain_scan))
    assert NATIVE is not None
    runs = [run for _, run in raw_items if isinstance(run, NATIVE.RawRun)]
    assert len(runs) >= 5 and len(raw_items) < len(plain) - 30
    assert _unrolled(raw_items, False) == plain
    for field in ("skipped", "ignored", "disk", "unfit"):
        assert getattr(raw_scan, field) == getattr(plain_scan, field), field
    assert sorted(raw_scan.temps) == sorted(plain_scan.temps) and "p2/.syncagent-9.tmp" in raw_scan.temps
    assert ("caf\u00e9/plain/inner.txt" in {p for p, _ in plain})
    monkeypatch.setattr(scan, "NATIVE", None)
    assert _unrolled(list(walk(tmp_path, raw=True)), False) == plain   # without the module: no run at all
    rules = IgnoreRules.load(tmp_path, ["*.log"])
    assert all(isinstance(e, Entry) for _, e in walk(tmp_path, rules, raw=True))


@pytest.mark.usefixtures("native")
def test_a_raw_listing_stands_for_exactly_the_entries_of_list(tmp_path: Path) -> None:
    _mixed_tree(tmp_path)
    provider = LocalProvider(tmp_path)
    raw = list(provider.merge_listing())
    raw_skipped = provider.skipped()
    assert any(isinstance(e, NATIVE.RawRun) for e in raw)  # type: ignore[union-attr]
    listed = list(provider.list())
    assert _unrolled(raw, True) == listed
    assert raw_skipped == provider.skipped() and raw_skipped


def _changed_sides(local: Path, remote: Path) -> None:
    """Changes of every kind, in plain folders and in the ones the Python path reads."""
    now = time.time_ns()
    os.utime(local / "p0" / "f000", ns=(now, now))                 # touched here
    write(remote / "p0" / "f003", "changed there, longer")        # changed there
    (local / "p1" / "f001").unlink()                               # gone here
    (remote / "p1" / "f004").unlink()                              # gone there
    write(local / "p2" / "f0205-new", "new here")
    write(remote / "p2" / "f0206-new", "new there")
    (local / "p2" / "f002").unlink()
    write(local / "p2" / "f002" / "now-a-folder", "x")            # a file become a folder
    write(local / "a" / "b" / "c.txt", "odd folder, changed")     # a folder with a link in it
    write(remote / "caf\u00e9" / "plain" / "inner.txt", "changed below a non-ASCII folder")
    write(local / "caf\u00e9" / "plain" / "added", "added below a non-ASCII folder")
    write(remote / "e\u0301t\u00e9" / "g.txt", "new beside NFD names")


@pytest.mark.usefixtures("native")
@pytest.mark.parametrize("racy", [False, True], ids=["quiet-rows", "racy-rows"])
def test_the_merge_of_raw_walks_keeps_what_the_python_merge_of_plain_walks_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, racy: bool) -> None:
    """Whether the first run records its rows racy (within 50 ms of the files' mtimes: a warm process
    syncs this small tree that fast, a cold or loaded one does not) is set, not left to the machine:
    aged files give quiet rows, which both merges drop; racy rows are never quiet, in either merge."""
    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    _mixed_tree(local)
    if racy:
        monkeypatch.setattr(execute, "_racy_after", lambda: -1)
    else:
        age_files(local)
        os.utime(local / "a.txt", ns=(1, 1_700_000_000_123_456_789))   # _odd_tree's: older, and odd in its ns
    assert _sync(local, remote, state, Mode.TWO_WAY)[5] == 0
    monkeypatch.undo()
    _changed_sides(local, remote)
    store = Store(state)
    try:
        pair = store.pair_id(str(local), "x")
        assert NATIVE is not None

        def raw_merge(base: Any) -> Merged:
            listing = LocalProvider(remote).merge_listing()
            return Merged(*NATIVE.merge(walk(local, raw=True), listing, base, True, nfc))

        over_reader = raw_merge(store.base_brief_stream(pair))
        over_rows = raw_merge(store.iter_base_brief(pair))
        monkeypatch.setattr(scan, "NATIVE", None)
        want = merge_py(walk(local), LocalProvider(remote).list(), store.iter_base_brief(pair))
    finally:
        store.close()
    assert over_reader == want and over_rows == want
    kept = set(want.local) | {e.path for e in want.remote}
    assert {"p0/f000", "p0/f003", "p1/f001", "p1/f004", "p2/f0205-new", "p2/f0206-new", "p2/f002",
            "p2/f002/now-a-folder", "a/b/c.txt", "caf\u00e9/plain/inner.txt", "caf\u00e9/plain/added"} <= kept
    assert want.local_count > 60
    if racy:   # every file row is racy: looked at again, unchanged ones included
        assert {"p0/f006", "p1/sub/x", "b/.syncignore", "a.txt"} <= kept and len(kept) > 50
    else:      # only what changed
        assert "p0/f006" not in kept and len(kept) < 30
    assert all(type(e) is Entry for e in over_reader.local.values())
    assert all(type(e) is RemoteEntry for e in over_reader.remote)


def test_the_native_merge_orders_keys_by_code_point_surrogates_included(native: object) -> None:
    """Keys are compared as UTF-8 bytes: that is code-point order, for a name with a lone surrogate too
    (a listing may hold one) and for names beyond the BMP."""
    names = sorted(["a", "a\x7f", "a\u00e9", "a\ud800x", "a\udce9", "a\ue000", "a\U0001f600", "b", "a/b"])
    local = [(n, Entry(FILE, 1, 2, 3)) for n in names if n != "b"]
    remote = [RemoteEntry(n, Kind.FILE, 1, 2, "r") for n in names if n != "a\udce9"]
    base = [(n, FILE, 1, 2, 3, "r") for n in names[::2]]
    assert NATIVE is not None
    got = Merged(*NATIVE.merge(local, remote, base, True, str))
    assert got == merge_py(local, remote, base)
    assert got.changed and set(got.local) < set(names)
    shuffled = list(reversed(local))   # out of order: more is kept, nothing lost
    assert Merged(*NATIVE.merge(shuffled, remote, base, True, str)) == merge_py(shuffled, remote, base)
