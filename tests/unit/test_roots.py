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
    real_samefile = os.path.samefile
    monkeypatch.setattr(os.path, "samefile", lambda x, y: {Path(x), Path(y)} == {a, b} or real_samefile(x, y))
    assert "same folder" in refused(a, b)


def test_a_state_dir_inside_a_root(tmp_path: Path) -> None:
    msg = refused(tmp_path / "a", tmp_path / "b", tmp_path / "b/.state")
    assert "state dir" in msg and "--state-dir" in msg
    refused(tmp_path / "a", None, tmp_path / "a/.state")
    roots.check_pair(tmp_path / "a", None, tmp_path / "state")
