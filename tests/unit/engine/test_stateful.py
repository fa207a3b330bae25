"""Random edits on both sides interleaved with syncs, checking the invariants
of DESIGN.md after every sync:

1. no unsynced version is lost; 2. a second sync does nothing;
3. both sides hold the same tree afterwards.
(4 and 5, crashes and atomic writes, are test_crash.py's.)
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.helpers import sync_in_process, tree, write

NAMES = st.sampled_from(["a.txt", "b.txt", "d/c.txt", "d/e/f.txt", "é.txt", "d"])
SIDES = st.sampled_from(["local", "remote"])


class TwoSides(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="syncagent-stateful-"))
        self.local, self.remote, self.state = self.tmp / "l", self.tmp / "r", self.tmp / "s"
        self.local.mkdir()
        self.remote.mkdir()
        self.counter = 0
        self.synced: dict[str, str] = {}
        # the user's unsynced versions: (side, path) -> content hash; a user's own
        # overwrite or delete on the same side retires a version, a sync must not
        self.unsynced: dict[tuple[str, str], str] = {}
        self.touched: set[str] = set()  # local paths a watcher would report

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _root(self, side: str) -> Path:
        return self.local if side == "local" else self.remote

    @rule(side=SIDES, name=NAMES)
    def edit(self, side: str, name: str) -> None:
        self.counter += 1
        data = f"{side} version {self.counter}\n" * (self.counter % 3 + 1)
        target = self._root(side) / name
        if target.is_dir():
            return
        try:
            write(target, data)
        except (NotADirectoryError, FileExistsError):
            return  # a file stands where a folder should be: the user can't do this either
        self.unsynced[(side, name)] = hashlib.sha256(data.encode()).hexdigest()
        if side == "local":
            self.touched.add(name)

    @rule(side=SIDES, name=NAMES)
    def delete(self, side: str, name: str) -> None:
        target = self._root(side) / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        self._retire(side, name)
        if side == "local":
            self.touched.add(name)

    def _retire(self, side: str, name: str) -> None:
        for key in [k for k in self.unsynced if k[0] == side and (k[1] == name or k[1].startswith(name + "/"))]:
            del self.unsynced[key]

    @rule(side=SIDES, src=NAMES, dst=NAMES)
    def rename(self, side: str, src: str, dst: str) -> None:
        root = self._root(side)
        if src == dst or not (root / src).exists() or (root / dst).exists() or dst.startswith(src + "/"):
            return
        try:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            (root / src).rename(root / dst)
        except (NotADirectoryError, FileExistsError, OSError):
            return
        if side == "local":
            self.touched |= {src, dst}
        moved = {k: v for k, v in self.unsynced.items()
                 if k[0] == side and (k[1] == src or k[1].startswith(src + "/"))}
        for (s_, p), v in moved.items():
            del self.unsynced[(s_, p)]
            self.unsynced[(s_, dst + p[len(src):])] = v

    @rule()
    def sync(self) -> None:
        first = sync_in_process(self.local, self.remote, self.state, max_delete=100.0, force=True)
        assert first.errors == 0, first.error_list
        lt, rt = tree(self.local), tree(self.remote)
        assert lt == rt, f"sides differ: {sorted(set(lt.items()) ^ set(rt.items()))}"
        assert set(self.unsynced.values()) <= set(lt.values()), "an unsynced version was lost"
        second = sync_in_process(self.local, self.remote, self.state)
        assert not second.changed_anything(), f"a second sync did something: {second}"
        self.synced = lt
        self.unsynced = {}
        self.touched = set()

    @rule()
    def partial_sync(self) -> None:
        """The agent's run over the paths the watcher reported: it must lose
        nothing and break nothing a later whole run relies on."""
        if not self.synced and not (self.state / "state.db").exists():
            return
        result = sync_in_process(self.local, self.remote, self.state, paths=self.touched, force=True,
                                 max_delete=100.0)
        assert result.errors == 0, result.error_list
        self.touched = set()
        lt, rt = tree(self.local), tree(self.remote)
        after = set(lt.values()) | set(rt.values())
        assert set(self.unsynced.values()) <= after, "a partial sync lost an unsynced version"
        # what the partial run brought to both sides is synced now, under its own name or a
        # conflict copy's: a later delete may remove it
        both = {v for p, v in lt.items() if rt.get(p) == v}
        self.unsynced = {k: v for k, v in self.unsynced.items() if v not in both}

    @invariant()
    def no_temp_files(self) -> None:
        for root in (self.local, self.remote):
            assert not [p for p in root.rglob(".syncagent-*")], "a temp file outlived its sync"


TwoSides.TestCase.settings = settings(max_examples=100, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
test_two_sides = TwoSides.TestCase


def _synced_pair(tmp: Path, files: dict[str, str]) -> tuple[Path, Path, Path]:
    local, remote, state = tmp / "l", tmp / "r", tmp / "s"
    local.mkdir()
    remote.mkdir()
    for name, data in files.items():
        write(local / name, data)
    assert sync_in_process(local, remote, state).errors == 0
    return local, remote, state


def _converges(local: Path, remote: Path, state: Path) -> dict[str, str]:
    first = sync_in_process(local, remote, state, max_delete=100.0, force=True)
    assert first.errors == 0, first.error_list
    assert first.uploaded == first.downloaded == 0, "a move became a transfer"
    lt = tree(local)
    assert lt == tree(remote)
    assert not sync_in_process(local, remote, state).changed_anything()
    return lt


def test_a_file_moved_out_of_a_folder_then_renamed_moves_on_both(tmp_path: Path) -> None:
    """Found by this machine: d/e/f.txt -> b.txt, then d -> x, both local."""
    local, remote, state = _synced_pair(tmp_path, {"a.txt": "A\n", "d/e/f.txt": "F\n"})
    (local / "d/e/f.txt").rename(local / "b.txt")
    (local / "d").rename(local / "x")
    assert set(_converges(local, remote, state)) == {"a.txt", "b.txt", "x", "x/e"}


def test_a_remote_move_into_a_folder_renamed_locally_follows_the_folder(tmp_path: Path) -> None:
    """Found by this machine: d -> x locally, a.txt -> d/c.txt remotely. The
    rename carries d's contents, c.txt included; no empty d is left behind."""
    local, remote, state = _synced_pair(tmp_path, {"a.txt": "A\n", "d/e/f.txt": "F\n"})
    (local / "d").rename(local / "x")
    (remote / "a.txt").rename(remote / "d/c.txt")
    assert set(_converges(local, remote, state)) == {"x", "x/e", "x/e/f.txt", "x/c.txt"}


def test_a_file_moved_into_a_folder_that_a_folder_move_brings(tmp_path: Path) -> None:
    local, remote, state = _synced_pair(tmp_path, {"a.txt": "A\n", "d/g/f": "F\n"})
    (local / "d/g").rename(local / "x")
    (local / "a.txt").rename(local / "x/a.txt")
    assert set(_converges(local, remote, state)) == {"d", "x", "x/f", "x/a.txt"}


def test_a_folder_deleted_on_one_side_counts_its_files(tmp_path: Path) -> None:
    """The folder's delete folds its files into one; the summary still counts them."""
    local, remote, state = _synced_pair(tmp_path, {"d/a.txt": "A\n", "d/e/b.txt": "B\n", "c.txt": "C\n"})
    shutil.rmtree(remote / "d")
    summary = sync_in_process(local, remote, state, max_delete=100.0, force=True)
    assert (summary.deleted_local, summary.deleted_remote, summary.errors) == (2, 0, 0)
    assert set(tree(local)) == {"c.txt"}
