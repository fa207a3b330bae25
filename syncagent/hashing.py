"""One registry of local content hashers: any hash kind a provider declares
(`Capabilities.hash_kind`) is computed here, several kinds in one read.

Built in: sha256, sha1, md5. A provider whose service hashes another way
(OneDrive's QuickXorHash, MEGA's fingerprint, Metadisk's content address)
registers its kind from its own package::

    register_hasher("quickxor", QuickXorHash)      # factory() -> Hasher

A Hasher is streaming: `update(data)` for each chunk in file order, then
`hexdigest()`. A kind that also depends on the file's metadata (MEGA's
fingerprint carries the mtime) gets it through `hash_file(..., mtime_ns=)`:
its factory then takes `size` and `mtime_ns` keywords (declare it with
`needs_stat=True`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

CHUNK = 1 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from typing import Protocol

    class Hasher(Protocol):
        def update(self, data: bytes, /) -> None: ...

        def hexdigest(self) -> str: ...


class HashKind:
    """A registered kind. (A plain class: a dataclass would import dataclasses and inspect, ~14 ms,
    at every sync's start-up.)"""

    __slots__ = ("factory", "name", "needs_stat")

    def __init__(self, name: str, factory: Callable[..., Hasher], needs_stat: bool = False) -> None:
        self.name, self.factory = name, factory
        self.needs_stat = needs_stat      # factory(size=..., mtime_ns=...)


_KINDS: dict[str, HashKind] = {}


def register_hasher(name: str, factory: Callable[..., Hasher], *, needs_stat: bool = False) -> None:
    """Make hash kind `name` computable locally (idempotent for one factory)."""
    _KINDS[name] = HashKind(name, factory, needs_stat)


def known(name: str | None) -> bool:
    return name is not None and name in _KINDS


def new_hasher(name: str, *, size: int = 0, mtime_ns: int = 0) -> Hasher:
    kind = _KINDS.get(name)
    if kind is None:
        raise KeyError(f"no local hasher for hash kind {name!r}")
    if kind.needs_stat:
        return kind.factory(size=size, mtime_ns=mtime_ns)
    return kind.factory()


class MultiHasher:
    """Several kinds fed by one read (a Hasher itself: its hexdigest is the
    first kind's)."""

    def __init__(self, kinds: Iterable[str], *, size: int = 0, mtime_ns: int = 0) -> None:
        self.hashers = {k: new_hasher(k, size=size, mtime_ns=mtime_ns) for k in dict.fromkeys(kinds)}

    def update(self, data: bytes, /) -> None:
        for h in self.hashers.values():
            h.update(data)

    def hexdigest(self) -> str:
        return next(iter(self.hashers.values())).hexdigest()

    def digests(self) -> dict[str, str]:
        return {k: h.hexdigest() for k, h in self.hashers.items()}


def hash_file(path: str | os.PathLike[str], kinds: Iterable[str]) -> dict[str, str]:
    """Every kind of `kinds` for one file, in one streaming read. The file's
    size and mtime come from the open descriptor (the bytes read are the
    bytes described)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        multi = MultiHasher(kinds, size=st.st_size, mtime_ns=st.st_mtime_ns)
        while chunk := f.read(CHUNK):
            multi.update(chunk)
    return multi.digests()


def hash_one(path: str | os.PathLike[str], kind: str) -> str:
    return hash_file(path, [kind])[kind]


def _stdlib(name: str) -> Callable[[], Hasher]:
    """hashlib's constructor, looked up at the first hash: a run that hashes
    nothing (a no-op) does not load OpenSSL's hashlib (~4 ms)."""
    def make() -> Hasher:
        import hashlib

        made: Hasher = getattr(hashlib, name)()
        return made

    return make


register_hasher("sha256", _stdlib("sha256"))
register_hasher("sha1", _stdlib("sha1"))
register_hasher("md5", _stdlib("md5"))
