"""Account commands beyond files, on remotes whose service has them (the
Metadisk seed's): `keys NAME list|add|remove` and `buckets NAME
list|create|remove`. A service without them says so in one line (exit 1)."""

from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    from syncagent.cli.remote import CONFIG_OPTION, _guard, opened

    @main.group()
    def keys() -> None:
        """Public keys registered to a remote's account."""

    @keys.command("list")
    @click.argument("remote")
    @CONFIG_OPTION
    def keys_list(remote: str, config_path: str | None) -> None:
        """List the account's public keys."""
        with opened(_root(remote), config_path) as (provider, _):
            for key in _guard(provider.account_keys):
                click.echo(key)

    @keys.command("add")
    @click.argument("remote")
    @click.argument("public_key")
    @CONFIG_OPTION
    def keys_add(remote: str, public_key: str, config_path: str | None) -> None:
        """Register PUBLIC_KEY (hex) with the account."""
        with opened(_root(remote), config_path) as (provider, _):
            _guard(lambda: provider.add_account_key(public_key))
        click.echo(f"key added to {remote.rstrip(':')}", err=True)

    @keys.command("remove")
    @click.argument("remote")
    @click.argument("public_key")
    @CONFIG_OPTION
    def keys_remove(remote: str, public_key: str, config_path: str | None) -> None:
        """Remove PUBLIC_KEY from the account."""
        with opened(_root(remote), config_path) as (provider, _):
            _guard(lambda: provider.remove_account_key(public_key))
        click.echo(f"key removed from {remote.rstrip(':')}", err=True)

    @main.group()
    def buckets() -> None:
        """Buckets of a remote's account."""

    @buckets.command("list")
    @click.argument("remote")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def buckets_list(remote: str, as_json: bool, config_path: str | None) -> None:
        """List the account's buckets."""
        with opened(_root(remote), config_path) as (provider, _):
            found = _guard(provider.containers)
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False))
            return
        for b in found:
            click.echo(f"{b.get('id', '')}  {b.get('name', '')}")

    @buckets.command("create")
    @click.argument("remote")
    @click.argument("name")
    @CONFIG_OPTION
    def buckets_create(remote: str, name: str, config_path: str | None) -> None:
        """Create bucket NAME."""
        with opened(_root(remote), config_path) as (provider, _):
            made = _guard(lambda: provider.create_container(name))
        click.echo(f"bucket {name!r} created ({made.get('id', '')})", err=True)

    @buckets.command("remove")
    @click.argument("remote")
    @click.argument("name")
    @CONFIG_OPTION
    def buckets_remove(remote: str, name: str, config_path: str | None) -> None:
        """Remove bucket NAME (a name or an id) and everything in it."""
        with opened(_root(remote), config_path) as (provider, _):
            _guard(lambda: provider.remove_container(name))
        click.echo(f"bucket {name!r} removed", err=True)


def _root(remote: str) -> str:
    """`md` and `md:` both name the remote itself."""
    return remote if ":" in remote else remote + ":"
