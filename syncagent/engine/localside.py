"""The engine's hands on a local folder: staged, checked, atomic writes,
renames and deletes, and the scan that lists it.

The engine uses it for the user's folder; the `local` provider
(syncagent/providers/local.py) is the same class behind the Provider
interface, so a plain folder as the remote gets the same guarantees.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_module
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from syncagent import errors, hashing
from syncagent.engine import safedirs
from syncagent.engine.records import DIR, Entry
from syncagent.engine.scan import Scan, scan_tree, stat_entry, walk_listing
from syncagent.fileio import copy_into, fdatasync_path, map_oserror, syncfs
from syncagent.paths import nfc, temp_name
from syncagent.providers.base import (
    ANY,
    CopyBatch,
    Expect,
    Kind,
    LocalSource,
    Quota,
    RemoteEntry,
    StagedWrite,
)

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from typing import IO, Protocol

    class OwnWrites(Protocol):
        """The watcher's side of the engine's own local writes: `suppress(path)`
        just before one, `wrote(path)` once it is in place (or gone), so the
        events it causes are not taken for the user's changes."""

        def suppress(self, path: str) -> None: ...

        def wrote(self, path: str) -> None: ...


FSYNC_EACH_UP_TO = 16   # staged files a flush syncs one by one; a bigger batch takes one syncfs
_TOKENS = 512           # temp-name tokens drawn from os.urandom at a time (one system call, not one a file)


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
        self.aliases: dict[str, str] = {}     # NFC path -> on-disk spelling this side wrote
        self._root_handle: int | None = None
        self._root_lock = threading.Lock()
        self._dirs = safedirs.DirCache(self._root_s)
        # staged temps the next flush() makes durable: (on-disk folder, temp name)
        self._unflushed: set[tuple[str, str]] = set()
        self._tokens: list[str] = []

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

    def disk_rel(self, path: str) -> str:
        """The on-disk relative spelling of a path: an NFC path maps to the
        name the scan found (or this side wrote); a caller may also give the
        last name in another byte form (a new file keeps its source's form),
        which is then remembered for the NFC path."""
        if path.isascii():
            return path
        alias = self.aliases.get(path)
        if alias is not None:
            return alias
        scan = self.last_scan
        exact = scan.disk.get(path) if scan is not None else None
        if exact is not None:
            return exact
        head, _, name = path.rpartition("/")
        disk_head = self.disk_rel(head) if head else ""
        found = f"{disk_head}/{name}" if disk_head else name
        composed = nfc(path)
        if composed != path:
            self.aliases[composed] = found
        return found

    def temp_for(self, name: str) -> str:
        return temp_name(name, self.temp_tag + self._token())

    def _token(self) -> str:
        """12 random hex digits; drawn from a pool (list.pop is atomic under
        the GIL: staging runs in a thread pool)."""
        try:
            return self._tokens.pop()
        except IndexError:
            raw = os.urandom(6 * _TOKENS).hex()
            self._tokens = [raw[i:i + 12] for i in range(12, len(raw), 12)]
            return raw[:12]

    def parent(self, path: str, *, create: bool = False) -> safedirs.parent_in:
        """(descriptor of the folder holding `path`, its on-disk name): no link followed on the way."""
        return safedirs.parent_in(self._dirs, self._root_fd(), self.disk_rel(path), create=create)

    def _root_fd(self) -> int:
        """The root's descriptor, opened once per run (root_exists() starts a
        run: a root recreated or remounted since is opened anew)."""
        handle = self._root_handle
        if handle is not None:
            return handle
        with self._root_lock:
            if self._root_handle is None:
                try:
                    self._root_handle = os.open(self._root_s, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError as exc:
                    raise map_oserror(exc, self._root_s) from exc
            return self._root_handle

    def _forget_root(self) -> None:
        with self._root_lock:
            self._dirs.close()
            if self._root_handle is not None:
                os.close(self._root_handle)
                self._root_handle = None

    def close(self) -> None:
        """Release the root's descriptor."""
        self._forget_root()

    def lstat_entry(self, path: str) -> Entry | None:
        """A fresh Entry for `path`, None if absent, a link, special, or behind a link."""
        try:
            with self.parent(path) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError, safedirs.LinkInTheWay):
            return None
        return entry_of(st)

    # ---- listing -----------------------------------------------------------
    def root_exists(self) -> bool:
        self._forget_root()
        return self.root.is_dir()

    def ensure_root(self) -> None:
        self._forget_root()
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
        """Streamed in ascending code-point order of the NFC path (scan.walk):
        one folder at a time is held, never the tree."""
        return self._listing(path, raw=False)

    def _listing(self, path: str, raw: bool) -> Iterator[RemoteEntry]:
        """list(); `raw`: runs of plain files come as the native reader's
        RawRun items, which only the native merge reads (scan.walk_listing)."""
        if not self.root.is_dir():
            raise errors.NotFound("the folder does not exist", path=str(self.root))
        scan = Scan(self.root)
        if not path:
            self.last_scan = scan
        disk = scan.disk
        FILE_, DIR_ = Kind.FILE, Kind.DIR
        for rel, item in walk_listing(self.root, start=path, into=scan, raw=raw):
            if item.__class__ is not Entry:   # built by the native reader (ASCII names: no spelling)
                yield item  # type: ignore[misc]  # (a RemoteEntry: the native reader makes the remote kind)
                continue
            kind, size, mtime_ns, ino = item
            # to_remote() inlined: this loop makes the remote half of a no-op run over a big tree
            entry = RemoteEntry(rel, DIR_, id=str(ino)) if kind == DIR else \
                RemoteEntry(rel, FILE_, size, mtime_ns, f"{mtime_ns}-{size}-{ino}", None, str(ino))
            if disk:
                spelled = disk.get(rel)
                if spelled is not None and spelled.rpartition("/")[2] != rel.rpartition("/")[2]:
                    import dataclasses  # (with inspect, ~14 ms: only for a name spelled otherwise)

                    entry = dataclasses.replace(entry, spelling=spelled.rpartition("/")[2])
            yield entry

    def stat(self, path: str) -> RemoteEntry:
        e = self.lstat_entry(path) if path else stat_entry(self._root_s)
        if e is None:
            raise errors.NotFound("no such file or folder", path=path)
        return to_remote(path, e)

    def content_hash(self, path: str) -> str | None:
        return self.hash_of(path, "sha256")

    def hash_of(self, path: str, kind: str) -> str:
        """The file's content hash of `kind` (syncagent.hashing), read without following links."""
        with self.read(path) as f:
            st = os.fstat(f.fileno())
            digest = hashing.new_hasher(kind, size=st.st_size, mtime_ns=st.st_mtime_ns)
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    # ---- content -----------------------------------------------------------
    def open_scanned(self, path: str) -> IO[bytes]:
        """The file a scan saw, for sending: opened by its path (one system
        call), no final link followed. The caller must compare the open
        descriptor's identity (size, mtime, inode) with the scan's entry: the
        scan never follows a link, so a folder swapped for a link since then
        leads to another file, which that check refuses."""
        try:
            fd = os.open(self.fspath(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        return os.fdopen(fd, "rb")

    def read_whole(self, path: str, size: int) -> tuple[bytes, os.stat_result]:
        """A small file the scan saw, read whole, and the status of the open
        descriptor after the read (opened as open_scanned: the caller compares
        its identity with the scan's entry). Reads up to `size` + 1 bytes: a
        file that grew shows in the length."""
        try:
            fd = os.open(self.fspath(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        try:
            data = os.read(fd, size + 1)
            while 0 < len(data) < size:      # a short read (not the rule for a regular file)
                more = os.read(fd, size + 1 - len(data))
                if not more:
                    break
                data += more
            return data, os.fstat(fd)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        finally:
            os.close(fd)

    def read(self, path: str) -> IO[bytes]:
        """The file's bytes; neither it nor a folder on the way may be a link."""
        try:
            with self.parent(path) as (dfd, name):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        return os.fdopen(fd, "rb")

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        staged = self.stage_write(path, stream, size, mtime_ns, expect=expect)
        return staged.commit()

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY) -> StagedWrite:
        """Write the bytes under a temp name beside `path` (not yet visible).
        It runs for every file of a transfer: parent() is inlined."""
        head, _, name = self.disk_rel(path).rpartition("/")
        try:
            dfd, owned = self._dirs.borrow(self._root_fd(), head, False) if head else (self._root_fd(), False)
            try:
                tmp = self.temp_for(name)
                fd = os.open(tmp, _CREATE, 0o644, dir_fd=dfd)
                try:
                    st = self._fill(fd, stream, size, mtime_ns, path)
                except BaseException:
                    _unlink_quietly(tmp, dfd)
                    raise
            finally:
                if owned:
                    os.close(dfd)
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        ino = st.st_ino
        entry = RemoteEntry(path, Kind.FILE, st.st_size, st.st_mtime_ns, f"{st.st_mtime_ns}-{st.st_size}-{ino}",
                            None, str(ino))
        staged = (head, tmp)
        self._unflushed.add(staged)   # set.add: atomic under the GIL, staging runs in a thread pool
        return LocalStaged(self, path, tmp, entry, expect, staged)

    def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception]:
        """Stage files of this machine by their paths: the kernel copies, a
        batch on a few threads where the native module is built (engine/localcopy.py)."""
        from syncagent.engine import localcopy

        return localcopy.stage_copies(self, sources)

    def prepare_copies(self, sources: Sequence[LocalSource]) -> CopyBatch:
        """stage_copies in three steps: only the kernel's copying on the staging
        thread where the native module is built (engine/localcopy.py)."""
        from syncagent.engine import localcopy

        return localcopy.prepare_copies(self, sources)

    @staticmethod
    def _fill(fd: int, stream: IO[bytes], size: int, mtime_ns: int, path: str) -> os.stat_result:
        try:
            written = copy_into(stream, fd, size)
            if mtime_ns:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if written != size:
            raise errors.TransientError(f"short transfer: expected {size} bytes, got {written}", path=path)
        return st

    def commit_staged(self, writes: Sequence[StagedWrite]) -> Sequence[RemoteEntry | Exception]:
        """Rename a batch of staged temps onto their names: in one native call
        on a few threads where the module is built (engine/localcopy.py)."""
        from syncagent.engine import localcopy

        return localcopy.commit_staged(self, writes)

    def _track(self, path: str, tmp: str) -> tuple[str, str]:
        """Note a staged temp beside `path` for the next flush()."""
        staged = (self.disk_rel(path).rpartition("/")[0], tmp)
        self._unflushed.add(staged)
        return staged

    def _untrack(self, staged: tuple[str, str]) -> None:
        """A staged temp renamed or removed before a flush (a write committed at once) needs none."""
        self._unflushed.discard(staged)

    def flush(self) -> None:
        """Make the files staged since the last flush durable: a few one by
        one (fdatasync: only their own data is written out), a batch with one
        syncfs (an fsync per file costs a journal commit each; syncfs also
        writes out whatever else is dirty on the filesystem, which for one
        file of the agent's partial run would cost more than the file)."""
        self.flush_these(set(self._unflushed))   # a copy: the next batch's staging thread may add to it meanwhile

    def flush_these(self, staged: set[tuple[str, str]]) -> None:
        """Make these staged temps durable now (they are no longer pending)."""
        self._flush(staged)
        self._unflushed.difference_update(staged)

    def _flush(self, staged: set[tuple[str, str]]) -> None:
        if len(staged) <= FSYNC_EACH_UP_TO:
            try:
                for head, tmp in staged:
                    fdatasync_path(f"{self._root_s}/{head}/{tmp}" if head else f"{self._root_s}/{tmp}")
                return
            except OSError:
                pass   # a temp moved or gone: the whole filesystem, as for a batch
        syncfs(self.root)

    def check_expect(self, path: str, expect: Expect) -> None:
        """Raise Conflict if `path` no longer is what the caller last saw."""
        if expect is ANY:
            return
        self._check_current(path, self.lstat_entry(path), expect)

    def check_expect_at(self, fd: int, name: str, path: str, expect: Expect) -> None:
        """check_expect for a name in an already opened folder."""
        if expect is ANY:
            return
        if expect is None and not os.access(name, os.F_OK, dir_fd=fd, follow_symlinks=False):
            return      # the common case, a new file's name still free: no exception raised and caught per file
        try:
            current = entry_of(os.stat(name, dir_fd=fd, follow_symlinks=False))
        except FileNotFoundError:
            current = None
        self._check_current(path, current, expect)

    @staticmethod
    def _check_current(path: str, current: Entry | None, expect: Expect) -> None:
        if expect is None:
            if current is not None:
                raise errors.Conflict("appeared since it was listed", path=path)
            return
        if current is None or current.kind == DIR or entry_rev(current) != expect:
            raise errors.Conflict("changed since it was listed", path=path)

    def mkdir(self, path: str) -> RemoteEntry:
        try:
            fd = safedirs.open_dir(self._root_fd(), self.disk_rel(path), create=True)
            os.close(fd)
        except safedirs.LinkInTheWay:
            raise
        except FileExistsError as exc:
            raise errors.AlreadyExists("a file has that name", path=path) from exc
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        return self.stat(path)

    def move(self, src: str, dst: str) -> RemoteEntry:
        try:
            with self.parent(src) as (sfd, sname), self.parent(dst, create=True) as (dfd, dname):
                if _exists(dname, dfd):
                    raise errors.AlreadyExists("destination exists", path=dst)
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
        except OSError as exc:
            raise map_oserror(exc, src) from exc
        return self.stat(dst)

    def rename_aside(self, path: str, new: str) -> None:
        """Give a file (or folder) a new free name in its folder; fails rather
        than replace an existing name."""
        try:
            with self.parent(path) as (fd, name):
                new_name = new.rpartition("/")[2]
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat_module.S_ISDIR(st.st_mode):
                    if _exists(new_name, fd):
                        raise errors.AlreadyExists("destination exists", path=new)
                    os.rename(name, new_name, src_dir_fd=fd, dst_dir_fd=fd)
                else:
                    os.link(name, new_name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                    os.unlink(name, dir_fd=fd)
        except OSError as exc:
            raise map_oserror(exc, path) from exc

    def move_out(self, path: str, target: Path) -> None:
        """Move `path` out of the root to `target` (the trash in the state dir)."""
        with self.parent(path) as (fd, name):
            try:
                os.rename(name, target, src_dir_fd=fd)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # another file system: copy through the descriptors, then remove
                self._copy_out(fd, name, target)
                self._remove(fd, name, recursive=True)

    def _copy_out(self, fd: int, name: str, target: Path) -> None:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat_module.S_ISDIR(st.st_mode):
            target.mkdir(parents=True, exist_ok=True)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            try:
                for child in os.listdir(sub):
                    self._copy_out(sub, child, target / child)
            finally:
                os.close(sub)
        elif stat_module.S_ISREG(st.st_mode):
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            import shutil  # (here and below, not at the top: shutil brings bz2 and lzma, which a no-op never needs)

            with os.fdopen(src, "rb") as f, open(target, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    def copy(self, src: str, dst: str) -> RemoteEntry:
        if self.lstat_entry(dst) is not None:
            raise errors.AlreadyExists("destination exists", path=dst)
        found = self.lstat_entry(src)
        if found is None:
            raise errors.NotFound("no such file or folder", path=src)
        if found.kind == DIR:
            self.mkdir(dst)
            entries = self.scan(src).entries
            for child in sorted(entries):
                target = dst + child[len(src):]
                if entries[child].kind == DIR:
                    self.mkdir(target)
                else:
                    self._copy_file(child, target)
            return self.stat(dst)
        return self._copy_file(src, dst)

    def _copy_file(self, src: str, dst: str) -> RemoteEntry:
        with self.read(src) as f:
            st = os.fstat(f.fileno())
            with self.parent(dst, create=True):
                pass
            return self.write(dst, f, st.st_size, st.st_mtime_ns, expect=None)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        try:
            with self.parent(path) as (fd, name):
                self._remove(fd, name, recursive=recursive)
        except OSError as exc:
            raise map_oserror(exc, path) from exc

    @staticmethod
    def _remove(fd: int, name: str, *, recursive: bool) -> None:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat_module.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=fd)
        elif recursive:
            import shutil

            shutil.rmtree(name, dir_fd=fd)
        else:
            os.rmdir(name, dir_fd=fd)

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        try:
            with self.parent(path) as (fd, name):
                os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)
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

        try:
            with self.parent(path) as (dfd, name):
                tmp = self.temp_for(name)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=dfd)
                try:
                    st = self._patch_into(fd, path, delta_stream, size, mtime_ns, content_hash, hash_kind)
                except BaseException:
                    _unlink_quietly(tmp, dfd)
                    raise
        except OSError as exc:
            raise map_oserror(exc, path) from exc
        entry = to_remote(path, Entry("file", st.st_size, st.st_mtime_ns, st.st_ino))
        return LocalStaged(self, path, tmp, entry, expect, self._track(path, tmp))

    def _patch_into(self, fd: int, path: str, delta_stream: IO[bytes], size: int, mtime_ns: int,
                    content_hash: str | None, hash_kind: str) -> os.stat_result:
        from syncagent import delta

        with self.read(path) as basis, os.fdopen(fd, "w+b") as out:
            delta.patch(basis, delta_stream, out)
            out.flush()
            if os.fstat(out.fileno()).st_size != size:
                raise errors.TransientError("the patched file has the wrong size", path=path)
            if content_hash is not None:
                out.seek(0)
                digest = hashing.new_hasher(hash_kind, size=size, mtime_ns=mtime_ns)
                while chunk := out.read(1 << 20):
                    digest.update(chunk)
                if digest.hexdigest() != content_hash:
                    raise errors.TransientError("the patched file has the wrong content", path=path)
            os.utime(out.fileno(), ns=(mtime_ns, mtime_ns))
            return os.fstat(out.fileno())

    def delta(self, path: str, signature: IO[bytes], out: IO[bytes]) -> None:
        from syncagent import delta

        with self.read(path) as new:
            delta.delta(signature, new, out)

    # ---- extras ------------------------------------------------------------
    def quota(self) -> Quota:
        import shutil

        usage = shutil.disk_usage(self.root)
        return Quota(used=usage.used, total=usage.total)

    def link(self, path: str) -> str:
        return self.abspath(path).resolve().as_uri()


class LocalStaged(StagedWrite):
    def __init__(self, owner: LocalSide, path: str, tmp: str, entry: RemoteEntry,
                 expect: Expect, staged: tuple[str, str]) -> None:
        self.owner, self.path, self.tmp, self.entry, self.expect = owner, path, tmp, entry, expect
        self.staged = staged    # (on-disk folder, temp name)

    def commit(self) -> RemoteEntry:
        owner = self.owner
        owner._unflushed.discard(self.staged)
        head = self.staged[0]
        name = owner.disk_rel(self.path).rpartition("/")[2]
        try:
            # the folder the temp was written in, checked again (safedirs.DirCache.borrow)
            fd, owned = owner._dirs.borrow(owner._root_fd(), head, False) if head else (owner._root_fd(), False)
            try:
                owner.check_expect_at(fd, name, self.path, self.expect)
                os.replace(self.tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            finally:
                if owned:
                    os.close(fd)
        except OSError as exc:
            self.abort()
            raise map_oserror(exc, self.path) from exc
        except BaseException:
            self.abort()
            raise
        return self.entry

    def abort(self) -> None:
        self.owner._untrack(self.staged)
        with contextlib.suppress(OSError), self.owner.parent(self.path) as (fd, _):
            _unlink_quietly(self.tmp, fd)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _unlink_quietly(name: str, dir_fd: int | None = None) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def entry_of(st: os.stat_result) -> Entry | None:
    if stat_module.S_ISDIR(st.st_mode):
        return Entry(DIR, 0, 0, st.st_ino)
    if stat_module.S_ISREG(st.st_mode):
        return Entry("file", st.st_size, st.st_mtime_ns, st.st_ino)
    return None
