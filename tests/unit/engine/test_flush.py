"""LocalSide.flush: a few staged files are synced one by one, a batch with one
syncfs, and a write committed at once leaves nothing for a later flush."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from syncagent.engine import localside
from syncagent.engine.localside import FSYNC_EACH_UP_TO, LocalSide
from syncagent.providers.base import StagedWrite


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"fdatasync": [], "syncfs": []}
    from syncagent.fileio import fdatasync_path as real

    def fdatasync(path: str) -> None:
        real(path)   # the real call: the file must be there and readable
        seen["fdatasync"].append(path)

    monkeypatch.setattr(localside, "fdatasync_path", fdatasync)
    monkeypatch.setattr(localside, "syncfs", lambda root: seen["syncfs"].append(str(root)))
    return seen


def _stage(side: LocalSide, n: int) -> list[StagedWrite]:
    return [side.stage_write(f"d/f{i}", io.BytesIO(b"x" * i), i, 0) for i in range(n)]


def test_a_few_staged_files_are_synced_one_by_one(tmp_path: Path, calls: dict[str, list[str]]) -> None:
    side = LocalSide(tmp_path)
    os.makedirs(tmp_path / "d")
    staged = _stage(side, 3)
    side.flush()
    assert len(calls["fdatasync"]) == 3 and calls["syncfs"] == []
    assert all(Path(p).parent == tmp_path / "d" and Path(p).exists() for p in calls["fdatasync"])
    for s in staged:
        s.commit()
    side.flush()   # nothing staged since: nothing to sync
    assert len(calls["fdatasync"]) == 3 and calls["syncfs"] == []


def test_a_batch_takes_one_syncfs(tmp_path: Path, calls: dict[str, list[str]]) -> None:
    side = LocalSide(tmp_path)
    os.makedirs(tmp_path / "d")
    _stage(side, FSYNC_EACH_UP_TO + 1)
    side.flush()
    assert calls["fdatasync"] == [] and calls["syncfs"] == [str(tmp_path)]


def test_a_write_committed_at_once_is_not_left_for_the_next_flush(tmp_path: Path,
                                                                   calls: dict[str, list[str]]) -> None:
    side = LocalSide(tmp_path)
    os.makedirs(tmp_path / "d")
    for i in range(FSYNC_EACH_UP_TO + 5):
        side.write(f"d/w{i}", io.BytesIO(b"y"), 1, 0)
    aborted = side.stage_write("d/gone", io.BytesIO(b"z"), 1, 0)
    aborted.abort()
    side.flush()
    assert calls == {"fdatasync": [], "syncfs": []}


def test_a_staged_file_that_vanished_falls_back_to_syncfs(tmp_path: Path, calls: dict[str, list[str]]) -> None:
    side = LocalSide(tmp_path)
    os.makedirs(tmp_path / "d")
    _stage(side, 2)
    for p in (tmp_path / "d").iterdir():
        p.unlink()
    side.flush()
    assert calls["syncfs"] == [str(tmp_path)]
