"""QuickXorHash against the spec's vectors (§7.2: rclone's suite and computed ones)
and a bit-by-bit reference, whatever the update sizes."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.providers.onedrive.quickxor import PIECE, QuickXorHash, b64_to_hex

VECTORS = [  # (input as base64, quickXorHash)
    ("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("Sg==", "SgAAAAAAAAAAAAAAAQAAAAAAAAA="),
    ("tbQ=", "taAFAAAAAAAAAAAAAgAAAAAAAAA="),
    ("0pZP", "0rDEEwAAAAAAAAAAAwAAAAAAAAA="),
    ("2fuxhBJXtpWFe8dOfdGeHw==", "O9tHLAghgSvYohKFyMMxnNCHaHg="),
    ("T6LYJIfDh81JrAK309H2JMJTXis=", "zBTHrspn3mEcohlJdIUAbjGNaNg="),
]

TEXT_VECTORS = [  # (input, quickXorHash, hex)
    (b"a", "YQAAAAAAAAAAAAAAAQAAAAAAAAA=", "6100000000000000000000000100000000000000"),
    (b"abc", "YRDDGAAAAAAAAAAAAwAAAAAAAAA=", "6110c31800000000000000000300000000000000"),
    (b"Hello, World!", "SCgDG9jwBhaA4ApvnQMbyBACAAA=", "4828031bd8f0061680e00a6f9d031bc810020000"),
    (b"The quick brown fox jumps over the lazy dog", "bMSlbysmxJL6S75XwfMcQZOpcr4=",
     "6cc4a56f2b26c492fa4bbe57c1f31c4193a972be"),
    (b"a" * 1000, "cIADHOAABzjAAQ5waAAcgQhEIAI=", "7080031ce0000738c0010e7068001c8108442002"),
    (bytes(range(256)) * 4, "h7xr2dbCayZCQYR9KKhlwDuT4UI=", "87bc6bd9d6c26b264241847d28a865c03b93e142"),
    (bytes(1 << 20), "AAAAAAAAAAAAAAAAAAAQAAAAAAA=", "0000000000000000000000000000100000000000"),
]


def reference(data: bytes) -> bytes:
    """The spec's big-integer sketch, one byte at a time."""
    register = 0
    for i, b in enumerate(data):
        wide = b << (11 * i) % 160
        register ^= (wide & (2 ** 160 - 1)) ^ (wide >> 160)
    out = bytearray(register.to_bytes(20, "little"))
    for i, b in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= b
    return bytes(out)


@pytest.mark.parametrize(("given_b64", "expected"), VECTORS)
def test_rclone_vectors(given_b64: str, expected: str) -> None:
    assert QuickXorHash(base64.b64decode(given_b64)).b64digest() == expected


@pytest.mark.parametrize(("data", "expected", "hexa"), TEXT_VECTORS)
def test_text_vectors(data: bytes, expected: str, hexa: str) -> None:
    h = QuickXorHash()
    h.update(data)
    assert h.b64digest() == expected
    assert h.hexdigest() == hexa
    assert b64_to_hex(expected) == hexa


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 400), max_size=20))
def test_any_split_matches_the_reference(data: bytes, cuts: list[int]) -> None:
    h = QuickXorHash()
    at = 0
    for cut in cuts:
        h.update(data[at:at + cut])
        at += cut
    h.update(data[at:])
    assert h.digest() == reference(data)


@pytest.mark.parametrize("size", [PIECE - 1, PIECE, PIECE + 1, 2 * PIECE + 161])
def test_piece_boundaries(size: int) -> None:
    data = os.urandom(size)
    split = QuickXorHash()
    split.update(memoryview(data)[:7])
    copy = split.copy()
    split.update(memoryview(data)[7:])
    assert split.digest() == QuickXorHash(data).digest() == reference(data)
    copy.update(data[7:])
    assert copy.digest() == split.digest()


def test_b64_to_hex_refuses_garbage() -> None:
    assert b64_to_hex("not base64!") is None
    assert b64_to_hex(base64.b64encode(b"short").decode()) is None
