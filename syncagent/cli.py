"""The command line: `syncagent sync`, `run`, `status`, and the remote commands.

Heavy modules are imported inside the commands: start-up time counts in a
no-op sync.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from syncagent import __version__, errors


def default_state_dir() -> Path:
    env = os.environ.get("SYNCAGENT_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("syncagent"))


def _fail(exc: errors.SyncAgentError) -> None:
    click.echo(f"syncagent: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncagent")
def main() -> None:
    """Keep a local folder and a cloud folder identical."""


@main.command()
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
def sync(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
         max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, verbose: int, quiet: bool,
         log_format: str | None, json_out: bool) -> None:
    """Sync LOCAL with REMOTE once (a folder path, local:/path or NAME:path)."""
    from syncagent import log
    from syncagent.report import Reporter

    log.configure(log_format)
    reporter = Reporter(quiet=quiet, verbose=bool(verbose), json_summary=json_out)
    try:
        summary = _run_sync(local, remote, mode, dry_run, state_dir, force, max_delete, excludes,
                            no_trash, delta, reporter)
    except errors.SyncAgentError as exc:
        _fail(exc)
        return
    reporter.summary(summary)
    sys.exit(summary.exit_code)


def _run_sync(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
              max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, reporter: Any) -> Any:
    from syncagent.engine import Engine, SyncOptions
    from syncagent.reconcile import Mode
    from syncagent.remotes import open_remote
    from syncagent.state import Store

    provider, spec = open_remote(remote)
    store = Store(state_dir or default_state_dir())
    try:
        options = SyncOptions(mode=Mode(mode), dry_run=dry_run, force=force, max_delete=max_delete,
                              excludes=list(excludes), trash=not no_trash, delta=delta)
        with provider:
            return Engine(local, provider, spec, store, options, reporter).sync()
    finally:
        store.close()


@main.command()
@click.argument("local", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.argument("remote", required=False)
@click.option("--poll-interval", type=click.FloatRange(0.5), default=30.0, show_default=True,
              help="Seconds between remote checks.")
@click.option("--mode", type=click.Choice(["two-way", "upload", "download"]), default="two-way", show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
              help="Config file with remotes and pairs (env SYNCAGENT_CONFIG).")
@click.option("--exclude", "excludes", multiple=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None)
def run(local: Path | None, remote: str | None, poll_interval: float, mode: str, state_dir: Path | None,
        config_path: str | None, excludes: tuple[str, ...], log_format: str | None) -> None:
    """Keep LOCAL and REMOTE in sync until stopped (or every pair of the config file)."""
    from syncagent import log
    from syncagent.agent import Agent, PairSpec, WatchdogWatcher
    from syncagent.reconcile import Mode

    log.configure(log_format)
    if (local is None) != (remote is None):
        raise click.UsageError("give both LOCAL and REMOTE, or neither (then the config file's pairs run)")
    if local is None or remote is None:
        raise click.UsageError("no pair given (pairs from the config file come with the config support)")
    pairs = [PairSpec(name=local.name or "pair", local=Path(os.path.abspath(local)), remote=remote,
                      mode=Mode(mode), poll_interval=poll_interval, excludes=list(excludes))]
    agent = Agent(pairs, state_dir or default_state_dir(), watcher_factory=WatchdogWatcher,
                  config_path=config_path)
    sys.exit(agent.run())


from syncagent.cli_remote import register as _register_remote_commands  # noqa: E402

_register_remote_commands(main)

if __name__ == "__main__":
    main()
