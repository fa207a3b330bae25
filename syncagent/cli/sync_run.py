"""One `syncagent sync` run, once its parameters are read: the same code whether
click read them (sync_cmd) or the fast entry did (entry), so it imports no click."""

from __future__ import annotations

import sys

from syncagent import errors
from syncagent.cli.common import Stopped, default_state_dir, fail, stopped_by_signals

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from pathlib import Path
    from typing import Any, NoReturn


def run(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
        max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, verbose: int, quiet: bool,
        log_format: str | None, json_out: bool, config_path: str | None) -> NoReturn:
    """Sync, report, and exit with the run's code (or the failure's, or 128 + a stopping signal)."""
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
