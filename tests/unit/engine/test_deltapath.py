"""The engine's delta path, driven through the local provider with
`--delta always`: bytes on the wire are the delta's, results are verified,
failures fall back to whole files."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO, Any

import pytest

from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import ANY, Expect, RemoteEntry
from syncagent.providers.local import LocalProvider
from tests.helpers import tree, write

SIZE = 4 << 20


def run(local: Path, provider: LocalProvider, state: Path, delta: str = "always") -> tuple[Summary, str]:
    err = io.StringIO()
    store = Store(state)
    try:
        summary = Engine(local, provider, "delta-test", store, SyncOptions(delta=delta),
                         Reporter(out=io.StringIO(), err=err)).sync()
    finally:
        store.close()
    return summary, err.getvalue()


def edit_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[SIZE // 2: SIZE // 2 + 11] = b"hello world"
    path.write_bytes(bytes(data))


def test_upload_sends_only_the_delta(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "disk.img", os.urandom(SIZE))
    provider = LocalProvider(remote)
    run(local, provider, tmp_path / "s")
    edit_middle(local / "disk.img")
    summary, _ = run(local, provider, tmp_path / "s")
    assert summary.uploaded == 1 and summary.errors == 0
    assert summary.bytes_uploaded == SIZE
    assert 0 < summary.bytes_sent < 64 << 10, f"sent {summary.bytes_sent} bytes for an 11-byte change"
    assert tree(local) == tree(remote)


def test_download_receives_only_the_delta(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "disk.img", os.urandom(SIZE))
    provider = LocalProvider(remote)
    run(local, provider, tmp_path / "s")
    edit_middle(remote / "disk.img")
    summary, _ = run(local, provider, tmp_path / "s")
    assert summary.downloaded == 1 and summary.errors == 0
    assert 0 < summary.bytes_received < 64 << 10
    assert tree(local) == tree(remote)


def test_auto_sends_whole_files_to_a_local_folder(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "disk.img", os.urandom(SIZE))
    provider = LocalProvider(remote)
    run(local, provider, tmp_path / "s", "auto")
    edit_middle(local / "disk.img")
    summary, _ = run(local, provider, tmp_path / "s", "auto")
    assert summary.bytes_sent == SIZE, "on a local disk a delta costs more than a copy"


class CorruptingPatch(LocalProvider):
    def patch(self, path: str, delta_stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        entry = super().patch(path, delta_stream, size, mtime_ns, expect=expect)
        with open(self.fspath(path), "r+b") as f:
            f.write(b"CORRUPTED")
        return entry


def test_a_bad_patch_falls_back_to_the_whole_file(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "disk.img", os.urandom(SIZE))
    provider = CorruptingPatch(remote)
    run(local, provider, tmp_path / "s")
    edit_middle(local / "disk.img")
    summary, warnings = run(local, provider, tmp_path / "s")
    assert summary.errors == 0 and "delta upload failed" in warnings
    assert tree(local) == tree(remote), "the fallback must leave a correct file"


def test_auto_mode_over_a_local_pair_sends_whole_files_without_loading_librsync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In auto mode a delta pays off only where bytes are expensive (DeltaPath.wanted): a local pair
    never builds the delta path, so its library is not loaded; `always` still builds it."""
    from syncagent.engine import deltapath

    built: list[str] = []
    real_init = deltapath.DeltaPath.__init__

    def counting_init(self: deltapath.DeltaPath, *args: Any, **kwargs: Any) -> None:
        built.append(args[2])
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(deltapath.DeltaPath, "__init__", counting_init)
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "disk.img", os.urandom(SIZE))
    provider = LocalProvider(remote)
    run(local, provider, tmp_path / "s", delta="auto")
    edit_middle(local / "disk.img")
    summary, _ = run(local, provider, tmp_path / "s", delta="auto")
    assert summary.uploaded == 1 and summary.bytes_sent == SIZE and built == []
    data = bytearray((local / "disk.img").read_bytes())
    data[:5] = b"again"
    (local / "disk.img").write_bytes(bytes(data))
    summary, _ = run(local, provider, tmp_path / "s", delta="always")
    assert summary.uploaded == 1 and 0 < summary.bytes_sent < 64 << 10 and built == ["always"]
