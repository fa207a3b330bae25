"""SmartFile info objects (spec §4.3) as RemoteEntry.

SmartFile's `time` is the server's naive modification time with 1 s
precision and no zone, and it cannot be set. So the provider keeps what it
needs in the file's custom `attributes` (spec §4.5, the way the KIS desktop
client kept `checksum` and `modified`):

    syncagent_mtime   the source file's mtime in ns
    syncagent_sha256  the content hash of what we uploaded ("" when unknown)
    syncagent_stamp   "<size>:<time>" of the file when the two were written

They are believed only while the stamp still matches the file's size and
`time`: another client overwriting the file leaves the attributes behind
(or not: unverified), and then we fall back to `time` and no hash.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, tzinfo
from typing import Any

from syncagent.providers.base import Kind, RemoteEntry

MTIME, SHA256, STAMP = "syncagent_mtime", "syncagent_sha256", "syncagent_stamp"
BAD_NAMES = {"", ".", ".."}


def stamp_of(info: dict[str, Any]) -> str:
    return f"{int(info.get('size') or 0)}:{info.get('time') or ''}"


def trusted(info: dict[str, Any]) -> dict[str, str]:
    """Our attributes, if they still describe the current content."""
    attrs = info.get("attributes") or {}
    if not isinstance(attrs, dict) or attrs.get(STAMP) != stamp_of(info):
        return {}
    return {k: str(v) for k, v in attrs.items()}


def parse_time(value: Any, tz: tzinfo) -> int:
    """'YYYY-MM-DDTHH:MM:SS' (naive, in the server's zone) -> ns since the epoch."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        naive = datetime.fromisoformat(value.rstrip("Z"))
    except ValueError:
        return 0
    moment = naive if naive.tzinfo is not None else naive.replace(tzinfo=tz)
    return int(moment.timestamp()) * 1_000_000_000


def to_entry(rel: str, info: dict[str, Any], tz: tzinfo) -> RemoteEntry:
    if info.get("isdir"):
        return RemoteEntry(rel, Kind.DIR)
    size = int(info.get("size") or 0)
    ours = trusted(info)
    mtime_ns = parse_time(info.get("time"), tz)
    if ours.get(MTIME, "").isdigit():
        mtime_ns = int(ours[MTIME])
    digest = ours.get(SHA256) or None
    # rev: what changes with the content. `time` alone has 1 s steps, so our
    # own hash (when trusted) separates two same-size writes within a second.
    rev = f"{info.get('id', '')}-{info.get('time', '')}-{size}"
    if digest:
        rev += f"-{digest[:16]}"
    return RemoteEntry(rel, Kind.FILE, size, mtime_ns, rev, digest)


def valid_name(name: Any) -> bool:
    """A child name we can hand to the engine (it validates again before disk)."""
    return isinstance(name, str) and name not in BAD_NAMES and "/" not in name and "\x00" not in name


class Paths:
    """Relative engine paths <-> absolute account paths under the root."""

    def __init__(self, root: str) -> None:
        self.root = "/" + root.strip("/") if root.strip("/") else "/"

    def abs(self, rel: str) -> str:
        rel = rel.strip("/")
        if not rel:
            return self.root
        return posixpath.join(self.root, rel)

    @staticmethod
    def parent(rel: str) -> str:
        return rel.rpartition("/")[0]

    @staticmethod
    def name(rel: str) -> str:
        return rel.rpartition("/")[2]
