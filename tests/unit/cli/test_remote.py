"""The remote file commands, driven through the CLI on a local folder."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from syncagent.cli.main import main


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
