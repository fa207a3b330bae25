"""The daemon: one PairRunner (agent/pair.py) per pair, around them the
process: one state database for all pairs, signals, sd_notify, the status
file's heartbeat, and watchers that died.

Every pair runs in its own thread and calls the same `Engine.sync()` as the
one-shot command: the agent decides *when* to sync, never *what*.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from syncagent.agent.pair import PairRunner, PairSpec, StatusSink, WatcherFactory
from syncagent.agent.remote import Opener, RemoteHandle
from syncagent.agent.sdnotify import Notifier
from syncagent.engine.report import Summary
from syncagent.log import get_logger
from syncagent.providers.remotes import open_remote

TICK = 1.0          # the main thread's look at watchers, heartbeat and sd_notify
HEARTBEAT = 10.0    # status file refresh: `status` calls an agent silent for 2 minutes gone
STOP_WITHIN = 25.0  # the runs in flight finish their batch (systemd's TimeoutStopSec is 30)


class NullStatus:
    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   reason: str | None = None, pending: int = 0, skipped: list[str] | None = None) -> None:
        """No status file: nothing to record."""


class Agent:
    """Runs every pair until SIGTERM/SIGINT (or `stop` is set)."""

    def __init__(self, pairs: list[PairSpec], state_dir: Path, *, status: StatusSink | None = None,
                 watcher_factory: WatcherFactory | None = None, config_path: str | None = None,
                 on_ready: Callable[[], None] | None = None, verbose: bool = False,
                 opener: Opener = open_remote) -> None:
        from syncagent.engine.state import Store

        self.stop = threading.Event()
        self.status = status or NullStatus()
        self.store = Store(state_dir)   # one for all pairs; each thread gets its own connection
        self.runners = [PairRunner(p, self.store, self.stop, self.status, verbose=verbose,
                                   remote=RemoteHandle(p.remote, config_path, opener=opener),
                                   watcher_factory=watcher_factory) for p in pairs]
        self.on_ready = on_ready
        self.log = get_logger()

    def _signal(self, signum: int, _frame: object) -> None:
        self.log.info("stopping", signal=signal.Signals(signum).name)
        self.shutdown()

    def shutdown(self) -> None:
        self.stop.set()
        for r in self.runners:
            r.wake.set()

    def run(self) -> int:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._signal)
            signal.signal(signal.SIGINT, self._signal)
        notify = Notifier()
        try:
            for r in self.runners:
                r.start()
            self.log.info("agent started", pairs=[r.spec.name for r in self.runners])
            self._watch(notify)
        finally:
            self.shutdown()
            notify.stopping()
            deadline = time.monotonic() + STOP_WITHIN
            for r in self.runners:
                r.join(timeout=max(0.1, deadline - time.monotonic()))
            self.store.close()
            stopped = getattr(self.status, "stopped", None)
            if stopped:
                stopped()
        self.log.info("agent stopped")
        return 0

    def _watch(self, notify: Notifier) -> None:
        """The main thread until stop: READY once every pair had its first
        run, STATUS when the pairs' states change, WATCHDOG, the heartbeat,
        and a restart for a watcher that died."""
        ready = False
        shown = ""
        last_beat = last_dog = time.monotonic()
        while not self.stop.is_set():
            if not ready and all(r.ready.is_set() for r in self.runners):
                ready = True
                notify.ready(f"watching {len(self.runners)} pair(s)")
                if self.on_ready:
                    self.on_ready()
            now = time.monotonic()
            if notify.watchdog_interval and now - last_dog >= notify.watchdog_interval:
                notify.watchdog()
                last_dog = now
            if now - last_beat >= HEARTBEAT:
                heartbeat = getattr(self.status, "heartbeat", None)
                if heartbeat:
                    heartbeat()
                last_beat = now
            text = self.summary()
            if ready and text != shown:
                notify.status(text)
                shown = text
            for r in self.runners:
                r.check_watcher()
            self.stop.wait(TICK)

    def summary(self) -> str:
        """One line for systemctl status: how many pairs are in which state."""
        counts: dict[str, int] = {}
        for r in self.runners:
            counts[r.state] = counts.get(r.state, 0) + 1
        return f"{len(self.runners)} pair(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
