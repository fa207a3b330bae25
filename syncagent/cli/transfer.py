"""Moving bytes for the remote commands: `cp`/`mv` between any two places
(two remotes, a remote and a local path, one remote), `put` and `get`, the
way rclone's copyto/moveto do it: server-side within one remote, streamed
otherwise, and a move removes its source only after the copy is verified
(same size, and the same content hash where the destination reports one).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import click

from syncagent import errors
from syncagent.providers.base import Kind, Provider, RemoteEntry

if TYPE_CHECKING:
    from syncagent.hashing import Hasher

PROGRESS_AFTER = 1.0      # seconds a transfer runs before a progress line appears
CHUNK = 1 << 20


@dataclass
class Place:
    """One argument of a command: the provider and the path inside it."""

    spec: str                 # as the user wrote it
    store: str                # "" for this machine's files, else the remote's name
    provider: Provider
    rel: str

    def child(self, name: str) -> Place:
        return Place(self.spec.rstrip("/") + "/" + name, self.store, self.provider,
                     f"{self.rel}/{name}" if self.rel else name)

    def at(self, rel: str) -> Place:
        return Place(self.spec, self.store, self.provider, rel)


@contextlib.contextmanager
def places(specs: list[str], config_path: str | None, *, listing: bool = False) -> Iterator[list[Place]]:
    """Open each argument; arguments in one store share one provider.

    A named remote is rooted at its root (`NAME:a/b` is `a/b` there). A local
    path is rooted at itself for listings (paths print relative to it) and at
    / otherwise, so any two local paths can meet in one provider."""
    from syncagent.providers.remotes import open_remote, parse_remote

    opened: dict[str, Provider] = {}
    out: list[Place] = []
    with contextlib.ExitStack() as stack:
        for spec in specs:
            name, path = parse_remote(spec)
            if name is None:
                folder = Path(os.path.abspath(os.path.expanduser(path)))
                root, rel, store = (folder, "", f"local:{folder}") if listing else \
                    (Path("/"), str(folder).lstrip("/"), "")
                key = str(root) if listing else ""
                if key not in opened:
                    opened[key] = stack.enter_context(open_remote(str(root), config_path)[0])
                out.append(Place(spec, store, opened[key], rel))
            else:
                if name not in opened:
                    opened[name] = stack.enter_context(open_remote(f"{name}:", config_path)[0])
                out.append(Place(spec, name, opened[name], path.strip("/")))
        yield out


def stat_or_none(place: Place) -> RemoteEntry | None:
    try:
        return place.provider.stat(place.rel)
    except errors.NotFound:
        return None


def target_of(src: Place, dst: Place, trailing_slash: bool) -> Place:
    """rclone's rule: into a folder that exists (or one named with a final /), keep the name."""
    name = src.rel.rsplit("/", 1)[-1] or Path(src.spec.rstrip("/")).name
    if not dst.rel or trailing_slash:
        return dst.child(name)
    found = stat_or_none(dst)
    return dst.child(name) if found is not None and found.kind is Kind.DIR else dst


class Progress(io.RawIOBase):
    """A read-only, forward-only stream over `stream` that shows
    `name  done / total  pct` on a terminal for transfers that last, and
    feeds a content hasher on the way (so it cannot be rewound)."""

    def __init__(self, stream: IO[bytes], total: int, label: str, hasher: Hasher | None, show: bool) -> None:
        super().__init__()
        self.stream, self.total, self.label, self.hasher = stream, total, label, hasher
        self.done = 0
        self.started = time.monotonic()
        self.show = show and sys.stderr.isatty()
        self.shown = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        self._count(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self._count(data)
        return data

    def _count(self, data: bytes) -> None:
        self.done += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        if self.show and time.monotonic() - self.started > PROGRESS_AFTER:
            self._draw()

    def _draw(self) -> None:
        from syncagent.engine.report import human_bytes

        pct = f"{100 * self.done // self.total:3d}%" if self.total else ""
        click.echo(f"\r{self.label}  {human_bytes(self.done)} / {human_bytes(self.total)}  {pct}",
                   err=True, nl=False)
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self._draw()
            click.echo("", err=True)


def _hasher(provider: Provider, entry: RemoteEntry) -> Hasher | None:
    from syncagent import hashing

    kind = provider.capabilities.hash_kind
    if kind is None or not hashing.known(kind):
        return None
    return hashing.new_hasher(kind, size=entry.size, mtime_ns=entry.mtime_ns)


def copy_file(src: Place, entry: RemoteEntry, dst: Place, *, progress: bool) -> RemoteEntry:
    """Stream one file from src to dst, then verify what landed."""
    parent = dst.rel.rpartition("/")[0]
    if parent:
        dst.provider.mkdir(parent)
    hasher = _hasher(dst.provider, entry)
    with src.provider.read(src.rel) as stream:
        meter = Progress(stream, entry.size, dst.spec, hasher, progress)
        try:
            landed = dst.provider.write(dst.rel, cast(IO[bytes], meter), entry.size, entry.mtime_ns)
        finally:
            meter.finish()
    verify(dst, landed, entry.size, hasher.hexdigest() if hasher is not None else None)
    return landed


def verify(dst: Place, landed: RemoteEntry, size: int, digest: str | None) -> None:
    """Same size, and the same hash where the destination reports one; else PermanentError."""
    if landed.size != size:
        landed = dst.provider.stat(dst.rel)
    if landed.size != size:
        raise errors.PermanentError(f"the copy has {landed.size} bytes, the source {size}", path=dst.spec)
    if digest is None:
        return
    theirs = landed.hash or dst.provider.content_hash(dst.rel)
    if theirs is not None and theirs.lower() != digest.lower():
        raise errors.PermanentError("the copy's content hash differs from the bytes sent", path=dst.spec)


def copy_tree(src: Place, dst: Place, *, progress: bool, each: Callable[[str], None]) -> int:
    """Every file below src into dst (folders made as needed); returns the files copied."""
    dst.provider.mkdir(dst.rel)
    count = 0
    prefix = src.rel + "/" if src.rel else ""
    for e in sorted(src.provider.list(src.rel), key=lambda e: e.path):
        below = e.path[len(prefix):]
        target = dst.at(f"{dst.rel}/{below}" if dst.rel else below)
        if e.kind is Kind.DIR:
            dst.provider.mkdir(target.rel)
            continue
        copy_file(src.at(e.path), e, Place(f"{dst.spec.rstrip('/')}/{below}", dst.store, dst.provider,
                                           target.rel), progress=progress)
        each(below)
        count += 1
    return count


def transfer(src: Place, dst: Place, *, move: bool, progress: bool, each: Callable[[str], None]) -> str:
    """Copy or move src to dst (the final name); returns what was done, for the user."""
    entry = src.provider.stat(src.rel)
    if src.store == dst.store and src.provider is dst.provider:
        if _same_path(src, dst):
            raise errors.UsageError(f"{src.spec} and {dst.spec} are the same path")
        return _within(src, dst, entry, move=move, progress=progress, each=each)
    if entry.kind is Kind.DIR:
        count = copy_tree(src, dst, progress=progress, each=each)
        what = f"{count} file{'s' * (count != 1)}"
    else:
        copy_file(src, entry, dst, progress=progress)
        what = "1 file"
    if move:   # only now: every byte is at the destination and checked
        src.provider.delete(src.rel, recursive=entry.kind is Kind.DIR)
    return f"{'moved' if move else 'copied'} {src.spec} -> {dst.spec} ({what})"


def _same_path(a: Place, b: Place) -> bool:
    return a.rel.strip("/") == b.rel.strip("/")


def _within(src: Place, dst: Place, entry: RemoteEntry, *, move: bool, progress: bool,
            each: Callable[[str], None]) -> str:
    """Inside one remote: the service moves or copies (no bytes through us) where it can."""
    caps = src.provider.capabilities
    dst_rel = dst.rel.strip("/")
    if dst_rel == src.rel or dst_rel.startswith(src.rel + "/"):
        raise errors.UsageError(f"cannot put {src.spec} inside itself ({dst.spec})")
    parent = dst_rel.rpartition("/")[0]
    if parent:
        src.provider.mkdir(parent)
    if move and caps.server_move:
        src.provider.move(src.rel, dst_rel)
        return f"moved {src.spec} -> {dst.spec}"
    if caps.server_copy:
        src.provider.copy(src.rel, dst_rel)
    elif entry.kind is Kind.DIR:
        copy_tree(src, dst, progress=progress, each=each)
    else:
        copy_file(src, entry, dst, progress=progress)
    if move:
        src.provider.delete(src.rel, recursive=entry.kind is Kind.DIR)
    return f"{'moved' if move else 'copied'} {src.spec} -> {dst.spec}"
