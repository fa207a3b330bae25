"""Is the inotify observer really seeing everything? Two blind spots of
watchdog 7 that would otherwise lose changes silently:

* Running out of watches below the root. watchdog raises ENOSPC only when
  the root itself cannot be watched; a subfolder that cannot be watched
  (at start or when created later) is skipped without a word, and changes
  in it are never reported. `coverage_gaps(root)` compares the folders under
  the root with the watches this process holds (read from
  /proc/self/fdinfo, so it needs no watchdog internals); a non-empty answer
  means: warn with `exhaustion_hint()` and fall back to polling.
* Queue overflow (IN_Q_OVERFLOW). watchdog rebuilds its watches and logs a
  warning through stdlib logging, but emits no event, so a consumer never
  learns that events were lost. `OverflowMonitor` listens to those log
  records and calls back, so the watcher can ask for a rescan.

And one self-inflicted blind spot, avoided by `event_filter()`: without a
filter watchdog asks inotify for IN_OPEN and IN_CLOSE_NOWRITE too, so
merely listing a watched folder queues events. On a tree of ~5,000 folders
its own rebuild walk after an overflow overflows the queue again: measured
here, an idle 5,611-folder tree kept one core busy (5.1 s of CPU in 5 s) in
an endless overflow loop. Scheduling with `event_filter=event_filter()`
keeps those two out of the mask (0 overflows, 0.12 s of CPU in 4 s).

API:
    event_filter() -> list[type[FileSystemEvent]]              # for Observer.schedule(event_filter=...)
    coverage_gaps(root, *, retry_after=0.2) -> list[str]   # relative folders without a watch
    watched_inodes(fdinfo_dir=...) -> set[(dev, ino)] | None  # None: not Linux / no /proc
    max_user_watches() -> int | None
    exhaustion_hint(unwatched) -> str                         # names fs.inotify.max_user_watches
    with OverflowMonitor(callback, root): ...                 # callback() on overflow below root
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

FDINFO = Path("/proc/self/fdinfo")
MAX_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
WATCHDOG_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")
# Messages of watchdog 7.x (inotify_c.py, inotify.py); a test pins them to the real code path.
OVERFLOW_MARKS = ("Inotify queue overflowed", "Unable to rebuild recursive inotify watches")


def event_filter() -> list[type[Any]]:
    """The watchdog events a sync watcher needs: no opened/closed-no-write
    events (see the module docstring for why that matters)."""
    from watchdog import events as ev

    return [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileClosedEvent, ev.FileDeletedEvent,
            ev.FileMovedEvent, ev.DirCreatedEvent, ev.DirDeletedEvent, ev.DirMovedEvent]


def watched_inodes(fdinfo_dir: Path = FDINFO) -> set[tuple[int, int]] | None:
    """(st_dev, st_ino) of everything this process holds an inotify watch on."""
    try:
        fds = os.listdir(fdinfo_dir)
    except OSError:
        return None
    found: set[tuple[int, int]] = set()
    for fd in fds:
        try:
            text = (fdinfo_dir / fd).read_text()
        except OSError:
            continue  # closed meanwhile, or not ours to read
        found.update(_parse_fdinfo(text))
    return found


def _parse_fdinfo(text: str) -> Iterator[tuple[int, int]]:
    """Lines like `inotify wd:3 ino:410185 sdev:fe00000 mask:7fe ...` (hex)."""
    for line in text.splitlines():
        if not line.startswith("inotify "):
            continue
        fields = dict(part.split(":", 1) for part in line.split()[1:] if ":" in part)
        try:
            ino, sdev = int(fields["ino"], 16), int(fields["sdev"], 16)
        except (KeyError, ValueError):
            continue
        # the kernel prints its internal dev_t (major << 20 | minor); stat uses the glibc encoding
        yield os.makedev(sdev >> 20, sdev & 0xFFFFF), ino


def _folders(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every readable folder under root (root first), symlinks not followed,
    as watchdog watches them. Unreadable folders cannot be watched by anyone
    and are not a sign of exhaustion, so they are left out."""
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else str(root)
        try:
            st = os.lstat(full)
            with os.scandir(full) as it:
                subdirs = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        yield rel, st
        stack.extend(f"{rel}/{name}" if rel else name for name in subdirs)


def _gaps(root: Path, watched: set[tuple[int, int]]) -> list[str]:
    return sorted(rel for rel, st in _folders(root) if (st.st_dev, st.st_ino) not in watched)


def coverage_gaps(root: Path, *, retry_after: float = 0.2,
                  fdinfo_dir: Path = FDINFO) -> list[str]:
    """Folders under `root` that no inotify watch of this process covers.

    A folder created a moment ago may not have its watch yet (the observer
    adds it when it reads the creation), so gaps are looked at twice,
    `retry_after` seconds apart, and only those seen both times count.
    Empty when /proc cannot tell (not Linux): nothing to report then.
    """
    watched = watched_inodes(fdinfo_dir)
    if watched is None:
        return []
    first = _gaps(root, watched)
    if not first or retry_after <= 0:
        return first
    time.sleep(retry_after)
    watched = watched_inodes(fdinfo_dir) or set()
    return sorted(set(first) & set(_gaps(root, watched)))


def max_user_watches(path: Path = MAX_WATCHES) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def exhaustion_hint(unwatched: int, limit: int | None = None) -> str:
    """The one warning a user needs: what happened, the setting, the fix."""
    limit = max_user_watches() if limit is None else limit
    now = f" (now {limit})" if limit is not None else ""
    return (f"inotify could not watch {unwatched} folder(s): the per-user watch limit "
            f"fs.inotify.max_user_watches{now} is used up. Watching by polling instead (slower to "
            "notice changes). To fix: sudo sysctl fs.inotify.max_user_watches=524288, and make it "
            "permanent in /etc/sysctl.d/90-syncagent.conf")


class OverflowMonitor(logging.Handler):
    """Calls `callback()` when watchdog reports lost inotify events.

    With a `root`, only watchdog's per-watch messages count, and only those
    naming `root` (each observer has its own inotify queue; the per-watch
    message follows the queue's own, which names no path). Without a root,
    every overflow counts. The callback may be called more than once for
    one overflow: make it idempotent (set a rescan flag).
    """

    def __init__(self, callback: Callable[[], None], root: Path | None = None) -> None:
        super().__init__(level=logging.WARNING)
        self.callback = callback
        self.root = os.fsencode(os.path.abspath(root)) if root is not None else None

    def install(self) -> OverflowMonitor:
        for name in WATCHDOG_LOGGERS:
            logger = logging.getLogger(name)
            logger.addHandler(self)
            if not logger.isEnabledFor(logging.WARNING):
                logger.setLevel(logging.WARNING)  # the records we listen to must be created at all
        return self

    def close(self) -> None:
        for name in WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self)
        super().close()

    def __enter__(self) -> OverflowMonitor:
        return self.install()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not record.msg.startswith(OVERFLOW_MARKS):
            return
        if self._concerns_us(record):
            self.callback()

    def _concerns_us(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        path = next((a for a in args if isinstance(a, bytes | str)), None)
        if self.root is None:
            return True
        if path is None:
            return False
        watched = os.fsencode(path)
        return watched == self.root or watched.startswith(self.root + b"/")
