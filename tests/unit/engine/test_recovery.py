"""Crash recovery adopts what landed (the journal of intents), and a file
that changes while it is sent is not turned into a conflict copy."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from syncagent.engine import execute
from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.paths import is_conflict_copy
from syncagent.providers.base import Expect, RemoteEntry
from syncagent.providers.smartfile import SmartFileProvider
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_setup
from tests.helpers import sync_cli, tree, write


def _crash(local: Path, remote: Path, state: Path, point: str, *extra: str) -> None:
    r = sync_cli(local, remote, state, *extra, env={"SYNCAGENT_CRASH_AT": point})
    assert r.returncode == -9, f"{point} not reached: {r.stdout}{r.stderr}"


def _conflicts(root: Path) -> list[str]:
    return [p for p in tree(root) if is_conflict_copy(p)]


@pytest.mark.parametrize("point", ["staged:1", "flushed:1", "committed:1", "base-written:1"])
def test_an_upload_killed_before_its_base_then_edited_again_just_uploads(tmp_path: Path, point: str) -> None:
    local, remote, state = tmp_path / "L", tmp_path / "R", tmp_path / "s"
    remote.mkdir()
    write(local / "f.txt", "v1")
    _crash(local, remote, state, point)
    write(local / "f.txt", "v2 is longer")
    r = sync_cli(local, remote, state)
    assert r.returncode == 0, r.stderr
    assert (remote / "f.txt").read_text() == "v2 is longer" == (local / "f.txt").read_text()
    assert _conflicts(local) == [] and _conflicts(remote) == []


def test_an_upload_killed_before_its_base_then_deleted_stays_deleted(tmp_path: Path) -> None:
    local, remote, state = tmp_path / "L", tmp_path / "R", tmp_path / "s"
    remote.mkdir()
    write(local / "keep.txt", "k")
    write(local / "f.txt", "v1")
    _crash(local, remote, state, "committed:2")
    (local / "f.txt").unlink()
    assert sync_cli(local, remote, state).returncode == 0
    assert set(tree(local)) == set(tree(remote)) == {"keep.txt"}


@pytest.mark.parametrize("point", ["staged:1", "committed:1"])
def test_a_download_killed_before_its_base_then_edited_in_place_uploads_the_edit(tmp_path: Path, point: str) -> None:
    local, remote, state = tmp_path / "L", tmp_path / "R", tmp_path / "s"
    write(local / "seed.txt", "seed")
    assert sync_cli(local, remote, state).returncode == 0
    write(remote / "f.txt", "v1 from the remote")
    _crash(local, remote, state, point)
    if (local / "f.txt").exists():
        with open(local / "f.txt", "a") as f:     # an in-place edit keeps the inode
            f.write(" and a local edit")
        want = "v1 from the remote and a local edit"
    else:
        want = "v1 from the remote"
    assert sync_cli(local, remote, state).returncode == 0
    assert (remote / "f.txt").read_text() == want == (local / "f.txt").read_text()
    assert _conflicts(local) == []


POINTS = ["staged", "flushed", "committed", "base-written", "moved", "deleted"]


def _edit_one_side(rng: random.Random, side: Path, step: int) -> None:
    names = sorted(p for p in tree(side) if p.endswith(".txt"))
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if names and roll < 0.4:
            write(side / rng.choice(names), f"edit {step} {rng.random()}" * rng.randint(1, 50))
        elif names and roll < 0.55:
            victim = side / rng.choice(names)
            if victim.exists():
                victim.unlink()
        elif names and roll < 0.65:
            src = side / rng.choice(names)
            if src.exists():
                src.rename(side / f"d{rng.randint(0, 2)}/moved-{step}-{rng.randint(0, 99)}.txt")
        else:
            write(side / f"d{rng.randint(0, 2)}/n{step}-{rng.randint(0, 999)}.txt", f"new {step}")


@pytest.mark.parametrize("edited", ["local", "remote"])
def test_random_kills_with_edits_on_one_side_lose_nothing_and_make_no_conflict(tmp_path: Path, edited: str) -> None:
    rng = random.Random(f"kill-loop-{edited}")
    local, remote, state = tmp_path / "L", tmp_path / "R", tmp_path / "s"
    for i in range(12):
        write(local / f"d{i % 3}/f{i}.txt", f"start {i}")
    assert sync_cli(local, remote, state).returncode == 0
    side = local if edited == "local" else remote
    for step in range(10):
        _edit_one_side(rng, side, step)
        sync_cli(local, remote, state, env={"SYNCAGENT_CRASH_AT": f"{rng.choice(POINTS)}:{rng.randint(1, 3)}"})
    truth = tree(side)
    assert sync_cli(local, remote, state).returncode == 0
    assert tree(local) == tree(remote) == truth, "a version was lost or invented"


@pytest.fixture
def sf_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "emu").mkdir()
    with smartfile_setup(tmp_path / "emu", root="/sync") as sf:
        config = tmp_path / "config.yaml"
        config.write_text(f"remotes:\n  sf: {{type: smartfile, url: '{sf.emulator.base_url}', root: /}}\n")
        monkeypatch.setenv("SYNCAGENT_CONFIG", str(config))
        monkeypatch.setenv("SMARTFILE_API_KEY", KEY)
        monkeypatch.setenv("SMARTFILE_API_PASSWORD", PASSWORD)
        yield "sf:sync"


def test_random_kills_against_the_smartfile_emulator(tmp_path: Path, sf_remote: str) -> None:
    rng = random.Random("kill-loop-smartfile")
    local, state = tmp_path / "L", tmp_path / "s"
    for i in range(9):
        write(local / f"d{i % 3}/f{i}.txt", f"start {i}")
    assert sync_cli(local, sf_remote, state).returncode == 0
    for step in range(6):
        _edit_one_side(rng, local, step)
        sync_cli(local, sf_remote, state,
                 env={"SYNCAGENT_CRASH_AT": f"{rng.choice(POINTS)}:{rng.randint(1, 3)}"})
    truth = tree(local)
    final = sync_cli(local, sf_remote, state, "--json")
    assert final.returncode == 0, final.stderr
    assert tree(local) == truth and _conflicts(local) == []
    again = sync_cli(local, sf_remote, state, "--json")
    assert '"uploaded": 0' in again.stdout and '"downloaded": 0' in again.stdout and '"conflicts": 0' in again.stdout


class AppendsWhileSending(SmartFileProvider):
    """Appends to the local source once half of it has been read: a log being
    written while it is uploaded."""

    victim: Path | None = None

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = None) -> RemoteEntry:
        victim, self.victim = self.victim, None

        class Growing(io.RawIOBase):
            done, grown = 0, False

            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:  # type: ignore[override]
                data = stream.read(min(len(b), 1 << 16))
                self.done += len(data)
                if victim is not None and not self.grown and self.done >= size // 2:
                    self.grown = True
                    with open(victim, "ab") as f:
                        f.write(b"more log lines\n")
                b[: len(data)] = data
                return len(data)

        return super().write(path, io.BufferedReader(Growing()), size, mtime_ns, expect=expect)  # type: ignore[type-var]


@pytest.mark.parametrize("racy", [False, True], ids=["recorded-past-its-mtime", "recorded-within-a-clock-tick"])
def test_a_file_growing_while_it_is_uploaded_is_uploaded_again_not_turned_into_a_conflict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, racy: bool) -> None:
    """Whether the sent copy's row is racy (recorded within 50 ms of the mtime the scan saw, as when
    the previous run's append and this run's send are quick) is set, not left to the machine's speed:
    a racy row must be confirmed by the hash of the bytes sent, or the next run takes both sides
    for changed and makes a conflict copy."""
    monkeypatch.setattr(execute, "_racy_after", lambda: -1 if racy else 1 << 62)
    local = tmp_path / "L"
    log = write(local / "app.log", os.urandom(3 << 20))
    (tmp_path / "emu").mkdir()
    with smartfile_setup(tmp_path / "emu", root="/sync") as sf:
        provider = AppendsWhileSending("/sync", api_key=KEY, api_password=PASSWORD, url=sf.emulator.base_url)
        store = Store(tmp_path / "s")
        try:
            runs = []
            for _ in range(3):
                provider.victim = log
                engine = Engine(local, provider, "sf", store, SyncOptions(delta="never"),
                                Reporter(out=io.StringIO(), err=io.StringIO()))
                runs.append(engine.sync())
            provider.victim = None
            final = Engine(local, provider, "sf", store, SyncOptions(delta="never"),
                           Reporter(out=io.StringIO(), err=io.StringIO())).sync()
        finally:
            store.close()
        with provider.read("app.log") as f:
            remote_bytes = f.read()
    assert all(r.conflicts == 0 and r.changed_during_run == 1 and r.exit_code == 0 for r in runs), runs
    assert final.uploaded == 1 and final.conflicts == 0
    assert remote_bytes == log.read_bytes()
    assert _conflicts(local) == []
