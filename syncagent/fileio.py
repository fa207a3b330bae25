"""Low-level file helpers shared by the local provider and the executor."""

from __future__ import annotations

import errno
import os

from syncagent import errors

TYPE_CHECKING = False
if TYPE_CHECKING:   # (not at run time: every sync imports this module)
    import hashlib
    from typing import IO, Any

CHUNK = 1 << 20
_SMALL = 1 << 20


def copy_into(src: IO[bytes], fd: int, size: int, digest: hashlib._Hash | None = None) -> int:
    """Copy `src` into the open descriptor `fd`; return the byte count.

    Small files go through one read/write (cheapest per file); large real
    files use copy_file_range so the bytes never enter Python.
    """
    if digest is None and size >= _SMALL and _has_fileno(src):
        return _copy_kernel(src.fileno(), fd)
    total = 0
    if size < _SMALL:
        # One read of exactly the expected size (+1 to notice growth) instead
        # of a 1 MiB buffer for every small file.
        first = src.read(size + 1)
        if digest is not None:
            digest.update(first)
        total = len(first)
        written = os.write(fd, first)   # one write is the rule for a regular file
        if written != total:
            _write_all(fd, first[written:])
        if total <= size:
            return total
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return total
        if digest is not None:
            digest.update(chunk)
        _write_all(fd, chunk)
        total += len(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _has_fileno(stream: IO[bytes]) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _copy_kernel(src_fd: int, dst_fd: int) -> int:
    total = 0
    while True:
        try:
            n = os.copy_file_range(src_fd, dst_fd, 1 << 30)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.sendfile(dst_fd, src_fd, None, 1 << 30)
        if n == 0:
            return total
        total += n


def copy_range(src_fd: int, dst_fd: int, limit: int) -> int:
    """Copy up to `limit` bytes from the current offset of `src_fd` into `dst_fd`
    in the kernel (copy_file_range; read and write where the two file systems
    cannot); returns the count (short only at the end of the source)."""
    total = 0
    kernel = hasattr(os, "copy_file_range")   # Linux
    while total < limit:
        if kernel:
            try:
                n = os.copy_file_range(src_fd, dst_fd, limit - total)
            except OSError as exc:
                if total or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                              errno.EPERM):
                    raise
                kernel = False   # nothing was copied: the offsets are where they were
                continue
        else:
            chunk = os.read(src_fd, min(CHUNK, limit - total))
            _write_all(dst_fd, chunk)
            n = len(chunk)
        if n == 0:
            return total
        total += n
    return total


def file_hash(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (hardware-accelerated where the CPU has SHA-NI)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_syncfs_found: list[Any] | None = None     # [the syncfs function, or None], once looked up


def fdatasync_path(path: str) -> None:
    """Write one file's data (and its size) to the disk; never follows a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush the whole filesystem holding `path`: one call makes a batch of
    staged files durable, where an fsync per file costs milliseconds each."""
    fn = _syncfs_fn()
    fd = os.open(path, os.O_RDONLY)
    try:
        if fn is None or fn(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _syncfs_fn() -> Any:
    """syncfs(fd) -> 0 or not: the staging module's where it is loaded
    (engine/localcopy.native: built, of this version, SYNCAGENT_NATIVE not 0),
    else the C library's through ctypes; None where neither has it."""
    global _syncfs_found
    if _syncfs_found is None:
        from syncagent.engine import localcopy

        module = localcopy.native()
        fn = getattr(module, "syncfs", None)
        if fn is None:
            import ctypes

            # the C library is already in the process (find_library would run /sbin/ldconfig -p)
            fn = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        _syncfs_found = [fn]
    return _syncfs_found[0]


def map_oserror(exc: OSError, path: str | None = None) -> errors.ProviderError:
    """One place where errno becomes the project's error classes."""
    code = exc.errno
    msg = exc.strerror or str(exc)
    table: dict[int, type[errors.ProviderError]] = {
        errno.ENOENT: errors.NotFound,
        errno.ENOTDIR: errors.NotFound,
        errno.EEXIST: errors.AlreadyExists,
        errno.ENOTEMPTY: errors.AlreadyExists,
        errno.ENOSPC: errors.QuotaExceeded,
        errno.EDQUOT: errors.QuotaExceeded,
        errno.ENAMETOOLONG: errors.InvalidName,
        errno.EILSEQ: errors.InvalidName,
        errno.EIO: errors.TransientError,
        errno.EAGAIN: errors.TransientError,
        errno.EINTR: errors.TransientError,
    }
    cls = table.get(code or 0, errors.PermanentError)
    return cls(msg, path=path)
