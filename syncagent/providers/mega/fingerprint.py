"""MEGA's file fingerprint, the `c` attribute (spec §5.7; the SDK's
FileFingerprint): 16 "CRC" bytes and the mtime in seconds.

* up to 16 bytes: the content itself, zero-padded;
* up to 8 KiB: four CRC32s, over each quarter of the file;
* larger: four CRC32s, each over 32 blocks of 64 bytes sampled evenly
  across the file (128 samples, 8 KiB read in all).

Each CRC32 is stored big-endian. The fingerprint is this provider's content
hash (kind "mega"), mtime included, as MEGA's own clients compare it; the
mtime is also the file's remote mtime. For a large file the CRCs are a
sample, not a digest of every byte.
"""

from __future__ import annotations

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


def mtime_seconds(mtime_ns: int) -> int:
    return max(0, mtime_ns // 1_000_000_000)


class MegaHasher:
    """The local hasher of kind "mega": the fingerprint string (`c`) of a file
    of known size and mtime, computed in one forward pass, constant memory.

    The mtime is part of it, as in MEGA's own clients: a large file's CRCs
    are samples, and two files of one size with different bytes outside the
    samples must not pass for one content unless their mtimes agree too.
    """

    def __init__(self, *, size: int, mtime_ns: int) -> None:
        self._sampler = CrcSampler(size)
        self._mtime = mtime_seconds(mtime_ns)

    def update(self, data: bytes, /) -> None:
        self._sampler.update(data)

    def hexdigest(self) -> str:
        return Fingerprint(self._sampler.digest(), self._mtime).attr()


def canonical(c: str) -> str | None:
    """A `c` attribute in the form MegaHasher writes it (None if it is not one)."""
    fp = Fingerprint.parse(c)
    return fp.attr() if fp is not None else None
