"""The SkyDrive seed's commands beyond the common file commands, on any
remote whose provider has them: `recent`, `info-set` (the seed's
`info_set`), `link -t view|edit|embed`, and `comments` (which no current
service offers through its API: it says so and exits 1)."""

from __future__ import annotations

import json
import sys

import click

from syncagent import errors


def register(main: click.Group) -> None:
    from syncagent.cli.remote import CONFIG_OPTION, _guard, _human_time, opened

    @main.command()
    @click.argument("remote")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def recent(remote: str, as_json: bool, config_path: str | None) -> None:
        """List recently used files, newest first."""
        with opened(remote, config_path) as (provider, _):
            entries = _guard(provider.recent)
            if as_json:
                click.echo(json.dumps([{"path": e.path, "size": e.size, "mtime_ns": e.mtime_ns} for e in entries],
                                      ensure_ascii=False))
                return
            for e in entries:
                click.echo(f"{e.size:>12}  {_human_time(e.mtime_ns)}  {e.path}")

    @main.command("info-set")
    @click.argument("remote")
    @click.argument("fields", required=False, metavar="[JSON]")
    @click.option("--name", help="A new name (in the same folder).")
    @click.option("--description", help="A description (OneDrive personal drives).")
    @CONFIG_OPTION
    def info_set(remote: str, fields: str | None, name: str | None, description: str | None,
                 config_path: str | None) -> None:
        """Rename in place and/or set a description, e.g. `info-set od:a/p.py '{"name": "你好.py"}'`."""
        given = _fields(fields)
        name = name if name is not None else given.get("name")
        description = description if description is not None else given.get("description")
        if name is None and description is None:
            raise click.UsageError("nothing to set: give --name, --description or a JSON object with them")
        with opened(remote, config_path) as (provider, rel):
            if not rel:
                raise click.UsageError("give a path inside the remote")
            entry = _guard(lambda: provider.set_info(rel, name=name, description=description))
            click.echo(entry.path)

    @main.command("comments")
    @click.argument("remote")
    @CONFIG_OPTION
    def comments(remote: str, config_path: str | None) -> None:
        """Show comments on an item, where the service has them."""
        with opened(remote, config_path) as (provider, rel):
            try:
                found = provider.comments(rel)
            except errors.Unsupported as exc:
                click.echo(f"syncagent: {exc}", err=True)
                sys.exit(1)
            click.echo(json.dumps(list(found), ensure_ascii=False, indent=2))


def _fields(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise click.UsageError("JSON must be an object such as '{\"name\": \"new.txt\"}'") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise click.UsageError("JSON must be an object of strings, e.g. '{\"name\": \"new.txt\"}'")
    unknown = set(data) - {"name", "description"}
    if unknown:
        raise click.UsageError(f"only name and description can be set, not {', '.join(sorted(unknown))}")
    return {str(k): str(v) for k, v in data.items()}
