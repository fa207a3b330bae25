"""Overlapping roots: refused before anything is created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncagent import roots
from syncagent.errors import UsageError


def refused(local: Path, remote: Path | None, state: Path | None = None) -> str:
    with pytest.raises(UsageError) as info:
        roots.check_pair(local, str(remote) if remote else None, state)
    return str(info.value)


def test_same_inside_and_outside(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    assert "same folder" in refused(a, a)
    assert "remote folder is inside the local folder" in refused(a, a / "backup")
    assert "local folder is inside the remote folder" in refused(a / "sub", a)
    roots.check_pair(a, str(tmp_path / "b"), tmp_path / "state")
    roots.check_pair(a, str(tmp_path / "ab"), None)   # a prefix of the name is not a parent


def test_an_alias_through_a_link_even_below_a_missing_tail(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    (tmp_path / "link").symlink_to(a)
    assert "same folder" in refused(a, tmp_path / "link")
    assert "inside" in refused(a, tmp_path / "link/not/yet/there")
    assert not (a / "not").exists()


def test_a_bind_mount_like_alias_is_found_by_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    # two folders the filesystem reports as one (what os.path.samefile compares: device and inode)
    alias = {(st.st_dev, st.st_ino) for st in (a.stat(), b.stat())}
    real_samestat = os.path.samestat
    monkeypatch.setattr(os.path, "samestat", lambda x, y: {(x.st_dev, x.st_ino), (y.st_dev, y.st_ino)} == alias
                        or real_samestat(x, y))
    assert "same folder" in refused(a, b)


def test_a_state_dir_inside_a_root(tmp_path: Path) -> None:
    msg = refused(tmp_path / "a", tmp_path / "b", tmp_path / "b/.state")
    assert "state dir" in msg and "--state-dir" in msg
    refused(tmp_path / "a", None, tmp_path / "a/.state")
    roots.check_pair(tmp_path / "a", None, tmp_path / "state")
