"""The command line end to end against the MEGA emulator: config add, auth
with the password in SYNCAGENT_REMOTE_M_PASSWORD (no prompt), a session
stored and never the password, sync, the remote commands, `get` of a public
link with no account, an ephemeral remote, and `run` in the background."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from syncagent.cli.main import main
from syncagent.providers.mega.api import Api
from syncagent.providers.mega.provider import MegaProvider
from syncagent.providers.mega.session import login
from tests.emulators.base import EmulatorServer
from tests.emulators.mega.fixtures import EMAIL, FAST, PASSWORD, mega_emulator
from tests.helpers import tree, write


@pytest.fixture
def emu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    for var in ("MEGA_EMAIL", "MEGA_PASSWORD", "MEGA_API_URL", "SYNCAGENT_REMOTE_M_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "emu").mkdir()
    with mega_emulator(tmp_path / "emu") as server:
        yield server


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def remote_client(emu: EmulatorServer, root: str = "/docs") -> MegaProvider:
    api = Api(emu.base_url, tuning=FAST)
    return MegaProvider(api, login(api, EMAIL, PASSWORD), root)


def test_auth_from_the_environment_then_sync_and_browse(emu: EmulatorServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("config", "add", "m", "mega", f"email={EMAIL}", f"api_url={emu.base_url}")[0] == 0
    code, out = cli("sync", str(tmp_path / "nothing"), "m:docs")
    assert code != 0 and "syncagent auth m" in out and "SYNCAGENT_REMOTE_M_PASSWORD" in out
    monkeypatch.setenv("SYNCAGENT_REMOTE_M_PASSWORD", "wrong")
    code, out = cli("auth", "m")
    assert code == 1 and "wrong e-mail or password" in out
    monkeypatch.setenv("SYNCAGENT_REMOTE_M_PASSWORD", PASSWORD)
    code, out = cli("auth", "m")
    assert code == 0 and EMAIL in out, out
    monkeypatch.delenv("SYNCAGENT_REMOTE_M_PASSWORD")
    creds = (tmp_path / "creds.yaml").read_text()
    assert PASSWORD not in creds and "session" in yaml.safe_load(creds)["m"]
    assert os.stat(tmp_path / "creds.yaml").st_mode & 0o077 == 0

    local = tmp_path / "local"
    write(local / "a.txt", "hello")
    write(local / "Hello, 世界/z ≠.txt", "unicode")
    code, out = cli("sync", str(local), "m:docs")
    assert code == 0, out
    assert cli("ls", "-R", "m:docs")[1].count("docs/") == 2
    assert cli("lsd", "m:docs")[1].strip() == "docs/Hello, 世界/"
    assert "a.txt" in cli("tree", "m:docs")[1]
    assert cli("get", "m:docs/a.txt", "-")[1] == "hello"
    write(tmp_path / "up.bin", b"\0" * 300_000)
    assert cli("put", str(tmp_path / "up.bin"), "m:docs/sub/")[0] == 0
    assert cli("mkdir", "m:docs/empty/deeper")[0] == 0
    assert cli("mv", "m:docs/sub/up.bin", "m:docs/moved.bin")[0] == 0
    assert cli("cp", "m:docs/moved.bin", "m:docs/copy.bin")[0] == 0
    assert cli("rm", "-r", "m:docs/empty")[0] == 0
    code, out = cli("info", "m:docs/copy.bin")
    assert code == 0 and '"size": 300000' in out
    code, out = cli("quota", "m:")
    assert code == 0 and "used" in out
    code, link = cli("link", "m:docs/a.txt")
    assert code == 0 and link.startswith("https://mega.nz/file/")
    listed = {e.path for e in remote_client(emu).list()}
    assert listed == {"a.txt", "Hello, 世界", "Hello, 世界/z ≠.txt", "moved.bin", "copy.bin", "sub"}

    monkeypatch.setenv("MEGA_API_URL", emu.base_url)
    out_file = tmp_path / "public.txt"
    code, out = cli("get", link.strip(), str(out_file))
    assert code == 0 and out_file.read_text() == "hello", out
    handle, key = link.strip().split("/file/")[1].split("#")
    code, out = cli("get", f"https://mega.co.nz/#!{handle}!{key}", str(tmp_path))
    assert code == 0 and (tmp_path / "a.txt").read_text() == "hello"
    code, out = cli("get", f"https://mega.nz/file/{handle}#{'A' * 43}", str(tmp_path / "bad.txt"))
    assert code != 0 and not (tmp_path / "bad.txt").exists() and not list(tmp_path.glob(".syncagent-get-*"))
    code, out = cli("get", "https://example.com/x", "-")
    assert code == 2 and "no provider" in out


def test_an_expired_session_relogs_from_the_environment(emu: EmulatorServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cli("config", "add", "m", "mega", f"email={EMAIL}", f"api_url={emu.base_url}")
    monkeypatch.setenv("SYNCAGENT_REMOTE_M_PASSWORD", PASSWORD)
    write(tmp_path / "f.txt", "f")
    assert cli("put", str(tmp_path / "f.txt"), "m:")[0] == 0   # logs in by itself, keeps the session
    first = yaml.safe_load((tmp_path / "creds.yaml").read_text())["m"]["session"]
    emu.app.configure({"expire_sessions": True})
    assert cli("get", "m:f.txt", "-")[1] == "f"
    assert yaml.safe_load((tmp_path / "creds.yaml").read_text())["m"]["session"] != first
    monkeypatch.delenv("SYNCAGENT_REMOTE_M_PASSWORD")
    emu.app.configure({"expire_sessions": True})
    code, out = cli("get", "m:f.txt", "-")
    assert code == 1 and "syncagent auth m" in out


def test_an_ephemeral_remote(emu: EmulatorServer, tmp_path: Path) -> None:
    assert cli("config", "add", "tmp", "mega", "ephemeral=true", f"api_url={emu.base_url}")[0] == 0
    write(tmp_path / "local/x.txt", "anonymous")
    code, out = cli("sync", str(tmp_path / "local"), "tmp:stuff")
    assert code == 0, out
    assert cli("get", "tmp:stuff/x.txt", "-")[1] == "anonymous"   # the same account: its session was kept


def wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_run_keeps_a_mega_pair_in_sync(emu: EmulatorServer, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write(local / "start.txt", "at start")
    env = {**os.environ, "SYNCAGENT_REMOTE_M_PASSWORD": PASSWORD}
    subprocess.run([sys.executable, "-m", "syncagent", "config", "add", "m", "mega", f"email={EMAIL}",
                    f"api_url={emu.base_url}"], env=env, check=True, capture_output=True)
    log = open(tmp_path / "agent.log", "w+")   # noqa: SIM115 (closed below)
    agent = subprocess.Popen([sys.executable, "-m", "syncagent", "run", str(local), "m:docs", "--poll-interval",
                              "1", "--state-dir", str(tmp_path / "state")], env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        def remote_names() -> set[str]:
            client = remote_client(emu)
            return {e.path for e in client.list()} if client.root_exists() else set()

        assert wait_for(lambda: "start.txt" in remote_names(), 30), (tmp_path / "agent.log").read_text()
        other = remote_client(emu)
        other.write("from-cloud.txt", io.BytesIO(b"remote"), 6, 1_600_000_000_000_000_000)
        assert wait_for(lambda: (local / "from-cloud.txt").exists(), 20), "a remote change did not arrive"
        write(local / "typed.txt", "local")
        assert wait_for(lambda: "typed.txt" in remote_names(), 20)
        assert tree(local)["typed.txt"] and (local / "from-cloud.txt").read_text() == "remote"
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        finally:
            log.seek(0)
            output = log.read()
            log.close()
    assert agent.returncode == 0, output[-3000:]
