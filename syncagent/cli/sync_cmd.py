"""`syncagent sync`: one run over one pair, as a click command built from
the declarative table in sync_options (the fast entry reads the same table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from syncagent.cli.sync_options import CHOICE, COUNT, FLAG, FLOAT, PATH, SUMMARY, SYNC_PARAMS, Param


def register(main: click.Group) -> None:
    main.add_command(sync)


def click_param(p: Param) -> click.Parameter:
    """The click argument or option that `p` declares."""
    if p.positional:
        return click.Argument([p.name], type=_click_type(p))
    decls = [*p.flags, p.name]
    if p.kind == FLAG:
        return click.Option(decls, is_flag=True, help=p.help, envvar=p.envvar)
    if p.kind == COUNT:
        return click.Option(decls, count=True, help=p.help, envvar=p.envvar)
    default = None if p.multiple else p.default   # click's own default for a repeatable option is ()
    return click.Option(decls, type=_click_type(p), default=default, multiple=p.multiple, envvar=p.envvar,
                        show_default=p.show_default, help=p.help)


def _click_type(p: Param) -> click.ParamType[Any]:
    if p.kind == CHOICE:
        return click.Choice(p.choices)
    if p.kind == FLOAT:
        return click.FloatRange(p.low, p.high)
    if p.kind == PATH:
        return click.Path(file_okay=False, path_type=Path)
    return click.STRING


def _sync(**params: Any) -> None:
    from syncagent.cli.sync_run import run

    run(**params)


sync = click.Command("sync", callback=_sync, params=[click_param(p) for p in SYNC_PARAMS], help=SUMMARY)
