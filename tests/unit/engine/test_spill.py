"""A listing sorted on disk past a bound (engine/spill.py): the order and the
records of `sorted(listing, key=remote_key)`, nothing on disk below the
bound, no scratch file left behind, and a sync that ends as the in-memory
one does."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import spill as spill_module
from syncagent.engine.merge import Merged, remote_key
from syncagent.engine.records import DIR, FILE, Entry
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.spill import FOLDER, Spill, remove_leftovers
from syncagent.engine.state import StateError, Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import Kind, RemoteEntry
from syncagent.providers.local import LocalProvider
from tests.helpers import age_files, tree, write

# Names where code-point order, NFC/NFD and "-" before "/" matter.
PARTS = ["a", "a-b", "a.b", "a0", "A", "b", "é", unicodedata.normalize("NFD", "é"), "ä", "Å", "z", "日本", "a b"]
PATHS = st.lists(st.sampled_from(PARTS), min_size=1, max_size=3).map("/".join)
OPTIONAL = st.none() | st.text(max_size=5)
ENTRIES = st.builds(RemoteEntry, PATHS, st.sampled_from(Kind), st.integers(0, 2**63 - 1),
                    st.integers(-2**63, 2**63 - 1), st.text(max_size=5), OPTIONAL, OPTIONAL, OPTIONAL)


@contextlib.contextmanager
def _fresh_dir() -> Iterator[Path]:
    """A folder per hypothesis example (tmp_path is one per test), checked empty of scratch at the end."""
    with tempfile.TemporaryDirectory(prefix="spill-") as tmp:
        yield Path(tmp)
        assert _scratch_files(Path(tmp)) == []


def _scratch_files(state: Path) -> list[str]:
    folder = state / FOLDER
    return sorted(os.listdir(folder)) if folder.is_dir() else []


@given(st.lists(ENTRIES, max_size=60), st.integers(1, 8))
@settings(max_examples=200, deadline=None)
def test_the_order_and_the_records_are_those_of_an_in_memory_sort(entries: list[RemoteEntry], limit: int) -> None:
    with _fresh_dir() as state, Spill(state, "p1-", limit=limit) as spill:
        out = list(spill.sort_listing(iter(entries)))
    # stable: twins (equal keys, NFC and NFD) keep the listing's order, as sorted() keeps it
    assert out == sorted(entries, key=remote_key)
    assert [type(e.kind) for e in out] == [Kind] * len(out)


def test_a_record_holds_every_field_of_a_remote_entry() -> None:
    assert tuple(f.name for f in dataclasses.fields(RemoteEntry)) == spill_module.RECORD_FIELDS


def test_every_field_survives_the_disk_none_apart_from_empty(tmp_path: Path) -> None:
    odd = "bad\udcff name"    # a name that is not valid UTF-8 on the service (a lone surrogate)
    entries = [
        RemoteEntry("z", Kind.FILE, 2**40, -5, "", None, None, None),
        RemoteEntry("y", Kind.FILE, 0, 2**63 - 1, "rev", "", "", ""),
        RemoteEntry(unicodedata.normalize("NFD", "é"), Kind.DIR, 0, 0, "r", "h", "id", "e\u0301"),
        RemoteEntry(odd, Kind.FILE, 1, 1, "r\u00e9v", "hash", "id-2", None),
        RemoteEntry("é", Kind.FILE, 3, 3, "r3", None, "", "x"),
    ]
    with Spill(tmp_path, "p1-", limit=2) as spill:
        out = list(spill.sort_listing(entries))
    assert out == sorted(entries, key=remote_key)
    by_path = {e.path: e for e in out}
    assert by_path["z"].hash is None and by_path["y"].hash == "" and by_path["y"].id == ""
    assert by_path["z"].spelling is None and by_path["y"].spelling == ""
    assert [e.path for e in out[-2:]] == [unicodedata.normalize("NFD", "é"), "é"], "twins adjacent, listing order"


def test_below_the_bound_nothing_is_written_and_above_it_a_scratch_file_is_read_from(tmp_path: Path) -> None:
    entries = [RemoteEntry(f"f{i:03}", Kind.FILE, i, i, f"r{i}") for i in range(10)]
    random.Random(3).shuffle(entries)
    with Spill(tmp_path, "p1-", limit=10) as spill:
        assert list(spill.sort_listing(entries)) == sorted(entries, key=remote_key)
        assert list(spill.spool(("x", Entry(FILE, 1, 1, 1)) for _ in range(10)))
        assert not (tmp_path / FOLDER).exists(), "as many entries as the bound: all in RAM"
    with Spill(tmp_path, "p1-", limit=9) as spill:
        out = spill.sort_listing(entries)
        assert len(_scratch_files(tmp_path)) == 1, "one more than the bound: the runs go to disk"
        assert list(out) == sorted(entries, key=remote_key)
    assert _scratch_files(tmp_path) == []


def test_the_spooled_walk_comes_back_in_its_order(tmp_path: Path) -> None:
    items = [(f"d{i // 7}/f{i}", Entry(DIR if i % 7 == 0 else FILE, i, 10 * i, 100 + i)) for i in range(50)]
    with Spill(tmp_path, "p1-", limit=4) as spill:
        out = list(spill.spool(iter(items)))
        assert len(_scratch_files(tmp_path)) == 1
    assert out == items and all(type(e) is Entry for _p, e in out)
    assert _scratch_files(tmp_path) == []


def test_the_walk_is_held_only_until_the_listing_is_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill_module, "BLOCK", 3)
    items = [(f"f{i:03}", Entry(FILE, i, i, i)) for i in range(40)]
    pulled: list[str] = []

    def walk() -> Iterator[tuple[str, Entry]]:
        for path, e in items:
            pulled.append(path)
            yield path, e

    with Spill(tmp_path, "p1-", limit=4) as spill:
        out = spill.spool(walk(), until=lambda: len(pulled) >= 10)
        assert len(pulled) == 10, "4 held, then blocks of 3 to disk until the listing was in; the rest is left"
        assert len(_scratch_files(tmp_path)) == 1
        assert list(out) == items
    with Spill(tmp_path, "p1-", limit=100) as spill:
        pulled.clear()
        out = spill.spool(walk(), until=lambda: len(pulled) >= 6)
        assert len(pulled) == 6 and _scratch_files(tmp_path) == []
        assert list(out) == items


def test_the_scratch_is_removed_when_the_consumer_fails(tmp_path: Path) -> None:
    entries = [RemoteEntry(f"f{i}", Kind.FILE) for i in range(20)]
    with pytest.raises(RuntimeError), Spill(tmp_path, "p1-", limit=3) as spill:
        for i, _e in enumerate(spill.sort_listing(entries)):
            assert _scratch_files(tmp_path)
            if i == 5:
                raise RuntimeError("the merge failed halfway")
    assert _scratch_files(tmp_path) == []


def test_a_listing_that_fails_halfway_leaves_nothing(tmp_path: Path) -> None:
    def listing() -> Iterator[RemoteEntry]:
        for i in range(20):
            yield RemoteEntry(f"f{i}", Kind.FILE)
        raise OSError("connection reset")

    with pytest.raises(OSError), Spill(tmp_path, "p1-", limit=3) as spill:
        spill.sort_listing(listing())
    assert _scratch_files(tmp_path) == []


_KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from syncagent.engine.spill import Spill
from syncagent.providers.base import Kind, RemoteEntry
spill = Spill(Path(sys.argv[1]), sys.argv[2], limit=2)
out = spill.sort_listing(RemoteEntry(f"f{i}", Kind.FILE) for i in range(10))
next(out)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_scratch_file_left_by_a_killed_run_is_removed_by_the_next_run_of_its_pair(tmp_path: Path) -> None:
    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "a.txt", "a")
    store = Store(state)
    try:
        engine = Engine(local, NetworkLike(remote), "x", store, SyncOptions(), Reporter(quiet=True))
        tag = engine.tag
    finally:
        store.close()
    for run_tag in (tag, tag.replace("-", "0-")):   # this pair's, and one of pair 10 (or 20...) beside it
        done = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(state), run_tag], check=False)
        assert done.returncode == -signal.SIGKILL
    left = _scratch_files(state)
    assert len(left) == 2
    _sync(local, remote, state)
    assert _scratch_files(state) == [n for n in left if not n.startswith(tag)], "the other pair's is not touched"
    assert remove_leftovers(state, tag.replace("-", "0-")) == 1 and _scratch_files(state) == []


def test_a_scratch_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FOLDER).write_text("a file where the folder goes")
    with pytest.raises(StateError, match="cannot keep a listing on disk"), Spill(tmp_path, "p1-", limit=1) as spill:
        spill.sort_listing([RemoteEntry("a", Kind.FILE), RemoteEntry("b", Kind.FILE)])


# ---- through the engine ---------------------------------------------------------

class NetworkLike(LocalProvider):
    """A folder that lists as a network service does: in no order, and says so."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, sorted_listing=False, expensive_bytes=True)

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        entries = list(super().list(path))
        random.Random(len(entries)).shuffle(entries)
        return iter(entries)


class Unsorted(NetworkLike):
    """The same, listed after the local walk (a provider whose bytes are cheap)."""

    capabilities = dataclasses.replace(NetworkLike.capabilities, expensive_bytes=False)


def _sync(local: Path, remote: Path, state: Path, provider: type[LocalProvider] = NetworkLike) -> Summary:
    store = Store(state)
    try:
        engine = Engine(local, provider(remote), "x", store, SyncOptions(), Reporter(out=io.StringIO(),
                                                                                     err=io.StringIO()))
        return engine.sync()
    finally:
        store.close()


def _merged(local: Path, remote: Path, state: Path, provider: type[LocalProvider]) -> Merged:
    store = Store(state)
    try:
        engine = Engine(local, provider(remote), "x", store, SyncOptions(), Reporter(quiet=True))
        return engine._merge_sides()[1]
    finally:
        store.close()


def _scenario(root: Path) -> tuple[Path, Path, Path]:
    local, remote, state = root / "l", root / "r", root / "s"
    for i in range(30):
        write(local / f"d{i % 4}" / f"f{i}.txt", f"local {i}")
        write(remote / f"d{i % 3}-x" / f"g{i}.txt", f"remote {i}")
    for name in ("a-b.txt", "a/b.txt", "a0.txt", "é/x.txt", "b.txt"):
        write(local / name, name)
    write(remote / unicodedata.normalize("NFD", "café.txt"), "nfd on the remote")
    age_files(local, remote)
    return local, remote, state



def _fields(s: Summary) -> tuple[int, ...]:
    return (s.uploaded, s.downloaded, s.deleted_local, s.deleted_remote, s.moved, s.conflicts, s.errors)


@pytest.mark.parametrize("provider", [NetworkLike, Unsorted])
def test_a_sync_through_the_disk_ends_as_the_in_memory_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             provider: type[LocalProvider]) -> None:
    written: list[int] = []
    real_append = spill_module.Scratch.append

    def counting_append(self: spill_module.Scratch, blobs: list[bytes]) -> tuple[int, int]:
        written.append(len(blobs))
        return real_append(self, blobs)

    monkeypatch.setattr(spill_module.Scratch, "append", counting_append)
    results = {}
    for limit in (3, 10**9):
        monkeypatch.setattr(spill_module, "MEMORY_ENTRIES", limit)
        local, remote, state = _scenario(tmp_path / str(limit))
        first = _fields(_sync(local, remote, state, provider))
        assert tree(local) == tree(remote)
        write(local / "d1" / "f1.txt", "changed here")
        (remote / "d0-x" / "g0.txt").unlink()
        (local / "d2" / "f2.txt").rename(local / "d2" / "moved.txt")
        age_files(local)
        merged = _merged(local, remote, state, provider)
        second = _fields(_sync(local, remote, state, provider))
        assert tree(local) == tree(remote)
        third = _fields(_sync(local, remote, state, provider))
        results[limit] = (first, second, third, merged.local_count, merged.remote_count, merged.base_files,
                          sorted(merged.changed), [e.path for e in merged.remote], sorted(merged.local))
        assert _scratch_files(state) == []
        if limit == 3:
            assert written, "the small bound sent the listing to disk"
    assert results[3] == results[10**9]
    assert results[3][2] == (0,) * 7, "then a no-op"


def test_a_poll_through_the_disk_finds_what_the_in_memory_one_finds(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    local, remote, state = _scenario(tmp_path)
    _sync(local, remote, state)
    write(remote / "d1-x" / "g1.txt", "changed there")
    (remote / "d2-x" / "g2.txt").unlink()
    write(remote / "new" / "n.txt", "new")
    found = []
    for limit in (2, 10**9):
        monkeypatch.setattr(spill_module, "MEMORY_ENTRIES", limit)
        store = Store(state)
        try:
            engine = Engine(local, NetworkLike(remote), "x", store, SyncOptions(), Reporter(quiet=True))
            found.append(engine.remote_changes().paths)
        finally:
            store.close()
    assert found[0] == found[1] == {"d1-x/g1.txt", "d2-x/g2.txt", "new"}
    assert _scratch_files(state) == []
