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
from collections.abc import Iterator

from syncagent import errors

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkInTheWay(errors.PermanentError):
    """A folder on the way to a path is a link (or no folder at all)."""


def open_dir(root: str, rel_dir: str, *, create: bool = False) -> int:
    """A descriptor of `root/rel_dir`, no link followed below `root` (the
    root itself is the user's choice and may be one); folders created on
    the way when `create`."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if not rel_dir:
        return fd
    try:
        for part in rel_dir.split("/"):
            fd = _step(fd, part, rel_dir, create)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _step(fd: int, part: str, rel_dir: str, create: bool) -> int:
    try:
        nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o777, dir_fd=fd)
        nxt = _step_existing(fd, part, rel_dir)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkInTheWay("a folder on the way is a link or a file: nothing is written through it",
                               path=rel_dir) from exc
        raise
    os.close(fd)
    return nxt


def _step_existing(fd: int, part: str, rel_dir: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise LinkInTheWay("a folder on the way is a link or a file: nothing is written through it",
                               path=rel_dir) from exc
        raise


@contextlib.contextmanager
def parent_of(root: str, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
    """(descriptor of the folder holding `rel`, its last name)."""
    head, _, name = rel.rpartition("/")
    fd = open_dir(root, head, create=create)
    try:
        yield fd, name
    finally:
        os.close(fd)
