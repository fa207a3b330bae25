"""kill -9 at named points of a sync, then a normal run: it must converge
with nothing lost and no temp file left (invariant 4)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import sync_cli, tree, write


def _scenario(base: Path) -> tuple[Path, Path, Path, set[str]]:
    local, remote, state = base / "local", base / "remote", base / "state"
    local.mkdir()
    remote.mkdir()
    for i in range(30):
        write(local / f"d{i % 3}/f{i:02}.txt", f"base {i}\n" * (i + 1))
    write(local / "moved/big.bin", b"x" * 300_000)
    r = sync_cli(local, remote, state)
    assert r.returncode == 0, r.stderr
    unsynced = []
    for i in range(0, 10):
        unsynced.append(write(local / f"d{i % 3}/f{i:02}.txt", f"local edit {i}"))
    for i in range(10, 20):
        unsynced.append(write(remote / f"d{i % 3}/f{i:02}.txt", f"remote edit {i}"))
    (local / "d0/f21.txt").unlink()
    (remote / "d1/f22.txt").unlink()
    (local / "moved/big.bin").rename(local / "moved/renamed.bin")
    unsynced.append(write(local / "d2/f29.txt", "conflict local"))
    unsynced.append(write(remote / "d2/f29.txt", "conflict remote"))
    for i in range(8):
        unsynced.append(write(local / f"new-local/{i}.txt", f"new local {i}"))
        unsynced.append(write(remote / f"new-remote/{i}.txt", f"new remote {i}"))
    contents = {hashlib.sha256(p.read_bytes()).hexdigest() for p in unsynced}
    return local, remote, state, contents


POINTS = [("staged", 1), ("flushed", 1), ("committed", 1), ("committed", 7), ("base-written", 1),
          ("base-written", 3), ("moved", 1), ("deleted", 1), ("conflict", 1)]


@pytest.mark.parametrize(("point", "n"), POINTS)
def test_kill_then_rerun_converges(tmp_path: Path, point: str, n: int) -> None:
    local, remote, state, unsynced = _scenario(tmp_path)
    crashed = sync_cli(local, remote, state, env={"SYNCAGENT_CRASH_AT": f"{point}:{n}"})
    assert crashed.returncode == -9, f"the crash point {point}:{n} was not reached:\n{crashed.stdout}"
    done = sync_cli(local, remote, state)
    assert done.returncode == 0, done.stdout + done.stderr
    lt, rt = tree(local), tree(remote)
    assert lt == rt, f"sides differ: {set(lt) ^ set(rt)}"
    assert unsynced <= set(lt.values()), "an unsynced version was lost"
    assert "moved/renamed.bin" in lt and "moved/big.bin" not in lt
    assert not [p for p in lt if ".syncagent-" in p], "temp files left behind"
    again = sync_cli(local, remote, state, "--json")
    assert '"uploaded": 0' in again.stdout and '"downloaded": 0' in again.stdout, again.stdout


# Batches of 4 files: each batch is staged on a thread while the one before it
# is flushed, committed and recorded (execute._Ahead), so the kill lands with
# one batch half committed and the next one's temps and intents on disk.
AHEAD_POINTS = [("staged", 2), ("flushed", 2), ("committed", 5), ("committed", 11), ("base-written", 4)]


@pytest.mark.parametrize(("point", "n"), AHEAD_POINTS)
def test_kill_while_the_next_batch_is_staged_then_rerun_converges(tmp_path: Path, point: str, n: int) -> None:
    local, remote, state, unsynced = _scenario(tmp_path)
    crashed = sync_cli(local, remote, state, env={"SYNCAGENT_CRASH_AT": f"{point}:{n}", "SYNCAGENT_BATCH_FILES": "4"})
    assert crashed.returncode == -9, f"the crash point {point}:{n} was not reached:\n{crashed.stdout}"
    done = sync_cli(local, remote, state, env={"SYNCAGENT_BATCH_FILES": "4"})
    assert done.returncode == 0, done.stdout + done.stderr
    lt, rt = tree(local), tree(remote)
    assert lt == rt, f"sides differ: {set(lt) ^ set(rt)}"
    assert unsynced <= set(lt.values()), "an unsynced version was lost"
    assert not [p for p in lt if ".syncagent-" in p], "temp files left behind"
    again = sync_cli(local, remote, state, "--json")
    assert '"uploaded": 0' in again.stdout and '"downloaded": 0' in again.stdout, again.stdout


def test_kill_between_two_composed_moves_then_rerun_moves_the_rest(tmp_path: Path) -> None:
    """d/e/f.txt renamed to b.txt and then d to x, both locally: the remote
    renames d first, then moves x/e/f.txt. Killed between the two, the base
    knows where the first move put f.txt, so the rerun moves it on: no second
    copy at x/e/f.txt, nothing transferred. (Killed between a rename and its
    row, the rerun still converges, by an upload and a download.)"""
    local, remote, state = tmp_path / "local", tmp_path / "remote", tmp_path / "state"
    write(local / "d/e/f.txt", "f\n" * 1000)
    write(local / "a.txt", "a\n")
    remote.mkdir()
    assert sync_cli(local, remote, state).returncode == 0
    (local / "d/e/f.txt").rename(local / "b.txt")
    (local / "d").rename(local / "x")
    crashed = sync_cli(local, remote, state, env={"SYNCAGENT_CRASH_AT": "move-recorded:1"})
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    done = sync_cli(local, remote, state, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"uploaded": 0' in done.stdout and '"downloaded": 0' in done.stdout, done.stdout
    lt = tree(local)
    assert lt == tree(remote)
    assert set(lt) == {"a.txt", "b.txt", "x", "x/e"}
