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
from syncagent.cli.transfer import Place, copy_file, places, stat_or_none, target_of, transfer
from syncagent.providers.base import Kind, Provider, RemoteEntry

T = TypeVar("T")

CONFIG_OPTION = click.option("--config", "config_path", envvar="SYNCAGENT_CONFIG", default=None,
                             help="Config file with named remotes (env SYNCAGENT_CONFIG).")
QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, help="Say nothing when all went well.")


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        click.echo(text, err=True)


@contextmanager
def opened(spec: str, config_path: str | None, *, listing: bool = False) -> Iterator[tuple[Provider, str]]:
    """The provider and the path inside it that `spec` names (see transfer.places)."""
    with failing(), places([spec], config_path, listing=listing) as (place,):
        yield place.provider, place.rel


@contextmanager
def failing() -> Iterator[None]:
    """Any error of ours: one clear line and its exit code (never a traceback)."""
    try:
        yield
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
    @QUIET_OPTION
    @CONFIG_OPTION
    def get(remote: str, local: str | None, quiet: bool, config_path: str | None) -> None:
        """Download the file REMOTE to LOCAL (a file, a folder, or `-` for standard output). REMOTE
        may also be a public link a provider opens with no account (https://mega.nz/file/...)."""
        if "://" in remote:
            _get_public(remote, local, quiet)
            return
        with failing(), places([remote], config_path) as (src,):
            entry = src.provider.stat(src.rel)
            if entry.kind is Kind.DIR:
                raise errors.UsageError(f"{remote} is a folder: copy it with `syncagent cp {remote} FOLDER`, "
                                        "or keep it in sync with `syncagent sync --mode download`")
            if local == "-":
                with src.provider.read(src.rel) as stream:
                    _copy(stream, sys.stdout.buffer)
                return
            target = _local_target(local or ".", src.rel.rsplit("/", 1)[-1])
            with places([str(target)], config_path) as (dst,):
                copy_file(src, entry, dst, progress=not quiet)
            _say(quiet, f"downloaded {remote} -> {target} ({_size(entry.size)})")

    @main.command()
    @click.argument("local", type=click.Path(dir_okay=False, path_type=Path))
    @click.argument("remote")
    @QUIET_OPTION
    @CONFIG_OPTION
    def put(local: Path, remote: str, quiet: bool, config_path: str | None) -> None:
        """Upload the file LOCAL to REMOTE (a path, or a folder ending in /)."""
        with failing(), places([str(local.absolute()), remote], config_path) as (src, dst):
            entry = src.provider.stat(src.rel)
            if entry.kind is Kind.DIR:
                raise errors.UsageError(f"{local} is a folder: use `syncagent cp {local} {remote}` "
                                        "or `syncagent sync --mode upload`")
            target = target_of(src, dst, remote.endswith("/"))
            copy_file(src, entry, target, progress=not quiet)
            _say(quiet, f"uploaded {local} -> {target.spec} ({_size(entry.size)})")

    @main.command()
    @click.argument("remote")
    @QUIET_OPTION
    @CONFIG_OPTION
    def mkdir(remote: str, quiet: bool, config_path: str | None) -> None:
        """Create a folder (and its parents)."""
        with failing(), places([remote], config_path) as (place,):
            place.provider.mkdir(place.rel)
            _say(quiet, f"made folder {remote}")

    @main.command()
    @click.argument("src")
    @click.argument("dst")
    @QUIET_OPTION
    @CONFIG_OPTION
    def mv(src: str, dst: str, quiet: bool, config_path: str | None) -> None:
        """Move SRC to DST: within one remote, across remotes, or between here and a remote.
        Across, the source is removed only once the copy is verified."""
        _transfer(src, dst, quiet, config_path, move=True)

    @main.command()
    @click.argument("src")
    @click.argument("dst")
    @QUIET_OPTION
    @CONFIG_OPTION
    def cp(src: str, dst: str, quiet: bool, config_path: str | None) -> None:
        """Copy SRC (a file or a folder) to DST, server-side within one remote."""
        _transfer(src, dst, quiet, config_path, move=False)

    @main.command()
    @click.argument("paths", nargs=-1, required=True, metavar="REMOTE...")
    @click.option("-r", "--recursive", is_flag=True, help="Remove folders and everything in them.")
    @QUIET_OPTION
    @CONFIG_OPTION
    def rm(paths: tuple[str, ...], recursive: bool, quiet: bool, config_path: str | None) -> None:
        """Remove files, or folders with -r; each path on its own (one failing stops none of the others)."""
        with failing(), places(list(paths), config_path) as found:
            failed = _remove(found, recursive, quiet)
        sys.exit(1 if failed else 0)

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
    @click.option("-t", "--type", "kind", type=click.Choice(["view", "edit", "embed"]), default="view",
                  help="A read-only link (default), an edit link, or HTML to embed.")
    @CONFIG_OPTION
    def link(remote: str, kind: str, config_path: str | None) -> None:
        """Print a share link for a path."""
        with opened(remote, config_path) as (provider, rel):
            click.echo(_guard(lambda: provider.share_link(rel, kind)))

    from syncagent.cli import remote_extras

    remote_extras.register(main)


def _get_public(url: str, local: str | None, quiet: bool) -> None:
    from syncagent.providers.registry import open_public

    with failing():
        found = open_public(url)
        if found is None:
            raise errors.UsageError(f"no provider opens {url!r}; give NAME:path or a public link it knows")
        with found.stream as src:
            target = _save(src, local, found.name, found.mtime_ns)
        if target is not None:
            _say(quiet, f"downloaded {url} -> {target} ({_size(found.size)})")


def _save(src: IO[bytes], local: str | None, name: str, mtime_ns: int) -> Path | None:
    """`src` into LOCAL (a file, a folder, or `-`) through a temp file renamed at the end;
    a download that fails half-way leaves nothing behind. Returns the file written."""
    if local == "-":
        _copy(src, sys.stdout.buffer)
        return None
    target = _local_target(local or ".", name)
    tmp = target.with_name(f".syncagent-get-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            _copy(src, out)
        if mtime_ns:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _transfer(src_spec: str, dst_spec: str, quiet: bool, config_path: str | None, *, move: bool) -> None:
    with failing(), places([src_spec, dst_spec], config_path) as (src, dst):
        if not src.rel and src.store:
            raise errors.UsageError(f"refusing to {'move' if move else 'copy'} the root of a remote; "
                                    f"name a path inside it ({src_spec}PATH)")
        if stat_or_none(src) is None:
            raise errors.NotFound("no such file or folder", path=src_spec)
        target = target_of(src, dst, dst_spec.endswith("/"))
        done = transfer(src, target, move=move, progress=not quiet,
                        each=lambda rel: None if quiet else click.echo(f"  {rel}", err=True))
        _say(quiet, done)


def _remove(found: list[Place], recursive: bool, quiet: bool) -> int:
    """Check every path first (exists, not a root, a folder only with -r), then delete
    what passed, per remote in one batch (a service with a batch call makes one)."""
    failed = 0
    batches: dict[int, tuple[Provider, list[Place]]] = {}
    for place in found:
        problem = _rm_problem(place, recursive)
        if problem:
            click.echo(f"syncagent: {place.spec}: {problem}", err=True)
            failed += 1
            continue
        batches.setdefault(id(place.provider), (place.provider, []))[1].append(place)
    for provider, batch in batches.values():
        errors_by_path = provider.delete_many([(p.rel, recursive) for p in batch])
        for place in batch:
            error = errors_by_path.get(place.rel)
            if error is not None:
                click.echo(f"syncagent: {place.spec}: {error}", err=True)
                failed += 1
            else:
                _say(quiet, f"removed {place.spec}")
    return failed


def _rm_problem(place: Place, recursive: bool) -> str | None:
    if not place.rel:
        return "refusing to remove the root of a remote"
    try:
        entry = place.provider.stat(place.rel)
    except errors.NotFound:
        return "no such file or folder"
    except errors.SyncAgentError as exc:
        return str(exc)
    if entry.kind is Kind.DIR and not recursive:
        return "is a folder (use -r to remove it and everything in it)"
    return None


def _local_target(local: str, name: str) -> Path:
    """Where `get` writes: LOCAL itself, or LOCAL/name for a folder; its folder must exist."""
    target = Path(os.path.abspath(os.path.expanduser(local)))
    if local.endswith("/") or target.is_dir():
        if not target.is_dir():
            raise errors.NotFound("no such folder (create it first)", path=str(target))
        return target / name
    if not target.parent.is_dir():
        raise errors.NotFound("no such folder (create it first)", path=str(target.parent))
    return target


def _size(n: int) -> str:
    from syncagent.engine.report import human_bytes

    return human_bytes(n)


def _copy(src: IO[bytes], out: IO[bytes] | io.BufferedWriter) -> None:
    while chunk := src.read(1 << 20):
        out.write(chunk)


def _guard(fn: Callable[[], T]) -> T:
    """Turn provider errors into one clear line and the documented exit code
    (an unsupported feature is a failure, 1, not a usage error)."""
    try:
        return fn()
    except errors.SyncAgentError as exc:
        click.echo(f"syncagent: {exc}", err=True)
        sys.exit(exc.exit_code)
