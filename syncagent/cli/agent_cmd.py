"""The agent's commands: `run`, `status`, `activity`, `service`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from syncagent import errors
from syncagent.cli.common import default_state_dir, fail


def register(main: click.Group) -> None:
    for command in (run, status, activity, service):
        main.add_command(command)


@click.command()
@click.argument("local", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.argument("remote", required=False)
@click.option("--poll-interval", type=click.FloatRange(0.5), default=None,
              help="Seconds between remote checks (default 30, or each pair's `poll_interval`).")
@click.option("--mode", type=click.Choice(["two-way", "upload", "download"]), default=None,
              help="upload: the remote mirrors local; download: the reverse (default two-way).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the state database and status file live (env SYNCAGENT_STATE_DIR).")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
              help="Config file with remotes and pairs (env SYNCAGENT_CONFIG).")
@click.option("--exclude", "excludes", multiple=True, help="gitignore-style pattern to leave alone (repeatable).")
@click.option("--force", is_flag=True,
              help="Override the safety guards for the first run of each pair (the one at start).")
@click.option("--max-delete", type=click.FloatRange(0, 100), default=None,
              help="Refuse a run that deletes more than this percent of a side's files (default 50).")
@click.option("--delta", type=click.Choice(["auto", "always", "never"]), default=None,
              help="librsync delta transfers for changed files (default auto).")
@click.option("--no-trash", is_flag=True, help="Delete local files for good instead of moving them to the trash.")
@click.option("-v", "--verbose", count=True, help="Log every transfer and where the time of a run goes.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None)
def run(local: Path | None, remote: str | None, poll_interval: float | None, mode: str | None,
        state_dir: Path | None, config_path: str | None, excludes: tuple[str, ...], force: bool,
        max_delete: float | None, delta: str | None, no_trash: bool, verbose: int, quiet: bool,
        log_format: str | None) -> None:
    """Keep LOCAL and REMOTE in sync until stopped (or every pair of the config file)."""
    from syncagent import log

    log.configure(log_format, level=WARNING if quiet else INFO)
    if (local is None) != (remote is None):
        raise click.UsageError("give both LOCAL and REMOTE, or neither (then the config file's pairs run)")
    overrides = Overrides(poll_interval, mode, excludes, force, max_delete, delta, not no_trash)
    try:
        sys.exit(_run_agent(local, remote, overrides, state_dir, config_path, bool(verbose) and not quiet))
    except errors.SyncAgentError as exc:
        fail(exc)


WARNING, INFO = 30, 20


@dataclass(frozen=True)
class Overrides:
    """What the command line sets for every pair (None: the pair's own value, else the default)."""

    poll_interval: float | None
    mode: str | None
    excludes: tuple[str, ...]
    force: bool
    max_delete: float | None
    delta: str | None
    trash: bool


def _run_agent(local: Path | None, remote: str | None, overrides: Overrides, state_dir: Path | None,
               config_path: str | None, verbose: bool) -> int:
    from syncagent import roots
    from syncagent.agent.daemon import Agent
    from syncagent.agent.status import StatusFile
    from syncagent.agent.watcher import LocalWatcher

    pairs, cfg_state = _agent_pairs(local, remote, overrides, config_path)
    state = state_dir or (Path(cfg_state) if cfg_state else default_state_dir())
    roots.check_agent_pairs([(p.local, p.remote) for p in pairs], state, config_path)
    status = StatusFile(state, [(p.name, str(p.local), p.remote) for p in pairs])
    agent = Agent(pairs, state, watcher_factory=LocalWatcher, config_path=config_path, status=status,
                  verbose=verbose)
    return agent.run()


def _agent_pairs(local: Path | None, remote: str | None, o: Overrides,
                 config_path: str | None) -> tuple[list[Any], str | None]:
    from syncagent import config
    from syncagent.agent.pair import PairSpec
    from syncagent.engine.plan import Mode

    def spec(name: str, local: Path, remote: str, **own: Any) -> PairSpec:
        given = {"poll_interval": o.poll_interval, "mode": o.mode, "max_delete": o.max_delete, "delta": o.delta}
        values = {**own, **{k: v for k, v in given.items() if v is not None}}
        if "mode" in values:
            values["mode"] = Mode(values["mode"])
        excludes = list(values.pop("excludes", [])) + list(o.excludes)
        return PairSpec(name=name, local=local, remote=remote, excludes=excludes, force=o.force, trash=o.trash,
                        **values)

    if local is not None and remote is not None:
        return [spec(local.name or "pair", Path(os.path.abspath(local)), remote)], None
    cfg = config.load(config_path, missing_ok=False) if config_path else config.load()
    if not cfg.pairs:
        raise errors.ConfigError("no pairs to run: give LOCAL REMOTE, or add `pairs:` to the config file "
                                 f"({config_path or config.default_path()})")
    pairs = [spec(p.display_name(), Path(p.local), p.remote, mode=p.mode, poll_interval=p.poll_interval,
                  full_rescan_interval=p.full_rescan_interval, excludes=p.exclude, max_delete=p.max_delete,
                  delta=p.delta) for p in cfg.pairs]
    return pairs, cfg.state_dir


@click.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def status(state_dir: Path | None, as_json: bool) -> None:
    """Show each pair's state as the running agent reports it."""
    import json

    from syncagent.agent.status import read, render

    data = read(state_dir or default_state_dir())
    click.echo(json.dumps(data, ensure_ascii=False, indent=1) if as_json else render(data))


@click.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def activity(state_dir: Path | None, as_json: bool) -> None:
    """Show the last transfers of the agent."""
    import json

    from syncagent.agent.status import read, render_activity

    data = read(state_dir or default_state_dir())
    click.echo(json.dumps(data.get("activity", []), ensure_ascii=False, indent=1) if as_json
               else render_activity(data))


@click.group()
def service() -> None:
    """Run the agent as a per-user service (systemd user unit / launchd agent)."""


@service.command("install")
@click.option("--config", "config_path", default=None, help="Config file the service runs with.")
def service_install(config_path: str | None) -> None:
    """Write the service file and start the agent at login (the config must have a pair)."""
    from syncagent import config
    from syncagent.agent import service as svc

    path = os.path.abspath(config_path) if config_path else None
    try:
        cfg = config.load(path, missing_ok=False) if path else config.load()
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    if not cfg.pairs:
        fail(errors.ConfigError(
            "has no pairs: the service would have nothing to sync; add one under `pairs:` "
            "(local: FOLDER, remote: NAME:path) first, see docs/agent.md",
            file=str(path or config.default_path())))
        return
    for line in svc.install(path):
        click.echo(line)
    click.echo("on a headless machine, keep it running after logout: loginctl enable-linger $USER")


@service.command("uninstall")
def service_uninstall() -> None:
    """Stop the service and remove its file."""
    from syncagent.agent import service as svc

    for line in svc.uninstall():
        click.echo(line)


@service.command("status")
def service_status() -> None:
    """What the service manager says of the agent."""
    from syncagent.agent import service as svc

    for line in svc.status():
        click.echo(line)
