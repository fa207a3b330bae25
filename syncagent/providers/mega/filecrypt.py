"""File content encryption (spec §5.8–5.9): the packed 32-byte file key,
the chunk boundaries, AES-128-CTR, the per-chunk CBC-MACs and the meta-MAC.

Every AES pass runs in pycryptodome's C code over whole chunks (at most
1 MiB): the CTR pass for the bytes, one CBC pass whose last block is the
chunk MAC. Buffers are reused, so memory does not grow with file size.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from Crypto.Cipher import AES

from syncagent.providers.mega.codec import b64dec, b64enc

SEGMENT = 128 * 1024       # the first chunk; chunk i (1-based) is i segments long up to 8
MAX_CHUNK = 1024 * 1024    # then 1 MiB each


def chunks(size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of every chunk of a file of `size` bytes; none for an empty file."""
    offset, n = 0, 1
    while offset < size:
        length = min(n * SEGMENT if n <= 8 else MAX_CHUNK, size - offset)
        yield offset, length
        offset += length
        n += 1


def chunk_start(offset: int) -> int:
    """The start of the chunk holding byte `offset`."""
    start = 0
    for start, length in chunks(offset + 1):
        if start + length > offset:
            return start
    return start


def is_boundary(offset: int, size: int) -> bool:
    return offset == size or any(start == offset for start, _ in chunks(size))


@dataclass(frozen=True)
class FileKey:
    """K (AES key), N (CTR nonce) and MM (meta-MAC, known after the upload)."""

    key: bytes
    nonce: bytes
    meta_mac: bytes = b"\0" * 8

    @classmethod
    def random(cls) -> FileKey:
        return cls(secrets.token_bytes(16), secrets.token_bytes(8))

    @classmethod
    def unpack(cls, packed: bytes) -> FileKey:
        if len(packed) != 32:
            raise ValueError(f"a file key has 32 bytes, not {len(packed)}")
        tail = packed[16:]
        return cls(bytes(a ^ b for a, b in zip(packed[:16], tail, strict=True)), tail[:8], tail[8:])

    def pack(self) -> bytes:
        tail = self.nonce + self.meta_mac
        return bytes(a ^ b for a, b in zip(self.key, tail, strict=True)) + tail

    def with_mac(self, meta_mac: bytes) -> FileKey:
        return FileKey(self.key, self.nonce, meta_mac)

    def link_key(self) -> str:
        return b64enc(self.pack())

    @classmethod
    def from_link_key(cls, text: str) -> FileKey:
        return cls.unpack(b64dec(text))


class ChunkCoder:
    """Encrypts or decrypts one chunk at a time and computes its MAC over the plaintext.
    Chunks are independent: several threads may code chunks of one file at once."""

    def __init__(self, key: FileKey) -> None:
        self.key = key
        self._iv = key.nonce + key.nonce
        self._local = threading.local()   # a scratch buffer per thread for the MAC's CBC output

    def _scratch(self, size: int) -> memoryview:
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = self._local.buffer = bytearray(max(size, MAX_CHUNK))
        return memoryview(buffer)[:size]

    def mac(self, plain: bytes | bytearray | memoryview) -> bytes:
        """The CBC-MAC of a chunk (IV N‖N, last block zero-padded)."""
        view = memoryview(plain)
        cbc = AES.new(self.key.key, AES.MODE_CBC, iv=self._iv)
        aligned = len(view) - len(view) % 16
        last = b""
        if aligned:
            out = self._scratch(aligned)
            cbc.encrypt(view[:aligned], output=out)
            last = bytes(out[-16:])
        if aligned < len(view):
            tail = bytes(view[aligned:])
            last = cbc.encrypt(tail + b"\0" * (16 - len(tail)))
        return last

    def encrypt(self, offset: int, plain: bytes | bytearray | memoryview) -> tuple[bytes, bytes]:
        """(ciphertext, chunk MAC) of the chunk at `offset`."""
        ctr = AES.new(self.key.key, AES.MODE_CTR, nonce=self.key.nonce, initial_value=offset // 16)
        return ctr.encrypt(plain), self.mac(plain)

    def decrypt(self, offset: int, cipher: bytes | bytearray | memoryview) -> tuple[bytes, bytes]:
        """(plaintext, chunk MAC) of the chunk at `offset`."""
        ctr = AES.new(self.key.key, AES.MODE_CTR, nonce=self.key.nonce, initial_value=offset // 16)
        plain = ctr.decrypt(cipher)
        return plain, self.mac(plain)


def meta_mac(key: bytes, chunk_macs: Sequence[bytes]) -> bytes:
    """The 8-byte meta-MAC: CBC over the chunk MACs, folded to 64 bits."""
    m = bytes(16)
    ecb = AES.new(key, AES.MODE_ECB)
    for mac in chunk_macs:
        m = ecb.encrypt(bytes(a ^ b for a, b in zip(m, mac, strict=True)))
    return bytes(m[i] ^ m[i + 4] for i in range(4)) + bytes(m[i + 8] ^ m[i + 12] for i in range(4))
