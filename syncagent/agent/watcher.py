"""LocalWatcher: one root watched by watchdog, fed through the Coalescer,
delivered as batches of dirty paths. It decides nothing else.

The agent's `WatcherFactory`::

    w = LocalWatcher(root, on_change)   # on_change(paths: set[str], rescan: bool)
    w.start(); w.alive(); w.restart(); w.stop()
    w.suppress(path)      # before the engine writes `path` (= coalescer.expect_write)
    w.wrote(path)         # after its rename: events matching what it wrote stay quiet
    w.polling             # True after the fallback to polling
    w.coalescer           # the Coalescer, for tests and for `pending()`

What it adds to a bare observer: on_change gets debounced, coalesced batches
(one small thread waits for the coalescer's deadline), never the agent's temp
files, its own writes, or transient names; a rescan batch when events were
lost (queue overflow, the root moved or deleted); an event filter that keeps
watchdog out of its overflow loop on big trees; and when inotify runs out of
watches or instances, at the root or below it, one warning naming
fs.inotify.max_user_watches and a PollingObserver instead of silence.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncagent.agent.coalesce import Coalescer, stat_fingerprint
from syncagent.agent.inotify_health import OverflowMonitor, coverage_gaps, event_filter, exhaustion_hint
from syncagent.log import get_logger
from syncagent.paths import nfc

OnChange = Callable[[set[str], bool], None]
EXHAUSTED = (errno.ENOSPC, errno.EMFILE, errno.ENFILE)


class LocalWatcher:
    def __init__(self, root: Path, on_change: OnChange, *, coalescer: Coalescer | None = None,
                 poll_interval: float = 2.0, recheck_every: float = 3600.0) -> None:
        self.root, self.root_s = root, str(root)
        self.on_change = on_change
        self.coalescer = coalescer or Coalescer(fingerprint=lambda rel: stat_fingerprint(root / rel))
        self.poll_interval, self.recheck_every = poll_interval, recheck_every
        self.polling = False
        self.observer: Any = None
        self.monitor: OverflowMonitor | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None
        self.log = get_logger(watch=self.root_s)

    # ---- the engine's own writes -------------------------------------------------
    def suppress(self, path: str) -> None:
        self.coalescer.expect_write(path)

    def wrote(self, path: str) -> None:
        self.coalescer.wrote(path)

    # ---- events (the observer thread) --------------------------------------------------
    def handle(self, kind: str, src: str, dest: str = "", is_dir: bool = False) -> None:
        """One watchdog event as plain values (tests call it without an observer)."""
        if src == self.root_s or dest == self.root_s:
            self.coalescer.rescan()     # the root itself moved or vanished
        else:
            rel_src = self._relative(src)
            rel_dest = self._relative(dest) if dest else ""
            if rel_src is None and not rel_dest:
                return
            if rel_src is None:         # moved in from outside the root: a creation here
                self.coalescer.add("modified", rel_dest or "", "", is_dir)
            else:
                self.coalescer.add(kind, rel_src, rel_dest or "", is_dir)
        self._wake.set()

    def _relative(self, path: str) -> str | None:
        if not path.startswith(self.root_s + "/"):
            return None
        return nfc(path[len(self.root_s) + 1:])

    def lost_events(self) -> None:
        """Events were lost (overflow): the next batch asks for everything."""
        self.log.warning("file events were lost (inotify queue overflow); looking at everything")
        self.coalescer.rescan()
        self._wake.set()

    # ---- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self._start_observer()
        self._flusher = threading.Thread(target=self._flush_loop, name=f"watch-{self.root.name}", daemon=True)
        self._flusher.start()

    def _start_observer(self) -> None:
        try:
            self._observe(polling=False)
        except OSError as exc:
            if exc.errno not in EXHAUSTED:
                raise
            self._fall_back(exhaustion_hint(1))
            return
        gaps = coverage_gaps(self.root)
        if gaps:
            self._fall_back(exhaustion_hint(len(gaps)), first=gaps[0])

    def _fall_back(self, hint: str, first: str | None = None) -> None:
        self.log.warning(hint, first_unwatched=first)
        self._stop_observer()
        self._observe(polling=True)
        self.coalescer.rescan()         # whatever happened before the switch is unknown

    def _observe(self, polling: bool) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                dest = getattr(event, "dest_path", "") or ""
                watcher.handle(event.event_type, _str(event.src_path), _str(dest), event.is_directory)

        if polling:
            from watchdog.observers.polling import PollingObserver

            observer: Any = PollingObserver(timeout=self.poll_interval)
        else:
            from watchdog.observers.inotify import InotifyObserver

            observer = InotifyObserver()
            self.monitor = OverflowMonitor(self.lost_events, self.root).install()
        try:
            observer.schedule(Handler(), self.root_s, recursive=True, event_filter=event_filter())
            observer.start()
        except BaseException:
            self._close_monitor()
            _discard(observer)
            raise
        self.observer, self.polling = observer, polling

    def _flush_loop(self) -> None:
        """Deliver each batch when the coalescer says it is due; now and then
        check that inotify still watches every folder."""
        clock = self.coalescer.clock
        next_check = clock() + self.recheck_every
        while not self._stopping.is_set():
            due = self.coalescer.deadline()
            wait = next_check if due is None else min(due, next_check)
            self._wake.wait(max(0.0, wait - clock()))
            self._wake.clear()
            if self._stopping.is_set():
                return
            if not self.polling and clock() >= next_check:
                next_check = clock() + self.recheck_every
                self._recheck()
            batch = self.coalescer.take()
            if batch is not None:
                self.on_change(set(batch.paths), batch.rescan)

    def _recheck(self) -> None:
        gaps = coverage_gaps(self.root)
        if gaps:
            self._fall_back(exhaustion_hint(len(gaps)), first=gaps[0])

    def alive(self) -> bool:
        """False when the observer thread died (a lost watch): restart and rescan."""
        return self.observer is None or bool(self.observer.is_alive())

    def restart(self) -> None:
        self.stop()
        self.start()
        self.coalescer.rescan()
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
            self._flusher = None
        self._stop_observer()

    def _stop_observer(self) -> None:
        self._close_monitor()
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None

    def _close_monitor(self) -> None:
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None


def _str(path: bytes | str) -> str:
    return path.decode(errors="surrogateescape") if isinstance(path, bytes) else path


def _discard(observer: Any) -> None:
    """Stop an observer whose start failed: an InotifyObserver runs its
    inotify reader thread from construction on, and it must not leak."""
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
    except RuntimeError:
        pass    # parts that never started cannot be joined
