"""The command line end to end against the SmartFile emulator: config add,
auth (wrong then right password), sync to NAME:path, remote commands."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli.main import main
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator
from tests.helpers import write


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SMARTFILE_API_KEY", raising=False)
    monkeypatch.delenv("SMARTFILE_API_PASSWORD", raising=False)
    (tmp_path / "emu").mkdir()
    with smartfile_emulator(tmp_path / "emu") as emu:
        yield emu.base_url


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_configure_auth_sync_and_browse(env: str, tmp_path: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={env}", "root=/backup")[0] == 0
    code, out = cli("auth", "sf", "--key", KEY, "--password", "x" * 30)
    assert code == 1 and "401" in out and "x" * 30 not in out
    code, out = cli("auth", "sf", "--key", KEY, "--password", PASSWORD)
    assert code == 0, out
    assert os.stat(tmp_path / "creds.yaml").st_mode & 0o077 == 0
    code, out = cli("config", "show")
    assert PASSWORD not in out and KEY not in out
    local = tmp_path / "local"
    write(local / "a.txt", "hello")
    write(local / "Hello, 世界/z ≠.txt", "unicode")
    code, out = cli("sync", str(local), "sf:docs")
    assert code == 0, out
    code, out = cli("ls", "-R", "sf:docs")
    assert "docs/a.txt" in out and "docs/Hello, 世界/z ≠.txt" in out
    code, out = cli("get", "sf:docs/a.txt", "-")
    assert out == "hello"
    code, out = cli("quota", "sf:")
    assert code == 1 and "quota" in out, "an unsupported feature is a failure (1), not a usage error (2)"
    code, out = cli("sync", str(local), "nosuch:docs")
    assert code == 2 and "unknown remote" in out


def test_bad_config_exits_78_with_position(env: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("remotes:\n  sf: {type: smartfile}\npairs:\n  - local: /x\n    mode: up\n")
    code, out = cli("sync", str(tmp_path), "sf:docs")
    assert code == 78 and "config.yaml:" in out
