"""The command line end to end against the OneDrive emulator: config add,
auth with a device code (no browser), sync both ways, the remote commands,
and an expired sign-in that says what to run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from syncagent.cli.main import main
from tests.emulators.base import EmulatorServer
from tests.emulators.onedrive.app import OneDriveApp
from tests.emulators.onedrive.fixtures import CLIENT_ID, onedrive_emulator
from tests.helpers import write


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ONEDRIVE_CLIENT_ID", "ONEDRIVE_REFRESH_TOKEN", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def emu(home: Path) -> Iterator[EmulatorServer]:
    (home / "emu").mkdir()
    with onedrive_emulator(home / "emu", auto_approve=1, device_interval=0.01) as server:
        yield server


def cli(*args: str, input: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    assert "Traceback" not in r.output, r.output
    return r.exit_code, r.output


def add_remote(emu: EmulatorServer, *extra: str) -> None:
    base = emu.base_url.rstrip("/")
    code, out = cli("config", "add", "od", "onedrive", f"graph_url={base}/v1.0", f"auth_url={base}", *extra)
    assert code == 0 and "syncagent auth od" in out, out


def stored(home: Path) -> dict[str, Any]:
    data = yaml.safe_load((home / "creds.yaml").read_text())
    assert isinstance(data, dict)
    return dict(data["od"])


def test_device_code_auth_sync_and_the_seeds_commands(home: Path, emu: EmulatorServer) -> None:
    add_remote(emu, f"client_id={CLIENT_ID}", "root=/Sync")
    code, out = cli("auth", "od")
    assert code == 0, out
    assert "devicelogin" in out and "enter the code" in out and "logged in to od as alice" in out
    assert os.stat(home / "creds.yaml").st_mode & 0o077 == 0
    secrets = stored(home)
    code, out = cli("config", "show")
    assert secrets["refresh_token"] not in out and secrets["access_token"] not in out

    local = home / "local"
    write(local / "a.txt", "hello")
    write(local / "python/你好/p.py", "print('你好')")
    write(local / "bad:name.txt", "OneDrive cannot hold this name")
    code, out = cli("sync", str(local), "od:docs")
    assert code == 1 and "bad:name.txt" in out                     # reported by name, the rest synced
    code, out = cli("ls", "-R", "od:docs")
    assert "docs/a.txt" in out and "docs/python/你好/p.py" in out and "bad" not in out
    code, out = cli("get", "od:docs/python/你好/p.py", "-")
    assert out == "print('你好')"
    code, out = cli("mkdir", "od:new/deep")
    assert code == 0
    code, out = cli("put", str(local / "a.txt"), "od:new/deep/")
    assert code == 0
    code, out = cli("cp", "od:new/deep/a.txt", "od:new/copy.txt")
    assert code == 0, out
    code, out = cli("mv", "od:new/copy.txt", "od:new/moved.txt")
    assert code == 0, out
    code, out = cli("lsd", "od:new")
    assert "new/deep/" in out
    code, out = cli("tree", "od:new")
    assert "moved.txt" in out and "deep/" in out
    code, out = cli("info", "od:new/moved.txt")
    assert code == 0 and '"quickXorHash"' in out
    code, out = cli("link", "od:new/moved.txt")
    assert code == 0 and out.startswith(emu.base_url + "s/")
    code, out = cli("link", "-t", "embed", "od:new/moved.txt")
    assert code == 0 and out.startswith("<iframe")
    code, out = cli("info-set", "od:new/moved.txt", '{"name": "你好.py", "description": "seed"}')
    assert code == 0 and out.strip() == "new/你好.py"
    code, out = cli("info", "od:new/你好.py")
    assert '"description": "seed"' in out
    code, out = cli("recent", "od:")
    assert out.splitlines()[0].endswith("new/你好.py")
    code, out = cli("comments", "od:new/你好.py")
    assert code == 1 and len(out.strip().splitlines()) == 1 and "no comments" in out
    code, out = cli("quota", "od:")
    assert code == 0 and "used" in out and "of 5.0 GiB" in out
    code, out = cli("rm", "-r", "od:new")
    assert code == 0
    app = emu.app
    assert isinstance(app, OneDriveApp) and app.drive_of("alice").usage()[1] > 0   # in the recycle bin, not gone

    write(local / "a.txt", "hello again")
    code, out = cli("sync", str(local), "od:docs")
    assert code == 1                                               # the bad name is still reported
    code, out = cli("get", "od:docs/a.txt", "-")
    assert out == "hello again"
    assert stored(home)["refresh_token"] == secrets["refresh_token"]   # the access token was still good


def test_rotation_is_saved_and_a_revoked_sign_in_says_what_to_run(home: Path, emu: EmulatorServer) -> None:
    add_remote(emu, f"client_id={CLIENT_ID}")
    assert cli("auth", "od")[0] == 0
    first = stored(home)
    emu.app.configure({"expire_access_tokens": 1})
    code, out = cli("ls", "od:")
    assert code == 0, out
    second = stored(home)
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    emu.app.configure({"expire_access_tokens": 1, "revoke_refresh_tokens": 1})
    code, out = cli("ls", "od:")
    assert code == 1 and "syncagent auth od" in out and second["refresh_token"] not in out


def test_client_id_from_the_seeds_lcrc(home: Path, emu: EmulatorServer) -> None:
    add_remote(emu)
    code, out = cli("auth", "od")
    assert code == 78 and "client_id" in out
    (home / ".lcrc").write_text(f"client:\n  id: {CLIENT_ID}\n  secret: not-used-by-a-public-client\n")
    code, out = cli("auth", "od")
    assert code == 0 and "~/.lcrc" in out, out
    assert cli("ls", "od:")[0] == 0
