"""`syncagent sync` and `run` refusals (a bare remote name, overlapping
roots, from the command line and from the config file), and a clean stop
on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli.main import main
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator
from tests.helpers import write


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert "Traceback" not in r.output
    return r.exit_code, r.output


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_configured_remote_name_without_its_colon(home: Path) -> None:
    (home / "nas").mkdir()
    assert cli("config", "add", "nas", "local", f"root={home / 'nas'}")[0] == 0
    write(home / "docs/a.txt", "a")
    before = snapshot(home)
    code, out = cli("sync", "docs", "nas")
    assert code == 2 and "`nas:`" in out and "./nas" in out
    code, _ = cli("run", "docs", "nas")
    assert code == 2
    assert snapshot(home) == before
    assert cli("sync", "docs", "./other")[0] == 0, "a folder that is not a remote's name is fine"


def test_overlap_through_a_named_local_remote(home: Path) -> None:
    assert cli("config", "add", "nas", "local", f"root={home / 'docs'}")[0] == 0
    write(home / "docs/a.txt", "a")
    before = snapshot(home)
    code, out = cli("sync", str(home / "docs"), "nas:backup")
    assert code == 2 and "inside" in out
    assert snapshot(home) == before


def test_run_refuses_an_overlapping_pair_from_the_config_file(home: Path) -> None:
    write(home / "docs/a.txt", "a")
    (home / "config.yaml").write_text(
        f"remotes:\n  nas: {{type: local, root: {home}}}\n"
        f"pairs:\n  - local: {home / 'other'}\n    remote: nas:elsewhere\n"
        f"  - local: {home / 'docs'}\n    remote: nas:docs/mirror\n")
    before = snapshot(home)
    code, out = cli("run")
    assert code == 2 and "inside" in out
    assert snapshot(home) == before


def test_a_state_dir_inside_the_local_root(home: Path) -> None:
    write(home / "docs/a.txt", "a")
    code, out = cli("sync", str(home / "docs"), str(home / "copy"), "--state-dir", str(home / "docs/.st"))
    assert code == 2 and "state dir" in out
    assert not (home / "docs/.st").exists() and not (home / "copy").exists()


def test_sigterm_stops_a_sync_cleanly_with_143(tmp_path: Path) -> None:
    (tmp_path / "emu").mkdir()
    for i in range(8):
        write(tmp_path / f"local/f{i}.bin", "x" * 50_000)
    env = dict(os.environ, SYNCAGENT_CONFIG=str(tmp_path / "config.yaml"),
               SYNCAGENT_CREDENTIALS=str(tmp_path / "creds.yaml"), SYNCAGENT_STATE_DIR=str(tmp_path / "state"),
               SYNCAGENT_REMOTE_SF_KEY=KEY, SYNCAGENT_REMOTE_SF_PASSWORD=PASSWORD)
    command = [sys.executable, "-m", "syncagent", "sync", str(tmp_path / "local"), "sf:docs"]
    with smartfile_emulator(tmp_path / "emu") as emu:
        (tmp_path / "config.yaml").write_text(f"remotes:\n  sf: {{type: smartfile, url: '{emu.base_url}'}}\n")
        emu.inject("slow", 100, method="POST", path="/path/data/", delay=1.5)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not any(r.method == "POST" and "/path/data/" in r.path for r in emu.requests):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 143, err
        assert "stopped by SIGTERM" in err and "Traceback" not in err
        emu.faults.clear()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
