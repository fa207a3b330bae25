"""The scenarios of ../shared/acceptance/test_sync.py, run by the engine
against every provider (remote-side edits go through the provider's API)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from syncagent.engine import Engine, SyncOptions
from syncagent.providers.base import Kind
from syncagent.reconcile import Mode
from syncagent.report import Reporter, Summary
from syncagent.state import Store
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
