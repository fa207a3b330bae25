"""Nothing is written, renamed or deleted through a link: a folder replaced
by a symbolic link between the scan and the write stops at the link."""

from __future__ import annotations

import io
import os
from pathlib import Path

from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.local import LocalProvider
from tests.helpers import sync_in_process, tree, write


class SwapOnWrite:
    """Own-writes hook that swaps a folder for a link to `outside` the
    moment the engine is about to write `trigger` (deterministic race)."""

    def __init__(self, root: Path, folder: str, outside: Path, trigger: str) -> None:
        self.root, self.folder, self.outside, self.trigger = root, folder, outside, trigger
        self.swapped = False

    def suppress(self, path: str) -> None:
        if path == self.trigger and not self.swapped:
            self.swapped = True
            (self.root / self.folder).rename(self.root.parent / "moved-away")
            os.symlink(self.outside, self.root / self.folder)

    def wrote(self, path: str) -> None:
        """Nothing to remember."""


def _run(local: Path, remote: Path, state: Path, hook: SwapOnWrite) -> Summary:
    store = Store(state)
    try:
        return Engine(local, LocalProvider(remote), f"local:{remote}", store, SyncOptions(),
                      Reporter(out=io.StringIO(), err=io.StringIO()), own_writes=hook).sync()
    finally:
        store.close()


def test_a_download_into_a_folder_swapped_for_a_link_does_not_leave_the_root(tmp_path: Path) -> None:
    local, remote, state, outside = tmp_path / "L", tmp_path / "R", tmp_path / "s", tmp_path / "outside"
    outside.mkdir()
    write(local / "sub/old.txt", "old")
    sync_in_process(local, remote, state)
    write(remote / "sub/new.txt", "payload")
    hook = SwapOnWrite(local, "sub", outside, "sub/new.txt")
    summary = _run(local, remote, state, hook)
    assert hook.swapped
    assert tree(outside) == {}, "a download went through the link"
    assert summary.exit_code == 1 and summary.errors == 1


def test_a_delete_through_a_swapped_folder_removes_nothing_outside(tmp_path: Path) -> None:
    local, remote, state, outside = tmp_path / "L", tmp_path / "R", tmp_path / "s", tmp_path / "outside"
    write(outside / "victim.txt", "precious")
    write(local / "sub/victim.txt", "synced")
    write(local / "keep.txt", "k")
    sync_in_process(local, remote, state)
    (remote / "sub/victim.txt").unlink()
    hook = SwapOnWrite(local, "sub", outside, "sub/victim.txt")
    _run(local, remote, state, hook)
    assert hook.swapped
    assert (outside / "victim.txt").read_text() == "precious"


def test_a_conflict_rename_through_a_swapped_folder_touches_nothing_outside(tmp_path: Path) -> None:
    local, remote, state, outside = tmp_path / "L", tmp_path / "R", tmp_path / "s", tmp_path / "outside"
    write(outside / "doc.txt", "outside")
    write(local / "sub/doc.txt", "base")
    sync_in_process(local, remote, state)
    write(local / "sub/doc.txt", "local edit")
    write(remote / "sub/doc.txt", "remote edit!")
    hook = SwapOnWrite(local, "sub", outside, "sub/doc.txt")
    _run(local, remote, state, hook)
    assert hook.swapped
    assert tree(outside) == {"doc.txt": tree(outside)["doc.txt"]} and (outside / "doc.txt").read_text() == "outside"
