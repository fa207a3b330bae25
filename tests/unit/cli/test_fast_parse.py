"""The fast `sync` parser against click, over argv generated from the one table.

For every argv: either the fast parser gives exactly the values (and their
types) that click's `sync.make_context(...)` gives, or it declines; it may
decline only where click refuses the argv, or on the few inputs it leaves
to click on purpose (`--`, a NaN). So a user never gets two behaviours.
The same runs over a made-up table too, for what `sync`'s table does not
use yet (short options with values, clustered or not, an environment
variable on a number or a path, a float range open on one side)."""

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
from syncagent.cli.sync_cmd import click_param, sync
from syncagent.cli.sync_options import CHOICE, COUNT, FLAG, FLOAT, PATH, SYNC_PARAMS, TEXT, Param


class Command:
    """A table and the click command built from it, under the real group's settings."""

    def __init__(self, table: tuple[Param, ...], command: click.Command) -> None:
        self.table = table
        self.command = command
        self.options = [p for p in table if not p.positional]
        self.short_switches = [f[1] for p in self.options if not p.takes_value for f in p.flags if len(f) == 2]
        self.envvars = sorted({p.envvar for p in table if p.envvar})

    def click_reads(self, args: Sequence[str]) -> dict[str, Any] | Exception:
        parent = click.Context(cli_main.main, info_name="syncagent", **cli_main.main.context_settings)
        try:
            return self.command.make_context(self.command.name or "", list(args), parent=parent).params
        except (click.ClickException, click.exceptions.Exit) as exc:
            return exc


SYNC = Command(SYNC_PARAMS, sync)
PROBE_PARAMS = (
    Param("src", kind=PATH),
    Param("dst"),
    Param("mode", ("-m", "--mode"), CHOICE, choices=("fast", "slow"), default="fast"),
    Param("ratio", ("-r", "--ratio"), FLOAT, low=0.5, high=2, default=1.0, envvar="FAST_PARSE_TEST_RATIO"),
    Param("scale", ("--scale",), FLOAT, low=0),
    Param("tags", ("-t", "--tag"), TEXT, multiple=True),
    Param("where", ("-w",), PATH, envvar="FAST_PARSE_TEST_WHERE"),
    Param("loud", ("-l", "--loud"), FLAG),
    Param("level", ("-v", "--level"), COUNT),
    Param("name", ("--name",), TEXT, default="anon", envvar="FAST_PARSE_TEST_NAME"),
)
PROBE = Command(PROBE_PARAMS, click.Command("probe", params=[click_param(p) for p in PROBE_PARAMS]))
COMMANDS = pytest.mark.parametrize("cmd", [SYNC, PROBE], ids=["sync", "probe"])


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
        bounds = [str(b) for b in (p.low, p.high) if b is not None]
        return [*bounds, "1.5", "12.5", "1e1", " 7 ", "1_0", "-1", "100.01", "x", "nan", "inf", "-inf", "", "0x1"]
    if p.kind == PATH:
        return [str(paths.folder), str(paths.missing), str(paths.file), "", "-", "rel/path"]
    return ["x", "-q", "", "a=b", "--mode", "two words"]


def positionals(paths: Paths) -> list[list[str]]:
    return [[str(paths.folder), "dst"], [str(paths.missing), "nas:sub/dir"], ["-", ""], ["rel", "local:/x"]]


def option_uses(cmd: Command, p: Param, paths: Paths) -> Iterator[list[str]]:
    """Every way to write `p` once: each spelling, separate and attached values, in a cluster, and misuses."""
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
            if flag.startswith("--"):
                yield [f"{flag}={value}"]
                continue
            yield [flag + value]
            for switch in cmd.short_switches[:2]:   # after a switch in one cluster: -lm fast, -lmfast
                yield [f"-{switch}{flag[1]}", value]
                yield [f"-{switch}{flag[1]}{value}"]


def first_use(p: Param, paths: Paths) -> list[str]:
    return [p.flags[-1], values(p, paths)[0]] if p.takes_value else [p.flags[0]]


def generated_argvs(cmd: Command, paths: Paths) -> Iterator[list[str]]:
    base = [str(paths.folder), "dst"]
    yield from positionals(paths)
    for p in cmd.options:
        for use in option_uses(cmd, p, paths):
            yield [*base, *use]
            yield [*use, *base]
            yield [base[0], *use, base[1]]
        if not p.takes_value:
            continue
        for flag in p.flags:
            yield [*base, flag]                       # its value missing
        good, *others = values(p, paths)
        for other in others:                          # given twice: the last wins, and only the last is converted
            yield [*base, p.flags[0], other, p.flags[-1], good]
            yield [*base, p.flags[-1], good, p.flags[0], other]
    for size in (1, 2, 3):                            # clusters of short switches, repeats included
        for letters in itertools.product(cmd.short_switches, repeat=size):
            yield [*base, "-" + "".join(letters)]
    switch = cmd.short_switches[0]
    for bad in (f"-{switch}Z", f"-{switch}h", f"-{switch}=", "-h", "--help", "--version", "--bogus", "-", "--",
                f"--{switch}", "--=x"):
        yield [*base, bad]
    yield ["--", *base]
    yield ["--help"]
    yield []
    yield base[:1]
    yield [*base, "extra"]
    groups = [first_use(p, paths) for p in cmd.options[1::2][:3]] + [["-" + "".join(cmd.short_switches)]]
    for order in itertools.permutations([*groups, [base[0]], [base[1]]]):   # positionals anywhere among options
        yield [word for group in order for word in group]


def declined_on_purpose(args: Sequence[str], env: dict[str, str | None]) -> bool:
    """Argv that click may accept but the fast parser leaves to it anyway."""
    return "--" in args or any("nan" in a.lower() for a in [*args, *(v for v in env.values() if v)])


def typed(params: dict[str, Any]) -> dict[str, Any]:
    return {name: (type(v), tuple((type(x), x) for x in v) if isinstance(v, tuple) else v)
            for name, v in params.items()}


def check(cmd: Command, args: list[str], env: dict[str, str | None] | None = None) -> bool:
    """Assert the two readers agree on `args` in `env` (None: unset); True when the fast one accepted."""
    env = {**dict.fromkeys(cmd.envvars), **(env or {})}
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if v is not None}):
        for name in (k for k, v in env.items() if v is None):
            os.environ.pop(name, None)
        fast = parse(cmd.table, args, os.environ)
        slow = cmd.click_reads(args)
    if fast is None:
        assert isinstance(slow, Exception) or declined_on_purpose(args, env), f"declined what click reads: {args}"
        return False
    assert not isinstance(slow, Exception), f"click refuses {args}: {slow}"
    assert typed(fast) == typed(slow), args
    return True


@COMMANDS
def test_every_generated_argv_reads_as_click_reads_it(cmd: Command, paths: Paths,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    accepted = refused = 0
    for args in generated_argvs(cmd, paths):
        if check(cmd, args):
            accepted += 1
        else:
            refused += 1
    assert accepted > 500 and refused > 100, (accepted, refused)   # both sides of the line were exercised


@COMMANDS
def test_environment_variables_fill_options_not_given(cmd: Command, paths: Paths,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.envvars, "the table declares an environment variable"
    base = [str(paths.folder), "dst"]
    for p in cmd.table:
        if p.envvar:
            for value in [None, *values(p, paths)]:
                for args in (base, [*base, *first_use(p, paths)]):
                    check(cmd, args, {p.envvar: value})
            assert check(cmd, base, {p.envvar: values(p, paths)[0]})


@st.composite
def wellformed(draw: st.DrawFn, cmd: Command, paths: Paths) -> list[str]:
    """A few uses of options from the table and two positionals, in any order."""
    uses = [use for p in cmd.options for use in option_uses(cmd, p, paths)]
    chosen = draw(st.lists(st.sampled_from(uses), max_size=6))
    words = draw(st.sampled_from(positionals(paths)))
    order = draw(st.permutations([*chosen, [words[0]], [words[1]]]))
    return [word for group in order for word in group]


@COMMANDS
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_argv_reads_as_click_reads_it(cmd: Command, paths: Paths, capsys: pytest.CaptureFixture[str],
                                             data: st.DataObject) -> None:
    clusters = {"-" + "".join(cmd.short_switches), "-" + cmd.short_switches[-1] * 2}
    vocabulary = sorted({w for p in cmd.options for use in option_uses(cmd, p, paths) for w in use}
                        | clusters | {"-Z", "--", "dst", str(paths.folder)})
    args = data.draw(st.one_of(wellformed(cmd, paths), st.lists(st.sampled_from(vocabulary), max_size=7)))
    env = {name: data.draw(st.sampled_from([None, "", "1.5", str(paths.folder), str(paths.file)]))
           for name in cmd.envvars}
    check(cmd, args, env)


def test_the_table_spells_options_as_both_readers_expect() -> None:
    for p in [*SYNC.options, *PROBE.options]:
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
    for p in SYNC.options:
        assert ", ".join(p.flags) in out
        if p.help:
            assert p.help.split()[0] in out
