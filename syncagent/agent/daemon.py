"""The daemon: one engine per pair, woken by the local watcher, the remote
poller and a periodic full true-up; signals, backoff and status around it.

Every pair runs in its own thread and calls the same `Engine.sync()` as the
one-shot command: the agent decides *when* to sync, never *what*.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syncagent import errors
from syncagent.engine.feed import RemoteChanges
from syncagent.engine.plan import Mode
from syncagent.engine.report import Reporter, Summary
from syncagent.log import get_logger
from syncagent.retry import backoff_delay

QUIET_MIN = 0.03      # the quiet window after a lone change (seconds)
QUIET_MAX = 1.0       # widened up to this under bursts
BURST_PATHS = 200     # pending paths that count as a burst
FULL_RESCAN = 3600.0  # watchers are not trusted alone


@dataclass
class PairSpec:
    name: str
    local: Path
    remote: str
    mode: Mode = Mode.TWO_WAY
    poll_interval: float = 30.0
    full_rescan_interval: float = FULL_RESCAN
    excludes: list[str] = field(default_factory=list)
    max_delete: float = 50.0
    delta: str = "auto"


class StatusSink(Protocol):
    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   error: str | None = None, pending: int = 0) -> None: ...


class NullStatus:
    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   error: str | None = None, pending: int = 0) -> None:
        """No status file: nothing to record."""


class Watcher(Protocol):
    def start(self) -> None: ...
    def restart(self) -> None: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...
    def suppress(self, path: str) -> None: ...
    def wrote(self, path: str) -> None: ...


WatcherFactory = Callable[[Path, Callable[[set[str], bool], None]], Watcher]


class PairRunner:
    """Syncs one pair whenever something may have changed."""

    def __init__(self, spec: PairSpec, state_dir: Path, stop: threading.Event, status: StatusSink,
                 watcher_factory: WatcherFactory | None, config_path: str | None = None) -> None:
        self.spec, self.state_dir, self.stop, self.status = spec, state_dir, stop, status
        self.config_path = config_path
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.dirty: set[str] = set()
        self.rescan = True
        self.last_event = 0.0
        self.failures = 0
        self.cursor: str | None = None
        self.ready = threading.Event()
        self.log = get_logger(pair=spec.name)
        self.watcher = watcher_factory(spec.local, self.on_local_change) if watcher_factory else None
        self.thread = threading.Thread(target=self.run, name=f"pair-{spec.name}", daemon=True)

    # ---- wake-ups ---------------------------------------------------------------
    def on_local_change(self, paths: set[str], rescan: bool) -> None:
        with self.lock:
            self.dirty |= paths
            self.rescan = self.rescan or rescan
            self.last_event = time.monotonic()
        self.wake.set()

    def poll(self) -> None:
        """The remote poller's tick (an apscheduler job): ask the remote what
        changed since the base and sync just that; on doubt, everything."""
        if self.stop.is_set():
            return
        try:
            found = self._remote_changes()
            changed, self.cursor = found.paths, found.cursor
        except errors.SyncAgentError as exc:
            self.log.warning("remote check failed", error=str(exc))
            changed = None
        with self.lock:
            if changed is None:
                self.rescan = True
            elif not changed:
                return
            else:
                self.dirty |= changed
                self.last_event = 0.0
        self.wake.set()

    def true_up(self) -> None:
        """A whole run of both sides: watchers are not trusted alone."""
        with self.lock:
            self.rescan = True
        self.wake.set()

    def _remote_changes(self) -> RemoteChanges:
        from syncagent.engine.state import Store
        from syncagent.engine.sync import Engine, SyncOptions
        from syncagent.providers.remotes import open_remote

        provider, canonical = open_remote(self.spec.remote, self.config_path)
        store = Store(self.state_dir)
        try:
            with provider:
                engine = Engine(self.spec.local, provider, canonical, store,
                                SyncOptions(excludes=self.spec.excludes, lock_wait=30.0), Reporter(quiet=True))
                return engine.remote_changes()
        finally:
            store.close()

    # ---- the loop ------------------------------------------------------------------
    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()
        self.thread.start()

    def check_watcher(self) -> None:
        alive = getattr(self.watcher, "alive", None)
        if alive is not None and not alive() and not self.stop.is_set():
            self.log.warning("the file watcher stopped; restarting it and looking at everything")
            self.watcher.restart()  # type: ignore[union-attr]

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.watcher is not None:
            self.watcher.stop()

    def run(self) -> None:
        next_full = time.monotonic()
        retry_at: float | None = None
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_full:
                self.true_up()
                next_full = now + self.spec.full_rescan_interval
            deadline = min(next_full, retry_at or next_full)
            self.wake.wait(timeout=max(0.0, deadline - time.monotonic()))
            if self.stop.is_set():
                break
            if retry_at is not None and time.monotonic() >= retry_at:
                retry_at = None
                self.true_up()
            if not self.wake.is_set():
                continue
            self._quiet_window()
            self.wake.clear()
            with self.lock:
                dirty, rescan = self.dirty, self.rescan
                self.dirty, self.rescan = set(), False
            ok = self._sync_once(None if rescan else dirty)
            if ok:
                self.failures = 0
                retry_at = None
            else:
                self.failures += 1
                retry_at = time.monotonic() + backoff_delay(self.failures, base=2.0, cap=300.0)

    def _quiet_window(self) -> None:
        """Wait until events stop for a moment: short after a lone change
        (latency), wider under a burst (one sync for the whole burst)."""
        started = time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                quiet = min(QUIET_MAX, QUIET_MIN * (1 + len(self.dirty) / BURST_PATHS * 10))
                since = time.monotonic() - self.last_event
            if since >= quiet or time.monotonic() - started > 5 * QUIET_MAX:
                return
            time.sleep(quiet - since)

    def _sync_once(self, paths: set[str] | None) -> bool:
        """A whole run (paths None) or one over the dirty paths only."""
        from syncagent.engine.state import Store
        from syncagent.engine.sync import Engine, SyncOptions
        from syncagent.providers.remotes import open_remote

        self.status.pair_state(self.spec.name, "syncing", pending=len(paths or ()))
        try:
            provider, canonical = open_remote(self.spec.remote, self.config_path)
            store = Store(self.state_dir)
            try:
                options = SyncOptions(mode=self.spec.mode, max_delete=self.spec.max_delete,
                                      excludes=self.spec.excludes, delta=self.spec.delta, stop=self.stop,
                                      lock_wait=30.0)
                with provider:
                    engine = Engine(self.spec.local, provider, canonical, store, options,
                                    Reporter(quiet=True), own_writes=self.watcher)
                    cursor, self.cursor = self.cursor, None
                    summary = engine.sync(paths, cursor=cursor)
            finally:
                store.close()
        except errors.SyncAgentError as exc:
            self.log.warning("sync failed", error=str(exc), retry_in_failures=self.failures + 1)
            self.status.pair_state(self.spec.name, "error", error=str(exc))
            with self.lock:
                self.rescan = True  # after a failure, the next run looks at everything
            return False
        self._report(summary)
        self.ready.set()
        return summary.exit_code == 0

    def _report(self, summary: Summary) -> None:
        if summary.refused:
            self.log.warning("sync refused by a guard", reason=summary.refused)
            self.status.pair_state(self.spec.name, "refused", summary=summary, error=summary.refused)
            return
        if summary.changed_anything():
            self.log.info("synced", uploaded=summary.uploaded, downloaded=summary.downloaded,
                          deleted=summary.deleted_local + summary.deleted_remote, moved=summary.moved,
                          conflicts=summary.conflicts, errors=summary.errors, seconds=round(summary.seconds, 3))
        state = "error" if summary.errors else "idle"
        error = summary.error_list[-1]["error"] if summary.error_list else None
        self.status.pair_state(self.spec.name, state, summary=summary, error=error)


class Agent:
    """Runs every pair until SIGTERM/SIGINT."""

    def __init__(self, pairs: list[PairSpec], state_dir: Path, *, status: StatusSink | None = None,
                 watcher_factory: WatcherFactory | None = None, config_path: str | None = None,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.stop = threading.Event()
        self.status = status or NullStatus()
        self.runners = [PairRunner(p, state_dir, self.stop, self.status, watcher_factory, config_path)
                        for p in pairs]
        self.on_ready = on_ready
        self.log = get_logger()
        self.scheduler: Any = None

    def _signal(self, signum: int, _frame: object) -> None:
        self.log.info("stopping", signal=signal.Signals(signum).name)
        self.stop.set()
        for r in self.runners:
            r.wake.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(daemon=True)
        for r in self.runners:
            self.scheduler.add_job(r.poll, "interval", seconds=r.spec.poll_interval, id=f"poll-{r.spec.name}",
                                   max_instances=1, coalesce=True)
        self.scheduler.start()
        from syncagent.agent.sdnotify import Notifier

        notify = Notifier()
        for r in self.runners:
            r.start()
        self.log.info("agent started", pairs=[r.spec.name for r in self.runners])
        ready_sent = False
        last_beat = last_dog = time.monotonic()
        while not self.stop.is_set():
            if not ready_sent and all(r.ready.is_set() or r.failures for r in self.runners):
                ready_sent = True
                notify.ready(f"watching {len(self.runners)} pair(s)")
                if self.on_ready:
                    self.on_ready()
            now = time.monotonic()
            if notify.watchdog_interval and now - last_dog >= notify.watchdog_interval:
                notify.watchdog()
                last_dog = now
            if now - last_beat >= 10.0:
                heartbeat = getattr(self.status, "heartbeat", None)
                if heartbeat:
                    heartbeat()
                last_beat = now
            for r in self.runners:
                r.check_watcher()
            self.stop.wait(0.2)
        notify.stopping()
        self.scheduler.shutdown(wait=False)
        for r in self.runners:
            r.join(timeout=10)
        stopped = getattr(self.status, "stopped", None)
        if stopped:
            stopped()
        self.log.info("agent stopped")
        return 0

