"""The command line: `syncagent sync`, `run`, `status`, and the remote commands.

Heavy modules are imported inside the commands: start-up time counts in a
no-op sync. Each group of commands lives in its own module and registers
itself here.
"""

from __future__ import annotations

import click

from syncagent import __version__
from syncagent.cli import account_cmd, agent_cmd, remote, setup_cmd, sync_cmd
from syncagent.cli.common import default_state_dir

__all__ = ["default_state_dir", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Keep a local folder and a cloud folder identical."""


for _module in (sync_cmd, agent_cmd, setup_cmd, remote, account_cmd):
    _module.register(main)

if __name__ == "__main__":
    main()
