"""The agent's run over a few dirty paths (Engine.sync(paths)) sees what
stands where the parents of those paths should be: a file where the other
side now has a folder is replaced (or, changed, kept as a conflict), not
run into with a folder it cannot make."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.helpers import sync_in_process, tree, write


def _synced_file_d(tmp_path: Path) -> tuple[Path, Path, Path]:
    local, remote, state = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "d", "a file named d")
    remote.mkdir()
    first = sync_in_process(local, remote, state, force=True)
    assert first.errors == 0 and tree(local) == tree(remote)
    return local, remote, state


def test_a_file_the_other_side_replaced_by_a_folder_is_replaced_by_a_partial_run(tmp_path: Path) -> None:
    """Found by test_stateful: the watcher reports d/c.txt (a delete that found
    nothing, d being a file here) while the remote replaced the file d by a
    folder holding c.txt. The run planned a local folder d over the file and
    failed twice ("a folder on the way is a link or a file")."""
    local, remote, state = _synced_file_d(tmp_path)
    (remote / "d").unlink()
    write(remote / "d" / "c.txt", "new on the remote")
    result = sync_in_process(local, remote, state, paths={"d/c.txt"}, force=True, max_delete=100.0)
    assert result.errors == 0, result.error_list
    assert (local / "d" / "c.txt").read_text() == "new on the remote"
    assert tree(local) == tree(remote)
    again = sync_in_process(local, remote, state)
    assert not again.changed_anything(), again


def test_a_changed_file_the_other_side_replaced_by_a_folder_is_kept_beside_it(tmp_path: Path) -> None:
    local, remote, state = _synced_file_d(tmp_path)
    write(local / "d", "edited here")
    (remote / "d").unlink()
    write(remote / "d" / "c.txt", "new on the remote")
    result = sync_in_process(local, remote, state, paths={"d", "d/c.txt"}, force=True, max_delete=100.0)
    assert result.errors == 0, result.error_list
    whole = sync_in_process(local, remote, state, force=True, max_delete=100.0)
    assert whole.errors == 0, whole.error_list
    lt = tree(local)
    assert lt == tree(remote)
    kept = {hashlib.sha256(text.encode()).hexdigest() for text in ("edited here", "new on the remote")}
    assert kept <= set(lt.values()), f"a version was lost: {lt}"
