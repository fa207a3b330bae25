"""The command line: `syncagent sync`, `run`, `status`, and the remote commands.

Start-up time counts in a no-op sync, so a command's module is imported
only when that command runs (or when `--help` lists them all): `sync`
never loads the remote commands, the agent or the config editor. Each
group of commands lives in its own module, whose `register(main)` adds
them; COMMANDS below says which module holds which command (a test checks
it against what the modules register). The console script enters through
cli/entry.py, which runs a plain `sync` without this module or click and
hands every other argv to `main` here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from syncagent import __version__
from syncagent.cli.common import default_state_dir

__all__ = ["COMMANDS", "default_state_dir", "main"]

# command name -> module of syncagent.cli whose register() adds it
COMMANDS: dict[str, str] = {
    "sync": "sync_cmd",
    **dict.fromkeys(("run", "status", "activity", "service"), "agent_cmd"),
    **dict.fromkeys(("config", "auth"), "setup_cmd"),
    **dict.fromkeys(("ls", "lsd", "tree", "get", "put", "mkdir", "mv", "cp", "rm", "info", "quota", "link",
                     "recent", "comments", "info-set"), "remote"),
    **dict.fromkeys(("keys", "buckets"), "account_cmd"),
}


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded: set[str] = set()

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.load(COMMANDS[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                          list[str]]:
        if args and args[0] not in COMMANDS:   # unknown: "Did you mean ...?" looks at every command
            for module in sorted(set(COMMANDS.values())):
                self.load(module)
        return super().resolve_command(ctx, args)

    def load(self, module: str) -> None:
        """Add the commands of syncagent.cli.<module> (once)."""
        if module not in self.loaded:
            self.loaded.add(module)
            registrar(module)(self)


def registrar(module: str) -> Callable[[click.Group], None]:
    """The register() of syncagent.cli.<module>, imported now. Import statements, not
    strings: the package's import graph (tools, readers) shows what the command reaches."""
    if module == "sync_cmd":
        from syncagent.cli.sync_cmd import register
    elif module == "agent_cmd":
        from syncagent.cli.agent_cmd import register
    elif module == "setup_cmd":
        from syncagent.cli.setup_cmd import register
    elif module == "remote":
        from syncagent.cli.remote import register
    elif module == "account_cmd":
        from syncagent.cli.account_cmd import register
    else:
        raise KeyError(module)
    return register


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Keep a local folder and a cloud folder identical."""


if __name__ == "__main__":
    main()
