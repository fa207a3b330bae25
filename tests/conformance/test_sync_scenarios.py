"""The scenarios of ../shared/acceptance/test_sync.py, run by the engine
against every provider (remote-side edits go through the provider's API)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from syncagent.engine.plan import Mode
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import Kind
from tests.conformance.providers import Target
from tests.helpers import tree, write


def sync(t: Target, local: Path, state: Path, **opts: object) -> Summary:
    store = Store(state)
    try:
        engine = Engine(local, t.provider, "conformance:remote", store, SyncOptions(**opts),  # type: ignore[arg-type]
                        Reporter(quiet=True))
        return engine.sync()
    finally:
        store.close()


def remote_tree(t: Target) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in t.provider.list():
        if e.kind is Kind.DIR:
            out[e.path] = "DIR"
        else:
            with t.provider.read(e.path) as f:
                out[e.path] = hashlib.sha256(f.read()).hexdigest()
    return out


def remote_put(t: Target, path: str, data: bytes) -> None:
    parent = path.rpartition("/")[0]
    if parent:
        t.provider.mkdir(parent)
    t.provider.write(path, io.BytesIO(data), len(data), 1_600_000_000_000_000_000)


def sha(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def test_initial_upload_and_noop(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    for n in ("a.txt", "dir/b.txt", "你好/p.py", "unicode-é-ü.md", "empty.bin"):
        write(local / n, "" if n == "empty.bin" else f"content of {n}")
    (local / "empty-dir").mkdir()
    s = sync(fresh_target, local, state)
    assert s.errors == 0 and s.uploaded == 5
    assert tree(local) == remote_tree(fresh_target)
    again = sync(fresh_target, local, state)
    assert not again.changed_anything()


def test_initial_download(fresh_target: Target, tmp_path: Path) -> None:
    fresh_target.provider.ensure_root()
    remote_put(fresh_target, "r/two.txt", b"remote two")
    remote_put(fresh_target, "one.txt", b"remote one")
    local, state = tmp_path / "local", tmp_path / "state"
    s = sync(fresh_target, local, state)
    assert s.errors == 0
    assert tree(local) == remote_tree(fresh_target)


def test_changes_both_ways_conflict_and_delete(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    for n in ("a.txt", "b.txt", "c.txt", "doc.txt", "x.txt"):
        write(local / n, f"base {n}")
    sync(fresh_target, local, state)
    write(local / "a.txt", "changed locally")
    remote_put(fresh_target, "b.txt", b"changed remotely")
    (local / "c.txt").unlink()
    write(local / "doc.txt", "local edit")
    remote_put(fresh_target, "doc.txt", b"remote edit")
    write(local / "x.txt", "edited x")
    fresh_target.provider.delete("x.txt")
    s = sync(fresh_target, local, state)
    assert s.errors == 0, s.error_list
    lt = tree(local)
    assert lt == remote_tree(fresh_target)
    assert lt["a.txt"] == sha("changed locally") and lt["b.txt"] == sha("changed remotely")
    assert "c.txt" not in lt and lt["x.txt"] == sha("edited x")
    assert {sha("local edit"), sha("remote edit")} <= set(lt.values())
    assert [p for p in lt if "conflict" in p]
    assert not sync(fresh_target, local, state).changed_anything()


def test_rename_is_a_move(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    write(local / "big/video.bin", b"v" * 300_000)
    sync(fresh_target, local, state)
    (local / "big/video.bin").rename(local / "big/renamed.bin")
    s = sync(fresh_target, local, state)
    assert s.moved == 1 and s.uploaded == 0
    assert tree(local) == remote_tree(fresh_target)


def test_upload_mode_mirrors(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    write(local / "a.txt", "a")
    sync(fresh_target, local, state, mode=Mode.UPLOAD)
    remote_put(fresh_target, "stray.txt", b"only on remote")
    s = sync(fresh_target, local, state, mode=Mode.UPLOAD)
    assert s.deleted_remote == 1 and tree(local) == remote_tree(fresh_target)


def test_big_delete_refused(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    for i in range(20):
        write(local / f"f{i}.txt", f"{i}")
    sync(fresh_target, local, state)
    for i in range(15):
        (local / f"f{i}.txt").unlink()
    s = sync(fresh_target, local, state)
    assert s.exit_code == 3 and len(remote_tree(fresh_target)) == 20
    assert sync(fresh_target, local, state, force=True).exit_code == 0
    assert len(remote_tree(fresh_target)) == 5


def test_mtime_preserved_both_ways(fresh_target: Target, tmp_path: Path) -> None:
    import os

    local, state = tmp_path / "local", tmp_path / "state"
    write(local / "old.txt", "old")
    os.utime(local / "old.txt", (1_000_000_000, 1_000_000_000))
    fresh_target.provider.ensure_root()
    remote_put(fresh_target, "older.txt", b"older")  # mtime 1_600_000_000 s
    sync(fresh_target, local, state)
    assert abs(fresh_target.provider.stat("old.txt").mtime_ns / 1e9 - 1_000_000_000) <= 2
    assert abs((local / "older.txt").stat().st_mtime - 1_600_000_000) <= 2
    assert not sync(fresh_target, local, state).changed_anything()


def test_dry_run_and_download_mode(fresh_target: Target, tmp_path: Path) -> None:
    local, state = tmp_path / "local", tmp_path / "state"
    write(local / "a.txt", "a")
    fresh_target.provider.ensure_root()
    remote_put(fresh_target, "r.txt", b"remote")
    before = remote_tree(fresh_target)
    s = sync(fresh_target, local, state, dry_run=True)
    assert s.uploaded == 1 and s.downloaded == 1 and remote_tree(fresh_target) == before
    assert set(tree(local)) == {"a.txt"}
    s = sync(fresh_target, local, state, mode=Mode.DOWNLOAD)
    assert remote_tree(fresh_target) == before, "download mode never writes the remote"
    assert tree(local) == before


def test_folder_deletion_and_small_edit_in_a_large_file(fresh_target: Target, tmp_path: Path) -> None:
    import os

    local, state = tmp_path / "local", tmp_path / "state"
    data = bytearray(os.urandom(3 << 20))
    write(local / "disk.img", bytes(data))
    write(local / "dir/x.txt", "x")
    write(local / "dir/sub/y.txt", "y")
    sync(fresh_target, local, state)
    data[1 << 20: (1 << 20) + 11] = b"hello world"
    write(local / "disk.img", bytes(data))
    import shutil

    shutil.rmtree(local / "dir")
    s = sync(fresh_target, local, state)
    assert s.errors == 0, s.error_list
    assert tree(local) == remote_tree(fresh_target)
    if fresh_target.provider.capabilities.delta and fresh_target.provider.capabilities.expensive_bytes:
        assert s.bytes_sent < 1 << 20, f"a delta was expected, {s.bytes_sent} bytes were sent"


def test_faults_during_a_sync_then_convergence(fresh_target: Target, tmp_path: Path) -> None:
    import pytest

    inject = fresh_target.quirks.inject
    if inject is None:
        pytest.skip("no transport to inject faults into")
    local, state = tmp_path / "local", tmp_path / "state"
    for i in range(12):
        write(local / f"d{i % 3}/f{i}.txt", f"content {i}" * 100)
    for kind in ("500", "reset", "429", "503"):
        inject(kind, 3)
    from syncagent.errors import ProviderError

    for _ in range(4):  # the faults outlast the retries of one run: it fails cleanly, a later one converges
        try:
            result = sync(fresh_target, local, state)
        except ProviderError:
            continue
        if result.errors == 0:
            break
    else:
        raise AssertionError("the sync never converged after the faults cleared")
    assert tree(local) == remote_tree(fresh_target)
    assert not sync(fresh_target, local, state).changed_anything()


def test_remote_rename_is_a_local_move(fresh_target: Target, tmp_path: Path) -> None:
    import pytest

    caps = fresh_target.provider.capabilities
    if not caps.ids and not caps.hash_kind:
        pytest.skip("neither ids nor content hashes: a remote rename is a delete plus a download")
    local, state = tmp_path / "local", tmp_path / "state"
    write(local / "big/video.bin", b"v" * 300_000)
    sync(fresh_target, local, state)
    ino = (local / "big/video.bin").stat().st_ino
    fresh_target.provider.move("big/video.bin", "big/renamed.bin")
    s = sync(fresh_target, local, state)
    assert s.errors == 0 and s.downloaded == 0 and s.moved == 1, s
    assert (local / "big/renamed.bin").stat().st_ino == ino
    assert tree(local) == remote_tree(fresh_target)
