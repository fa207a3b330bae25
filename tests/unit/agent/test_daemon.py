"""The agent as a process: SIGTERM mid-transfer, own writes, safe-save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import sync_cli, tree, write


def wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(local: Path, remote: Path, *extra: str) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "syncagent", "run", str(local), str(remote),
                              "--state-dir", str(tmp_path / "state"), "--log-format", "json", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigterm_during_transfer_stops_cleanly(tmp_path: Path, agent: Callable[..., subprocess.Popen[str]]) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    for i in range(150):
        write(local / f"d{i % 5}/f{i:03}.bin", os.urandom(1 << 20))
    remote.mkdir()
    p = agent(local, remote)
    assert wait_for(lambda: any(remote.rglob("*.bin")), 20), "no transfer started"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=15)
    assert p.returncode == 0, out
    assert not [q for q in remote.rglob("*") if q.name.startswith(".syncagent-")], "temp files left behind"
    r = sync_cli(local, remote, tmp_path / "state")
    assert r.returncode == 0, r.stderr
    assert tree(local) == tree(remote)


def test_own_downloads_are_not_uploaded_again(tmp_path: Path, agent: Callable[..., subprocess.Popen[str]]) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "seed.txt", "seed")
    remote.mkdir()
    p = agent(local, remote, "--poll-interval", "1")
    assert wait_for(lambda: (remote / "seed.txt").exists(), 20)
    write(remote / "from-remote.txt", "cloud")
    assert wait_for(lambda: (local / "from-remote.txt").exists(), 15)
    stat_before = (remote / "from-remote.txt").stat()
    time.sleep(2.5)
    stat_after = (remote / "from-remote.txt").stat()
    assert (stat_before.st_ino, stat_before.st_mtime_ns) == (stat_after.st_ino, stat_after.st_mtime_ns), \
        "the agent uploaded its own download again"
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=15)
    assert p.returncode == 0


def test_safe_save_is_one_update(tmp_path: Path, agent: Callable[..., subprocess.Popen[str]]) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "doc.txt", "version 1")
    remote.mkdir()
    p = agent(local, remote)
    assert wait_for(lambda: (remote / "doc.txt").exists(), 20)
    # an editor's safe save: write a temp file, then rename it over the document
    write(local / ".doc.txt.swp", "version 2")
    os.replace(local / ".doc.txt.swp", local / "doc.txt")
    assert wait_for(lambda: (remote / "doc.txt").read_text() == "version 2", 10)
    # delete + recreate
    (local / "doc.txt").unlink()
    write(local / "doc.txt", "version 3")
    assert wait_for(lambda: (remote / "doc.txt").exists() and (remote / "doc.txt").read_text() == "version 3", 10)
    time.sleep(0.5)
    assert tree(local) == tree(remote)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=15)
    assert p.returncode == 0
