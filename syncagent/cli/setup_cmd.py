"""Setting remotes up: `config add|show|remove|types` and `auth`.

What a remote type takes (its keys, its secrets, its login flow) is the
provider package's own declaration (syncagent/providers/registry.py); this
module only parses the command line and talks to the terminal.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

import click

from syncagent import errors
from syncagent.cli.common import fail

CONFIG_OPTION = click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
                             help="Config file (env SYNCAGENT_CONFIG).")


def register(main: click.Group) -> None:
    main.add_command(config_group)
    main.add_command(auth)


def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"expected KEY=VALUE, got {item!r}")
        values[key] = value
    return values


def _config_file(config_path: str | None) -> Path:
    from syncagent import config

    return Path(config_path) if config_path else config.default_path()


@click.group("config")
def config_group() -> None:
    """Edit the remotes of the config file."""


@config_group.command("add")
@click.argument("name")
@click.argument("kind", metavar="TYPE")
@click.argument("options", nargs=-1, metavar="KEY=VALUE...")
@CONFIG_OPTION
def config_add(name: str, kind: str, options: tuple[str, ...], config_path: str | None) -> None:
    """Add or replace remote NAME, e.g. `config add sf smartfile root=/backup`.

    Secrets (passwords, tokens) are not kept here: `syncagent auth NAME`
    asks for them. `syncagent config types` lists the types and their keys."""
    from syncagent import config

    path = _config_file(config_path)
    try:
        config.add_remote(path, name, {"type": kind, **_pairs(options)})
    except errors.SyncAgentError as exc:
        fail(exc)
    from syncagent.providers.registry import get

    click.echo(f"remote {name!r} saved in {path}")
    if get(kind).login is not None:
        click.echo(f"next: `syncagent auth {name}` to log in")


@config_group.command("types")
def config_types() -> None:
    """List the remote types, their keys and their secrets."""
    from syncagent.providers.registry import types

    for ptype in sorted(types().values(), key=lambda t: t.name):
        click.echo(f"{ptype.name}: {ptype.summary}")
        for name, spec in ptype.options.model_fields.items():
            secret = " (secret: `syncagent auth`)" if name in ptype.secrets else ""
            required = " (required)" if spec.is_required() else ""
            click.echo(f"  {name}{required}{secret}: {spec.description or ''}".rstrip(": "))


@config_group.command("show")
@CONFIG_OPTION
def config_show(config_path: str | None) -> None:
    """Print the config file with secrets masked."""
    import yaml

    from syncagent import config

    path = _config_file(config_path)
    try:
        if path.exists():
            config.load(path)
        data = config.masked(config.raw(path))
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    click.echo(f"# {path}")
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip() if data else "# (empty)")


@config_group.command("remove")
@click.argument("name")
@CONFIG_OPTION
def config_remove(name: str, config_path: str | None) -> None:
    """Remove remote NAME and its stored secrets."""
    from syncagent import config
    from syncagent.credentials import Resolver
    from syncagent.providers.registry import types

    path = _config_file(config_path)
    try:
        removed = config.remove_remote(path, name)
        if removed:
            Resolver().forget(name, tuple({f for t in types().values() for f in t.secrets}))
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    if not removed:
        click.echo(f"syncagent: no remote {name!r} in {path}", err=True)
        sys.exit(2)
    click.echo(f"remote {name!r} removed")


@click.command()
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--key", help="SmartFile API key (asked for when missing).")
@click.option("--password", help="SmartFile API password (asked for, hidden, when missing).")
@click.option("--oauth", is_flag=True, help="SmartFile: the OAuth 1.0a flow instead of a key and password.")
@click.option("--client-token", help="OAuth client (consumer) token.")
@click.option("--client-secret", help="OAuth client (consumer) secret.")
@click.option("--browser/--no-browser", default=None,
              help="Open the login page in a browser (default: when there is a display).")
@CONFIG_OPTION
def auth(name: str, values: tuple[str, ...], key: str | None, password: str | None, oauth: bool,
         client_token: str | None, client_secret: str | None, browser: bool | None, config_path: str | None) -> None:
    """Log in to remote NAME and store its secrets (keyring, else a 0600 file).

    KEY=VALUE gives a login value instead of being asked for it, e.g.
    `syncagent auth sf key=... password=...`."""
    from syncagent import config
    from syncagent.providers.registry import LoginContext, login

    given: dict[str, Any] = _pairs(values)
    flags = {"key": key, "password": password, "client_token": client_token, "client_secret": client_secret}
    given.update({k: v for k, v in flags.items() if v is not None})
    if oauth:
        given["oauth"] = True
    if browser is not None:
        given["browser"] = browser
    try:
        cfg = config.load(config_path)
        remote = cfg.remotes.get(name)
        if remote is None:
            raise errors.UsageError(f"unknown remote {name!r}: add it first with `syncagent config add {name} TYPE`")
        ctx = LoginContext(name, remote.options(), given, prompt=_prompt, echo=click.echo,
                           open_browser=lambda url: _open_browser(url, browser))
        done = login(name, remote.type, remote.options(), ctx)
    except errors.SyncAgentError as exc:
        fail(exc)
        return
    except click.Abort:
        click.echo("syncagent: login cancelled; nothing stored", err=True)
        sys.exit(1)
    who = f" as {done.who}" if done.who else ""
    click.echo(f"logged in to {name}{who}; secrets stored in {done.where}")


def _prompt(text: str, secret: bool = False) -> str:
    try:
        return str(click.prompt(text, hide_input=secret))
    except click.Abort:
        if sys.stdin.isatty():
            raise
        raise errors.UsageError(f"the login needs the {text} and there is no terminal to ask on: "
                                "give it on the command line as KEY=VALUE") from None


def _open_browser(url: str, wanted: bool | None) -> bool:
    """Open `url` when asked to, or by default when there is a display to show it on."""
    if wanted is False:
        return False
    if wanted is None and not (sys.platform == "darwin" or os.environ.get("DISPLAY")
                               or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
