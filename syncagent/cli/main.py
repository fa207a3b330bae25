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
        summary = _run_sync(local, remote, mode, dry_run, state_dir, force, max_delete, excludes,
                            no_trash, delta, reporter, config_path)
    except errors.SyncAgentError as exc:
        _fail(exc)
        return
    reporter.summary(summary)
    sys.exit(summary.exit_code)


def _run_sync(local: Path, remote: str, mode: str, dry_run: bool, state_dir: Path | None, force: bool,
              max_delete: float, excludes: tuple[str, ...], no_trash: bool, delta: str, reporter: Any,
              config_path: str | None = None) -> Any:
    from syncagent.engine.plan import Mode
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine, SyncOptions
    from syncagent.providers.remotes import open_remote

    provider, spec = open_remote(remote, config_path)
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
    from syncagent.agent.daemon import Agent

    log.configure(log_format)
    if (local is None) != (remote is None):
        raise click.UsageError("give both LOCAL and REMOTE, or neither (then the config file's pairs run)")
    try:
        pairs, cfg_state, watcher = _agent_pairs(local, remote, poll_interval, mode, excludes, config_path)
    except errors.SyncAgentError as exc:
        _fail(exc)
        return
    state = state_dir or (Path(cfg_state) if cfg_state else default_state_dir())
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


@main.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def status(state_dir: Path | None, as_json: bool) -> None:
    """Show each pair's state as the running agent reports it."""
    import json

    from syncagent.agent.status import read, render

    data = read(state_dir or default_state_dir())
    click.echo(json.dumps(data, ensure_ascii=False, indent=1) if as_json else render(data))


@main.command()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def activity(state_dir: Path | None, as_json: bool) -> None:
    """Show the last transfers of the agent."""
    import json

    from syncagent.agent.status import read, render_activity

    data = read(state_dir or default_state_dir())
    click.echo(json.dumps(data.get("activity", []), ensure_ascii=False, indent=1) if as_json
               else render_activity(data))


@main.group()
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


@main.group("config")
def config_group() -> None:
    """Edit the remotes of the config file."""


@config_group.command("add")
@click.argument("name")
@click.argument("kind", metavar="TYPE", type=click.Choice(["local", "smartfile", "mega", "metadisk", "onedrive"]))
@click.argument("options", nargs=-1, metavar="KEY=VALUE...")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None)
def config_add(name: str, kind: str, options: tuple[str, ...], config_path: str | None) -> None:
    """Add or replace remote NAME, e.g. `config add sf smartfile root=/backup`."""
    from syncagent import config

    values: dict[str, str] = {"type": kind}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"expected KEY=VALUE, got {item!r}")
        values[key] = value
    path = Path(config_path) if config_path else config.default_path()
    try:
        config.add_remote(path, name, values)
    except errors.SyncAgentError as exc:
        _fail(exc)
    click.echo(f"remote {name!r} saved in {path}")


@config_group.command("show")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None)
def config_show(config_path: str | None) -> None:
    """Print the config file with secrets masked."""
    import yaml

    from syncagent import config

    path = Path(config_path) if config_path else config.default_path()
    try:
        config.load(path) if path.exists() else None
        data = config.masked(config.raw(path))
    except errors.SyncAgentError as exc:
        _fail(exc)
        return
    click.echo(f"# {path}")
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip() if data else "# (empty)")


@config_group.command("remove")
@click.argument("name")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None)
def config_remove(name: str, config_path: str | None) -> None:
    """Remove remote NAME."""
    from syncagent import config

    path = Path(config_path) if config_path else config.default_path()
    if not config.remove_remote(path, name):
        click.echo(f"syncagent: no remote {name!r} in {path}", err=True)
        sys.exit(2)
    click.echo(f"remote {name!r} removed")


@main.command()
@click.argument("name")
@click.option("--key", help="SmartFile API key (asked for when missing).")
@click.option("--password", help="SmartFile API password (asked for, hidden, when missing).")
@click.option("--oauth", is_flag=True, help="Use the OAuth 1.0a flow instead of a key and password.")
@click.option("--client-token", help="OAuth client (consumer) token.")
@click.option("--client-secret", help="OAuth client (consumer) secret.")
@click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None)
def auth(name: str, key: str | None, password: str | None, oauth: bool, client_token: str | None,
         client_secret: str | None, config_path: str | None) -> None:
    """Log in to remote NAME and store its credentials (file of mode 0600)."""
    from syncagent import config
    from syncagent.credentials import store_credentials
    from syncagent.providers.registry import build

    try:
        cfg = config.load(config_path)
        remote = cfg.remotes.get(name)
        if remote is None:
            raise errors.UsageError(f"unknown remote {name!r}: add it first with `syncagent config add`")
        if remote.type != "smartfile":
            raise errors.Unsupported(f"`auth` does not know the {remote.type} provider yet")
        url = str(remote.options().get("url") or "https://app.smartfile.com/")
        if oauth:
            from syncagent.providers.smartfile.oauth import three_legged

            token = client_token or click.prompt("OAuth client token")
            secret = client_secret or click.prompt("OAuth client secret", hide_input=True)

            def ask(authorize_url: str) -> str:
                click.echo(f"open this address, allow access, and paste the verifier:\n  {authorize_url}")
                return str(click.prompt("verifier"))

            access, access_secret = three_legged(url, token, secret, ask)
            values = {"client_token": token, "client_secret": secret, "access_token": access,
                      "access_secret": access_secret}
        else:
            values = {"key": key or click.prompt("API key"),
                      "password": password or click.prompt("API password", hide_input=True)}
        provider = build(name, remote.type, remote.options(), "", values)
        with provider:
            provider.root_exists()  # a wrong secret fails here, before anything is stored
        path = store_credentials(name, values)
    except errors.SyncAgentError as exc:
        _fail(exc)
        return
    click.echo(f"logged in to {name}; credentials stored in {path} (mode 0600)")


from syncagent.cli.remote import register as _register_remote_commands  # noqa: E402

_register_remote_commands(main)

if __name__ == "__main__":
    main()
