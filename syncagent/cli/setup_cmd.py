"""Setting remotes up: `config add|show|remove` and `auth`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncagent import errors
from syncagent.cli.common import fail


def register(main: click.Group) -> None:
    main.add_command(config_group)
    main.add_command(auth)


@click.group("config")
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
        fail(exc)
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
        fail(exc)
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


@click.command()
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
        fail(exc)
        return
    click.echo(f"logged in to {name}; credentials stored in {path} (mode 0600)")
