"""The `syncagent` entry point: a plain `sync` runs without click, and behaves as
click's standalone main would where the two could differ (a closed stdout,
shell completion); `python -m syncagent` is the same entry."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import write

COMMAND = str(Path(sysconfig.get_path("scripts")) / "syncagent")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write(tmp_path / "src/a.txt", "a")
    return tmp_path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SYNCAGENT_CONFIG": str(home / "none.yaml"), "SYNCAGENT_STATE_DIR": str(home / "st"),
            **extra}


@pytest.mark.parametrize("through_click", [False, True])
def test_a_closed_stdout_ends_the_run_quietly_either_way(home: Path, through_click: bool) -> None:
    # `--` is left to click by the fast entry: the same run through both readers
    args = [COMMAND, "sync", "src", "dst", *(["--"] if through_click else [])]
    for _ in range(2):   # the copy, then the no-op: each ends on a summary written to stdout
        proc = subprocess.Popen(args, cwd=home, env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()   # the reader is gone (`| head -0`)
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1
        assert err == ""
    assert (home / "dst/a.txt").read_text() == "a"


def test_shell_completion_is_clicks(home: Path) -> None:
    env = env_for(home, _SYNCAGENT_COMPLETE="bash_complete", COMP_WORDS="syncagent sync src dst --mo",
                  COMP_CWORD="4")
    proc = subprocess.run([COMMAND, "sync", "src", "dst"], cwd=home, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "plain,--mode" in proc.stdout.split()
    assert not (home / "dst").exists(), "completing runs nothing"


def test_python_dash_m_is_the_same_entry(home: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "syncagent", "sync", "src", "dst", "--mode", "bogus"], cwd=home,
                          env=env_for(home), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: python -m syncagent sync [OPTIONS] LOCAL REMOTE")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "syncagent", "sync", "-q", "src", "dst"],
                          cwd=home, env=env_for(home), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and (home / "dst/a.txt").read_text() == "a"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "syncagent.engine.sync" in imported and "click" not in imported


@pytest.mark.parametrize("name", ["entry", "fast_parse", "sync_options", "sync_run", "common"])
def test_the_modules_of_the_fast_path_stay_lean(name: str) -> None:
    from syncagent import cli
    from tests.unit.test_lean_imports import COSTLY, imported_at_import_time, nested_functions_removed

    source = (Path(cli.__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    imported = imported_at_import_time(nested_functions_removed(ast.parse(source)))
    assert sorted(imported & {*COSTLY, "click"}) == []
