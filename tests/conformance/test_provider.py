"""ONE suite every provider passes, building remote state step by step
(the rclone fstests way). Steps skip by declared capability, never by
provider name; quirks come from tests/conformance/providers.py."""

from __future__ import annotations

import hashlib
import io
import os
import unicodedata
from typing import Any, cast

import pytest

from syncagent import errors
from syncagent.providers.base import ANY, Kind, RemoteEntry
from tests.conformance.providers import Target

HOSTILE = "hello? sausage/êé/Hello, 世界/ \" ' @ < > & + ≠/z.txt"


def hostile(t: Target) -> str:
    """HOSTILE without the characters the provider declares it cannot hold
    (and the spaces that would then end a name)."""
    bad = t.provider.capabilities.forbidden_chars
    return "/".join("".join(c for c in seg if c not in bad).strip() for seg in HOSTILE.split("/"))


def put(t: Target, path: str, data: bytes, mtime_ns: int = 1_500_000_000_000_000_000, **kw: object) -> RemoteEntry:
    parent = path.rpartition("/")[0]
    if parent:
        t.provider.mkdir(parent)
    return t.provider.write(path, io.BytesIO(data), len(data), mtime_ns, **kw)  # type: ignore[arg-type]


def get(t: Target, path: str) -> bytes:
    with t.provider.read(path) as f:
        return f.read()


class ReadLimited(io.RawIOBase):
    """A stream that records the largest single read: the provider must stream."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)
        self.max_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self.inner.read(len(b))
        self.max_read = max(self.max_read, len(chunk))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.usefixtures("target")
class TestSteps:
    """Ordered: each step relies on the state the previous ones built."""

    def test_01_root_and_empty_listing(self, target: Target) -> None:
        target.provider.ensure_root()
        assert target.provider.root_exists()
        assert list(target.provider.list()) == []

    def test_02_mkdir(self, target: Target) -> None:
        e = target.provider.mkdir("dir")
        assert e.kind is Kind.DIR
        target.provider.mkdir("a/b/c")  # parents too
        target.provider.mkdir("dir")    # again: fine
        kinds = {e.path: e.kind for e in target.provider.list()}
        assert kinds == {"dir": Kind.DIR, "a": Kind.DIR, "a/b": Kind.DIR, "a/b/c": Kind.DIR}

    def test_03_put_files(self, target: Target) -> None:
        big = os.urandom(target.quirks.chunk * 2 + 12345)
        files = {"dir/empty.bin": b"", "dir/one.bin": b"x", "dir/big.bin": big, hostile(target): "≠ hostile".encode()}
        for path, data in files.items():
            e = put(target, path, data)
            assert e.kind is Kind.FILE and e.size == len(data) and e.path == path

    def test_04_list_and_stat(self, target: Target) -> None:
        listing = {e.path: e for e in target.provider.list()}
        for path in ("dir/empty.bin", "dir/one.bin", "dir/big.bin", hostile(target)):
            assert listing[path].kind is Kind.FILE
            st = target.provider.stat(path)
            assert st.size == listing[path].size and st.rev == listing[path].rev
        assert listing[hostile(target).split("/")[0]].kind is Kind.DIR
        with pytest.raises(errors.NotFound):
            target.provider.stat("dir/missing.txt")

    def test_04b_listing_order(self, target: Target) -> None:
        """A provider that declares `sorted_listing` lists in ascending
        code-point order of the NFC path ("a", "a-b", "a/b": not depth-first)."""
        if not target.provider.capabilities.sorted_listing:
            pytest.skip("no sorted listing declared: the engine sorts")
        put(target, "a-b.txt", b"around the slash")
        try:
            keys = [unicodedata.normalize("NFC", e.path) for e in target.provider.list()]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
            assert keys.index("a") < keys.index("a-b.txt") < keys.index("a/b")
        finally:
            target.provider.delete("a-b.txt")

    def test_05_read_back(self, target: Target) -> None:
        assert get(target, "dir/empty.bin") == b""
        assert get(target, "dir/one.bin") == b"x"
        assert get(target, hostile(target)) == "≠ hostile".encode()
        with target.provider.read("dir/big.bin") as f:
            digest = hashlib.sha256()
            while chunk := f.read(1 << 16):
                digest.update(chunk)
        assert target.provider.stat("dir/big.bin").size == target.quirks.chunk * 2 + 12345
        with pytest.raises(errors.NotFound):
            target.provider.read("dir/missing.txt").close()

    def test_06_mtime_kept(self, target: Target) -> None:
        e = target.provider.stat("dir/one.bin")
        assert abs(e.mtime_ns - 1_500_000_000_000_000_000) <= target.quirks.mtime_precision_s * 1e9

    def test_07_overwrite_checks_rev(self, target: Target) -> None:
        old = target.provider.stat("dir/one.bin")
        new = put(target, "dir/one.bin", b"second version", 1_600_000_000_000_000_000, expect=old.rev)
        assert new.rev != old.rev and get(target, "dir/one.bin") == b"second version"
        with pytest.raises(errors.Conflict):
            put(target, "dir/one.bin", b"stale writer", expect=old.rev)
        with pytest.raises(errors.Conflict):
            put(target, "dir/one.bin", b"must not exist", expect=None)
        assert get(target, "dir/one.bin") == b"second version"

    def test_08_streaming_write(self, target: Target) -> None:
        data = os.urandom(target.quirks.chunk * 3)
        stream = ReadLimited(data)
        reader = io.BufferedReader(cast(Any, stream), 1 << 16)
        target.provider.write("dir/streamed.bin", reader, len(data), 0, expect=ANY)
        assert stream.max_read <= max(target.quirks.chunk, 1 << 20), "the provider read the whole file at once"
        assert get(target, "dir/streamed.bin") == data

    def test_09_move(self, target: Target) -> None:
        e = target.provider.move("dir/one.bin", "a/moved.bin")
        assert e.path == "a/moved.bin" and get(target, "a/moved.bin") == b"second version"
        with pytest.raises(errors.NotFound):
            target.provider.stat("dir/one.bin")
        with pytest.raises(errors.AlreadyExists):
            target.provider.move("dir/empty.bin", "a/moved.bin")
        target.provider.move("a/b", "dir/b-moved")
        assert target.provider.stat("dir/b-moved/c").kind is Kind.DIR

    def test_10_copy(self, target: Target) -> None:
        if not target.provider.capabilities.server_copy:
            pytest.skip("no server-side copy declared")
        target.provider.copy("a/moved.bin", "a/copied.bin")
        assert get(target, "a/copied.bin") == get(target, "a/moved.bin")

    def test_11_set_mtime(self, target: Target) -> None:
        if not target.provider.capabilities.set_mtime:
            pytest.skip("cannot set modification times")
        e = target.provider.set_mtime("dir/big.bin", 1_234_567_890_000_000_000)
        assert abs(e.mtime_ns - 1_234_567_890_000_000_000) <= target.quirks.mtime_precision_s * 1e9

    def test_12_delta(self, target: Target) -> None:
        if not target.provider.capabilities.delta:
            pytest.skip("no delta capability declared")
        from syncagent import delta

        basis = get(target, "dir/big.bin")
        changed = bytearray(basis)
        changed[1000:1011] = b"hello world"
        sig = io.BytesIO()
        target.provider.signature("dir/big.bin", sig)
        sig.seek(0)
        diff = io.BytesIO()
        delta.delta(sig, io.BytesIO(bytes(changed)), diff)
        assert diff.tell() < len(changed) // 4, "a small edit must give a small delta"
        diff.seek(0)
        target.provider.patch("dir/big.bin", diff, len(changed), 1_700_000_000_000_000_000)
        assert get(target, "dir/big.bin") == bytes(changed)
        # the download direction: the provider computes the delta from our signature
        local_sig = io.BytesIO()
        delta.signature(io.BytesIO(basis), local_sig, hash=target.provider.capabilities.delta_hash)
        local_sig.seek(0)
        back = io.BytesIO()
        target.provider.delta("dir/big.bin", local_sig, back)
        back.seek(0)
        out = io.BytesIO()
        delta.patch(io.BytesIO(basis), back, out)
        assert out.getvalue() == bytes(changed)

    def test_13_changes_or_listing_diff(self, target: Target) -> None:
        before = {e.path: e.rev for e in target.provider.list()}
        cursor = None
        if target.provider.capabilities.change_feed:
            cursor = target.provider.changes(None).cursor
        put(target, "dir/changed.txt", b"new file")
        target.provider.delete("dir/empty.bin")
        if cursor is not None:
            batch = target.provider.changes(cursor)
            paths = {c.path for c in batch.changes}
            assert {"dir/changed.txt", "dir/empty.bin"} <= paths
        after = {e.path: e.rev for e in target.provider.list()}
        assert set(after) - set(before) == {"dir/changed.txt"}
        assert set(before) - set(after) == {"dir/empty.bin"}

    def test_14_delete(self, target: Target) -> None:
        target.provider.delete("a/moved.bin")
        with pytest.raises(errors.NotFound):
            target.provider.stat("a/moved.bin")
        with pytest.raises(errors.NotFound):
            target.provider.delete("a/never-there.bin")
        with pytest.raises(errors.ProviderError):
            target.provider.delete("dir")  # not empty, not recursive
        target.provider.delete("dir", recursive=True)
        assert not [e for e in target.provider.list() if e.path == "dir" or e.path.startswith("dir/")]

    def test_15_faults_are_survived(self, target: Target) -> None:
        inject = target.quirks.inject
        if inject is None:
            pytest.skip("no transport to inject faults into")
        for kind in ("500", "429", "503", "reset"):
            inject(kind, 1)
            put(target, f"faults/{kind}.txt", kind.encode() * 1000)
            assert get(target, f"faults/{kind}.txt") == kind.encode() * 1000
