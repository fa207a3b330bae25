"""MEGA's encodings (spec §2): URL-safe base64 without padding, a32 word
arrays, RSA integers as MPIs, and the SDK's compact little-endian integers."""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Sequence


class BadEncoding(ValueError):
    """A value from the wire that is not what its field should hold."""


def b64enc(data: bytes) -> str:
    """MEGA base64: the URL-safe alphabet, no '=' padding."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64dec(text: str) -> bytes:
    """Decode MEGA base64; tolerates the standard alphabet, padding and ','."""
    clean = text.strip().replace(",", "").replace("+", "-").replace("/", "_").rstrip("=")
    if len(clean) % 4 == 1:
        raise BadEncoding("base64 text of impossible length")
    try:
        return base64.urlsafe_b64decode(clean + "=" * (-len(clean) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadEncoding(f"not base64: {exc}") from None


def to_a32(data: bytes) -> tuple[int, ...]:
    """Big-endian 32-bit words, the last one zero-padded."""
    data = data + b"\0" * (-len(data) % 4)
    return struct.unpack(f">{len(data) // 4}I", data)


def from_a32(words: Sequence[int]) -> bytes:
    return struct.pack(f">{len(words)}I", *(w & 0xFFFFFFFF for w in words))


def read_mpis(data: bytes, count: int) -> tuple[list[int], bytes]:
    """`count` MPIs (2-byte bit count, then the big-endian bytes) and what follows them."""
    values: list[int] = []
    pos = 0
    for _ in range(count):
        if pos + 2 > len(data):
            raise BadEncoding("truncated MPI header")
        bits = int.from_bytes(data[pos:pos + 2], "big")
        size = (bits + 7) // 8
        if pos + 2 + size > len(data):
            raise BadEncoding("truncated MPI")
        values.append(int.from_bytes(data[pos + 2:pos + 2 + size], "big"))
        pos += 2 + size
    return values, data[pos:]


def mpi(value: int) -> bytes:
    bits = value.bit_length()
    return bits.to_bytes(2, "big") + value.to_bytes((bits + 7) // 8, "big")


def serialize64(value: int) -> bytes:
    """The SDK's Serialize64: a byte count, then that many little-endian bytes."""
    out = bytearray()
    while value:
        out.append(value & 0xFF)
        value >>= 8
    return bytes([len(out)]) + bytes(out)


def unserialize64(data: bytes) -> int:
    if not data or data[0] > 8 or len(data) < 1 + data[0]:
        raise BadEncoding("bad serialized integer")
    return int.from_bytes(data[1:1 + data[0]], "little")
