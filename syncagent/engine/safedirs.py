"""Reach a path inside a root without following a link on the way.

Every write, rename and delete of the local side goes through a descriptor
of the parent folder, opened one component at a time from the root with
O_NOFOLLOW: a folder replaced by a symbolic link between the scan and the
write (by accident or by an attacker) fails with LinkInTheWay instead of
sending the bytes outside the root. The last component itself is then
used relative to that descriptor (O_EXCL creates, renames and unlinks do
not follow a final link either).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_module
import threading
from collections.abc import Iterator

from syncagent import errors

_S_ISDIR = stat_module.S_ISDIR
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkInTheWay(errors.PermanentError):
    """A folder on the way to a path is a link (or no folder at all)."""


def open_dir(root: int | str, rel_dir: str, *, create: bool = False) -> int:
    """A new descriptor of `root/rel_dir`, no link followed below `root` (the
    root itself is the user's choice and may be one; give its path, or a
    descriptor of it the caller keeps); folders created on the way when
    `create`. The caller closes the result."""
    fd = os.dup(root) if isinstance(root, int) else os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if not rel_dir:
        return fd
    try:
        for part in rel_dir.split("/"):
            fd = _step(fd, part, rel_dir, create)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _walk(root_fd: int, rel_dir: str, create: bool) -> int:
    """Like open_dir from a kept root descriptor, without duplicating it first."""
    part, _, rest = rel_dir.partition("/")
    fd = _open_child(root_fd, part, rel_dir, create)
    try:
        for part in rest.split("/") if rest else ():
            fd = _step(fd, part, rel_dir, create)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _step(fd: int, part: str, rel_dir: str, create: bool) -> int:
    """The child folder's descriptor; `fd` is closed once that succeeded (on
    an error it stays open, for the caller to close)."""
    nxt = _open_child(fd, part, rel_dir, create)
    os.close(fd)
    return nxt


def _open_child(fd: int, part: str, rel_dir: str, create: bool) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o777, dir_fd=fd)
        return _step_existing(fd, part, rel_dir)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkInTheWay("a folder on the way is a link or a file: nothing is written through it",
                               path=rel_dir) from exc
        raise


def _step_existing(fd: int, part: str, rel_dir: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkInTheWay("a folder on the way is a link or a file: nothing is written through it",
                               path=rel_dir) from exc
        raise


@contextlib.contextmanager
def parent_of(root: int | str, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """(descriptor of the folder holding `rel`, its last name). A kept root
    descriptor is lent, not duplicated, for paths directly in the root."""
    head, _, name = rel.rpartition("/")
    if isinstance(root, int):
        if not head:
            yield root, name
            return
        fd = _walk(root, head, create)
    else:
        fd = open_dir(root, head, create=create)
    try:
        yield fd, name
    finally:
        os.close(fd)


class DirCache:
    """Folders below a root opened once per run and lent out, each checked by
    one lstat of its path before it is used: a folder that is no longer the
    one opened (replaced by a link, moved, recreated) is walked again from
    the root, with the checks above. Stale descriptors are kept until close()
    (another thread may still hold one). At most LIMIT folders are kept;
    beyond that each use walks (the caller closes what `borrow` says it owns).
    """

    LIMIT = 256

    def __init__(self, root_path: str) -> None:
        self.root_path = root_path
        self._open: dict[str, tuple[int, int, int]] = {}     # rel_dir -> (fd, st_dev, st_ino)
        self._retired: list[int] = []
        self._lock = threading.Lock()

    def borrow(self, root_fd: int, rel_dir: str, create: bool) -> tuple[int, bool]:
        """(descriptor of rel_dir, whether the caller must close it)."""
        kept = self._open.get(rel_dir)     # dict.get is atomic under the GIL; writers hold the lock
        if kept is not None:
            try:
                st = os.lstat(f"{self.root_path}/{rel_dir}")
            except OSError:
                st = None
            if st is not None and st.st_ino == kept[2] and st.st_dev == kept[1] and _S_ISDIR(st.st_mode):
                return kept[0], False
        fd = _walk(root_fd, rel_dir, create)
        st = os.fstat(fd)
        with self._lock:
            old = self._open.get(rel_dir)
            if old is None and len(self._open) >= self.LIMIT:
                return fd, True
            if old is not None:
                self._retired.append(old[0])
            self._open[rel_dir] = (fd, st.st_dev, st.st_ino)
        return fd, False

    def close(self) -> None:
        with self._lock:
            fds = [fd for fd, _, _ in self._open.values()] + self._retired
            self._open, self._retired = {}, []
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


class parent_in:
    """parent_of through a DirCache: the folder's descriptor is lent. A plain
    class rather than a generator: it runs for every file of a transfer."""

    __slots__ = ("_fd", "_name", "_owned")

    def __init__(self, cache: DirCache, root_fd: int, rel: str, *, create: bool = False) -> None:
        head, _, self._name = rel.rpartition("/")
        if head:
            self._fd, self._owned = cache.borrow(root_fd, head, create)
        else:
            self._fd, self._owned = root_fd, False

    def __enter__(self) -> tuple[int, str]:
        return self._fd, self._name

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            os.close(self._fd)
