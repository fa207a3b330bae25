from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from syncagent import hashing


class SizeMtime:
    """A kind that depends on the file's metadata, like MEGA's fingerprint."""

    def __init__(self, *, size: int, mtime_ns: int) -> None:
        self.size, self.mtime_ns, self.seen = size, mtime_ns, 0

    def update(self, data: bytes, /) -> None:
        self.seen += len(data)

    def hexdigest(self) -> str:
        return f"{self.size}:{self.seen}:{self.mtime_ns}"


def test_builtin_kinds_match_hashlib_in_one_read(tmp_path: Path) -> None:
    data = os.urandom(3 * hashing.CHUNK + 17)
    f = tmp_path / "f"
    f.write_bytes(data)
    got = hashing.hash_file(f, ["sha256", "sha1", "md5"])
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
                   "md5": hashlib.md5(data).hexdigest()}


def test_a_registered_kind_gets_size_and_mtime(tmp_path: Path) -> None:
    hashing.register_hasher("test-stat", SizeMtime, needs_stat=True)
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    os.utime(f, ns=(5, 1_234_000_000_000))
    assert hashing.hash_one(f, "test-stat") == "10:10:1234000000000"
    assert hashing.known("test-stat") and not hashing.known("nope") and not hashing.known(None)


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no local hasher"):
        hashing.new_hasher("whirlpool-9")
