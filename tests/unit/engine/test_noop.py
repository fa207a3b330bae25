"""A run with nothing to do writes nothing: not the state database, not the
state dir, not either root (a write transaction in WAL mode would cost a
checkpoint and its fdatasyncs at every quiet run)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from syncagent.engine.plan import Mode
from tests.helpers import age_files, sync_in_process, write


def snapshot(*roots: Path) -> dict[str, tuple[int, int, str]]:
    """(size, mtime_ns, sha256) of every file and folder below `roots`."""
    seen: dict[str, tuple[int, int, str]] = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest() if name in files else ""
                seen[path] = (st.st_size, st.st_mtime_ns, digest)
    return seen


@pytest.mark.parametrize("mode", ["two-way", "upload", "download"])
def test_a_noop_run_leaves_the_state_and_both_roots_as_they_were(tmp_path: Path, mode: str) -> None:
    local, remote, state = tmp_path / "local", tmp_path / "remote", tmp_path / "state"
    source = remote if mode == "download" else local
    for i in range(5):
        write(source / f"d{i}/f{i}.txt", f"content {i}")
    write(source / "top.txt", "top")
    age_files(source)
    first = sync_in_process(local, remote, state, mode=Mode(mode))
    assert first.uploaded + first.downloaded == 6
    sync_in_process(local, remote, state, mode=Mode(mode))
    before = snapshot(local, remote, state)
    summary = sync_in_process(local, remote, state, mode=Mode(mode))
    assert not summary.changed_anything() and summary.exit_code == 0
    assert snapshot(local, remote, state) == before
