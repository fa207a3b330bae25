"""The watcher: dirty paths only; bursts, own writes, temp files, lost
watches, and the polling fallback when inotify runs out."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from syncagent.agent import PairRunner, PairSpec
from syncagent.watch import WatchdogWatcher


class Collector:
    def __init__(self) -> None:
        self.paths: set[str] = set()
        self.rescans = 0
        self.calls = 0

    def __call__(self, paths: set[str], rescan: bool) -> None:
        self.paths |= paths
        self.rescans += rescan
        self.calls += 1


def test_own_writes_and_temp_files_are_dropped(tmp_path: Path) -> None:
    got = Collector()
    w = WatchdogWatcher(tmp_path, got)
    root = str(tmp_path)
    w.suppress("downloaded.txt")
    w.handle("created", f"{root}/downloaded.txt", "", False)
    w.handle("created", f"{root}/.syncagent-p1-abc.tmp", "", False)
    w.handle("moved", f"{root}/.syncagent-p1-abc.tmp", f"{root}/downloaded.txt", False)
    w.handle("modified", f"{root}/some dir", "", True)
    assert got.paths == set()
    w.handle("modified", f"{root}/typed.txt", "", False)
    assert got.paths == {"typed.txt"}


def test_safe_save_rename_marks_the_target(tmp_path: Path) -> None:
    got = Collector()
    w = WatchdogWatcher(tmp_path, got)
    root = str(tmp_path)
    w.handle("created", f"{root}/.doc.txt.swp", "", False)
    w.handle("moved", f"{root}/.doc.txt.swp", f"{root}/doc.txt", False)
    assert "doc.txt" in got.paths


def test_root_moved_away_asks_for_a_rescan(tmp_path: Path) -> None:
    got = Collector()
    WatchdogWatcher(tmp_path, got).handle("deleted", str(tmp_path), "", True)
    assert got.rescans == 1


def test_a_burst_of_20000_events_costs_well_under_a_second(tmp_path: Path) -> None:
    runner = PairRunner(PairSpec("p", tmp_path, str(tmp_path / "r")), tmp_path / "s", threading.Event(),
                        _NoStatus(), lambda root, cb: WatchdogWatcher(root, cb))
    assert runner.watcher is not None
    watcher = runner.watcher
    assert isinstance(watcher, WatchdogWatcher)
    root = str(tmp_path)
    start = time.process_time()
    for i in range(20_000):
        watcher.handle("modified", f"{root}/d{i % 50}/f{i % 5000}.txt", "", False)
    cpu = time.process_time() - start
    assert cpu < 0.5, f"{cpu:.2f} s of CPU for 20,000 events"
    assert len(runner.dirty) == 5000, "events are coalesced per path"


def test_real_observer_reports_and_leaks_no_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    got = Collector()
    w = WatchdogWatcher(tmp_path, got)
    w.start()
    (tmp_path / "new.txt").write_text("x")
    deadline = time.monotonic() + 5
    while "new.txt" not in got.paths and time.monotonic() < deadline:
        time.sleep(0.02)
    w.stop()
    assert "new.txt" in got.paths
    time.sleep(0.1)
    assert threading.active_count() == before, "the observer left a thread behind"


def test_no_inotify_watches_left_falls_back_to_polling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import watchdog.observers

    class Exhausted:
        def schedule(self, *a: object, **k: object) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watchdog.observers, "Observer", Exhausted)
    got = Collector()
    w = WatchdogWatcher(tmp_path, got)
    w.start()
    try:
        assert w.polling and w.alive()
    finally:
        w.stop()


class _NoStatus:
    def pair_state(self, *a: object, **k: object) -> None:
        """Not recorded in this test."""
