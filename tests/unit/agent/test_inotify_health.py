"""The blind spots of watchdog's inotify observer, seen through a real
observer: subfolders it could not watch (watch limit) and queue overflows.
No test leaves a thread behind."""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncagent.agent.inotify_health import (
    OverflowMonitor,
    _parse_fdinfo,
    coverage_gaps,
    event_filter,
    exhaustion_hint,
    max_user_watches,
    watched_inodes,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for sub in ("a/b/c", "d", "e f/ü"):
        (root / sub).mkdir(parents=True)
    (root / "a" / "file.txt").write_text("x")
    (root / "link").symlink_to(root / "a")
    return root


@pytest.fixture
def observe() -> Iterator[Any]:
    """Start watchdog's inotify observer on a folder; stop it and check threads after."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.inotify import InotifyObserver

    baseline = threading.active_count()
    observers: list[Any] = []

    def start(root: Path, handler: Any = None, filtered: bool = False) -> Any:
        observer = InotifyObserver()
        observer.schedule(handler or FileSystemEventHandler(), str(root), recursive=True,
                          event_filter=event_filter() if filtered else None)
        observer.start()
        observers.append(observer)
        return observer

    yield start
    for observer in observers:
        observer.stop()
        observer.join(timeout=5)
    deadline = time.monotonic() + 2
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == baseline, "a watcher thread was left behind"


def wait_for(predicate: Any, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_fdinfo_lines_are_read_with_the_kernel_device_encoding() -> None:
    text = ("pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1038\n"
            "inotify wd:3 ino:410185 sdev:fe00000 mask:7fe ignored_mask:0 fhandle-bytes:8\n"
            "inotify wd:2 ino:1f sdev:800001 mask:7fe ignored_mask:0\n")
    assert list(_parse_fdinfo(text)) == [(os.makedev(254, 0), 0x410185), (os.makedev(8, 1), 0x1F)]


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")  # watchdog's own mkdir -p race
def test_a_fully_watched_tree_has_no_gap(tree: Path, observe: Any) -> None:
    observe(tree)
    assert wait_for(lambda: not coverage_gaps(tree, retry_after=0))
    (tree / "later" / "deeper").mkdir(parents=True)    # new folders get their watches too
    assert coverage_gaps(tree, retry_after=0.3) == []


def test_exhausted_watches_below_the_root_are_found(tree: Path, observe: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """watchdog swallows ENOSPC for subfolders: the observer runs, blind below the root."""
    from watchdog.observers.inotify_c import InotifyFD

    real = InotifyFD.add_callback
    root = os.fsencode(tree)

    def limited(self: Any, path: bytes, *args: Any) -> Any:
        if path != root:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real(self, path, *args)

    monkeypatch.setattr(InotifyFD, "add_callback", limited)
    observer = observe(tree)
    root_id = (tree.stat().st_dev, tree.stat().st_ino)
    assert wait_for(lambda: root_id in (watched_inodes() or set()))
    assert observer.is_alive(), "watchdog does not fail: it is silently blind"
    assert coverage_gaps(tree, retry_after=0.05) == ["a", "a/b", "a/b/c", "d", "e f", "e f/ü"]


def test_the_hint_names_the_setting_and_the_fix() -> None:
    hint = exhaustion_hint(12, limit=8192)
    assert "12 folder(s)" in hint and "fs.inotify.max_user_watches (now 8192)" in hint
    assert "sysctl fs.inotify.max_user_watches=" in hint
    assert max_user_watches() is None or max_user_watches() > 0  # type: ignore[operator]


def test_no_proc_means_no_report(tree: Path, tmp_path: Path) -> None:
    assert watched_inodes(tmp_path / "no-such-dir") is None
    assert coverage_gaps(tree, fdinfo_dir=tmp_path / "no-such-dir") == []


def test_a_real_queue_overflow_reaches_the_monitor(tree: Path, observe: Any) -> None:
    """Drive watchdog's own overflow path (the kernel's IN_Q_OVERFLOW, wd -1):
    it logs and rebuilds its watches, and emits no event; the monitor hears it."""
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, WatchDescriptor

    observer = observe(tree)
    assert wait_for(lambda: not coverage_gaps(tree, retry_after=0))
    ours, others = [], []
    with OverflowMonitor(lambda: ours.append(1), tree), \
            OverflowMonitor(lambda: others.append(1), tree.parent / "elsewhere"):
        observer._inotify_fd.handle_event(InotifyEvent(WatchDescriptor(-1), InotifyConstants.IN_Q_OVERFLOW, 0, b""))
    assert ours == [1], "the overflow went unnoticed"
    assert others == [], "the per-watch message names its root"
    assert not coverage_gaps(tree, retry_after=0), "watchdog rebuilt its watches"


def test_the_monitor_ignores_other_records_and_detaches() -> None:
    calls: list[int] = []
    log = logging.getLogger("watchdog.observers.inotify_c")
    with OverflowMonitor(lambda: calls.append(1)) as monitor:
        log.warning("something else")
        log.warning("Inotify queue overflowed; filesystem events were lost")
        assert monitor in log.handlers
    log.warning("Inotify queue overflowed; filesystem events were lost")
    assert calls == [1] and monitor not in log.handlers


def inotify_masks() -> list[int]:
    masks = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path("/proc/self/fdinfo", fd).read_text()
        except OSError:
            continue
        masks += [int(part[5:], 16) for line in text.splitlines() if line.startswith("inotify ")
                  for part in line.split() if part.startswith("mask:")]
    return masks


def test_the_event_filter_keeps_reads_out_of_the_queue_and_changes_in(tree: Path, observe: Any) -> None:
    """IN_OPEN (0x20) and IN_CLOSE_NOWRITE (0x10) make every directory listing
    an event; on big trees watchdog's own rebuild walk then overflows forever."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler

    seen: list[tuple[str, str]] = []

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            seen.append((event.event_type, os.fsdecode(event.src_path)[len(str(tree)) + 1:]))

    observe(tree, Handler(), filtered=True)
    assert wait_for(lambda: not coverage_gaps(tree, retry_after=0))
    assert inotify_masks() and all(m & 0x30 == 0 for m in inotify_masks())
    list(os.walk(tree))                                  # reads: no events
    (tree / "d" / "new.txt").write_text("x")             # changes: reported
    (tree / "d" / "new.txt").rename(tree / "a" / "moved.txt")
    (tree / "a" / "moved.txt").unlink()
    assert wait_for(lambda: ("deleted", "a/moved.txt") in seen)
    kinds = {kind for kind, _ in seen}
    assert {"created", "modified", "closed", "moved", "deleted"} <= kinds
    assert not kinds & {"opened", "closed_no_write"}
