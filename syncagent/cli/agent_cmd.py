"""The agent's commands: `run`, `status`, `activity`, `service`."""

from __future__ import annotations

import os
import sys
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
    from syncagent.agent.daemon import Agent

    log.configure(log_format)
    if (local is None) != (remote is None):
        raise click.UsageError("give both LOCAL and REMOTE, or neither (then the config file's pairs run)")
    try:
        pairs, cfg_state, watcher = _agent_pairs(local, remote, poll_interval, mode, excludes, config_path)
        state = state_dir or (Path(cfg_state) if cfg_state else default_state_dir())
        from syncagent import roots

        roots.check_agent_pairs([(p.local, p.remote) for p in pairs], state, config_path)
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    from syncagent.agent.status import StatusFile

    status = StatusFile(state, [(p.name, str(p.local), p.remote) for p in pairs])
    agent = Agent(pairs, state, watcher_factory=watcher, config_path=config_path, status=status)
    sys.exit(agent.run())


def _agent_pairs(local: Path | None, remote: str | None, poll_interval: float, mode: str,
                 excludes: tuple[str, ...], config_path: str | None) -> tuple[list[Any], str | None, Any]:
    from syncagent import config
    from syncagent.agent.daemon import PairSpec
    from syncagent.agent.watcher import LocalWatcher
    from syncagent.engine.plan import Mode

    if local is not None and remote is not None:
        pairs = [PairSpec(name=local.name or "pair", local=Path(os.path.abspath(local)), remote=remote,
                          mode=Mode(mode), poll_interval=poll_interval, excludes=list(excludes))]
        return pairs, None, LocalWatcher
    cfg = config.load(config_path, missing_ok=False) if config_path else config.load()
    if not cfg.pairs:
        raise errors.ConfigError("no pairs to run: give LOCAL REMOTE, or add `pairs:` to the config file "
                                 f"({config_path or config.default_path()})")
    pairs = [PairSpec(name=p.display_name(), local=Path(p.local), remote=p.remote, mode=Mode(p.mode),
                      poll_interval=p.poll_interval, full_rescan_interval=p.full_rescan_interval,
                      excludes=list(p.exclude) + list(excludes), max_delete=p.max_delete, delta=p.delta)
             for p in cfg.pairs]
    return pairs, cfg.state_dir, LocalWatcher


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
    """Write the service file and start the agent at login."""
    from syncagent.agent import service as svc

    for line in svc.install(os.path.abspath(config_path) if config_path else None):
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
