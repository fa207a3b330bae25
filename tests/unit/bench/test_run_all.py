"""`make bench` runs every bench script, and docs/benchmarks.md quotes only
command lines the scripts accept. Nothing here runs a benchmark: each
script's `main()` is stopped right after its arguments are parsed."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
from typing import Any

import pytest

from bench import run_all
from bench.common import DOC


class Parsed(Exception):
    """Raised in place of running the benchmark once its arguments parsed."""


def accepts(module: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether `python -m bench.MODULE ARGS` gets past its argument parser."""
    mod = importlib.import_module(f"bench.{module}")
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        real(self, args)
        raise Parsed

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        m.setattr(sys, "argv", [f"bench/{module}.py", *args])
        try:
            mod.main()
        except Parsed:
            return True
        except SystemExit:
            return False
    raise AssertionError(f"bench.{module}.main() returned without parsing its arguments")


def test_every_bench_script_has_a_plan() -> None:
    assert run_all.scripts() and set(run_all.scripts()) == set(run_all.PLAN)


@pytest.mark.parametrize("name", sorted(run_all.PLAN))
@pytest.mark.parametrize("full", [False, True], ids=["small", "full"])
def test_the_runner_passes_flags_the_script_takes(name: str, full: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for write in (False, True):
        cmd = run_all.command(name, full, write)
        assert cmd[1:3] == ["-m", f"bench.{name}"]
        assert accepts(name, cmd[3:], monkeypatch), f"bench.{name} refuses {shlex.join(cmd[3:])}"


def test_the_documented_command_lines_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    quoted = re.findall(r"`python -m bench\.(\w+)([^`]*)`", DOC.read_text())
    assert quoted
    for name, args in quoted:
        if name == "run_all":
            run_all.parser().parse_args(shlex.split(args))      # exits (fails the test) on a flag it lacks
            continue
        assert name in run_all.PLAN, f"docs/benchmarks.md quotes bench.{name}, which does not exist"
        assert accepts(name, shlex.split(args), monkeypatch), f"docs/benchmarks.md: bench.{name} refuses {args}"


def test_a_wrong_flag_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not accepts("bench_sync", ["--size-mib", "1024"], monkeypatch)
