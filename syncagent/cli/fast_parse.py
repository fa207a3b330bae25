"""Read a command's argv with its declarative table (sync_options), without click.

It reads only what it is sure click reads the same way and gives the very
values click would; anything else (help, `--`, an unknown or malformed
option, a missing or extra argument, a value click would refuse) makes
it decline with None, and the caller hands the unchanged argv to click,
so every message and exit code the user sees is click's. Declining is
always safe: it only costs the import of click.

Click's rules followed here: options and positionals mix in any order;
`--opt value` and `--opt=value`; short flags cluster (`-qv`), and a
value-taking short option takes the rest of its cluster or the next
word; a value is the next word whatever it looks like; a flag given a
value is an error; the last value of a non-repeatable option wins; an
option not given takes its environment variable when that is set and
non-empty, else its default.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from syncagent.cli.sync_options import CHOICE, COUNT, FLOAT, PATH, Param

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from collections.abc import Mapping, Sequence
    from typing import Any


class _Declined(Exception):
    """Click would refuse this argv, or might: leave it to click."""


def parse(table: Sequence[Param], args: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The keyword values `args` give the command of `table`, or None to let click read them."""
    try:
        switches, given, words = _split(table, args)
        return _values(table, switches, given, words, environ)
    except _Declined:
        return None


def _split(table: Sequence[Param], args: Sequence[str]) -> tuple[dict[str, int], dict[str, list[str]], list[str]]:
    """How often each switch was given, the words given to each value option, and the positionals."""
    if "--" in args:
        raise _Declined
    by_flag = {flag: p for p in table for flag in p.flags}
    switches: dict[str, int] = {}
    given: dict[str, list[str]] = {}
    words: list[str] = []
    rest = list(reversed(args))   # popped from the end: the next word is rest[-1]

    def value_of(p: Param, attached: str | None) -> None:
        if attached is None:
            if not rest:
                raise _Declined   # its value is missing
            attached = rest.pop()
        given.setdefault(p.name, []).append(attached)

    while rest:
        arg = rest.pop()
        if arg[:1] != "-" or arg == "-":
            words.append(arg)
        elif arg.startswith("--"):
            flag, eq, attached = arg.partition("=")
            p = _option(by_flag, flag)
            if p.takes_value:
                value_of(p, attached if eq else None)
            elif eq:
                raise _Declined   # a switch given a value
            else:
                switches[p.name] = switches.get(p.name, 0) + 1
        else:
            for j in range(1, len(arg)):   # a cluster of short options: -qv
                p = _option(by_flag, "-" + arg[j])
                if p.takes_value:   # takes the rest of the cluster, or the next word
                    value_of(p, arg[j + 1:] or None)
                    break
                switches[p.name] = switches.get(p.name, 0) + 1
    return switches, given, words


def _option(by_flag: dict[str, Param], flag: str) -> Param:
    p = by_flag.get(flag)
    if p is None:
        raise _Declined
    return p


def _values(table: Sequence[Param], switches: dict[str, int], given: dict[str, list[str]], words: list[str],
            environ: Mapping[str, str]) -> dict[str, Any]:
    """Every parameter's value: positionals in order; options as given (a non-repeatable one's last word:
    click converts only that one), else from their environment variable, else their default."""
    positionals = [p for p in table if p.positional]
    if len(words) != len(positionals):
        raise _Declined
    given.update((p.name, [word]) for p, word in zip(positionals, words, strict=True))
    values: dict[str, Any] = {}
    for p in table:
        if p.name in switches:
            values[p.name] = switches[p.name] if p.kind == COUNT else True
        elif p.name in given:
            raw = given[p.name]
            values[p.name] = tuple(_convert(p, r) for r in raw) if p.multiple else _convert(p, raw[-1])
        elif p.envvar and environ.get(p.envvar):
            if not p.takes_value or p.multiple:
                raise _Declined   # click splits or reads as a boolean what such variables hold
            values[p.name] = _convert(p, environ[p.envvar])
        else:
            values[p.name] = p.default
    return values


def _convert(p: Param, raw: str) -> Any:
    """The value click's type for `p` gives `raw`; _Declined where click would refuse it (or might)."""
    if p.kind == CHOICE:
        if raw not in p.choices:
            raise _Declined
        return raw
    if p.kind == FLOAT:
        try:
            number = float(raw)
        except ValueError:
            raise _Declined from None
        low = float("-inf") if p.low is None else p.low
        high = float("inf") if p.high is None else p.high
        if not low <= number <= high:   # a NaN fails both: click's reading of it is its own
            raise _Declined
        return number
    if p.kind == PATH:
        try:
            st = os.stat(raw)
        except OSError:
            return Path(raw)
        except ValueError:   # a NUL in the name
            raise _Declined from None
        if stat.S_ISREG(st.st_mode) or not os.access(raw, os.R_OK):
            raise _Declined
        return Path(raw)
    return raw
