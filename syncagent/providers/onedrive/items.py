"""driveItems as RemoteEntry, OneDrive's times, and its name rules (spec §3, §4).

* rev: the eTag (it changes on any change, content or metadata, and it is
  what If-Match takes); the engine's move detection uses the item id.
* hash: the quickXorHash in hex (the kind `quickxor` of syncagent.hashing);
  an item without one (old files on some drives) has no hash.
* mtime: `fileSystemInfo.lastModifiedDateTime` (the client's time, whole
  seconds on the service), else the service's lastModifiedDateTime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from syncagent.paths import nfc
from syncagent.providers.base import Kind, RemoteEntry
from syncagent.providers.onedrive.quickxor import b64_to_hex

FORBIDDEN_CHARS = '"*:<>?/\\|'
RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9]|\.lock|desktop\.ini)$", re.IGNORECASE)
MAX_NAME = 255
MAX_PATH = 400


def name_problem(name: str) -> str | None:
    """Why OneDrive cannot hold `name` (None: it can). The documented
    restrictions: reserved characters, leading or trailing spaces, a trailing
    dot, reserved names, `~$` at the start, `_vti_` anywhere."""
    if any(c in FORBIDDEN_CHARS for c in name) or "\x00" in name:
        return f"OneDrive names cannot contain any of {FORBIDDEN_CHARS}"
    if name != name.strip(" "):
        return "OneDrive names cannot start or end with a space"
    if name.endswith("."):
        return "OneDrive names cannot end with a dot"
    if RESERVED.match(name) or name.startswith("~$") or "_vti_" in name.lower():
        return "the name is reserved on OneDrive"
    if len(name) > MAX_NAME:
        return f"OneDrive names are at most {MAX_NAME} characters"
    return None


def parse_time(value: Any) -> int:
    """ISO 8601 (Z or an offset, fractions allowed) -> ns since the epoch; 0 when absent."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def format_time(mtime_ns: int) -> str:
    """ns since the epoch -> the whole-second UTC form fileSystemInfo keeps."""
    return datetime.fromtimestamp(mtime_ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_folder(item: dict[str, Any]) -> bool:
    return "folder" in item or "root" in item


def not_followed(item: dict[str, Any]) -> str | None:
    """Why an item is left out of listings though its name is fine: a OneNote
    notebook (`package`: no bytes to download) or a folder shared from
    another drive (`remoteItem`: its contents are not in this drive's feed)."""
    if "package" in item:
        return "a OneNote notebook or other package (not a file; not synced)"
    if "remoteItem" in item:
        return "shared from another drive (not synced)"
    return None


def content_hash(item: dict[str, Any]) -> str | None:
    hashes = (item.get("file") or {}).get("hashes") if isinstance(item.get("file"), dict) else None
    value = hashes.get("quickXorHash") if isinstance(hashes, dict) else None
    return b64_to_hex(value) if isinstance(value, str) else None


def to_entry(path: str, item: dict[str, Any]) -> RemoteEntry:
    item_id = str(item.get("id") or "") or None
    rev = str(item.get("eTag") or "")
    if is_folder(item):
        return RemoteEntry(path, Kind.DIR, 0, 0, rev, None, item_id)
    found = item.get("fileSystemInfo")
    fs: dict[str, Any] = found if isinstance(found, dict) else {}
    mtime = parse_time(fs.get("lastModifiedDateTime")) or parse_time(item.get("lastModifiedDateTime"))
    return RemoteEntry(path, Kind.FILE, int(item.get("size") or 0), mtime, rev, content_hash(item), item_id)


def valid_listed_name(name: Any) -> bool:
    """A name from the service we can hand to the engine (it checks again before disk)."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\x00" not in name


def engine_name(name: str) -> str:
    return nfc(name)
