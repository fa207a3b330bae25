"""One pair's loop: when to sync, never what.

Everything a pair does with its remote happens in its own thread, one thing
at a time: the start-up run, the batches the watcher delivers, the remote
poll every `poll_interval`, the whole run every `full_rescan_interval`, and
retries after a failure. So the one provider (agent/remote.py) is never used
by two threads at once, and a poll never races a sync of the same pair.

The poll asks `Engine.remote_changes()`: on a provider with a change feed one
`changes(cursor)` call, else the listing compared with the base. What it
names is synced at once (with the feed position it came from, committed with
the base only if that run had no errors); None means a whole run.

Failures back off through `retry.backoff_delay` and end in a whole run: a
run that could not happen (a provider error, a guard refusal) holds the
pair until its retry, within minutes; items that failed in a run hold
nothing, the next whole run just comes sooner; credentials the remote
refuses twice (after opening it again once) pause the pair until the
backoff runs out or the config/credentials file changes. Nothing here ends
the thread but the agent's stop event.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from syncagent import errors
from syncagent.agent.remote import RemoteHandle
from syncagent.engine.plan import Mode
from syncagent.engine.report import Reporter, Summary
from syncagent.log import get_logger
from syncagent.retry import backoff_delay

if TYPE_CHECKING:
    from syncagent.engine.feed import RemoteChanges
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine
    from syncagent.providers.base import Provider

FULL_RESCAN = 3600.0    # watchers are not trusted alone
RETRY_BASE, RETRY_CAP = 2.0, 300.0          # a failed run: seconds, doubling, up to 5 minutes
AUTH_BASE, AUTH_CAP = 30.0, 1800.0          # refused credentials: slower, up to 30 minutes
LOCK_WAIT = 30.0        # a one-shot `sync` of the same pair may hold its lock


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
    trash: bool = True
    force: bool = False     # override the guards until a run completes (the start-up run)


class StatusSink(Protocol):
    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   reason: str | None = None, pending: int = 0, skipped: list[str] | None = None) -> None: ...


class Watcher(Protocol):
    def start(self) -> None: ...
    def restart(self) -> None: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...
    def suppress(self, path: str) -> None: ...
    def wrote(self, path: str) -> None: ...


WatcherFactory = Callable[[Path, Callable[[set[str], bool], None]], Watcher]


class LogReporter(Reporter):
    """The engine's messages as structlog events of the pair: the agent has
    no terminal of its own. Actions only with -v."""

    def __init__(self, log: Any, verbose: bool) -> None:
        super().__init__(quiet=not verbose, verbose=verbose, json_logs=True)
        self.log = log
        self._bar = False

    def action(self, op: str, path: str, detail: str = "") -> None:
        if self.verbose:
            self.log.info(op, path=path, **({"detail": detail} if detail else {}))

    def warn(self, message: str, path: str | None = None) -> None:
        self.log.warning(message, **({"path": path} if path else {}))

    def error(self, message: str, path: str | None = None) -> None:
        self.log.error(message, **({"path": path} if path else {}))

    def info(self, message: str) -> None:
        self.log.info(message.strip())


class PairRunner:
    """Syncs one pair whenever something may have changed."""

    def __init__(self, spec: PairSpec, store: Store, stop: threading.Event, status: StatusSink, *,
                 remote: RemoteHandle, watcher_factory: WatcherFactory | None = None, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self.store, self.stop, self.status, self.remote = spec, store, stop, status, remote
        self.clock = clock
        self.log = get_logger(pair=spec.name)
        self.reporter = LogReporter(self.log, verbose)
        self.wake = threading.Event()
        self.ready = threading.Event()      # the first attempt is over (sd_notify READY)
        self.lock = threading.Lock()
        self.dirty: set[str] = set()
        self.rescan = True                  # a whole run at start
        self.cursor: str | None = None      # the feed position the dirty paths came from
        self.failures = 0                   # runs that could not happen, in a row: the backoff's attempt
        self.item_failures = 0              # runs with failed items since the last clean whole run
        self.failing: str | None = None     # those items, for `status`
        self.unfit: set[str] = set()        # names the other side cannot hold (printable), for `status`
        self.paused = False                 # the remote refused the credentials
        self.state = "starting"
        self.force = spec.force
        self.retry_at: float | None = None
        self.next_poll = self.next_full = 0.0
        self.watcher = watcher_factory(spec.local, self.on_local_change) if watcher_factory else None
        self.thread = threading.Thread(target=self.run, name=f"pair-{spec.name}", daemon=True)

    # ---- wake-ups (other threads) --------------------------------------------------
    def on_local_change(self, paths: set[str], rescan: bool) -> None:
        """A batch from the watcher (its coalescer already waited for quiet)."""
        with self.lock:
            self.dirty |= paths
            self.rescan = self.rescan or rescan
        self.wake.set()

    def true_up(self) -> None:
        """Ask for a whole run of both sides."""
        with self.lock:
            self.rescan = True
        self.wake.set()

    # ---- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        if self.watcher is not None:
            self.watcher.start()
        self.thread.start()

    def check_watcher(self) -> None:
        if self.watcher is not None and not self.watcher.alive() and not self.stop.is_set():
            self.log.warning("the file watcher stopped; restarting it and looking at everything")
            self.watcher.restart()

    def join(self, timeout: float) -> None:
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        if self.watcher is not None:
            self.watcher.stop()

    def run(self) -> None:
        try:
            self.first_run()
            while not self.stop.is_set():
                self.wake.wait(timeout=max(0.0, self._deadline() - self.clock()))
                self.wake.clear()
                if not self.stop.is_set():
                    self.step(self.clock())
        finally:
            self.ready.set()
            self.close()

    def first_run(self) -> None:
        """The whole run at start; the clocks of polls and true-ups start now."""
        now = self.clock()
        self.next_full = now + self.spec.full_rescan_interval
        self.next_poll = now + self.spec.poll_interval
        self._sync_pending()
        self.ready.set()

    def close(self) -> None:
        """Close the provider and this thread's database connection."""
        self.remote.close()
        self.store.close()      # the store keeps one connection per thread

    def _deadline(self) -> float:
        if self.retry_at is None:
            return min(self.next_full, self.next_poll)
        # backing off; a paused pair still looks at its config at each poll tick
        return min(self.retry_at, self.next_poll) if self.paused else self.retry_at

    def step(self, now: float) -> None:
        """One turn of the loop: whatever is due at `now`."""
        poll_due = now >= self.next_poll
        if poll_due:
            self.next_poll = now + self.spec.poll_interval
        if self.retry_at is not None:
            if not (now >= self.retry_at or (self.paused and poll_due and self.remote.config_changed())):
                return      # changes wait for the retry, which looks at everything
            self.retry_at = None
            self.true_up()
        if now >= self.next_full:
            self.next_full = now + self.spec.full_rescan_interval
            self.true_up()
        if poll_due and not self.rescan and not self._attempt(self._poll):
            return
        self._sync_pending()

    # ---- the work ----------------------------------------------------------------------
    def _poll(self) -> bool:
        """Ask the remote what changed since the base; queue it for a sync."""
        found: RemoteChanges = self.remote.call(lambda p, c: self._engine(p, c).remote_changes())
        with self.lock:
            if found.paths is None:
                self.rescan = True
            elif found.paths:
                self.dirty |= found.paths
                self.cursor = found.cursor
        return True

    def _sync_pending(self) -> None:
        with self.lock:
            rescan, dirty, cursor = self.rescan, self.dirty, self.cursor
            self.rescan, self.dirty, self.cursor = False, set(), None
        if not (rescan or dirty):
            return
        # a whole run takes its own feed position; a partial one keeps the poll's
        self._attempt(lambda: self._sync(None if rescan else dirty, None if rescan else cursor))
        if rescan:
            self.next_poll = self.clock() + self.spec.poll_interval   # that run looked at the remote too

    def _sync(self, paths: set[str] | None, cursor: str | None) -> bool:
        self._set_state("syncing", pending=len(paths or ()))
        summary: Summary = self.remote.call(lambda p, c: self._engine(p, c).sync(paths, cursor=cursor))
        return self._report(summary, whole=paths is None)

    def _engine(self, provider: Provider, canonical: str) -> Engine:
        """An engine for one run or poll (cheap: the provider and the store are the pair's)."""
        from syncagent.engine.sync import Engine, SyncOptions

        spec = self.spec
        options = SyncOptions(mode=spec.mode, force=self.force, max_delete=spec.max_delete,
                              excludes=spec.excludes, trash=spec.trash, delta=spec.delta, stop=self.stop,
                              lock_wait=LOCK_WAIT)
        return Engine(spec.local, provider, canonical, self.store, options, self.reporter,
                      own_writes=self.watcher)

    def _report(self, summary: Summary, *, whole: bool) -> bool:
        """Log and show the run's outcome. False: a guard refused the run, the
        pair holds until its retry. Failed items hold nothing: other changes
        keep flowing, a whole run comes sooner (backoff) to retry them, and
        the pair shows `error` until a whole run is clean."""
        if summary.cancelled:
            return True
        self.force = False      # --force was for the run that just completed
        if summary.refused:
            self.log.warning("sync refused by a guard", reason=summary.refused)
            self._set_state("refused", reason=summary.refused)
            return False
        if summary.changed_anything() or summary.errors:
            self.log.info("synced", uploaded=summary.uploaded, downloaded=summary.downloaded,
                          deleted=summary.deleted_local + summary.deleted_remote, moved=summary.moved,
                          conflicts=summary.conflicts, errors=summary.errors, seconds=round(summary.seconds, 3))
        if summary.errors:
            self.item_failures += 1
            self.failing = _failed_items(summary)
            delay = backoff_delay(self.item_failures, base=RETRY_BASE, cap=RETRY_CAP)
            self.next_full = min(self.next_full, self.clock() + delay)
        elif whole:
            self.item_failures, self.failing = 0, None
        # a whole run sees every name; a partial one only adds what it met
        self.unfit = set(summary.skipped_names) if whole else self.unfit | set(summary.skipped_names)
        if self.failing:
            self._set_state("error", summary=summary, reason=self.failing)
        else:
            self._set_state("idle", summary=summary)
        return True

    # ---- failures ----------------------------------------------------------------------
    def _attempt(self, work: Callable[[], bool]) -> bool:
        """Run `work`; on an error or an unfinished run, back off and retry
        with a whole run. Only the stop event ends the pair."""
        try:
            ok = work()
        except errors.AuthError as exc:
            self._paused(exc)
            return False
        except errors.SyncAgentError as exc:
            self.log.warning("sync failed", error=str(exc))
            self._set_state("error", reason=str(exc))
            ok = False
        except Exception as exc:  # a bug must not silently end the pair's thread
            self.log.error("unexpected error; retrying", error=_one_line(exc))
            self._set_state("error", reason=_one_line(exc))
            ok = False
        if ok:
            self.failures, self.paused = 0, False
        else:
            self._back_off(RETRY_BASE, RETRY_CAP)
        return ok

    def _paused(self, exc: errors.AuthError) -> None:
        name = self.remote.name or self.spec.remote
        reason = f"the remote {name} refused the credentials ({exc}): {self.remote.auth_hint}"
        self.log.warning("paused: " + reason)
        self.remote.close()
        self.paused = True
        self._set_state("paused", reason=reason)
        self._back_off(AUTH_BASE, AUTH_CAP)

    def _back_off(self, base: float, cap: float) -> None:
        self.failures += 1
        self.retry_at = self.clock() + backoff_delay(self.failures, base=base, cap=cap)
        self.true_up()      # after a failure the next run looks at everything

    def _set_state(self, state: str, *, summary: Summary | None = None, reason: str | None = None,
                   pending: int = 0) -> None:
        self.state = state
        self.status.pair_state(self.spec.name, state, summary=summary, reason=reason, pending=pending,
                               skipped=sorted(self.unfit))


def _failed_items(summary: Summary, shown: int = 3) -> str:
    items = "; ".join(f"{e.get('path', '?')}: {e.get('error', '')}" for e in summary.error_list[:shown])
    more = f" and {summary.errors - shown} more" if summary.errors > shown else ""
    return f"{summary.errors} item(s) failed ({items}{more}); retried by the next whole run"


def _one_line(exc: BaseException) -> str:
    """Type, message and where it was raised, on one line (no traceback in a log)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")
