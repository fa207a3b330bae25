"""`syncagent sync`: one run over one pair."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from syncagent import errors
from syncagent.cli.common import Stopped, default_state_dir, fail, stopped_by_signals


def register(main: click.Group) -> None:
    main.add_command(sync)


@click.command()
@click.argument("local", type=click.Path(file_okay=False, path_type=Path))
@click.argument("remote")
@click.option("--mode", type=click.Choice(["two-way", "upload", "download"]), default="two-way",
              show_default=True, help="upload: the remote mirrors local; download: the reverse.")
@click.option("-n", "--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the state database lives (env SYNCAGENT_STATE_DIR).")
@click.option("--force", is_flag=True, help="Override the safety guards (big delete, empty side, missing root).")
@click.option("--max-delete", type=click.FloatRange(0, 100), default=50.0, show_default=True,
              help="Refuse a run that deletes more than this percent of a side's files.")
@click.option("--exclude", "excludes", multiple=True, help="gitignore-style pattern to leave alone (repeatable).")
@click.option("--no-trash", is_flag=True, help="Delete local files for good instead of moving them to the trash.")
@click.option("--delta", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="librsync delta transfers for changed files.")
@click.option("-v", "--verbose", count=True)
@click.option("-q", "--quiet", is_flag=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None)
@click.option("--json", "json_out", is_flag=True, help="Print a machine-readable summary.")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
              help="Config file with named remotes (env SYNCAGENT_CONFIG).")
def sync(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
         max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, verbose: int, quiet: bool,
         log_format: str | None, json_out: bool, config_path: str | None) -> None:
    """Sync LOCAL with REMOTE once (a folder path, local:/path or NAME:path)."""
    from syncagent import log
    from syncagent.engine.report import Reporter

    log.configure(log_format)
    reporter = Reporter(quiet=quiet, verbose=bool(verbose), json_summary=json_out,
                        json_logs=log_format == "json")
    try:
        with stopped_by_signals():
            summary = _run_sync(local, remote, mode, dry_run, state_dir, force, max_delete, excludes,
                                no_trash, delta, reporter, config_path)
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    except Stopped as stop:
        stop.exit()
    reporter.summary(summary)
    sys.exit(summary.exit_code)


def _run_sync(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
              max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, reporter: Any,
              config_path: str | None = None) -> Any:
    from syncagent import roots
    from syncagent.engine.plan import Mode
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine, SyncOptions
    from syncagent.providers.remotes import open_remote, refuse_bare_remote_name

    refuse_bare_remote_name(remote, config_path)
    provider, spec = open_remote(remote, config_path)
    with provider:
        state = state_dir or default_state_dir()
        roots.check_pair(local, provider.local_folder(), state)   # before anything is created
        store = Store(state)
        try:
            options = SyncOptions(mode=Mode(mode), dry_run=dry_run, force=force, max_delete=max_delete,
                                  excludes=list(excludes), trash=not no_trash, delta=delta)
            return Engine(local, provider, spec, store, options, reporter).sync()
        finally:
            store.close()
