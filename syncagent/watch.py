"""The local watcher: a watchdog observer turned into dirty paths.

It decides nothing else: relative NFC paths go to a callback, with a
`rescan` flag when events may have been lost (a lost watch, the root itself
moved or deleted, a dead observer thread). The agent's temp files and its
own recent writes are dropped. When inotify runs out of watches it says so,
naming the setting, and falls back to polling instead of missing changes.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncagent.log import get_logger
from syncagent.paths import is_temp_name, nfc

SUPPRESS_FOR = 2.0      # seconds an own write keeps its events quiet
POLL_INTERVAL = 2.0     # the fallback observer's period


class WatchdogWatcher:
    def __init__(self, root: Path, on_change: Callable[[set[str], bool], None]) -> None:
        self.root = root
        self.root_s = str(root)
        self.on_change = on_change
        self.own: dict[str, float] = {}
        self.observer: Any = None
        self.polling = False
        self.log = get_logger(watch=str(root))

    def suppress(self, path: str) -> None:
        """The engine is about to write `path`: its events are ours, not the user's."""
        self.own[path] = time.monotonic() + SUPPRESS_FOR

    def relative(self, abspath: str) -> str | None:
        if not abspath.startswith(self.root_s + "/"):
            return None
        rel = nfc(abspath[len(self.root_s) + 1:])
        if is_temp_name(rel.rsplit("/", 1)[-1]):
            return None
        until = self.own.get(rel)
        if until is not None:
            if time.monotonic() < until:
                return None
            del self.own[rel]
        return rel

    def handle(self, kind: str, src: str, dest: str, is_dir: bool) -> None:
        """One watchdog event, as plain values (tested without an observer)."""
        if kind in ("opened", "closed_no_write") or (is_dir and kind == "modified"):
            return
        if src == self.root_s or dest == self.root_s:
            self.on_change(set(), True)  # the root itself moved or vanished: look at everything
            return
        paths = {p for p in (self.relative(src), self.relative(dest) if dest else None) if p is not None}
        if paths:
            self.on_change(paths, False)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start(polling=False)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE, errno.ENFILE):
                raise
            self.log.warning("inotify has no watches left; watching by polling instead. Raise "
                             "fs.inotify.max_user_watches (sysctl) to watch without polling",
                             error=exc.strerror)
            self._start(polling=True)

    def _start(self, polling: bool) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher.handle(event.event_type, str(event.src_path), str(getattr(event, "dest_path", "") or ""),
                               event.is_directory)

        if polling:
            from watchdog.observers.polling import PollingObserver

            observer: Any = PollingObserver(timeout=POLL_INTERVAL)
        else:
            from watchdog.observers import Observer

            observer = Observer()
        observer.schedule(Handler(), self.root_s, recursive=True)
        observer.start()
        self.observer, self.polling = observer, polling

    def alive(self) -> bool:
        """False when the observer thread died (a lost watch): restart and rescan."""
        return self.observer is None or bool(self.observer.is_alive())

    def restart(self) -> None:
        self.stop()
        self.start()
        self.on_change(set(), True)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
