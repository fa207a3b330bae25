"""The record types the engine passes around: what a scan saw (Entry), what
the base holds (Base). Plain tuples, no I/O: the pure planner imports these,
never the database."""

from __future__ import annotations

FILE = "file"
DIR = "dir"

# The classes below are typing.NamedTuple to the type checker; at run time the same classes are made
# by collections.namedtuple (which is what NamedTuple calls), without importing typing (~4 ms):
# every sync imports this module. tests/unit/engine/test_records.py compares them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from collections import namedtuple

    class _MadeByNamedtuple(type):
        def __new__(cls, name: str, bases: tuple[type, ...], body: dict[str, object]) -> type:
            made = namedtuple(name, body["__annotations__"], module=body["__module__"])
            made.__annotations__ = body["__annotations__"]
            made.__doc__ = body.get("__doc__", made.__doc__)
            return made

    NamedTuple = type.__new__(_MadeByNamedtuple, "NamedTuple", (), {})


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
