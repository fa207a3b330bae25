"""A batch staged on a thread while the one before it is committed
(execute._Ahead, for a provider declaring `stage_ahead`): the same result as
one batch after the other, the journal keeps the next batch's intents while
the one before is cleared, and an error on either side leaves no temp."""

from __future__ import annotations

import dataclasses
import io
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from syncagent.engine import execute
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import LocalSource, RemoteEntry, StagedWrite
from syncagent.providers.local import LocalProvider
from tests.helpers import age_files, tree, write


def _sync(local: Path, provider: LocalProvider, store: Store) -> Summary:
    return Engine(local, provider, "x", store, SyncOptions(), Reporter(out=io.StringIO())).sync()


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".syncagent-")]


class Watched(LocalProvider):
    """Notes which threads stage and what the journal holds at each commit."""

    def __init__(self, root: Path, store: Store, pair: list[int]) -> None:
        super().__init__(root)
        self.store, self.pair_box = store, pair
        self.stagers: set[str] = set()
        self.journal_at_commit: list[int] = []
        self.fail_staging_at = 0
        self.stagings = 0

    def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception]:
        self.stagers.add(threading.current_thread().name)
        self.stagings += 1
        if self.stagings == self.fail_staging_at:
            raise RuntimeError("staging broke")
        return super().stage_copies(sources)

    def commit_staged(self, writes: Sequence[StagedWrite]) -> Sequence[RemoteEntry | Exception]:
        self.journal_at_commit.append(len(self.store.journal(self.pair_box[0])))
        return super().commit_staged(writes)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "BATCH_FILES", 7)


def _files(local: Path, n: int) -> None:
    for i in range(n):
        write(local / f"d{i % 4}" / f"f{i:03}.txt", f"file {i} " * (i + 1))
    age_files(local)


def _first_sync(tmp_path: Path, files: int) -> tuple[Path, Path, Summary]:
    """`files` files synced from nothing into a folder remote: (local, remote, summary)."""
    local, remote = tmp_path / "l", tmp_path / "r"
    _files(local, files)
    store = Store(tmp_path / "s")
    try:
        return local, remote, _sync(local, LocalProvider(remote), store)
    finally:
        store.close()


def test_batches_staged_ahead_give_what_one_after_the_other_gives(tmp_path: Path, small_batches: None) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    _files(local, 40)
    store = Store(tmp_path / "s")
    try:
        provider = Watched(remote, store, [0])
        engine = Engine(local, provider, "x", store, SyncOptions(), Reporter(out=io.StringIO()))
        provider.pair_box[0] = engine.pair
        first = engine.sync()
        assert first.uploaded == 40 and first.errors == 0 and first.exit_code == 0
        assert "stage-ahead" in provider.stagers, "later batches are staged on the stage-ahead thread"
        # at each commit: this batch's two rows (intents, then what is expected) and the intents
        # of the (up to) two batches after it, written before they began to stage
        assert provider.journal_at_commit == [4] * 4 + [3, 2]
        assert store.journal(engine.pair) == []
        assert len(store.load_base(engine.pair)) == 44      # 40 files and their 4 folders
        again = _sync(local, provider, store)
    finally:
        store.close()
    assert tree(local) == tree(remote) and not _temps(remote)
    assert again.uploaded == 0 and again.downloaded == 0 and again.conflicts == 0


def test_a_provider_that_does_not_declare_it_stages_one_batch_after_the_other(
        tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    _files(local, 20)
    store = Store(tmp_path / "s")
    try:
        provider = Watched(remote, store, [0])
        monkeypatch.setattr(provider, "capabilities", dataclasses.replace(LocalProvider.capabilities,
                                                                          stage_ahead=False))
        summary = _sync(local, provider, store)
    finally:
        store.close()
    assert summary.uploaded == 20 and provider.stagers == {threading.current_thread().name}
    assert tree(local) == tree(remote)


def _fails_then_converges(tmp_path: Path, break_it: Callable[[Watched], None], fix_it: Callable[[], None],
                          error: type[BaseException], match: str) -> None:
    """A run that breaks on the way raises its error and leaves no temp
    (what was staged ahead is thrown away); once fixed, a run converges."""
    local, remote = tmp_path / "l", tmp_path / "r"
    _files(local, 30)
    store = Store(tmp_path / "s")
    try:
        provider = Watched(remote, store, [0])
        break_it(provider)
        with pytest.raises(error, match=match):
            _sync(local, provider, store)
        assert not _temps(remote), "the batches staged ahead are thrown away"
        fix_it()
        again = _sync(local, provider, store)
    finally:
        store.close()
    assert again.errors == 0 and again.conflicts == 0
    assert tree(local) == tree(remote) and not _temps(remote)


def test_an_error_while_the_next_batch_stages_fails_the_run_and_leaves_no_temp(tmp_path: Path,
                                                                               small_batches: None) -> None:
    broken: list[Watched] = []

    def break_it(provider: Watched) -> None:
        provider.fail_staging_at = 3
        broken.append(provider)

    def fix_it() -> None:
        broken[0].fail_staging_at = 0

    _fails_then_converges(tmp_path, break_it, fix_it, RuntimeError, "staging broke")


def test_an_error_while_a_batch_commits_throws_away_the_batch_staged_ahead(
        tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = LocalProvider.commit_staged
    calls: list[int] = []

    def broken(self: LocalProvider, writes: Sequence[StagedWrite]) -> Sequence[RemoteEntry | Exception]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(5, "disk gone")
        return real(self, writes)

    _fails_then_converges(tmp_path, lambda provider: monkeypatch.setattr(LocalProvider, "commit_staged", broken),
                          lambda: monkeypatch.setattr(LocalProvider, "commit_staged", real), OSError, "disk gone")


def test_a_flush_that_fails_on_the_staging_thread_fails_the_run_and_leaves_no_temp(
        tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is flushed on its staging thread: the flush's error reaches the
    run, that batch and the one staged after it are thrown away, none committed."""
    real = LocalProvider.flush
    calls: list[str] = []

    def broken(self: LocalProvider) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self)

    _fails_then_converges(tmp_path, lambda provider: monkeypatch.setattr(LocalProvider, "flush", broken),
                          lambda: monkeypatch.setattr(LocalProvider, "flush", real), OSError, "No space left")
    assert set(calls[:2]) == {"stage-ahead"}


def test_the_staging_thread_only_copies(tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the native batch, the staging thread runs the copying alone: each
    batch's staged writes are made on the engine's thread."""
    from syncagent.engine import localcopy

    if localcopy.native() is None:
        pytest.skip("the native staging module is not built here")
    threads: dict[str, set[str]] = {"run": set(), "results": set()}
    for step in threads:
        original = getattr(localcopy.NativeCopies, step)

        def noted(self: localcopy.NativeCopies, _step: str = step,
                  _original: Callable[..., object] = original) -> object:
            threads[_step].add(threading.current_thread().name)
            return _original(self)

        monkeypatch.setattr(localcopy.NativeCopies, step, noted)
    local, remote, summary = _first_sync(tmp_path, 30)
    assert summary.uploaded == 30 and summary.errors == 0
    assert threads == {"run": {"stage-ahead"}, "results": {threading.current_thread().name}}
    assert tree(local) == tree(remote) and not _temps(remote)


def test_each_batch_is_flushed_after_its_copy(tmp_path: Path, small_batches: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every temp is made durable by a flush that began once it was written:
    the flush of the batch before must not take the next batch's temps (made
    ready while it copied, written while it flushes) for flushed."""
    from syncagent.engine import localcopy, localside

    if localcopy.native() is None:
        pytest.skip("the native staging module is not built here")
    monkeypatch.setattr(localside, "FSYNC_EACH_UP_TO", 10**6)   # each flush names its temps
    clock = itertools.count()
    copied: dict[str, int] = {}
    flushed: list[tuple[int, frozenset[str]]] = []
    real_run, real_flush = localcopy.NativeCopies.run, localside.LocalSide._flush

    def run(self: localcopy.NativeCopies) -> bool:
        time.sleep(0.05)   # a big batch's copy: the next batch is made ready meanwhile
        ok = real_run(self)
        tick = next(clock)
        copied.update((tmp, tick) for _, _, tmp in self._placed)
        return ok

    def flush(self: localside.LocalSide, staged: set[tuple[str, str]]) -> None:
        flushed.append((next(clock), frozenset(tmp for _, tmp in staged)))
        real_flush(self, staged)

    monkeypatch.setattr(localcopy.NativeCopies, "run", run)
    monkeypatch.setattr(localside.LocalSide, "_flush", flush)
    _, _, summary = _first_sync(tmp_path, 40)
    assert summary.uploaded == 40 and summary.errors == 0
    assert len(copied) == 40
    late = [tmp for tmp, tick in copied.items() if not any(t > tick and tmp in names for t, names in flushed)]
    assert not late, f"renamed into place with no flush after their copy: {late}"
