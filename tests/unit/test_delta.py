"""The librsync binding: byte for byte against the `rdiff` command of the
same librsync, the SmartFile sync-API vectors (specs/smartfile.md §9.7,
librsync 0.9.7 MD4 format), any kind of stream, clear errors, threads."""

from __future__ import annotations

import base64
import ctypes
import io
import os
import random
import shutil
import struct
import subprocess
import threading
from pathlib import Path
from typing import IO, Any, cast

import pytest

from syncagent import delta
from syncagent.errors import SyncAgentError

needs_rdiff = pytest.mark.skipif(shutil.which("rdiff") is None,
                                 reason="rdiff is missing (the test command installs it: apt-get install rdiff)")

rng = random.Random(4)
MIB = 1 << 20


def io_(stream: object) -> IO[bytes]:
    """Our test doubles are binary streams, though not typing.IO subclasses."""
    return cast(IO[bytes], stream)


def rdiff(*args: str | Path) -> None:
    subprocess.run(["rdiff", "-f", *map(str, args)], check=True, capture_output=True)


def changed(basis: bytes) -> bytes:
    """An edit in the middle, bytes appended: what a changed file looks like."""
    new = bytearray(basis + rng.randbytes(333))
    if len(basis) > 2000:
        new[len(basis) // 2: len(basis) // 2 + 11] = b"hello world"
    return bytes(new)


CASES: dict[str, tuple[bytes, bytes]] = {
    "empty": (b"", b"new content"),
    "empty-to-empty": (b"", b""),
    "one-byte": (b"x", b"y"),
    "odd-size": (rng.randbytes(10_007), b""),
    "mid-change-3mib": (rng.randbytes(3 * MIB), b""),
}


def case(name: str) -> tuple[bytes, bytes]:
    basis, new = CASES[name]
    return basis, (new if new or name == "empty-to-empty" else changed(basis))


@needs_rdiff
@pytest.mark.parametrize("hash_name", ["blake2", "md4"])
@pytest.mark.parametrize("name", list(CASES))
def test_interoperates_with_rdiff(tmp_path: Path, hash_name: delta.HashName, name: str) -> None:
    basis, new = case(name)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(basis)
    b.write_bytes(new)
    block, strong = delta.default_params(len(basis), hash_name)
    # the classic rollsum: RS_MD4_SIG_MAGIC / RS_BLAKE2_SIG_MAGIC
    rdiff("-H", hash_name, "-R", "rollsum", "-b", str(block), "-S", str(strong), "signature", a, tmp_path / "r.sig")
    with open(a, "rb") as f, open(tmp_path / "o.sig", "wb") as out:
        delta.signature(f, out, hash=hash_name)
    assert (tmp_path / "o.sig").read_bytes() == (tmp_path / "r.sig").read_bytes()

    with open(tmp_path / "o.sig", "rb") as sig, open(b, "rb") as f, open(tmp_path / "o.delta", "wb") as out:
        delta.delta(sig, f, out)
    rdiff("patch", a, tmp_path / "o.delta", tmp_path / "r.out")
    assert (tmp_path / "r.out").read_bytes() == new

    rdiff("delta", tmp_path / "r.sig", b, tmp_path / "r.delta")
    assert (tmp_path / "o.delta").read_bytes() == (tmp_path / "r.delta").read_bytes()
    with open(a, "rb") as f, open(tmp_path / "r.delta", "rb") as d, open(tmp_path / "o.out", "wb") as out:
        delta.patch(f, d, out)
    assert (tmp_path / "o.out").read_bytes() == new


@needs_rdiff
def test_rdiff_default_signatures_are_accepted(tmp_path: Path) -> None:
    """rdiff's defaults (RabinKarp + BLAKE2, 32-byte sums) and explicit sizes."""
    basis = rng.randbytes(MIB + 77)
    new = changed(basis)
    (tmp_path / "a").write_bytes(basis)
    for extra in ([], ["-H", "md4", "-b", "700", "-S", "5"]):
        rdiff(*extra, "signature", tmp_path / "a", tmp_path / "r.sig")
        out = io.BytesIO()
        with open(tmp_path / "r.sig", "rb") as sig:
            delta.delta(sig, io.BytesIO(new), out)
        (tmp_path / "o.delta").write_bytes(out.getvalue())
        rdiff("patch", tmp_path / "a", tmp_path / "o.delta", tmp_path / "r.out")
        assert (tmp_path / "r.out").read_bytes() == new
        assert len(out.getvalue()) < 10_000


@needs_rdiff
@pytest.mark.parametrize("size", [0, 1, 256 * 256, 256 * 256 + 1, 5 * MIB + 3])
def test_default_params_are_rdiffs_recommendation(tmp_path: Path, size: int) -> None:
    (tmp_path / "a").write_bytes(b"\0" * size)
    # block 0 = recommended, strong -1 = the minimum safe length
    rdiff("-H", "md4", "-R", "rollsum", "-S", "-1", "signature", tmp_path / "a", tmp_path / "r.sig")
    _, block, strong = struct.unpack(">III", (tmp_path / "r.sig").read_bytes()[:12])
    assert delta.default_params(size, "md4") == (block, strong)


@pytest.mark.parametrize("hash_name", ["blake2", "md4"])
def test_fallback_rule_matches_rs_sig_args(hash_name: delta.HashName) -> None:
    # up to 2**60: beyond 2**62 librsync's int rs_long_sqrt overflows
    sizes = [-1, 0, 1, 255, 256 * 256, 256 * 256 + 1, 10**6, 2**30, 2**30 + 12345, 10**12, 2**50, 2**60]
    sizes += [rng.randrange(2**40) for _ in range(200)]
    for size in sizes:
        assert delta._sig_args_rule(size, hash_name) == delta.default_params(size, hash_name), size


def test_parameters_follow_the_basis_size() -> None:
    basis = rng.randbytes(MIB)
    sig = io.BytesIO()
    delta.signature(io.BytesIO(basis), sig)  # seekable: measured
    assert struct.unpack(">III", sig.getvalue()[:12]) == (0x72730137, *delta.default_params(MIB))
    sig = io.BytesIO()
    delta.signature(io_(Trickle(basis)), sig)  # not seekable, size unknown: librsync's defaults
    assert struct.unpack(">III", sig.getvalue()[:12]) == (0x72730137, 2048, 12)
    sig = io.BytesIO()
    delta.signature(io_(Trickle(basis)), sig, hash="md4", basis_size=MIB, block_len=4096)
    assert struct.unpack(">III", sig.getvalue()[:12]) == (0x72730136, 4096, delta._sig_args(MIB, "md4", 4096)[1])


# ---- SmartFile sync-API vectors, specs/smartfile.md §9.7 ---------------------------------------

A = b"This is a test file.\nIt will be used with the sync client."
B = b"It will be used with the sync client.\nThis is a test file."
C = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
D = C[:32] + b"INSERTED" + C[32:]


def test_smartfile_vector_1() -> None:
    sig = io.BytesIO()
    delta.signature(io.BytesIO(A), sig, hash="md4", block_len=2048, strong_len=8)
    assert sig.getvalue().hex() == "72730136" "00000800" "00000008" "16fc1b27" "0d08b68ae16ca468"
    assert base64.b64encode(sig.getvalue()) == b"cnMBNgAACAAAAAAIFvwbJw0ItorhbKRo"
    sig.seek(0)
    diff = io.BytesIO()
    delta.delta(sig, io.BytesIO(B), diff)
    assert diff.getvalue() == bytes.fromhex("72730236 3a") + B + b"\0"  # librsync 2.x: one-byte literal op
    old_style = base64.b64decode("cnMCNkE6SXQgd2lsbCBiZSB1c2VkIHdpdGggdGhlIHN5bmMgY2xpZW50LgpUaGlzIGlzIGEgdGVzdCBm"
                                 "aWxlLgA=")  # 0.9.7: LITERAL_N1 (0x41 0x3a)
    for d in (diff.getvalue(), old_style):
        out = io.BytesIO()
        delta.patch(io.BytesIO(A), io.BytesIO(d), out)
        assert out.getvalue() == B


def test_smartfile_vector_2() -> None:
    sig = io.BytesIO()
    delta.signature(io.BytesIO(C), sig, hash="md4", block_len=16, strong_len=8)
    assert base64.b64encode(sig.getvalue()) == (
        b"cnMBNgAAABAAAAAINagGeESZbmxeDhn5PqYHnCilT6bC4uVpSdgI2D0+AUt1MlGaO1QGOQyfu3uZ8mrO")
    sig.seek(0)
    diff = io.BytesIO()
    delta.delta(sig, io.BytesIO(D), diff)
    assert diff.getvalue().hex() == "72730236" "450020" "08494e534552544544" "452020" "00"
    old_style = base64.b64decode("cnMCNkUAIEEISU5TRVJURURFICAA")
    assert old_style.hex() == "72730236" "450020" "4108494e534552544544" "452020" "00"
    for d in (diff.getvalue(), old_style):
        out = io.BytesIO()
        delta.patch(io.BytesIO(C), io.BytesIO(d), out)
        assert out.getvalue() == D


def test_smartfile_empty_file_signature() -> None:
    sig = io.BytesIO()
    delta.signature(io.BytesIO(b""), sig, hash="md4", block_len=2048, strong_len=8)
    assert base64.b64encode(sig.getvalue()) == b"cnMBNgAACAAAAAAI"


# ---- streams ---------------------------------------------------------------------------------

class Trickle(io.RawIOBase):
    """A pipe-like stream: short reads, no fileno, not seekable."""

    def __init__(self, data: bytes, chunk: int = 1000) -> None:
        self.data, self.pos, self.chunk = data, 0, chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.chunk, len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class ReadOnly:
    """Only .read(): no readinto, no fileno."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.inner.read(n)


class ShortWriter(io.RawIOBase):
    """Takes at most 777 bytes per write, as a raw stream may."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        taken = bytes(b[:777])
        self.data += taken
        return len(taken)


def test_any_stream_kind_round_trips() -> None:
    basis = rng.randbytes(700_000)
    new = changed(basis)
    sig = ShortWriter()
    delta.signature(io_(Trickle(basis)), io_(sig), basis_size=len(basis))
    diff = ShortWriter()
    delta.delta(io_(ReadOnly(bytes(sig.data))), io_(Trickle(new, 5000)), io_(diff))
    assert len(diff.data) < 5000, "an 11-byte change and 333 new bytes must give a small delta"
    out = ShortWriter()
    delta.patch(io.BytesIO(basis), io_(Trickle(bytes(diff.data), 3)), io_(out))
    assert out.data == new


def test_file_basis_keeps_its_position(tmp_path: Path) -> None:
    basis = rng.randbytes(MIB)
    new = changed(basis)
    (tmp_path / "a").write_bytes(basis)
    sig, diff, out = io.BytesIO(), io.BytesIO(), io.BytesIO()
    delta.signature(io.BytesIO(basis), sig)
    sig.seek(0)
    delta.delta(sig, io.BytesIO(new), diff)
    diff.seek(0)
    with open(tmp_path / "a", "rb") as f:
        assert f.read(10) == basis[:10]  # the buffered reader has read ahead
        delta.patch(f, diff, out)
        assert f.tell() == 10
        assert f.read() == basis[10:]
    assert out.getvalue() == new


def test_streams_are_left_at_their_ends(tmp_path: Path) -> None:
    basis = rng.randbytes(100_000)
    with open(tmp_path / "a", "w+b") as f, open(tmp_path / "s", "w+b") as s:
        f.write(b"HEADER" + basis)
        f.seek(6)  # starts where the caller's position is
        delta.signature(f, s)
        assert f.tell() == 6 + len(basis)
        assert s.tell() == s.seek(0, os.SEEK_END) > 12
        s.seek(0)
        expected = io.BytesIO()
        delta.signature(io.BytesIO(basis), expected)
        assert s.read() == expected.getvalue()


def test_threads_run_at_once() -> None:
    pairs = [(b, changed(b)) for b in (rng.randbytes(2 * MIB) for _ in range(4))]
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        basis, new = pairs[i]
        sig, diff, out = io.BytesIO(), io.BytesIO(), io.BytesIO()
        delta.signature(io.BytesIO(basis), sig, hash="md4" if i % 2 else "blake2")
        sig.seek(0)
        delta.delta(sig, io.BytesIO(new), diff)
        diff.seek(0)
        delta.patch(io.BytesIO(basis), diff, out)
        results[i] = out.getvalue()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results.get(i) for i in range(4)] == [new for _, new in pairs]


# ---- errors ----------------------------------------------------------------------------------

def _delta_of(basis: bytes, new: bytes) -> bytes:
    sig, diff = io.BytesIO(), io.BytesIO()
    delta.signature(io.BytesIO(basis), sig)
    sig.seek(0)
    delta.delta(sig, io.BytesIO(new), diff)
    return diff.getvalue()


def test_corrupt_input_is_a_clear_error(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    basis = rng.randbytes(50_000)
    good = _delta_of(basis, changed(basis))
    with pytest.raises(delta.DeltaError, match=r"bad magic.*got magic number 0x6e6f7420"):
        delta.patch(io.BytesIO(basis), io.BytesIO(b"not a delta at all"), io.BytesIO())
    with pytest.raises(delta.DeltaError, match="applying the delta: unexpected end of input"):
        delta.patch(io.BytesIO(basis), io.BytesIO(good[:-3]), io.BytesIO())
    with pytest.raises(delta.DeltaError, match="beyond the end of the basis"):
        delta.patch(io.BytesIO(basis[:100]), io.BytesIO(good), io.BytesIO())
    (tmp_path / "short").write_bytes(basis[:100])
    with open(tmp_path / "short", "rb") as f, pytest.raises(delta.DeltaError, match="unexpected eof"):
        delta.patch(f, io.BytesIO(good), io.BytesIO())
    with pytest.raises(delta.DeltaError, match="reading the signature"):
        delta.delta(io.BytesIO(b"rs\x016" + b"\xff" * 20), io.BytesIO(basis), io.BytesIO())
    with pytest.raises(delta.DeltaError, match="reading the signature"):  # a delta is no signature
        delta.delta(io.BytesIO(good), io.BytesIO(basis), io.BytesIO())
    assert issubclass(delta.DeltaError, SyncAgentError)
    assert capfd.readouterr().err == "", "librsync must not print on our stderr"


def test_stream_errors_propagate() -> None:
    class Failing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return True

        def seek(self, pos: int, whence: int = 0) -> int:
            return pos

        def readinto(self, b: Any) -> int:
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        delta.signature(io_(Failing()), io.BytesIO())
    basis = rng.randbytes(50_000)
    with pytest.raises(OSError, match="Input/output"):  # from inside librsync's copy callback
        delta.patch(io_(Failing()), io.BytesIO(_delta_of(basis, basis)), io.BytesIO())


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        delta.signature(io.BytesIO(b"x"), io.BytesIO(), hash="md4", block_len=2048, strong_len=17)
    with pytest.raises(ValueError):
        delta.signature(io.BytesIO(b"x"), io.BytesIO(), block_len=0, strong_len=8)
    with pytest.raises(ValueError):
        delta.signature(io.BytesIO(b"x"), io.BytesIO(), hash="sha1")  # type: ignore[arg-type]


def test_missing_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(name: str, *args: Any, **kwargs: Any) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(delta, "_lib", None)
    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert not delta.available()
    with pytest.raises(delta.DeltaUnavailable, match="apt-get install librsync2"):
        delta.signature(io.BytesIO(b""), io.BytesIO())
    assert issubclass(delta.DeltaUnavailable, SyncAgentError)

    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: object())  # a 0.9.x library lacks 1.0's API
    with pytest.raises(delta.DeltaUnavailable, match=r"older than 1\.0"):
        delta.default_params(1)
