"""The fast `sync` parser against click, over argv generated from the one table.

For every argv: either the fast parser gives exactly the values (and their
types) that click's `sync.make_context(...)` gives, or it declines; it may
decline only where click refuses the argv, or on the few inputs it leaves
to click on purpose (`--`, a NaN). So a user never gets two behaviours."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncagent.cli import main as cli_main
from syncagent.cli.fast_parse import parse
from syncagent.cli.sync_cmd import sync
from syncagent.cli.sync_options import CHOICE, FLOAT, PATH, SYNC_PARAMS, Param

OPTIONS = [p for p in SYNC_PARAMS if not p.positional]
SHORT_SWITCHES = [f[1] for p in OPTIONS if not p.takes_value for f in p.flags if len(f) == 2]
ENVVARS = sorted({p.envvar for p in SYNC_PARAMS if p.envvar})


class Paths:
    """What path values point at: a folder, nothing, a regular file."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "folder"
        self.folder.mkdir(exist_ok=True)
        self.file = root / "file.txt"
        self.file.write_text("x")
        self.missing = root / "missing"


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    return Paths(tmp_path_factory.mktemp("fast_parse"))


def values(p: Param, paths: Paths) -> list[str]:
    """Values for `p`: ones click takes and ones it refuses."""
    if p.kind == CHOICE:
        return [*p.choices, "bogus", "", p.choices[0].upper()]
    if p.kind == FLOAT:
        return [str(p.low), str(p.high), "12.5", "1e1", " 7 ", "1_0", "-1", "100.01", "x", "nan", "inf", "", "0x1"]
    if p.kind == PATH:
        return [str(paths.folder), str(paths.missing), str(paths.file), "", "-", "rel/path"]
    return ["x", "-q", "", "a=b", "--mode", "two words"]


def positionals(paths: Paths) -> list[list[str]]:
    return [[str(paths.folder), "dst"], [str(paths.missing), "nas:sub/dir"], ["-", ""], ["rel", "local:/x"]]


def option_uses(p: Param, paths: Paths) -> Iterator[list[str]]:
    """Every way to write `p` once: each spelling, separate and attached values, and misuses."""
    for flag in p.flags:
        if not p.takes_value:
            yield [flag]
            yield [flag, flag]
            if flag.startswith("--"):
                yield [f"{flag}=1"]
                yield [f"{flag}="]
            continue
        for value in values(p, paths):
            yield [flag, value]
            yield [f"{flag}={value}"] if flag.startswith("--") else [flag + value]


def generated_argvs(paths: Paths) -> Iterator[list[str]]:
    base = [str(paths.folder), "dst"]
    yield from positionals(paths)
    for p in OPTIONS:
        for use in option_uses(p, paths):
            yield [*base, *use]
            yield [*use, *base]
            yield [base[0], *use, base[1]]
        for flag in p.flags:
            if p.takes_value:
                yield [*base, flag]                  # its value missing
    for size in (1, 2, 3):                           # clusters of short switches, repeats included
        for letters in itertools.product(SHORT_SWITCHES, repeat=size):
            yield [*base, "-" + "".join(letters)]
    for bad in ("-qx", "-qh", "-q=", "-h", "--help", "--version", "--bogus", "-", "--", "---q", "--=x"):
        yield [*base, bad]
    yield ["--", *base]
    yield ["--help"]
    yield []
    yield base[:1]
    yield [*base, "extra"]
    yield [str(paths.file), "dst"]
    yield [*base, "--state-dir", str(paths.file)]
    yield [*base, "--exclude", "a", "--exclude", "b", "--exclude=c"]
    yield [*base, "--mode", "upload", "--mode", "download"]  # the last wins
    groups = [["--mode", "upload"], ["-qv"], ["--exclude", "a"], ["--max-delete=10"]]
    for order in itertools.permutations([*groups, [base[0]], [base[1]]]):   # positionals anywhere among options
        yield [word for group in order for word in group]


def click_reads(args: Sequence[str]) -> dict[str, Any] | Exception:
    """What click's own `sync` command makes of `args` under the real group's settings."""
    parent = click.Context(cli_main.main, info_name="syncagent", **cli_main.main.context_settings)
    try:
        return sync.make_context("sync", list(args), parent=parent).params
    except (click.ClickException, click.exceptions.Exit) as exc:
        return exc


def declined_on_purpose(args: Sequence[str]) -> bool:
    """Argv that click may accept but the fast parser leaves to it anyway."""
    return "--" in args or any("nan" in a.lower() for a in args)


def typed(params: dict[str, Any]) -> dict[str, Any]:
    return {name: (type(v), tuple((type(x), x) for x in v) if isinstance(v, tuple) else v)
            for name, v in params.items()}


def check(args: list[str], env: dict[str, str | None]) -> bool:
    """Assert the two readers agree on `args` in `env`; True when the fast one accepted."""
    overrides = {k: v for k, v in env.items() if v is not None}
    with mock.patch.dict(os.environ, overrides):
        for name in (k for k, v in env.items() if v is None):
            os.environ.pop(name, None)
        fast = parse(SYNC_PARAMS, args, os.environ)
        slow = click_reads(args)
    if fast is None:
        assert isinstance(slow, Exception) or declined_on_purpose(args), f"declined what click reads: {args}"
        return False
    assert not isinstance(slow, Exception), f"click refuses {args}: {slow}"
    assert typed(fast) == typed(slow), args
    return True


def test_every_generated_argv_reads_as_click_reads_it(paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    accepted = refused = 0
    argvs = list(generated_argvs(paths))
    for args in argvs:
        if check(args, dict.fromkeys(ENVVARS)):
            accepted += 1
        else:
            refused += 1
    assert accepted > 800 and refused > 100, (accepted, refused)   # both sides of the line were exercised


@pytest.mark.parametrize("value", [None, "", "/etc/syncagent/config.yaml", "rel.yaml"])
def test_environment_variables_fill_options_not_given(paths: Paths, value: str | None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert ENVVARS, "the table declares at least one environment variable"
    for name in ENVVARS:
        flags = next(p.flags for p in SYNC_PARAMS if p.envvar == name)
        for args in ([str(paths.folder), "dst"], [str(paths.folder), "dst", flags[0], "given.yaml"]):
            assert check(args, {**dict.fromkeys(ENVVARS), name: value})


@st.composite
def wellformed(draw: st.DrawFn, paths: Paths) -> list[str]:
    """A few uses of options from the table and two positionals, in any order."""
    uses = [use for p in OPTIONS for use in option_uses(p, paths)]
    chosen = draw(st.lists(st.sampled_from(uses), max_size=6))
    words = draw(st.sampled_from(positionals(paths)))
    order = draw(st.permutations([*chosen, [words[0]], [words[1]]]))
    return [word for group in order for word in group]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_argv_reads_as_click_reads_it(paths: Paths, capsys: pytest.CaptureFixture[str],
                                             data: st.DataObject) -> None:
    vocabulary = sorted({w for p in OPTIONS for use in option_uses(p, paths) for w in use}
                        | {"-qv", "-vvn", "-x", "--", "dst", str(paths.folder)})
    args = data.draw(st.one_of(wellformed(paths), st.lists(st.sampled_from(vocabulary), max_size=7)))
    config = data.draw(st.sampled_from([None, "", "c.yaml"]))
    check(args, {**dict.fromkeys(ENVVARS), **dict.fromkeys(ENVVARS, config)})


def test_the_table_spells_options_as_both_readers_expect() -> None:
    for p in OPTIONS:
        for flag in p.flags:
            # "-x" is a short option, "--word" a long one; click would read a "-word" as long, fast_parse not
            assert (len(flag) == 2 and flag[1] != "-") or (flag.startswith("--") and len(flag) > 3), flag
    names = [p.name for p in SYNC_PARAMS]
    assert len(set(names)) == len(names)
    assert [p.name for p in sync.params] == names


def test_help_shows_every_option_of_the_table() -> None:
    from click.testing import CliRunner

    out = CliRunner().invoke(cli_main.main, ["sync", "--help"], prog_name="syncagent").output
    assert out.startswith("Usage: syncagent sync [OPTIONS] LOCAL REMOTE")
    for p in OPTIONS:
        assert ", ".join(p.flags) in out
        if p.help:
            assert p.help.split()[0] in out
