"""The engine's hands on a local folder: staged, checked, atomic writes,
renames and deletes, and the scan that lists it.

The engine uses it for the user's folder; the `local` provider
(syncagent/providers/local.py) is the same class behind the Provider
interface, so a plain folder as the remote gets the same guarantees.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from syncagent import errors, hashing
from syncagent.engine.records import DIR, Entry
from syncagent.engine.scan import Scan, scan_tree, stat_entry
from syncagent.fileio import copy_into, file_hash, map_oserror, syncfs
from syncagent.paths import temp_name
from syncagent.providers.base import (
    ANY,
    Expect,
    Kind,
    Quota,
    RemoteEntry,
    StagedWrite,
)


class OwnWrites(Protocol):
    """The watcher's side of the engine's own local writes: `suppress(path)`
    just before one, `wrote(path)` once it is in place (or gone), so the
    events it causes are not taken for the user's changes."""

    def suppress(self, path: str) -> None: ...

    def wrote(self, path: str) -> None: ...


def entry_rev(e: Entry) -> str:
    """A rev that changes with the content or its identity (a safe-save gets a new inode)."""
    return f"{e.mtime_ns}-{e.size}-{e.ino}"


def to_remote(path: str, e: Entry) -> RemoteEntry:
    if e.kind == DIR:
        return RemoteEntry(path, Kind.DIR, id=str(e.ino))
    return RemoteEntry(path, Kind.FILE, e.size, e.mtime_ns, entry_rev(e), None, str(e.ino))


class LocalSide:
    """A folder, by relative NFC paths."""

    def __init__(self, root: str | os.PathLike[str], *, temp_tag: str = "") -> None:
        self.root = Path(root)
        self._root_s = str(self.root)
        self.temp_tag = temp_tag
        self.last_scan: Scan | None = None

    def describe(self) -> str:
        return f"local:{self.root}"

    # ---- paths -------------------------------------------------------------
    def abspath(self, path: str) -> Path:
        return Path(self.fspath(path))

    def fspath(self, path: str) -> str:
        """The on-disk absolute path as a string (pathlib costs too much per file)."""
        if not path:
            return self._root_s
        scan = self.last_scan
        if scan is not None and scan.disk:
            path = scan.disk_path(path)
        return f"{self._root_s}/{path}"

    def new_temp(self, path: str) -> str:
        target = self.fspath(path)
        folder, _, name = target.rpartition("/")
        return f"{folder}/{temp_name(name, self.temp_tag + secrets.token_hex(6))}"

    # ---- listing -----------------------------------------------------------
    def root_exists(self) -> bool:
        return self.root.is_dir()

    def ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise map_oserror(exc, str(self.root)) from exc

    def scan(self, path: str = "") -> Scan:
        if not self.root.is_dir():
            raise errors.NotFound("the folder does not exist", path=str(self.root))
        scan = scan_tree(self.root, start=path)
        if not path:
            self.last_scan = scan
        return scan

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        scan = self.scan(path)
        entries, scan.entries = scan.entries, {}  # keep the name maps, not a second copy of the tree
        while entries:  # popped as they go: the scan's copy of the tree shrinks as the listing grows
            rel, e = entries.popitem()
            yield to_remote(rel, e)

    def stat(self, path: str) -> RemoteEntry:
        e = stat_entry(self.fspath(path))
        if e is None:
            raise errors.NotFound("no such file or folder", path=path)
        return to_remote(path, e)

    def content_hash(self, path: str) -> str | None:
        try:
            return file_hash(self.abspath(path))
        except OSError as exc:
            raise map_oserror(exc, path) from exc

    # ---- content -----------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        try:
            return open(self.fspath(path), "rb")
        except OSError as exc:
            raise map_oserror(exc, path) from exc

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        staged = self.stage_write(path, stream, size, mtime_ns, expect=expect)
        return staged.commit()

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY) -> StagedWrite:
        tmp = self.new_temp(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        try:
            try:
                written = copy_into(stream, fd, size)
                if mtime_ns:
                    os.utime(fd, ns=(mtime_ns, mtime_ns))
                st = os.fstat(fd)
            finally:
                os.close(fd)
            if written != size:
                raise errors.TransientError(
                    f"short transfer: expected {size} bytes, got {written}", path=path)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise map_oserror(exc, path) from exc
        except BaseException:
            _unlink_quietly(tmp)
            raise
        entry = to_remote(path, Entry("file", st.st_size, st.st_mtime_ns, st.st_ino))
        return _LocalStaged(self, path, tmp, entry, expect)

    def flush(self) -> None:
        syncfs(self.root)

    def check_expect(self, path: str, expect: Expect) -> None:
        """Raise Conflict if `path` no longer is what the caller last saw."""
        if expect is ANY:
            return
        current = stat_entry(self.fspath(path))
        if expect is None:
            if current is not None:
                raise errors.Conflict("appeared since it was listed", path=path)
            return
        if current is None or current.kind == DIR or entry_rev(current) != expect:
            raise errors.Conflict("changed since it was listed", path=path)

    def mkdir(self, path: str) -> RemoteEntry:
        target = self.abspath(path)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise errors.AlreadyExists("a file has that name", path=path) from exc
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        return self.stat(path)

    def move(self, src: str, dst: str) -> RemoteEntry:
        source, target = self.abspath(src), self.abspath(dst)
        if os.path.lexists(target):
            raise errors.AlreadyExists("destination exists", path=dst)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(source, target)
        except OSError as exc:
            raise map_oserror(exc, src) from exc
        return self.stat(dst)

    def copy(self, src: str, dst: str) -> RemoteEntry:
        source, target = self.abspath(src), self.abspath(dst)
        if os.path.lexists(target):
            raise errors.AlreadyExists("destination exists", path=dst)
        try:
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True)
                return self.stat(dst)
            with open(source, "rb") as f:
                st = os.fstat(f.fileno())
                return self.write(dst, f, st.st_size, st.st_mtime_ns, expect=None)
        except OSError as exc:
            raise map_oserror(exc, src) from exc

    def delete(self, path: str, *, recursive: bool = False) -> None:
        target = self.abspath(path)
        try:
            if target.is_dir() and not target.is_symlink():
                if recursive:
                    shutil.rmtree(target)
                else:
                    target.rmdir()
            else:
                target.unlink()
        except OSError as exc:
            raise map_oserror(exc, path) from exc

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        try:
            os.utime(self.abspath(path), ns=(mtime_ns, mtime_ns), follow_symlinks=False)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        return self.stat(path)

    # ---- delta capability: the "remote" side runs librsync on its own files --
    def signature(self, path: str, out: IO[bytes]) -> None:
        from syncagent import delta

        with self.read(path) as basis:
            delta.signature(basis, out)

    def patch(self, path: str, delta_stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        return self.stage_patch(path, delta_stream, size, mtime_ns, expect=expect).commit()

    def stage_patch(self, path: str, delta_stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY, content_hash: str | None = None,
                    hash_kind: str = "sha256") -> StagedWrite:
        """Apply a delta to this side's file into a temp beside it; checked
        (size, and content hash when given) before it may replace the file."""
        from syncagent import delta

        tmp = self.new_temp(path)
        try:
            with self.read(path) as basis, open(tmp, "xb") as out:
                delta.patch(basis, delta_stream, out)
            if os.path.getsize(tmp) != size:
                raise errors.TransientError("the patched file has the wrong size", path=path)
            if content_hash is not None and hashing.hash_one(tmp, hash_kind) != content_hash:
                raise errors.TransientError("the patched file has the wrong content", path=path)
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
            st = os.stat(tmp)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise map_oserror(exc, path) from exc
        except BaseException:
            _unlink_quietly(tmp)
            raise
        entry = to_remote(path, Entry("file", st.st_size, st.st_mtime_ns, st.st_ino))
        return _LocalStaged(self, path, tmp, entry, expect)

    def delta(self, path: str, signature: IO[bytes], out: IO[bytes]) -> None:
        from syncagent import delta

        with self.read(path) as new:
            delta.delta(signature, new, out)

    # ---- extras ------------------------------------------------------------
    def quota(self) -> Quota:
        usage = shutil.disk_usage(self.root)
        return Quota(used=usage.used, total=usage.total)

    def link(self, path: str) -> str:
        return self.abspath(path).resolve().as_uri()


class _LocalStaged(StagedWrite):
    def __init__(self, owner: LocalSide, path: str, tmp: str, entry: RemoteEntry,
                 expect: Expect) -> None:
        self.owner, self.path, self.tmp, self.entry, self.expect = owner, path, tmp, entry, expect

    def commit(self) -> RemoteEntry:
        try:
            self.owner.check_expect(self.path, self.expect)
            os.replace(self.tmp, self.owner.fspath(self.path))
        except OSError as exc:
            self.abort()
            raise map_oserror(exc, self.path) from exc
        except BaseException:
            self.abort()
            raise
        return self.entry

    def abort(self) -> None:
        _unlink_quietly(self.tmp)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
