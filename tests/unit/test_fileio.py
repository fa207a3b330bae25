"""fileio: the system calls the engine makes durable writes with."""

from __future__ import annotations

import ctypes.util
import errno
import os
import subprocess
from pathlib import Path

import pytest

from syncagent import fileio


@pytest.mark.parametrize("native", ["1", "0"])
def test_syncfs_finds_its_call_without_running_a_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         native: str) -> None:
    """The staging module's syncfs where it is built, else the C library's
    through ctypes, found without ldconfig; either flushes."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ctypes.util.find_library runs /sbin/ldconfig -p: a first sync paid for it")

    from syncagent.engine import localcopy

    monkeypatch.setenv("SYNCAGENT_NATIVE", native)
    monkeypatch.setattr(localcopy, "_loaded", [])
    monkeypatch.setattr(fileio, "_syncfs_found", None)
    monkeypatch.setattr(ctypes.util, "find_library", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    synced: list[int] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append(1))
    (tmp_path / "staged").write_bytes(b"x")
    fileio.syncfs(tmp_path)
    fn = fileio._syncfs_fn()
    assert fn is not None and synced == [], "syncfs itself ran, not the whole machine's sync"
    try:
        from syncagent.native import _stage  # type: ignore[attr-defined]
    except ImportError:
        _stage = None
    if native == "1" and _stage is not None:
        assert fn is _stage.syncfs
    else:
        assert isinstance(fn, ctypes._CFuncPtr)   # type: ignore[attr-defined]


@pytest.mark.parametrize("kernel", [True, False])
def test_copy_range_copies_up_to_its_limit_in_the_kernel_or_by_read_and_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool) -> None:
    if not kernel:   # two file systems that cannot copy between them: read and write take over
        def cannot(*args: object) -> int:
            raise OSError(errno.EXDEV, "cross-device")
        monkeypatch.setattr(os, "copy_file_range", cannot)
    data = os.urandom(3 * fileio.CHUNK + 5)
    (tmp_path / "src").write_bytes(data)
    for limit, expected in ((len(data) + 1, data), (10, data[:10]), (0, b"")):
        src = os.open(tmp_path / "src", os.O_RDONLY)
        dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            assert fileio.copy_range(src, dst, limit) == len(expected)
        finally:
            os.close(src)
            os.close(dst)
        assert (tmp_path / "dst").read_bytes() == expected
