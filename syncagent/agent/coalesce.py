"""Debounce and coalesce local file events into batches of dirty paths.

Pure: no threads, no timers, no I/O of its own (the clock and the stat used
for own-write fingerprints are injected), so every rule is tested without a
filesystem. The watcher thread feeds events; the agent's pair loop asks when
the next batch is due and takes it::

    c = Coalescer(fingerprint=lambda rel: stat_fingerprint(root / rel))
    c.add("moved", "doc.txt.swp", "doc.txt")      # from the observer thread
    c.rescan()                                     # overflow, lost watch...
    c.deadline()   -> float | None                 # monotonic time the batch is due
    c.take()       -> Batch | None                 # Batch(paths, rescan)
    c.expect_write("a.txt"); c.wrote("a.txt")      # around the engine's own writes

Rules (each has a test in tests/unit/test_coalesce.py):

* Per path, only the net effect counts: a burst of events on one file is one
  dirty path. Event kinds are watchdog's names (created, modified, closed,
  deleted, moved); moved_from/moved_to halves are accepted too. A move
  marks its source and destination dirty, whether or not the halves pair up:
  the engine sees the inode and rebuilds the move itself.
* A path created and gone again inside one batch (an editor's temp file
  renamed over its target, a lock file) is not reported: nothing to sync.
  Only `created` counts as "did not exist before" (inotify's IN_CREATE),
  never the destination of a move, which may have replaced a file.
* A path whose net effect is a deletion is held `delete_grace` seconds
  longer than the rest, so delete + recreate (safe save) ends as one update,
  never as a delete on the remote followed by an upload.
* The agent's temp files (`.syncagent-*.tmp`) are never reported.
* Own writes: `expect_write(path)` before the engine writes, `wrote(path)`
  after the rename (records size, mtime and inode). At `take()` a dirty path
  with a live expectation is dropped if the file still has that fingerprint;
  a different fingerprint means the user changed it since, and it is kept.
  Without `wrote()`, events inside the window are dropped (time only).
* The quiet window is `quiet` seconds after the last event, widened with the
  number of events in the batch up to `quiet_max` (one sync for a burst
  instead of many); `max_delay` bounds the wait under endless activity.

Thread-safety: one lock around the state; `add` costs a few microseconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from syncagent.paths import is_temp_name

Fingerprint = tuple[int, int, int]            # size, mtime_ns, inode
Clock = Callable[[], float]
FingerprintFn = Callable[[str], Fingerprint | None]

_IGNORED = frozenset({"opened", "closed_no_write"})
_GONE = frozenset({"deleted", "moved_from"})
_PRESENT = frozenset({"created", "modified", "closed", "moved_to"})


@dataclass(frozen=True, slots=True)
class Batch:
    """What the engine should look at: these paths, or everything if `rescan`."""

    paths: frozenset[str]
    rescan: bool = False


@dataclass(slots=True)
class _Path:
    born: bool        # first event in this batch was `created`: it did not exist before
    exists: bool      # net state after the last event
    last: float       # time of the last event


@dataclass(slots=True)
class _Expect:
    until: float
    fingerprint: Fingerprint | None = None


def stat_fingerprint(path: str | os.PathLike[str]) -> Fingerprint | None:
    """(size, mtime_ns, inode) of a file, None when it is gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


class Coalescer:
    def __init__(self, *, quiet: float = 0.05, quiet_max: float = 1.5, burst: int = 100,
                 max_delay: float = 5.0, delete_grace: float = 0.5, own_window: float = 2.0,
                 clock: Clock = time.monotonic, fingerprint: FingerprintFn | None = None) -> None:
        self.quiet, self.quiet_max, self.burst = quiet, quiet_max, burst
        self.max_delay, self.delete_grace, self.own_window = max_delay, delete_grace, own_window
        self.clock, self.fingerprint = clock, fingerprint
        self._lock = threading.Lock()
        self._paths: dict[str, _Path] = {}
        self._own: dict[str, _Expect] = {}
        self._events = 0            # events in the current batch: widens the quiet window
        self._first = 0.0           # time of the batch's first event: bounds the wait
        self._last = 0.0
        self._rescan = False

    # ---- input (the watcher thread) -------------------------------------------
    def add(self, kind: str, src: str, dest: str = "", is_dir: bool = False, now: float | None = None) -> None:
        """One event; paths relative to the root, NFC. Directory `modified`
        is noise (its children report themselves) and is dropped."""
        if kind in _IGNORED or (is_dir and kind == "modified"):
            return
        t = self.clock() if now is None else now
        with self._lock:
            self._count(t)
            if kind == "moved":
                self._touch(src, False, False, t)
                if dest:
                    self._touch(dest, True, False, t)
            elif kind in _GONE:
                self._touch(src, False, False, t)
            elif kind in _PRESENT:
                self._touch(src, True, kind == "created", t)

    def rescan(self, now: float | None = None) -> None:
        """Events may have been lost: the next batch asks for everything."""
        t = self.clock() if now is None else now
        with self._lock:
            self._count(t)
            self._rescan = True

    def _count(self, t: float) -> None:
        if not self._events:
            self._first = t
        self._events += 1
        self._last = t

    def _touch(self, path: str, exists: bool, created: bool, t: float) -> None:
        if is_temp_name(path[path.rfind("/") + 1:]):
            return
        rec = self._paths.get(path)
        if rec is None:
            self._paths[path] = _Path(created, exists, t)
        else:
            rec.exists, rec.last = exists, t

    # ---- own writes (the engine) ------------------------------------------------
    def expect_write(self, path: str) -> None:
        """The engine is about to write `path` in the local root."""
        self.suppress(path, self.clock() + self.own_window)

    def suppress(self, path: str, until: float | None = None) -> None:
        """Drop events for `path` up to `until` (monotonic), unless `wrote()`
        recorded a fingerprint the file no longer has."""
        deadline = self.clock() + self.own_window if until is None else until
        with self._lock:
            self._own[path] = _Expect(deadline)

    def wrote(self, path: str) -> None:
        """The engine's write of `path` is in place: remember what it wrote."""
        fp = self.fingerprint(path) if self.fingerprint else None
        with self._lock:
            self._own[path] = _Expect(self.clock() + self.own_window, fp)

    # ---- output (the pair loop) ---------------------------------------------------
    def pending(self) -> int:
        with self._lock:
            return len(self._paths)

    def quiet_window(self) -> float:
        """Seconds of silence before a batch is due: grows with the burst."""
        return min(self.quiet_max, self.quiet * (1 + self._events / self.burst))

    def deadline(self) -> float | None:
        """When `take()` will next return a batch (monotonic), None if idle."""
        with self._lock:
            if not self._events:
                return None
            due = min(self._last + self.quiet_window(), self._first + self.max_delay)
            if not self._rescan and self._paths and all(not r.exists for r in self._paths.values()):
                # only deletions pending: the earliest moment one of them may go
                due = max(due, min(r.last for r in self._paths.values()) + self.delete_grace)
            return due

    def take(self, now: float | None = None) -> Batch | None:
        """The batch, if the quiet window has passed; None otherwise (or if
        every event turned out to be noise, own writes or transient names)."""
        t = self.clock() if now is None else now
        with self._lock:
            if not self._events:
                return None
            overdue = t >= self._first + self.max_delay
            if t < self._last + self.quiet_window() and not overdue:
                return None
            ready = self._split(t, overdue)
            rescan, self._rescan = self._rescan, False
            paths = self._filter_own(ready, t)
        if not paths and not rescan:
            return None
        return Batch(frozenset(paths), rescan)

    def _split(self, t: float, overdue: bool) -> dict[str, _Path]:
        """Take the due paths out; deletions still in their grace stay behind."""
        ready: dict[str, _Path] = {}
        held: dict[str, _Path] = {}
        for path, rec in self._paths.items():
            young_delete = not rec.exists and t < rec.last + self.delete_grace
            (held if young_delete and not overdue and not self._rescan else ready)[path] = rec
        self._paths = held
        self._events = len(held)
        if held:
            self._first = min(r.last for r in held.values())
            self._last = max(r.last for r in held.values())
        return {p: r for p, r in ready.items() if r.exists or not r.born}

    def _filter_own(self, ready: dict[str, _Path], t: float) -> set[str]:
        self._own = {p: e for p, e in self._own.items() if e.until > t}
        paths = set()
        for path in ready:
            exp = self._own.get(path)
            if exp is not None and self._is_own(path, exp):
                continue
            if exp is not None:
                del self._own[path]   # the user changed it after us: stop hiding it
            paths.add(path)
        return paths

    def _is_own(self, path: str, exp: _Expect) -> bool:
        if exp.fingerprint is None:
            return True     # the write is still under way (or its end was not reported)
        current = self.fingerprint(path) if self.fingerprint else None
        return current == exp.fingerprint
