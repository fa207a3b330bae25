"""The record types the engine passes around: what a scan saw (Entry), what
the base holds (Base). Plain tuples, no I/O: the pure planner imports these,
never the database."""

from __future__ import annotations

from typing import NamedTuple

FILE = "file"
DIR = "dir"


class Entry(NamedTuple):
    """What a scan knows of one path. Folders have size and mtime 0."""

    kind: str
    size: int
    mtime_ns: int
    ino: int


class Base(NamedTuple):
    """One base entry: the local side's and the remote side's view of a path
    at the last moment both were known to hold the same content."""

    kind: str
    size: int
    mtime_ns: int
    ino: int
    hash: str | None
    rrev: str
    rid: str | None
    rhash: str | None
    rsize: int
    rmtime_ns: int
