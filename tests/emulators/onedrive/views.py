"""How the emulator renders drives and items as Graph JSON (spec §3), and the
opaque tokens it hands out in URLs (download URLs, delta tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from tests.emulators.onedrive.drive import Drive, Item
from tests.emulators.onedrive.errors import GraphError

SIGNING_KEY = b"onedrive-emulator"
DOWNLOAD_URL = "@microsoft.graph.downloadUrl"


def stamp(t: float, fraction: bool = True) -> str:
    """ISO 8601 UTC; service times carry milliseconds, fileSystemInfo whole seconds."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return f"{whole}.{int(t % 1 * 1000):03d}Z" if fraction else whole + "Z"


def parse_stamp(value: Any) -> float:
    """A client's ISO 8601 time -> seconds (400 when it does not parse)."""
    from datetime import datetime

    if not isinstance(value, str):
        raise GraphError(400, "invalidRequest", "Invalid date/time value.")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise GraphError(400, "invalidRequest", f"Invalid date/time value {value[:40]!r}.") from None


def tag(kind: str, item: Item, version: int) -> str:
    """eTag/cTag: opaque, different for every version (spec §0.1-10)."""
    raw = f"{kind}:{{{item.id}}},{version}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


def etag(item: Item) -> str:
    return tag("e", item, item.etag)


def ctag(item: Item) -> str:
    return tag("c", item, item.ctag)


def sign(payload: dict[str, Any]) -> str:
    raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(SIGNING_KEY, raw.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{raw}.{mac}"


def unsign(token: str) -> dict[str, Any] | None:
    raw, _, mac = token.partition(".")
    want = hmac.new(SIGNING_KEY, raw.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(mac, want):
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def download_url(base: str, drive: Drive, item: Item, lifetime: float) -> str:
    """A pre-authenticated URL for this content of the item, valid `lifetime` seconds."""
    raw = f"{drive.id}|{item.id}|{item.ctag}|{int(drive.clock() + lifetime)}"
    mac = hmac.new(SIGNING_KEY, raw.encode(), hashlib.sha256).hexdigest()[:24]
    return f"{base}_download/{urllib.parse.quote(raw, safe='')}.{mac}"


def download_claims(token: str) -> tuple[str, str, int, float] | None:
    """(drive id, item id, cTag version, expiry) of a download token, if it is ours."""
    quoted, _, mac = token.rpartition(".")
    raw = urllib.parse.unquote(quoted)
    want = hmac.new(SIGNING_KEY, raw.encode(), hashlib.sha256).hexdigest()[:24]
    parts = raw.split("|")
    if not hmac.compare_digest(mac, want) or len(parts) != 4:
        return None
    return parts[0], parts[1], int(parts[2]), float(parts[3])


def drive_json(drive: Drive) -> dict[str, Any]:
    live, binned = drive.usage()
    used = live + binned
    remaining = max(0, drive.quota_total - used)
    left = remaining / drive.quota_total if drive.quota_total else 0
    state = "exceeded" if remaining == 0 else "critical" if left < 0.01 else "nearing" if left < 0.1 else "normal"
    return {"id": drive.id, "driveType": "personal", "name": "OneDrive",
            "owner": {"user": {"id": drive.id, "displayName": drive.owner}},
            "quota": {"total": drive.quota_total, "used": used, "remaining": remaining, "deleted": binned,
                      "state": state}}


def item_json(base: str, drive: Drive, item: Item, *, delta: bool = False, gone: bool = False,
              download_lifetime: float = 3600.0, fields: str | None = None) -> dict[str, Any]:
    """A driveItem. In delta answers: no parentReference.path; deleted
    items (and, in a folder's delta, items that left the folder: `gone`)
    carry `deleted: {}` and no size or cTag (spec §5.4)."""
    out: dict[str, Any] = {"id": item.id, "name": item.name, "eTag": etag(item)}
    if item.parent is not None:
        ref: dict[str, Any] = {"driveId": drive.id, "driveType": "personal", "id": item.parent}
        parent = drive.items[item.parent]
        if not delta:
            ref["path"] = drive.path_of(parent)
        out["parentReference"] = ref
    if delta and (item.deleted or gone):
        out["deleted"] = {}
        return out
    out.update({
        "cTag": ctag(item),
        "createdDateTime": stamp(item.created), "lastModifiedDateTime": stamp(item.modified),
        "fileSystemInfo": {"createdDateTime": stamp(item.fs_created, False),
                           "lastModifiedDateTime": stamp(item.fs_modified, False)},
        "webUrl": f"{base}view/{item.id}",
    })
    if item.folder:
        out["size"] = drive.folder_size(item)
        out["folder"] = {"childCount": len(item.children)}
        if item.parent is None:
            out["root"] = {}
            out["name"] = "root"
    else:
        out["size"] = item.size
        out["file"] = {"mimeType": item.mime, "hashes": dict(item.hashes)}
        if not fields or DOWNLOAD_URL in fields:
            out[DOWNLOAD_URL] = download_url(base, drive, item, download_lifetime)
    if item.description is not None:
        out["description"] = item.description
    out.update(item.facets)
    return out


def select(obj: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """`$select=a,b`: only those properties (and the id); an annotation such as
    the download URL only when it is named."""
    if not fields:
        return obj
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | {"id"}
    return {k: v for k, v in obj.items() if k in wanted}
