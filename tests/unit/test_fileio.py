"""fileio: the system calls the engine makes durable writes with."""

from __future__ import annotations

import ctypes.util
import subprocess
from pathlib import Path

import pytest

from syncagent import fileio


def test_syncfs_finds_the_c_library_without_running_a_program(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("ctypes.util.find_library runs /sbin/ldconfig -p: a first sync paid for it")

    monkeypatch.setattr(fileio, "_libc", None)
    monkeypatch.setattr(ctypes.util, "find_library", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    (tmp_path / "staged").write_bytes(b"x")
    fileio.syncfs(tmp_path)
    assert fileio._libc is not None and hasattr(fileio._libc, "syncfs")
