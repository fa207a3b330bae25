"""Chunk boundaries as the upload host enforces them (spec §5.9): 128 KiB,
256 KiB, ... 1 MiB (chunk i is i x 128 KiB for i <= 8), then 1 MiB each."""

from __future__ import annotations

SEGMENT = 128 * 1024


def boundaries(size: int) -> set[int]:
    """Every offset where a chunk of a `size`-byte file starts, and `size` itself."""
    out = {size}
    offset, i = 0, 1
    while offset < size:
        out.add(offset)
        offset += SEGMENT * min(i, 8)
        i += 1
    return out


def fits_chunks(start: int, end: int, size: int) -> bool:
    """A POST of [start, end) starts on a boundary and ends on one (or at EOF)."""
    marks = boundaries(size)
    return start in marks and end in marks and start <= end
