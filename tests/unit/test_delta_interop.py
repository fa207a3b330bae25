"""The librsync binding against the `rdiff` command of the same librsync,
byte for byte, and against the published SmartFile sync-API vectors
(specs/smartfile.md §9.7, librsync 0.9.7 MD4 format)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncagent import delta

pytestmark = pytest.mark.skipif(shutil.which("rdiff") is None,
                                reason="rdiff is missing (`make test` installs it: apt-get install rdiff)")

ROLLSUM = {"blake2": "rabinkarp", "md4": "rollsum"}


def rdiff(*args: str) -> None:
    subprocess.run(["rdiff", "-f", *args], check=True, capture_output=True)


def make(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES = {
    "empty": (b"", b"new content"),
    "one-byte": (b"x", b"y"),
    "odd-size": (os.urandom(10_007), None),
    "mid-change": (os.urandom(3 << 20), None),
}


def _new(basis: bytes) -> bytes:
    changed = bytearray(basis + os.urandom(333))
    if len(changed) > 2000:
        changed[len(changed) // 2: len(changed) // 2 + 11] = b"hello world"
    return bytes(changed)


@pytest.mark.parametrize("hash_name", ["blake2", "md4"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_interoperates_with_rdiff(tmp_path: Path, hash_name: delta.HashName, case: str) -> None:
    basis, new = CASES[case]
    new = new if new is not None else _new(basis)
    a, b = make(tmp_path / "a", basis), make(tmp_path / "b", new)
    block, strong = delta.default_params(len(basis), hash_name)
    rdiff("-H", hash_name, "-R", ROLLSUM[hash_name], "-b", str(block), "-S", str(strong),
          "signature", str(a), str(tmp_path / "rdiff.sig"))
    with open(a, "rb") as f, open(tmp_path / "ours.sig", "wb") as out:
        delta.signature(f, out, hash=hash_name)
    assert (tmp_path / "ours.sig").read_bytes() == (tmp_path / "rdiff.sig").read_bytes()
    # our delta applies with rdiff patch
    with open(tmp_path / "ours.sig", "rb") as sig, open(b, "rb") as f, open(tmp_path / "ours.delta", "wb") as out:
        delta.delta(sig, f, out)
    rdiff("patch", str(a), str(tmp_path / "ours.delta"), str(tmp_path / "rdiff-patched"))
    assert (tmp_path / "rdiff-patched").read_bytes() == new
    # rdiff's delta applies with our patch
    rdiff("delta", str(tmp_path / "rdiff.sig"), str(b), str(tmp_path / "rdiff.delta"))
    with open(a, "rb") as f, open(tmp_path / "rdiff.delta", "rb") as d, open(tmp_path / "ours-patched", "wb") as out:
        delta.patch(f, d, out)
    assert (tmp_path / "ours-patched").read_bytes() == new


def test_in_memory_streams_work_too() -> None:
    basis = os.urandom(100_000)
    new = _new(basis)
    sig, diff, out = io.BytesIO(), io.BytesIO(), io.BytesIO()
    delta.signature(io.BytesIO(basis), sig, basis_size=len(basis))
    sig.seek(0)
    delta.delta(sig, io.BytesIO(new), diff)
    assert diff.tell() < 2000, "an 11-byte change must give a small delta"
    diff.seek(0)
    delta.patch(io.BytesIO(basis), diff, out)
    assert out.getvalue() == new


def test_smartfile_vector_1_signature() -> None:
    a = b"This is a test file.\nIt will be used with the sync client."
    sig = io.BytesIO()
    delta.signature(io.BytesIO(a), sig, hash="md4", block_len=2048, strong_len=8)
    assert base64.b64encode(sig.getvalue()) == b"cnMBNgAACAAAAAAIFvwbJw0ItorhbKRo"


def test_smartfile_vector_2_signature_and_delta() -> None:
    c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    d = c[:32] + b"INSERTED" + c[32:]
    sig = io.BytesIO()
    delta.signature(io.BytesIO(c), sig, hash="md4", block_len=16, strong_len=8)
    assert base64.b64encode(sig.getvalue()) == (
        b"cnMBNgAAABAAAAAINagGeESZbmxeDhn5PqYHnCilT6bC4uVpSdgI2D0+AUt1MlGaO1QGOQyfu3uZ8mrO")
    sig.seek(0)
    diff = io.BytesIO()
    delta.delta(sig, io.BytesIO(d), diff)
    assert diff.getvalue().hex() == "72730236450020" "08494e534552544544" "452020" "00"
    # the 0.9.7 encoding of the same delta (what an old server sends) applies too
    old_style = base64.b64decode("cnMCNkUAIEEISU5TRVJURURFICAA")
    out = io.BytesIO()
    delta.patch(io.BytesIO(c), io.BytesIO(old_style), out)
    assert out.getvalue() == d


def test_empty_file_signature_vector() -> None:
    sig = io.BytesIO()
    delta.signature(io.BytesIO(b""), sig, hash="md4", block_len=2048, strong_len=8)
    assert base64.b64encode(sig.getvalue()) == b"cnMBNgAACAAAAAAI"


def test_corrupt_delta_is_a_clear_error() -> None:
    with pytest.raises(delta.DeltaError):
        delta.patch(io.BytesIO(b"basis"), io.BytesIO(b"not a delta at all"), io.BytesIO())
