"""scan.walk yields the local tree in the one path order the merge needs:
ascending code-point order of the NFC path, the order of sorted() and of the
base's primary key in SQLite (not depth-first: "a-b" sorts between "a" and
"a/x")."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from syncagent.engine import scan
from syncagent.engine.records import DIR, Base, Entry
from syncagent.engine.scan import Scan, scan_tree, walk
from syncagent.engine.state import Store
from syncagent.providers.local import LocalProvider
from tests.helpers import write

NFD_E = unicodedata.normalize("NFD", "é")

# Names around "/" in code-point order: " " "!" "-" "." all sort before "/", "0" "A" "_" "a" after.
TRICKY = ["a/x", "a/b/c", "a/b-c", "a-b/y", "a-b.txt", "a.txt", "a0", "a b", "a!", "A", "_", "B/z", "b",
          "ab/cd", "a/b.c/d", f"caf{NFD_E}/menu.txt", "café2", "z\u00ff", "z\u4e16", "\U0001f600.txt"]


def _make(root: Path) -> None:
    for rel in TRICKY:
        write(root / rel, rel)


def _expected_paths() -> list[str]:
    paths: set[str] = set()
    for rel in TRICKY:
        parts = unicodedata.normalize("NFC", rel).split("/")
        paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(paths)


def test_walk_yields_every_path_once_in_sorted_order(tmp_path: Path) -> None:
    _make(tmp_path)
    got = [rel for rel, _ in walk(tmp_path)]
    assert got == _expected_paths()
    assert got.index("a") < got.index("a-b") < got.index("a-b/y") < got.index("a.txt") < got.index("a/x") \
        < got.index("a0"), "'-' and '.' sort before '/': a folder's contents are not next to it"


def test_walk_records_on_disk_spellings_and_scan_tree_agrees(tmp_path: Path) -> None:
    _make(tmp_path)
    into = Scan(tmp_path)
    entries = dict(walk(tmp_path, into=into))
    assert into.disk == {"café": f"caf{NFD_E}"}
    assert scan_tree(tmp_path).entries == entries


def test_the_base_in_sqlite_comes_in_the_same_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    try:
        pair = store.pair_id("l", "r")
        row = Base("file", 1, 1, 1, None, "rev", None, None, 1, 1)
        paths = _expected_paths()
        store.write_base(pair, [(p, row) for p in reversed(paths)], [])
        assert [r[0] for r in store.iter_base_brief(pair)] == paths
    finally:
        store.close()


def test_the_local_provider_lists_in_that_order_keeping_spellings(tmp_path: Path) -> None:
    _make(tmp_path)
    provider = LocalProvider(tmp_path)
    assert provider.capabilities.sorted_listing
    listing = list(provider.list())
    assert [e.path for e in listing] == _expected_paths()
    assert {e.path: e.spelling for e in listing if e.spelling} == {"café": f"caf{NFD_E}"}
    assert [e.path for e in provider.list("a")] == [p for p in _expected_paths() if p.startswith("a/")]


def test_two_names_equal_under_nfc_are_skipped_with_what_lies_below(tmp_path: Path) -> None:
    write(tmp_path / "é" / "inside.txt", "one")
    write(tmp_path / NFD_E / "inside.txt", "two")
    write(tmp_path / "f.txt", "fine")
    write(tmp_path / "K", "ascii")
    write(tmp_path / "\u212a", "kelvin sign: 'K' under NFC")
    into = Scan(tmp_path)
    assert [rel for rel, _ in walk(tmp_path, into=into)] == ["f.txt"]
    assert "é" in into.skipped and into.is_skipped("é/inside.txt") and "K" in into.skipped


def test_a_folder_that_cannot_be_read_is_skipped_not_yielded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "ok" / "a.txt", "a")
    write(tmp_path / "shut" / "b.txt", "b")
    write(tmp_path / "z.txt", "z")
    real = os.scandir

    def scandir(path: str) -> object:
        if str(path).endswith("/shut"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(scan, "NATIVE", None)   # the refusal is faked in os.scandir: the pure-Python reader
    into = Scan(tmp_path)
    assert [rel for rel, _ in walk(tmp_path, into=into)] == ["ok", "ok/a.txt", "z.txt"]
    assert into.skipped == {"shut": "cannot read folder: Permission denied"}
    asked = scan_tree(tmp_path, start="shut", into=Scan(tmp_path, entries={"shut": Entry(DIR, 0, 0, 1)}))
    assert "shut" not in asked.entries and "shut" in asked.skipped


def test_temps_links_and_ignored_names_are_not_entries(tmp_path: Path) -> None:
    write(tmp_path / "keep.txt", "k")
    write(tmp_path / ".syncagent-p1-abc.tmp", "temp")
    os.symlink(tmp_path / "keep.txt", tmp_path / "link")
    into = Scan(tmp_path)
    assert [rel for rel, _ in walk(tmp_path, into=into)] == ["keep.txt"]
    assert into.temps == [".syncagent-p1-abc.tmp"] and "link" in into.skipped
