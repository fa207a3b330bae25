"""What every command shares: the state dir default and the one way to fail."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from syncagent import errors


def default_state_dir() -> Path:
    env = os.environ.get("SYNCAGENT_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("syncagent"))


def fail(exc: errors.SyncAgentError) -> None:
    click.echo(f"syncagent: {exc}", err=True)
    sys.exit(exc.exit_code)
