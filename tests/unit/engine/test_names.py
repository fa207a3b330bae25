"""Names the remote cannot hold are skipped with a warning, never mangled."""

from __future__ import annotations

import dataclasses
import io
import os
import unicodedata
from pathlib import Path

from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.local import LocalProvider
from tests.helpers import tree, write


class PickyProvider(LocalProvider):
    capabilities = dataclasses.replace(LocalProvider.capabilities, forbidden_chars=':*?"<>|',
                                       max_name_length=20, case_insensitive=True)


def test_unfit_names_are_skipped_and_reported(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "ok.txt", "fine")
    write(local / "what?.txt", "forbidden char")
    write(local / ("x" * 30 + ".txt"), "too long")
    write(local / "Readme.md", "one")
    write(local / "README.md", "two")
    err = io.StringIO()
    store = Store(tmp_path / "s")
    try:
        summary = Engine(local, PickyProvider(remote), "picky", store, SyncOptions(),
                         Reporter(out=io.StringIO(), err=err)).sync()
    finally:
        store.close()
    assert summary.errors == 0 and summary.exit_code == 1
    assert sorted(summary.skipped_names) == sorted(["what?.txt", "x" * 30 + ".txt", "Readme.md"])
    names = set(tree(remote))
    assert "ok.txt" in names and "what?.txt" not in names and ("x" * 30 + ".txt") not in names
    assert len({"Readme.md", "README.md"} & names) == 1
    warnings = err.getvalue()
    assert "what?.txt" in warnings and "too long" in warnings and "ignores case" in warnings
    assert tree(local)["what?.txt"], "the local file is left alone"


def _sync(local: Path, remote: Path, state: Path) -> tuple[object, str]:
    err = io.StringIO()
    store = Store(state)
    try:
        summary = Engine(local, LocalProvider(remote), "x", store, SyncOptions(),
                         Reporter(out=io.StringIO(), err=err)).sync()
    finally:
        store.close()
    return summary, err.getvalue()


def test_a_name_that_is_not_utf8_is_skipped_escaped_and_the_rest_syncs(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "good.txt", "good")
    bad = os.fsencode(local) + b"/bad-\xff-line\nbreak.txt"
    with open(bad, "wb") as f:
        f.write(b"x")
    for _ in range(2):
        summary, err = _sync(local, remote, tmp_path / "s")
        assert summary.exit_code == 1  # type: ignore[attr-defined]
        assert "bad-\\xff-line\\nbreak.txt" in err and len(err.strip().splitlines()) == 1
    assert set(tree(remote)) == {"good.txt"} and os.path.exists(bad)


def test_a_remote_holding_both_unicode_forms_of_a_name_is_reported_not_downloaded(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "x.txt", "x")
    nfc_name, nfd_name = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    write(remote / nfc_name, "composed")
    write(remote / nfd_name, "decomposed")
    summary, err = _sync(local, remote, tmp_path / "s")
    assert summary.exit_code == 1  # type: ignore[attr-defined]
    assert "Unicode normalization" in err
    assert set(tree(local)) == {"x.txt"}
    assert {nfc_name, nfd_name, "x.txt"} == set(os.listdir(remote))


def test_a_new_file_keeps_the_unicode_form_of_its_source_side(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    nfd = unicodedata.normalize("NFD", "Café")
    write(local / nfd / f"{nfd} menu.txt", "from a mac")
    write(remote / f"{nfd}.md", "from the other side")
    summary, _ = _sync(local, remote, tmp_path / "s")
    assert summary.exit_code == 0  # type: ignore[attr-defined]
    assert sorted(os.listdir(remote)) == sorted([nfd, f"{nfd}.md"])
    assert os.listdir(remote / nfd) == [f"{nfd} menu.txt"]
    assert sorted(os.listdir(local)) == sorted([nfd, f"{nfd}.md"])
    again, _ = _sync(local, remote, tmp_path / "s")
    assert not again.changed_anything()  # type: ignore[attr-defined]
