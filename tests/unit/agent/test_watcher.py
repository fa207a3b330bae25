"""LocalWatcher with a real observer on a temp folder: batches of dirty
paths for real safe-saves, own writes kept quiet, rescans on overflow, and
the polling fallback when inotify runs out, at the root or below it.
Every test checks that no thread is left behind."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from syncagent.agent.coalesce import Coalescer
from syncagent.agent.watcher import LocalWatcher

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")


class Batches:
    def __init__(self) -> None:
        self.got: list[tuple[set[str], bool]] = []
        self.lock = threading.Lock()

    def __call__(self, paths: set[str], rescan: bool) -> None:
        with self.lock:
            self.got.append((paths, rescan))

    def wait(self, n: int = 1, timeout: float = 5.0) -> list[tuple[set[str], bool]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.15)   # anything that would wrongly follow, arrives now
        with self.lock:
            return list(self.got)


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Any]:
    baseline = threading.active_count()
    started: list[LocalWatcher] = []

    def start(**kw: Any) -> tuple[LocalWatcher, Batches, Path]:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        batches = Batches()
        w = LocalWatcher(root, batches, **kw)
        started.append(w)
        w.start()
        return w, batches, root

    yield start
    for w in started:
        w.stop()
    deadline = time.monotonic() + 2
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == baseline, "the watcher left a thread behind"


def test_events_translate_to_relative_nfc_paths(tmp_path: Path) -> None:
    c = Coalescer(clock=lambda: 0.0)
    w = LocalWatcher(tmp_path, lambda p, r: None, coalescer=c)
    nfd = unicodedata.normalize("NFD", "café.txt")
    w.handle("modified", f"{tmp_path}/dir/{nfd}")
    w.handle("modified", "/elsewhere/x")
    w.handle("moved", "/elsewhere/y", f"{tmp_path}/in.txt")
    batch = c.take(now=10.0)
    assert batch is not None and batch.paths == {"dir/café.txt", "in.txt"}
    w.handle("deleted", str(tmp_path), "", True)
    assert c.take(now=20.0) is not None and c.take(now=30.0) is None


def test_a_real_safe_save_is_one_batch_with_the_target(watch: Any) -> None:
    _, batches, root = watch()
    (root / "doc.txt").write_text("v1")
    assert batches.wait() == [({"doc.txt"}, False)]
    batches.got.clear()
    tmp = root / ".doc.txt.swp"
    tmp.write_text("v2")
    os.replace(tmp, root / "doc.txt")
    (root / "report.odt").write_text("a")
    batches.wait()
    (root / "report.odt").unlink()                     # delete + recreate
    (root / "report.odt").write_text("b")
    got = batches.wait(2)
    assert {p for paths, _ in got for p in paths} == {"doc.txt", "report.odt"}


def test_own_writes_stay_quiet_and_a_later_user_edit_does_not(watch: Any) -> None:
    w, batches, root = watch()
    w.suppress("dl.bin")
    tmp = root / ".syncagent-p-1.tmp"
    tmp.write_bytes(b"from the cloud")
    os.replace(tmp, root / "dl.bin")
    w.wrote("dl.bin")
    assert batches.wait(timeout=0.5) == []
    (root / "dl.bin").write_bytes(b"the user's edit")   # inside the own-write window
    assert batches.wait() == [({"dl.bin"}, False)]


def test_an_overflow_asks_for_a_rescan(watch: Any) -> None:
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, WatchDescriptor

    w, batches, _ = watch()
    w.observer._inotify_fd.handle_event(InotifyEvent(WatchDescriptor(-1), InotifyConstants.IN_Q_OVERFLOW, 0, b""))
    assert batches.wait() == [(set(), True)]


def _limit_watches(monkeypatch: pytest.MonkeyPatch, allowed: Any) -> None:
    from watchdog.observers.inotify_c import InotifyFD

    real = InotifyFD.add_callback

    def limited(self: Any, path: bytes, *args: Any) -> Any:
        if not allowed(path):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real(self, path, *args)

    monkeypatch.setattr(InotifyFD, "add_callback", limited)


def test_no_watch_for_the_root_means_polling_and_a_warning(watch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _limit_watches(monkeypatch, lambda path: False)
    with structlog.testing.capture_logs() as logs:
        w, batches, root = watch(poll_interval=0.1)
    assert w.polling and w.alive()
    assert any("fs.inotify.max_user_watches" in e["event"] for e in logs if e["log_level"] == "warning")
    (root / "seen.txt").write_text("x")
    got = batches.wait(2)
    assert any(rescan for _, rescan in got) and any("seen.txt" in paths for paths, _ in got)


def test_folders_left_unwatched_below_the_root_mean_polling(watch: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root" / "deep" / "er").mkdir(parents=True)
    root_b = os.fsencode(tmp_path / "root")
    _limit_watches(monkeypatch, lambda path: path == root_b)
    with structlog.testing.capture_logs() as logs:
        w, batches, root = watch(poll_interval=0.1)
    assert w.polling
    warning = next(e for e in logs if e["log_level"] == "warning")
    assert "could not watch 2 folder(s)" in warning["event"] and warning["first_unwatched"] == "deep"
    (root / "deep" / "er" / "f.txt").write_text("x")
    assert any("deep/er/f.txt" in paths for paths, _ in batches.wait(2))
