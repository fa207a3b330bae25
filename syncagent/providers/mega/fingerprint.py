"""MEGA's file fingerprint, the `c` attribute (spec §5.7; the SDK's
FileFingerprint): 16 "CRC" bytes and the mtime in seconds.

* up to 16 bytes: the content itself, zero-padded;
* up to 8 KiB: four CRC32s, over each quarter of the file;
* larger: four CRC32s, each over 32 blocks of 64 bytes sampled evenly
  across the file (128 samples, 8 KiB read in all).

Each CRC32 is stored big-endian. The CRC part is this provider's content
hash (kind "mega"); the mtime travels beside it as the file's mtime. For a
large file it is a sample, not a digest of every byte: MEGA's own clients
pair it with size and mtime the same way.
"""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass

from syncagent.providers.mega.codec import BadEncoding, b64dec, b64enc, serialize64, unserialize64

HASH_KIND = "mega"
TINY = 16
FULL = 8192
BLOCK = 64
LANES = 4
SAMPLES_PER_LANE = FULL // (BLOCK * LANES)   # 32
SAMPLES = LANES * SAMPLES_PER_LANE            # 128


@dataclass(frozen=True)
class Fingerprint:
    crc: bytes          # 16 bytes
    mtime: int          # seconds

    def attr(self) -> str:
        """The `c` attribute's value."""
        return b64enc(self.crc + serialize64(max(self.mtime, 0)))

    @property
    def hash(self) -> str:
        return self.crc.hex()

    @classmethod
    def parse(cls, text: str) -> Fingerprint | None:
        try:
            raw = b64dec(text)
            if len(raw) < TINY + 1:
                return None
            return cls(raw[:TINY], unserialize64(raw[TINY:]))
        except BadEncoding:
            return None


def sample_offsets(size: int) -> list[int]:
    """Where the 64-byte samples of a file larger than 8 KiB start (increasing, disjoint)."""
    return [(size - BLOCK) * k // (SAMPLES - 1) for k in range(SAMPLES)]


class CrcSampler:
    """Computes the CRC part in one forward pass over the content; it must
    know the size beforehand (it decides which bytes are sampled)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pos = 0
        self._small = bytearray() if size <= FULL else None
        self._offsets = sample_offsets(size) if size > FULL else []
        self._next = 0                       # index of the sample being filled
        self._block = bytearray()
        self._lanes = [0] * LANES

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if self._small is not None:
            self._small += view[: max(0, self.size - self.pos)]
        else:
            self._sample(view)
        self.pos += len(view)

    def _sample(self, view: memoryview) -> None:
        end = self.pos + len(view)
        while self._next < SAMPLES:
            start = self._offsets[self._next] + len(self._block)
            if start >= end:
                return
            take = view[start - self.pos: start - self.pos + BLOCK - len(self._block)]
            self._block += take
            if len(self._block) < BLOCK:
                return
            lane = self._next // SAMPLES_PER_LANE
            self._lanes[lane] = zlib.crc32(self._block, self._lanes[lane])
            self._block.clear()
            self._next += 1

    def digest(self) -> bytes:
        if self.pos != self.size:
            raise ValueError(f"fingerprint: read {self.pos} bytes of {self.size}")
        if self._small is not None:
            data = bytes(self._small)
            if self.size <= TINY:
                return data + b"\0" * (TINY - len(data))
            bounds = [i * self.size // LANES for i in range(LANES + 1)]
            return b"".join(zlib.crc32(data[bounds[i]:bounds[i + 1]]).to_bytes(4, "big") for i in range(LANES))
        return b"".join(c.to_bytes(4, "big") for c in self._lanes)


def fingerprint_bytes(data: bytes, mtime: int) -> Fingerprint:
    sampler = CrcSampler(len(data))
    sampler.update(data)
    return Fingerprint(sampler.digest(), mtime)


class MegaHasher:
    """The local hasher of kind "mega" (`update` / `hexdigest`).

    With the size given it streams in constant memory. Without it the bytes
    are spooled (memory first, then a temp file) until `hexdigest`, because
    which bytes are sampled depends on the final size.
    """

    def __init__(self, size: int | None = None) -> None:
        self._sampler = CrcSampler(size) if size is not None else None
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = (
            None if size is not None else tempfile.SpooledTemporaryFile(FULL * 128))  # noqa: SIM115 (closed in hexdigest)
        self._done: str | None = None

    def update(self, data: bytes) -> None:
        if self._sampler is not None:
            self._sampler.update(data)
        elif self._spool is not None:
            self._spool.write(data)

    def hexdigest(self) -> str:
        if self._done is None:
            if self._spool is not None:
                size = self._spool.tell()
                self._spool.seek(0)
                self._sampler = CrcSampler(size)
                while block := self._spool.read(1 << 20):
                    self._sampler.update(block)
                self._spool.close()
                self._spool = None
            assert self._sampler is not None
            self._done = self._sampler.digest().hex()
        return self._done
