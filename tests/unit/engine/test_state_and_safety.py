"""State database migrations, the trash, and files changing mid-run."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from syncagent.engine import state
from syncagent.engine.records import Base
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import StateError, Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import ANY, Expect, LocalSource, StagedWrite
from syncagent.providers.local import LocalProvider
from tests.helpers import sync_cli, sync_in_process, tree, write


def test_migration_keeps_the_base(tmp_path: Path) -> None:
    """A database of schema 1 (no provider state, no hash cache) opens at the
    current schema with its base intact."""
    store = Store(tmp_path)
    pair = store.pair_id("/l", "local:/r")
    store.write_base(pair, [("a.txt", Base("file", 1, 2, 3, "h", "r", "i", None, 1, 2))], [])
    conn = store.db.connection()
    conn.executescript("DROP TABLE provider_state; DROP TABLE hash_cache; "
                       "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    store.close()
    store = Store(tmp_path)
    assert store.schema_version() == state.SCHEMA_VERSION
    assert store.load_base(pair)["a.txt"].hash == "h", "a migration must never drop the base"
    ps = store.provider_state(pair)
    ps.put("k", "v")
    ps.commit()
    assert store.read_provider_state(pair, "k") == "v"
    store.write_hash_cache(pair, [("a.txt", "sha256", 1, 2, 3, "h")])
    assert store.cached_hash(pair, "a.txt", "sha256", 1, 2, 3) == "h"
    assert store.cached_hash(pair, "a.txt", "sha256", 1, 2, 4) is None
    store.close()


def test_newer_schema_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(tmp_path).close()
    monkeypatch.setattr(state, "SCHEMA_VERSION", 0)
    with pytest.raises(StateError, match="newer syncagent"):
        Store(tmp_path)


def test_local_deletes_go_to_the_trash(tmp_path: Path) -> None:
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "keep.txt", "keep")
    write(local / "doomed.txt", "precious")
    sync_in_process(local, remote, st)
    (remote / "doomed.txt").unlink()
    sync_in_process(local, remote, st)
    assert not (local / "doomed.txt").exists()
    trashed = [p for p in (st / "trash").rglob("doomed.txt")]
    assert trashed and trashed[0].read_text() == "precious"


class SentAsBytes(LocalProvider):
    """A folder that takes uploads as bytes only: the engine's own read of a
    small file is what these tests watch (a folder on this machine otherwise
    copies a file that is not freshly written itself, tests/unit/engine/test_localcopy.py)."""

    def stage_copies(self, sources: Sequence[LocalSource]) -> None:  # type: ignore[override]  # (the interface allows None)
        return None


class EditedWhileRead(SentAsBytes):
    """Appends to the source file while its bytes are being read."""

    victim: Path | None = None

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY) -> StagedWrite:
        if self.victim is not None and path == self.victim.name:
            with open(self.victim, "ab") as f:
                f.write(b" and more typed during the upload")
        return super().stage_write(path, stream, size, mtime_ns, expect=expect)


def _sync(local: Path, provider: LocalProvider, store: Store) -> Summary:
    return Engine(local, provider, "x", store, SyncOptions(), Reporter(out=io.StringIO())).sync()


def test_a_big_file_written_while_it_is_read_is_left_for_the_next(tmp_path: Path) -> None:
    """A file streamed to the provider (1 MiB and more) and written to meanwhile."""
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    victim = write(local / "typing.txt", "first words " * 100_000)
    provider = EditedWhileRead(remote)
    provider.victim = victim
    store = Store(st)
    try:
        summary = _sync(local, provider, store)
        assert summary.changed_during_run == 1 and summary.exit_code == 0
        assert not (remote / "typing.txt").exists(), "a half-copied file reached the remote"
        provider.victim = None
        again = _sync(local, provider, store)
    finally:
        store.close()
    assert again.uploaded == 1 and tree(local) == tree(remote)


def test_a_small_file_written_while_it_is_read_is_left_for_the_next(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file is read whole (one read): a write during that read shows in
    the status of the descriptor after it, and nothing is sent."""
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    victim = write(local / "typing.txt", "first words")
    real_read = os.read

    def read_while_typing(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        if os.readlink(f"/proc/self/fd/{fd}") == str(victim):
            with open(victim, "ab") as f:
                f.write(b" and more typed during the read")
        return data

    store = Store(st)
    try:
        monkeypatch.setattr(os, "read", read_while_typing)
        summary = _sync(local, SentAsBytes(remote), store)
        monkeypatch.undo()
        assert summary.changed_during_run == 1 and summary.exit_code == 0
        assert not (remote / "typing.txt").exists(), "a file being written reached the remote"
        again = _sync(local, LocalProvider(remote), store)
    finally:
        store.close()
    assert again.uploaded == 1 and tree(local) == tree(remote)


def test_a_small_file_written_after_it_was_read_sends_what_was_read(tmp_path: Path) -> None:
    """Once a small file's bytes are read and checked, a later write does not
    tear them: they go as one whole version, and the newer one next run,
    with no conflict copy."""
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    victim = write(local / "typing.txt", "first words")
    provider = EditedWhileRead(remote)
    provider.victim = victim
    store = Store(st)
    try:
        summary = _sync(local, provider, store)
        assert summary.uploaded == 1 and summary.exit_code == 0
        assert (remote / "typing.txt").read_text() == "first words"
        provider.victim = None
        again = _sync(local, provider, store)
    finally:
        store.close()
    assert again.uploaded == 1 and again.conflicts == 0
    assert tree(local) == tree(remote) and (remote / "typing.txt").read_text().endswith("during the upload")


def test_a_damaged_state_database_is_a_clear_error_with_the_way_out(tmp_path: Path) -> None:
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    for i in range(2000):
        write(local / f"f{i}.txt", f"file {i}")
    assert sync_cli(local, remote, st).returncode == 0
    db = st / "state.db"
    with open(db, "r+b") as f:
        for offset in range(8192, db.stat().st_size, 3 * 4096):
            f.seek(offset)
            f.write(os.urandom(100))
    write(local / "new.txt", "new")
    r = sync_cli(local, remote, st)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "damaged" in r.stderr and "mv " in r.stderr
    assert not (remote / "new.txt").exists()


def test_a_sync_without_history_onto_two_filled_sides_says_so(tmp_path: Path) -> None:
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "a.txt", "a")
    write(remote / "b.txt", "b")
    r = sync_cli(local, remote, st)
    assert r.returncode == 0 and "no earlier sync of this pair is recorded" in r.stderr
    r = sync_cli(local, remote, st)
    assert "no earlier sync" not in r.stderr


class Stateful(LocalProvider):
    """Keeps a note per upload in its provider state, as a cloud provider keeps its id map."""

    committed = 0

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *, expect: Expect = ANY):  # type: ignore[no-untyped-def]
        self.pair.state.put(f"id/{path}", str(size))
        return super().write(path, stream, size, mtime_ns, expect=expect)

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,  # type: ignore[no-untyped-def]
                    expect: Expect = ANY):
        self.pair.state.put(f"id/{path}", str(size))
        return super().stage_write(path, stream, size, mtime_ns, expect=expect)

    def batch_committed(self) -> None:
        Stateful.committed += 1


def test_provider_state_is_committed_with_the_base_and_survives_a_restart(tmp_path: Path) -> None:
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "a.txt", "aaa")
    write(local / "b.txt", "bb")
    store = Store(st)
    try:
        Engine(local, Stateful(remote), "p", store, SyncOptions(), Reporter(out=io.StringIO())).sync()
    finally:
        store.close()
    assert Stateful.committed >= 1
    store = Store(st)
    try:
        pair = store.pair_id(str(local), "p")
        assert dict(store.provider_state(pair).items("id/")) == {"id/a.txt": "3", "id/b.txt": "2"}
    finally:
        store.close()
