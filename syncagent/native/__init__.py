"""The C twins of the no-op path's per-path loops (_native.c), when built.

`NATIVE` is the loaded module, or None: the install could not compile it
(no C compiler or no Python headers), or SYNCAGENT_NATIVE=0 asks for the
pure-Python path. Every caller keeps that path; the tests run both and
compare them. A module of another version (an editable checkout whose C
source moved on without a reinstall) is not used.
"""

from __future__ import annotations

import os
from types import ModuleType

VERSION = 4   # _native.c's NATIVE_VERSION: the calling convention this Python side speaks
REMOTE_FIELDS = ("path", "kind", "size", "mtime_ns", "rev", "hash", "id", "spelling")


def _load() -> ModuleType | None:
    if os.environ.get("SYNCAGENT_NATIVE", "1") == "0":
        return None
    try:
        from syncagent.native import _native  # type: ignore[attr-defined]
    except ImportError:
        return None
    if getattr(_native, "VERSION", None) != VERSION:
        return None
    from syncagent.engine.records import DIR, FILE, Entry
    from syncagent.providers.base import Kind, RemoteEntry

    if RemoteEntry.__slots__ != REMOTE_FIELDS:   # the C side sets the slots in this order
        return None
    slots = tuple(RemoteEntry.__dict__[name] for name in REMOTE_FIELDS)
    _native.configure(Entry, RemoteEntry, slots, FILE, DIR, Kind.FILE, Kind.DIR)
    module: ModuleType = _native
    return module


NATIVE: ModuleType | None = _load()
