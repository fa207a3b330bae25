"""Reaching paths below a root without following links, and leaking nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncagent.engine import safedirs


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_missing_links_and_files_on_the_way_fail_cleanly(tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    before = _open_fds()
    with pytest.raises(FileNotFoundError):
        safedirs.open_dir(str(tmp_path), "a/missing/deeper")
    with pytest.raises(safedirs.LinkInTheWay):
        safedirs.open_dir(str(tmp_path), "link/b")
    with pytest.raises(safedirs.LinkInTheWay):
        safedirs.open_dir(str(tmp_path), "file/b")
    assert _open_fds() == before, "a descriptor leaked (or one was closed twice)"
    fd = safedirs.open_dir(str(tmp_path), "a/new/deep", create=True)
    os.close(fd)
    assert (tmp_path / "a/new/deep").is_dir()


def test_a_cached_folder_swapped_for_a_link_is_walked_again(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "outside").mkdir()
    root = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    cache = safedirs.DirCache(str(tmp_path))
    try:
        with safedirs.parent_in(cache, root, "sub/x.txt") as (fd, name):
            assert name == "x.txt" and os.fstat(fd).st_ino == (tmp_path / "sub").stat().st_ino
        (tmp_path / "sub").rename(tmp_path / "moved")
        (tmp_path / "sub").symlink_to(tmp_path / "outside")
        with pytest.raises(safedirs.LinkInTheWay), safedirs.parent_in(cache, root, "sub/x.txt"):
            pass
    finally:
        cache.close()
        os.close(root)
