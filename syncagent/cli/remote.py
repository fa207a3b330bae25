"""Remote file commands over any provider: ls, lsd, tree, get, put, mkdir,
mv, cp, rm, info, quota, link (the seeds' SkyDrive CLI and rclone are the
model). Arguments are `NAME:path`, `local:/path` or a folder path."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import click

from syncagent import errors
from syncagent.providers.base import Kind, Provider, RemoteEntry

T = TypeVar("T")

CONFIG_OPTION = click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
                             help="Config file with named remotes (env SYNCAGENT_CONFIG).")


@contextmanager
def opened(spec: str, config_path: str | None, *, listing: bool = False) -> Iterator[tuple[Provider, str]]:
    """The provider and the path inside it that `spec` names.

    A named remote is rooted at its root (`NAME:a/b.txt` is `a/b.txt` in
    NAME). A plain folder is rooted at itself for listings, so paths print
    relative to it, and at / otherwise, so any two local paths can meet.
    """
    from syncagent.providers.remotes import open_remote, parse_remote

    name, path = parse_remote(spec)
    try:
        if name is None:
            folder = Path(os.path.abspath(os.path.expanduser(path)))
            root, rel = (folder, "") if listing else (Path("/"), str(folder).lstrip("/"))
            provider, _ = open_remote(str(root), config_path)
        else:
            provider, _ = open_remote(f"{name}:", config_path)
            rel = path.strip("/")
        with provider:
            yield provider, rel
    except errors.SyncAgentError as exc:
        click.echo(f"syncagent: {exc}", err=True)
        sys.exit(exc.exit_code)


def _entry_json(e: RemoteEntry) -> dict[str, object]:
    return {"path": e.path, "kind": str(e.kind), "size": e.size, "mtime_ns": e.mtime_ns, "rev": e.rev,
            "hash": e.hash, "id": e.id}


def _listing(provider: Provider, rel: str, recursive: bool) -> list[RemoteEntry]:
    prefix = rel + "/" if rel else ""
    entries = [e for e in provider.list(rel)]
    if not recursive:
        entries = [e for e in entries if "/" not in e.path[len(prefix):]]
    return sorted(entries, key=lambda e: e.path.split("/"))


def _human_time(ns: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9)) if ns else "-"


def register(main: click.Group) -> None:
    @main.command()
    @click.argument("remote")
    @click.option("-R", "--recursive", is_flag=True, help="Everything below, not just one level.")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def ls(remote: str, recursive: bool, as_json: bool, config_path: str | None) -> None:
        """List files (size, time, path)."""
        with opened(remote, config_path, listing=True) as (provider, rel):
            entries = _guard(lambda: _listing(provider, rel, recursive))
            files = [e for e in entries if e.kind is Kind.FILE]
            if as_json:
                click.echo(json.dumps([_entry_json(e) for e in files], ensure_ascii=False))
                return
            for e in files:
                click.echo(f"{e.size:>12}  {_human_time(e.mtime_ns)}  {e.path}")

    @main.command()
    @click.argument("remote")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def lsd(remote: str, as_json: bool, config_path: str | None) -> None:
        """List folders (one level)."""
        with opened(remote, config_path, listing=True) as (provider, rel):
            dirs = [e for e in _guard(lambda: _listing(provider, rel, False)) if e.kind is Kind.DIR]
            if as_json:
                click.echo(json.dumps([_entry_json(e) for e in dirs], ensure_ascii=False))
                return
            for e in dirs:
                click.echo(f"{e.path}/")

    @main.command()
    @click.argument("remote")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def tree(remote: str, as_json: bool, config_path: str | None) -> None:
        """Show the folder tree."""
        with opened(remote, config_path, listing=True) as (provider, rel):
            entries = _guard(lambda: _listing(provider, rel, True))
            if as_json:
                click.echo(json.dumps([_entry_json(e) for e in entries], ensure_ascii=False))
                return
            base = rel.count("/") + 1 if rel else 0
            click.echo(rel or ".")
            for e in entries:
                depth = e.path.count("/") - base
                name = e.path.rsplit("/", 1)[-1] + ("/" if e.kind is Kind.DIR else "")
                click.echo("    " * depth + "├── " + name)

    @main.command()
    @click.argument("remote")
    @click.argument("local", required=False)
    @CONFIG_OPTION
    def get(remote: str, local: str | None, config_path: str | None) -> None:
        """Download REMOTE to LOCAL (a file or folder; `-` for standard output). REMOTE may
        also be a public link a provider opens with no account (https://mega.nz/file/...)."""
        if "://" in remote:
            _get_public(remote, local)
            return
        with opened(remote, config_path) as (provider, rel):
            entry = _guard(lambda: provider.stat(rel))
            if entry.kind is Kind.DIR:
                raise click.UsageError("REMOTE is a folder: use `syncagent sync --mode download` for folders")
            with provider.read(rel) as src:
                _save(src, local, rel.rsplit("/", 1)[-1], entry.mtime_ns)

    @main.command()
    @click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.argument("remote")
    @CONFIG_OPTION
    def put(local: Path, remote: str, config_path: str | None) -> None:
        """Upload the file LOCAL to REMOTE (a path, or a folder ending in /)."""
        with opened(remote, config_path) as (provider, rel):
            if not rel or remote.endswith("/") or _is_dir(provider, rel):
                rel = f"{rel}/{local.name}" if rel else local.name
            parent = rel.rpartition("/")[0]
            if parent:
                _guard(lambda: provider.mkdir(parent))
            st = local.stat()
            with open(local, "rb") as f:
                _guard(lambda: provider.write(rel, f, st.st_size, st.st_mtime_ns))

    @main.command()
    @click.argument("remote")
    @CONFIG_OPTION
    def mkdir(remote: str, config_path: str | None) -> None:
        """Create a folder (and its parents)."""
        with opened(remote, config_path) as (provider, rel):
            _guard(lambda: provider.mkdir(rel))

    @main.command()
    @click.argument("src")
    @click.argument("dst")
    @CONFIG_OPTION
    def mv(src: str, dst: str, config_path: str | None) -> None:
        """Move or rename within one remote."""
        with opened(src, config_path) as (provider, rel_src), opened(dst, config_path) as (_, rel_dst):
            _guard(lambda: provider.move(rel_src, rel_dst))

    @main.command()
    @click.argument("src")
    @click.argument("dst")
    @CONFIG_OPTION
    def cp(src: str, dst: str, config_path: str | None) -> None:
        """Copy within one remote (server-side where the provider can)."""
        with opened(src, config_path) as (provider, rel_src), opened(dst, config_path) as (_, rel_dst):
            if provider.capabilities.server_copy:
                _guard(lambda: provider.copy(rel_src, rel_dst))
                return
            entry = _guard(lambda: provider.stat(rel_src))
            with provider.read(rel_src) as f:
                _guard(lambda: provider.write(rel_dst, f, entry.size, entry.mtime_ns))

    @main.command()
    @click.argument("remote")
    @click.option("-r", "--recursive", is_flag=True, help="Remove a folder and everything in it.")
    @CONFIG_OPTION
    def rm(remote: str, recursive: bool, config_path: str | None) -> None:
        """Remove a file, or a folder with -r."""
        with opened(remote, config_path) as (provider, rel):
            if not rel:
                raise click.UsageError("refusing to remove the root of a remote")
            _guard(lambda: provider.delete(rel, recursive=recursive))

    @main.command()
    @click.argument("remote")
    @CONFIG_OPTION
    def info(remote: str, config_path: str | None) -> None:
        """Show what the provider knows of a path (JSON)."""
        with opened(remote, config_path) as (provider, rel):
            click.echo(json.dumps(_guard(lambda: provider.info(rel)), ensure_ascii=False, indent=2))

    @main.command()
    @click.argument("remote")
    @click.option("--json", "as_json", is_flag=True)
    @CONFIG_OPTION
    def quota(remote: str, as_json: bool, config_path: str | None) -> None:
        """Show used and total space."""
        from syncagent.engine.report import human_bytes

        with opened(remote, config_path) as (provider, _):
            q = _guard(provider.quota)
            if as_json:
                click.echo(json.dumps({"used": q.used, "total": q.total}))
            else:
                total = human_bytes(q.total) if q.total is not None else "unlimited"
                click.echo(f"used {human_bytes(q.used)} of {total}")

    @main.command()
    @click.argument("remote")
    @CONFIG_OPTION
    def link(remote: str, config_path: str | None) -> None:
        """Print a share link for a path."""
        with opened(remote, config_path) as (provider, rel):
            click.echo(_guard(lambda: provider.link(rel)))


def _get_public(url: str, local: str | None) -> None:
    from syncagent.providers.registry import open_public

    try:
        found = open_public(url)
        if found is None:
            raise errors.UsageError(f"no provider opens {url!r}; give NAME:path or a public link it knows")
        with found.stream as src:
            _save(src, local, found.name, found.mtime_ns)
    except errors.SyncAgentError as exc:
        click.echo(f"syncagent: {exc}", err=True)
        sys.exit(exc.exit_code)


def _save(src: IO[bytes], local: str | None, name: str, mtime_ns: int) -> None:
    """`src` into LOCAL (a file, a folder, or `-`) through a temp file renamed at the end;
    a download that fails half-way leaves nothing behind."""
    if local == "-":
        _copy(src, sys.stdout.buffer)
        return
    target = Path(local or name)
    if target.is_dir():
        target = target / name
    tmp = target.with_name(f".syncagent-get-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            _copy(src, out)
        if mtime_ns:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _is_dir(provider: Provider, rel: str) -> bool:
    try:
        return provider.stat(rel).kind is Kind.DIR
    except errors.NotFound:
        return False


def _copy(src: IO[bytes], out: IO[bytes] | io.BufferedWriter) -> None:
    while chunk := src.read(1 << 20):
        out.write(chunk)


def _guard(fn: Callable[[], T]) -> T:
    """Turn provider errors into one clear line and the documented exit code."""
    try:
        return fn()
    except errors.Unsupported as exc:
        click.echo(f"syncagent: {exc}", err=True)
        sys.exit(2)
    except errors.SyncAgentError as exc:
        click.echo(f"syncagent: {exc}", err=True)
        sys.exit(exc.exit_code)
