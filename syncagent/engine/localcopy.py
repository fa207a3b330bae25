"""Staging uploads whose bytes are files on this machine into a folder on this
machine (LocalSide.stage_copies): the kernel copies them, no byte passes
through Python.

Each file goes as the engine's own small upload does (execute._upload_small)
and as LocalSide.stage_write stages: the target's folder is the DirCache's
descriptor, checked by one lstat at every use; the source is opened by its
path without following a final link; the temp is created exclusively beside
the target; the bytes are copied (copy_file_range, or read and write where
the two file systems cannot), up to one byte more than the scan saw; then
the source's descriptor must still be the scanned file (inode, size, mtime)
and the count its size, else Conflict and the temp is removed; the temp
gets the source's mtime and its status is taken for the rev. The temps are
made durable by the next flush(), before any commit renames them.

The native module (syncagent/native/_stage.c) runs a batch of these on a
few threads with the GIL released; `stage_one` is the Python twin, used
without the module (SYNCAGENT_NATIVE=0, no compiler) and for a file whose
folder the native check found replaced. While a big batch is copied, a
thread asks the file system to write out what is dirty (syncfs), so the
flush that must come before the renames finds little left to write.

The batch's commit (LocalSide.commit_staged) goes the same way: the native
module renames each temp whose name must be free (or may be overwritten)
onto it, the folder checked by one lstat first, the name's freedom and the
rename one step (renameat2 RENAME_NOREPLACE); a write that expects a given
version there, or whose folder was replaced, commits in Python
(LocalStaged.commit), and so does every write without the module.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType

from syncagent import errors
from syncagent.engine.localside import FSYNC_EACH_UP_TO, LocalSide, LocalStaged
from syncagent.fileio import copy_range, map_oserror, syncfs
from syncagent.providers.base import ANY, CopyBatch, Kind, LocalSource, RemoteEntry, StagedWrite, commit_one

NATIVE_VERSION = 3          # _stage.c's STAGE_VERSION: the calling convention spoken here
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
THREADS = max(1, min(4, _CORES))   # copy threads of a native batch (2 beat 1 on W1: 1.67 s against 1.81 s)
EARLY_FLUSH_EVERY = 0.05    # seconds between two syncfs while a big batch is copied

_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_loaded: list[ModuleType | None] = []


def native() -> ModuleType | None:
    """The built _stage module, or None (not built, another version, or SYNCAGENT_NATIVE=0)."""
    if not _loaded:
        module: ModuleType | None = None
        if os.environ.get("SYNCAGENT_NATIVE", "1") != "0":
            try:
                from syncagent.native import _stage  # type: ignore[attr-defined]
            except ImportError:
                pass
            else:
                module = _stage if getattr(_stage, "VERSION", None) == NATIVE_VERSION else None
        _loaded.append(module)
    return _loaded[0]


def stage_copies(side: LocalSide, sources: Sequence[LocalSource]) -> list[StagedWrite | Exception]:
    module = native()
    if module is None:
        return [_one(side, src) for src in sources]
    return _batch(side, module, sources)


def _one(side: LocalSide, src: LocalSource) -> StagedWrite | Exception:
    try:
        return stage_one(side, src)
    except errors.ProviderError as exc:
        return exc


def stage_one(side: LocalSide, src: LocalSource) -> StagedWrite:
    """The Python twin of one native job."""
    head, _, name = side.disk_rel(src.path).rpartition("/")
    try:
        fd_in = os.open(src.source, _READ)
    except OSError as exc:
        raise map_oserror(exc, src.path) from exc
    try:
        dfd, owned = side._dirs.borrow(side._root_fd(), head, False) if head else (side._root_fd(), False)
        try:
            tmp = side.temp_for(name)
            out = os.open(tmp, _CREATE, 0o644, dir_fd=dfd)
            try:
                st = _copy_checked(fd_in, out, src)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise
        finally:
            if owned:
                os.close(dfd)
    except OSError as exc:
        raise map_oserror(exc, src.path) from exc
    finally:
        os.close(fd_in)
    return _staged(side, src, head, tmp, st.st_size, st.st_mtime_ns, st.st_ino)


def _copy_checked(fd_in: int, out: int, src: LocalSource) -> os.stat_result:
    """Copy, then prove the bytes are the scanned file's (closes `out`)."""
    try:
        copied = copy_range(fd_in, out, src.size + 1)   # one more: a file that grew shows in the count
        st = os.fstat(fd_in)
        if copied != src.size or st.st_size != src.size or st.st_mtime_ns != src.mtime_ns or st.st_ino != src.ino:
            raise errors.Conflict("changed since the scan", path=src.path)
        if src.mtime_ns:
            os.utime(out, ns=(src.mtime_ns, src.mtime_ns))
        return os.fstat(out)
    finally:
        os.close(out)


def _staged(side: LocalSide, src: LocalSource, head: str, tmp: str, size: int, mtime_ns: int,
            ino: int, *, note: bool = True) -> StagedWrite:
    """The staged write of a temp just written (`note`: pending the next flush;
    a native batch notes its temps itself, once its copy is done)."""
    entry = RemoteEntry(src.path, Kind.FILE, size, mtime_ns, f"{mtime_ns}-{size}-{ino}", None, str(ino))
    staged = (head, tmp)
    if note:
        side._unflushed.add(staged)
    return LocalStaged(side, src.path, tmp, entry, src.expect, staged)


# (descriptor, its path to check by lstat or None for the root, st_dev, st_ino)
_Folder = tuple[int, bytes | None, int, int]


def _batch(side: LocalSide, module: ModuleType, sources: Sequence[LocalSource]) -> list[StagedWrite | Exception]:
    batch = NativeCopies(side, module, sources)
    batch.run()
    return batch.results()


def prepare_copies(side: LocalSide, sources: Sequence[LocalSource]) -> CopyBatch:
    """LocalSide.prepare_copies: split where the native module copies (and
    where no subclass stages its own way: its stage_copies is then called)."""
    module = native()
    if module is None or type(side).stage_copies is not LocalSide.stage_copies:
        return CopyBatch(side.stage_copies, sources)
    return NativeCopies(side, module, sources)


class NativeCopies(CopyBatch):
    """A native batch in three steps: the jobs made here (folders lent, temps
    named and noted for the next flush), run() copies with the GIL let go
    (nothing else: a staging thread), results() makes the staged writes."""

    def __init__(self, side: LocalSide, module: ModuleType, sources: Sequence[LocalSource]) -> None:
        super().__init__(side.stage_copies, sources)
        self.side, self.module = side, module
        self._early: dict[int, Exception] = {}
        self._jobs: list[tuple[str, bytes | None, int, int, int, str, int, int, int, bool]] = []
        self._placed: list[tuple[int, str, str]] = []
        self._done: list[tuple[int, int, int, int]] | None = None
        self._folders: _Folders | None = _Folders(side)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        side, folders = self.side, self._folders
        assert folders is not None
        for i, src in enumerate(self.sources):
            head, _, name = side.disk_rel(src.path).rpartition("/")
            try:
                folder = folders.lend(head)
            except OSError as exc:
                self._early[i] = map_oserror(exc, src.path)
                continue
            except errors.ProviderError as exc:
                self._early[i] = exc
                continue
            tmp = side.temp_for(name)
            self._jobs.append((src.source, folder[1], folder[0], folder[2], folder[3], tmp,   # (encoded by the module)
                               src.size, src.mtime_ns, src.ino, bool(src.mtime_ns)))
            self._placed.append((i, head, tmp))

    def close(self) -> None:
        """Give back the folders it was lent (once: run() does when its copy is done)."""
        if self._folders is not None:
            self._folders.close()
            self._folders = None

    def run(self) -> bool:
        try:
            with _early_flush(self.side, len(self._jobs) > FSYNC_EACH_UP_TO):
                done = self._done = self.module.stage_copies(self._jobs, THREADS)
        finally:
            self.close()
        # Noted once written, not before: a flush takes what is noted when it begins as
        # flushed, and the batch before this one may begin its flush while this one copies.
        ok = self.module.OK
        self.side._unflushed.update((head, tmp) for (_, head, tmp), (status, *_) in zip(self._placed, done, strict=True)
                                    if status == ok)
        return True

    def results(self) -> list[StagedWrite | Exception]:
        self.close()     # (run() gave the folders back; a batch never run, or failed, made none of its temps)
        side, module, sources = self.side, self.module, self.sources
        results: list[StagedWrite | Exception | None] = [None] * len(sources)
        for i, exc in self._early.items():
            results[i] = exc
        late: set[tuple[str, str]] = set()
        done = self._done
        if done is not None:
            ok = module.OK
            for (i, head, tmp), (status, a, b, c) in zip(self._placed, done, strict=True):
                src = sources[i]
                if status == ok:
                    results[i] = _staged(side, src, head, tmp, a, b, c, note=False)
                    continue
                if status == module.CHANGED:
                    results[i] = errors.Conflict("changed since the scan", path=src.path)
                elif status == module.STALE:   # the folder was replaced since it was opened: walk to it again
                    results[i] = again = _one(side, src)
                    if isinstance(again, LocalStaged):
                        late.add(again.staged)
                else:
                    results[i] = map_oserror(OSError(a, os.strerror(a)), src.path)
        if late:   # staged here, after the batch's flush may have begun: made durable here
            side.flush_these(late)
        return [r if r is not None else errors.PermanentError("not staged", path=s.path)
                for r, s in zip(results, sources, strict=True)]


def commit_staged(side: LocalSide, writes: Sequence[StagedWrite]) -> list[RemoteEntry | Exception]:
    results: list[RemoteEntry | Exception | None] = [None] * len(writes)
    module = native()
    if module is not None and len(writes) > 1:
        _commit_batch(side, module, writes, results)
    return [r if r is not None else commit_one(w) for r, w in zip(results, writes, strict=True)]


def _commit_batch(side: LocalSide, module: ModuleType, writes: Sequence[StagedWrite],
                  results: list[RemoteEntry | Exception | None]) -> None:
    """Fill `results` for the writes the native module renamed or refused;
    the rest (None) commit one by one."""
    jobs: list[tuple[bytes | None, int, int, int, str, str, bool]] = []
    placed: list[int] = []
    folders = _Folders(side)
    try:
        for i, w in enumerate(writes):
            if type(w) is not LocalStaged or w.owner is not side or not (w.expect is None or w.expect is ANY):
                continue
            try:
                folder = folders.lend(w.staged[0])
            except (OSError, errors.ProviderError):
                continue    # the per-file commit walks there and says why
            name = side.disk_rel(w.path).rpartition("/")[2]
            jobs.append((folder[1], folder[0], folder[2], folder[3], w.tmp, name, w.expect is None))
            placed.append(i)
        done = module.commit_renames(jobs, THREADS) if jobs else []
    finally:
        folders.close()
    unflushed = side._unflushed
    for i, status in zip(placed, done, strict=True):
        w = writes[i]
        assert type(w) is LocalStaged
        if status == module.OK:
            unflushed.discard(w.staged)
            results[i] = w.entry
        elif status == module.TAKEN:
            w.abort()
            results[i] = errors.Conflict("appeared since it was listed", path=w.path)
        elif status < 0:
            w.abort()
            results[i] = map_oserror(OSError(-status, os.strerror(-status)), w.path)
        # STALE: the folder was replaced since it was opened; LocalStaged.commit walks to it again


class _Folders:
    """The folders of one native call: each one's descriptor lent once by the
    DirCache, with what the native check compares at every use (the
    DirCache's own check: one lstat of its path); those the cache could not
    keep are closed with the call."""

    def __init__(self, side: LocalSide) -> None:
        self.side, self.root_fd = side, side._root_fd()
        self._lent: dict[str, _Folder] = {}
        self._owned: list[int] = []

    def lend(self, head: str) -> _Folder:
        folder = self._lent.get(head)
        if folder is None:
            folder = self._lent[head] = self._open(head)
        return folder

    def _open(self, head: str) -> _Folder:
        if not head:
            return self.root_fd, None, 0, 0
        fd, mine = self.side._dirs.borrow(self.root_fd, head, False)
        if mine:
            self._owned.append(fd)
        st = os.fstat(fd)
        return fd, os.fsencode(f"{self.side.fspath('')}/{head}"), st.st_dev, st.st_ino

    def close(self) -> None:
        for fd in self._owned:
            os.close(fd)


@contextlib.contextmanager
def _early_flush(side: LocalSide, wanted: bool) -> Iterator[None]:
    """While a big batch is copied, write out what is dirty now and then, so
    the flush before the renames (which stays: it is what makes the batch
    durable) has little left; the disk works while the cores copy."""
    if not wanted:
        yield
        return
    stop = threading.Event()

    def flush_now_and_then() -> None:
        while not stop.wait(EARLY_FLUSH_EVERY):
            with contextlib.suppress(OSError):
                syncfs(side.root)

    thread = threading.Thread(target=flush_now_and_then, name="early-flush", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
