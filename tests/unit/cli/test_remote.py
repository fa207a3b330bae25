"""The remote file commands through the CLI: on local folders, across named
remotes (two local ones and the SmartFile emulator), and what they say."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli import transfer
from syncagent.cli.main import main
from syncagent.providers.local import LocalProvider
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_put_ls_get_mv_cp_rm(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    src = tmp_path / "hello ≠ world.txt"
    src.write_text("payload")
    assert run("mkdir", str(remote / "a/b"))[0] == 0
    assert run("put", str(src), str(remote / "a") + "/")[0] == 0
    code, out = run("ls", "-R", str(remote), "--json")
    assert code == 0 and [e["path"] for e in json.loads(out)] == ["a/hello ≠ world.txt"]
    code, out = run("lsd", str(remote))
    assert out.strip() == "a/"
    assert run("get", str(remote / "a/hello ≠ world.txt"), "-")[1] == "payload"
    assert run("mv", str(remote / "a/hello ≠ world.txt"), str(remote / "a/b/moved.txt"))[0] == 0
    assert run("cp", str(remote / "a/b/moved.txt"), str(remote / "copy.txt"))[0] == 0
    assert (remote / "copy.txt").read_text() == "payload"
    code, _ = run("rm", str(remote / "a"))
    assert code != 0 and (remote / "a").exists(), "a non-empty folder needs -r"
    assert run("rm", "-r", str(remote / "a"))[0] == 0 and not (remote / "a").exists()
    code, out = run("tree", str(remote))
    assert "copy.txt" in out


def test_missing_path_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such file" in result.output


def test_unknown_named_remote_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "nosuchremote:folder"])
    assert result.exit_code in (2, 78) and "nosuchremote" in result.output


# ---- across remotes, several paths, what the commands say ---------------------------------


@pytest.fixture
def remotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Remotes `one` and `two` (local folders) and `sf` (the SmartFile emulator)."""
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_REMOTE_SF_KEY", KEY)
    monkeypatch.setenv("SYNCAGENT_REMOTE_SF_PASSWORD", PASSWORD)
    for name in ("one", "two", "emu"):
        (tmp_path / name).mkdir()
    with smartfile_emulator(tmp_path / "emu") as emu:
        for args in (("one", "local", f"root={tmp_path / 'one'}"), ("two", "local", f"root={tmp_path / 'two'}"),
                     ("sf", "smartfile", f"url={emu.base_url}", "root=/r")):
            assert run("config", "add", *args)[0] == 0
        yield tmp_path


def say(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_cp_and_mv_through_smartfile_and_back(remotes: Path) -> None:
    (remotes / "one/a.txt").write_text("alpha")
    (remotes / "one/dir/sub").mkdir(parents=True)
    (remotes / "one/dir/sub/b.txt").write_text("beta")
    code, out = say("cp", "one:a.txt", "sf:in/a.txt")
    assert code == 0 and "copied one:a.txt -> sf:in/a.txt" in out
    assert say("get", "sf:in/a.txt", "-")[1] == "alpha"
    code, out = say("cp", "sf:in/a.txt", "sf:in/copy.txt")          # server side
    assert code == 0 and say("get", "sf:in/copy.txt", "-")[1] == "alpha"
    code, out = say("mv", "sf:in/copy.txt", "sf:moved/")             # into a folder: keeps the name
    assert code == 0 and say("get", "sf:moved/copy.txt", "-")[1] == "alpha"
    code, out = say("cp", "one:dir", "sf:tree")                      # a folder, file by file
    assert code == 0 and "(1 file)" in out and say("get", "sf:tree/sub/b.txt", "-")[1] == "beta"
    code, out = say("mv", "sf:tree", "two:back")
    assert code == 0 and (remotes / "two/back/sub/b.txt").read_text() == "beta"
    assert "tree/" not in say("ls", "-R", "sf:")[1], "the moved folder left SmartFile"
    code, out = say("mv", "sf:in/a.txt", str(remotes / "here.txt"))
    assert code == 0 and (remotes / "here.txt").read_text() == "alpha"
    assert "in/a.txt" not in say("ls", "-R", "sf:")[1]


def test_mv_keeps_the_source_when_the_copy_does_not_verify(remotes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (remotes / "one/a.txt").write_text("alpha")
    monkeypatch.setattr(LocalProvider, "content_hash", lambda self, path: "0" * 64)
    code, out = say("mv", "one:a.txt", "two:a.txt")
    assert code == 1 and "hash differs" in out
    assert (remotes / "one/a.txt").read_text() == "alpha"


def test_cp_refuses_a_folder_into_itself_and_a_missing_source(remotes: Path) -> None:
    (remotes / "one/dir").mkdir()
    code, out = say("cp", "one:dir", "one:dir/inner")
    assert code == 2 and "inside itself" in out
    code, out = say("mv", "one:nope.txt", "two:")
    assert code == 1 and "no such file" in out
    assert say("mv", "one:", "two:x")[0] == 2


def test_rm_takes_several_paths_and_reports_each(remotes: Path) -> None:
    for name in ("a", "b", "c"):
        (remotes / f"one/{name}.txt").write_text(name)
    (remotes / "one/d").mkdir()
    code, out = say("rm", "one:a.txt", "one:missing.txt", "one:b.txt", "one:d")
    assert code == 1
    assert "removed one:a.txt" in out and "removed one:b.txt" in out
    assert "one:missing.txt: no such file" in out and "one:d: is a folder" in out
    assert not (remotes / "one/a.txt").exists() and (remotes / "one/c.txt").exists() and (remotes / "one/d").exists()
    code, out = say("rm", "-q", "-r", "one:c.txt", "one:d")
    assert code == 0 and out == "" and not (remotes / "one/d").exists()


def test_put_get_say_what_they_did_and_quiet_says_nothing(remotes: Path) -> None:
    (remotes / "f.txt").write_text("data")
    code, out = say("put", str(remotes / "f.txt"), "one:up/")
    assert code == 0 and "uploaded" in out and "one:up/f.txt" in out
    code, out = say("get", "-q", "one:up/f.txt", str(remotes / "g.txt"))
    assert code == 0 and out == "" and (remotes / "g.txt").read_text() == "data"
    code, out = say("get", "one:up/f.txt", str(remotes / "missing/dir/"))
    assert code == 1 and "no such folder" in out and not (remotes / "missing").exists()
    code, out = say("get", "one:up/f.txt", str(remotes / "missing/g.txt"))
    assert code == 1 and "no such folder" in out


def test_unsupported_quota_and_link_exit_1(remotes: Path) -> None:
    assert say("quota", "sf:")[0] == 1
    code, out = say("link", "sf:x")
    assert code == 1 and "link" in out


def test_progress_is_drawn_on_a_terminal_for_long_transfers(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(transfer, "PROGRESS_AFTER", 0.0)
    meter = transfer.Progress(io.BytesIO(b"x" * 3000), 3000, "sf:big.bin", None, show=True)
    while meter.read(1000):
        pass
    meter.finish()
    err = capsys.readouterr().err
    assert "sf:big.bin" in err and "100%" in err and "\r" in err
    quiet = transfer.Progress(io.BytesIO(b"x"), 1, "q", None, show=False)
    quiet.read()
    quiet.finish()
    assert capsys.readouterr().err == ""
