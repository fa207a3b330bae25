"""The pair loop driven step by step on a fake clock, in the test's thread:
the change feed in the poller, one provider for the pair's life, reopened
on refused credentials then paused, backoff, status reasons, --force."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog

from syncagent.agent import pair as pair_module
from syncagent.agent.pair import PairRunner, PairSpec
from syncagent.agent.remote import RemoteHandle
from syncagent.engine.state import Store
from syncagent.log import get_logger
from tests.helpers import sync_in_process, tree, write
from tests.unit.agent.fakes import Board, FeedProvider, Opener


@dataclass
class Harness:
    tmp: Path
    local: Path
    remote: Path
    store: Store
    opener: Opener
    board: Board = field(default_factory=Board)
    now: float = 1000.0
    runners: list[PairRunner] = field(default_factory=list)

    def runner(self, spec: str = "cloud:docs", config: Path | None = None, **kw: Any) -> PairRunner:
        handle = RemoteHandle(spec, str(config) if config else None, opener=self.opener)
        r = PairRunner(PairSpec(name="docs", local=self.local, remote=spec, poll_interval=30.0, **kw),
                       self.store, threading.Event(), self.board, remote=handle, clock=lambda: self.now)
        self.runners.append(r)
        return r

    def tick(self, r: PairRunner, seconds: float) -> None:
        self.now += seconds
        r.step(self.now)

    def poll(self, r: PairRunner) -> None:
        self.tick(r, r.next_poll - self.now)


@pytest.fixture
def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "credentials.yaml"))
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    harness = Harness(tmp_path, local, remote, Store(tmp_path / "state"), Opener(remote))
    yield harness
    for r in harness.runners:
        r.remote.close()
    harness.store.close()


def test_a_quiet_poll_is_one_feed_call_and_no_listing(h: Harness) -> None:
    write(h.local / "a.txt", "a")
    r = h.runner()
    r.first_run()
    assert (h.remote / "a.txt").read_text() == "a"
    provider = h.opener.opened[0]
    assert provider.calls["changes(None)"] == 1, "the whole run lists through the feed and keeps its cursor"
    provider.calls.update({k: 0 for k in provider.calls})
    for _ in range(3):
        h.poll(r)
    assert provider.calls["changes"] == 3 and provider.calls["list"] == 0 and provider.calls["changes(None)"] == 0
    assert len(h.opener.opened) == 1, "one provider for the pair's life"


def test_a_change_from_the_feed_is_synced_and_its_cursor_kept(h: Harness) -> None:
    write(h.local / "a.txt", "a")       # a base to be partial against
    r = h.runner()
    r.first_run()
    provider = h.opener.opened[0]
    write(h.remote / "sub/new.txt", "from the cloud")
    h.poll(r)
    assert (h.local / "sub/new.txt").read_text() == "from the cloud"
    assert provider.calls["changes(None)"] == 1, "a partial run, not a whole one"
    provider.calls.update({k: 0 for k in provider.calls})
    h.poll(r)
    assert provider.calls == {"changes": 1, "changes(None)": 0, "list": 0, "close": 0}, \
        "the cursor moved past the synced change: the next poll is quiet"
    assert h.board.last("docs")["state"] == "idle"


def test_a_feed_reset_falls_back_to_a_whole_run(h: Harness) -> None:
    r = h.runner()
    r.first_run()
    provider = h.opener.opened[0]
    write(h.remote / "x.txt", "x")
    provider.reset_next = True
    h.poll(r)
    assert provider.calls["changes(None)"] == 2, "the reset was followed by a whole run"
    assert tree(h.local) == tree(h.remote)


def test_the_provider_is_reopened_once_on_refused_credentials(h: Harness) -> None:
    r = h.runner()
    r.first_run()
    h.opener.opened[0].auth_failures = 1
    write(h.remote / "late.txt", "late")
    h.poll(r)
    assert len(h.opener.opened) == 2 and h.opener.opened[0].closed
    assert (h.local / "late.txt").exists() and not r.paused
    assert h.board.last("docs")["state"] == "idle"


def test_credentials_refused_twice_pause_the_pair_until_they_change(h: Harness,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pair_module, "backoff_delay", lambda attempt, *, base, cap: 100.0)
    config = h.tmp / "config.yaml"
    config.write_text("remotes: {}\n")
    h.opener.auth_failures = 1       # every provider refuses its first call
    get_logger()        # structlog set up first, so capture_logs is not replaced by the set-up
    with structlog.testing.capture_logs() as logs:
        r = h.runner(config=config)
        r.first_run()
    assert r.paused and len(h.opener.opened) == 2
    last = h.board.last("docs")
    assert last["state"] == "paused" and "run `syncagent auth cloud`" in last["reason"]
    assert any(e["log_level"] == "warning" and "syncagent auth cloud" in e["event"] for e in logs)
    assert r.retry_at is not None and r.retry_at > h.now
    h.poll(r)
    assert len(h.opener.opened) == 2, "no new login attempt while paused and nothing changed"
    h.opener.auth_failures = 0
    config.write_text("remotes: {}\n# after `syncagent auth cloud`\n")
    write(h.local / "a.txt", "a")
    h.poll(r)
    assert not r.paused and (h.remote / "a.txt").exists()
    assert h.board.last("docs") | {"summary": None} == {"name": "docs", "state": "idle", "reason": None,
                                                        "summary": None, "skipped": []}


def test_a_paused_pair_retries_after_its_backoff(h: Harness) -> None:
    h.opener.auth_failures = 1
    r = h.runner()
    r.first_run()
    assert r.paused and r.retry_at is not None
    h.opener.auth_failures = 0
    h.tick(r, r.retry_at - h.now)
    assert not r.paused and h.board.last("docs")["state"] == "idle"


def test_the_config_file_changing_reopens_the_provider(h: Harness) -> None:
    config = h.tmp / "config.yaml"
    config.write_text("remotes: {}\n")
    r = h.runner(config=config)
    r.first_run()
    h.poll(r)
    assert len(h.opener.opened) == 1
    config.write_text("remotes: {}\npairs: []\n")
    h.poll(r)
    assert len(h.opener.opened) == 2 and h.opener.opened[0].closed and not h.opener.opened[1].closed
    r.close()
    assert h.opener.opened[1].closed, "closed at shutdown"


def test_failures_back_off_through_the_one_formula(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, float, float]] = []

    def delay(attempt: int, *, base: float, cap: float) -> float:
        asked.append((attempt, base, cap))
        return 7.0

    monkeypatch.setattr(pair_module, "backoff_delay", delay)
    h.opener.fail_with = ConnectionResetError("reset by peer")   # not even a SyncAgentError: a bug's shape
    r = h.runner()
    r.first_run()
    assert h.board.last("docs")["state"] == "error"
    assert "ConnectionResetError: reset by peer" in h.board.last("docs")["reason"]
    h.tick(r, 3.0)
    assert asked == [(1, pair_module.RETRY_BASE, pair_module.RETRY_CAP)], "no retry before the backoff ran out"
    h.tick(r, 4.0)
    assert asked[-1][0] == 2, "the second failure doubles the ceiling"
    h.opener.fail_with = None
    h.tick(r, 7.0)
    assert r.failures == 0 and h.board.last("docs")["state"] == "idle"


def _ten_synced_files(h: Harness) -> None:
    for i in range(10):
        write(h.local / f"f{i}.txt", str(i))
    sync_in_process(h.local, h.remote, h.tmp / "state")


def test_a_refusal_then_a_good_run_leaves_no_stale_reason(h: Harness) -> None:
    _ten_synced_files(h)
    for i in range(8):
        (h.local / f"f{i}.txt").unlink()
    r = h.runner(spec=f"local:{h.remote}")
    r.first_run()
    refused = h.board.last("docs")
    assert refused["state"] == "refused" and "would delete 8 of 10 files" in refused["reason"]
    for i in range(8):
        write(h.local / f"f{i}.txt", str(i))
    assert r.retry_at is not None
    h.tick(r, r.retry_at - h.now)
    assert h.board.last("docs")["state"] == "idle" and h.board.last("docs")["reason"] is None


def test_force_overrides_the_guards_for_the_first_run_only(h: Harness) -> None:
    _ten_synced_files(h)
    for i in range(8):
        (h.local / f"f{i}.txt").unlink()
    r = h.runner(spec=f"local:{h.remote}", force=True)
    r.first_run()
    assert h.board.last("docs")["state"] == "idle"
    assert sorted(p.name for p in h.remote.iterdir()) == ["f8.txt", "f9.txt"]
    assert not r.force, "later runs are guarded again"


def test_a_failed_item_holds_nothing_and_is_retried_by_a_whole_run_soon(h: Harness,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pair_module, "backoff_delay", lambda attempt, *, base, cap: 5.0)
    write(h.local / "a.txt", "a")
    r = h.runner()
    r.first_run()
    provider = h.opener.opened[0]
    provider.refuse = {"big.iso"}
    write(h.local / "big.iso", "too big")
    r.on_local_change({"big.iso"}, False)
    h.tick(r, 0.1)
    failed = h.board.last("docs")
    assert failed["state"] == "error" and "big.iso: quota exceeded" in failed["reason"]
    assert r.retry_at is None and r.next_full == pytest.approx(h.now + 5.0), "a whole run comes sooner"
    write(h.local / "other.txt", "other")
    r.on_local_change({"other.txt"}, False)
    h.tick(r, 0.1)
    assert (h.remote / "other.txt").exists(), "other changes keep flowing"
    assert h.board.last("docs")["state"] == "error", "the failed item still waits"
    provider.refuse = set()
    h.tick(r, 5.0)
    assert (h.remote / "big.iso").exists()
    assert h.board.last("docs")["state"] == "idle" and h.board.last("docs")["reason"] is None


class PlainOpener(Opener):
    """Local folders without a change feed: a poll compares the listing with the base."""

    def __call__(self, spec: str, config_path: str | None) -> tuple[FeedProvider, str]:
        provider, canonical = super().__call__(spec, config_path)
        provider.capabilities = dataclasses.replace(provider.capabilities, change_feed=False)
        return provider, canonical


def test_a_poll_without_a_feed_finds_what_the_listing_changed(h: Harness) -> None:
    h.opener = PlainOpener(h.remote)
    for name in ("keep.txt", "edit.txt", "gone.txt", "skip.tmp"):
        # aged: a row recorded within a clock tick of its file's mtime is racy and
        # rightly compared again by the next poll; this test is about quiet ones
        os.utime(write(h.local / name, name), (time.time() - 60, time.time() - 60))
    r = h.runner(excludes=["*.tmp"])
    r.first_run()
    provider = h.opener.opened[0]
    assert not (h.remote / "skip.tmp").exists(), "excluded"
    provider.calls.update({k: 0 for k in provider.calls})
    h.poll(r)
    assert provider.calls["list"] == 1 and provider.calls["changes"] == 0
    assert h.board.last("docs")["state"] == "idle"
    synced = len([s for s in h.board.states if s["state"] == "syncing"])
    h.poll(r)
    assert len([s for s in h.board.states if s["state"] == "syncing"]) == synced, "a quiet poll syncs nothing"
    write(h.remote / "edit.txt", "edited in the cloud")
    (h.remote / "gone.txt").unlink()
    write(h.remote / "new/deep.txt", "new")
    write(h.remote / "other.tmp", "ignored")
    h.poll(r)
    assert (h.local / "edit.txt").read_text() == "edited in the cloud"
    assert not (h.local / "gone.txt").exists() and (h.local / "new/deep.txt").exists()
    assert not (h.local / "other.tmp").exists(), "excluded on the remote side too"


def test_a_whole_run_puts_the_next_poll_off(h: Harness) -> None:
    r = h.runner()
    r.first_run()
    h.now += 29.0
    r.true_up()
    r.step(h.now)
    assert r.next_poll == pytest.approx(h.now + 30.0), "the whole run just compared the remote"


def test_names_the_other_side_cannot_hold_are_listed_until_they_are_gone(h: Harness) -> None:
    write(h.local / "fine.txt", "fine")
    bad = os.path.join(os.fsencode(h.local), b"bad-\xff.txt")
    with open(bad, "wb") as f:
        f.write(b"not utf-8")
    r = h.runner()
    r.first_run()
    last = h.board.last("docs")
    assert last["state"] == "idle" and (h.remote / "fine.txt").exists(), "the rest is synced, the pair goes on"
    assert last["skipped"] == ["bad-\\xff.txt"], "listed, escaped"
    write(h.local / "more.txt", "more")
    r.on_local_change({"more.txt"}, False)
    h.tick(r, 0.1)
    assert h.board.last("docs")["skipped"] == ["bad-\\xff.txt"], "a partial run does not forget it"
    os.unlink(bad)
    r.true_up()
    h.tick(r, 0.1)
    assert h.board.last("docs")["skipped"] == [], "a whole run without it clears it"
