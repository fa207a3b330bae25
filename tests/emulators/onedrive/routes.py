"""Parsing Graph URLs (spec §4, §9.4): which drive, which item, which action.

    /v1.0/me/drive                              the drive
    /v1.0/drives/{drive-id}/root                an item: root, items/{id}
    /v1.0/me/drive/root:/a/b.txt:/content       path addressing, then an action
    /v1.0/me/drive/items/{id}:/x.txt:           path relative to an item
    /v1.0/me/drive/root/delta(token='...')      function-call syntax

The same routes are served under `/_api/v2.0` (the OneDrive API prefix some
clients use with a tenant URL), where `/drive` also means the user's drive.
Delimiters (`/` and `:`) are found in the raw, still percent-encoded path;
each segment is then decoded once, so `%3A` and `%2F` inside a name stay
part of the name (and are refused by the name rules).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from tests.emulators.onedrive.errors import GraphError

PREFIXES = ("/v1.0", "/_api/v2.0")
DRIVE = re.compile(r"^/(?:me/drive|drive|drives/([^/:]+))(?=/|$)")
ITEM = re.compile(r"^/(root|items/([^/:]+))")
DELTA_CALL = re.compile(r"^delta\(token='([^']*)'\)$")


@dataclass
class Route:
    prefix: str                       # "/v1.0" or "/_api/v2.0"
    drive_id: str | None              # None: the caller's own drive
    drive_path: str                   # the raw drive part, to build absolute links
    item: str | None = None           # "root" or an item id; None: the drive itself
    segments: tuple[str, ...] = ()    # path relative to `item`
    action: str = ""                  # "", "children", "content", "delta", "copy", ...
    token: str | None = None          # delta(token='...')
    extra: str = ""                   # e.g. "recent", "special/documents"


def _decode(raw: str) -> str:
    try:
        return urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise GraphError(400, "invalidRequest", "The URL is not valid UTF-8.") from None


def parse(raw_path: str) -> Route:
    prefix = next((p for p in PREFIXES if raw_path == p or raw_path.startswith(p + "/")), None)
    if prefix is None:
        raise GraphError(400, "BadRequest", "Invalid version.")
    rest = raw_path[len(prefix):]
    m = DRIVE.match(rest)
    if m is None:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment {rest.strip('/').split('/')[0]!r}.")
    route = Route(prefix, _decode(m.group(1)) if m.group(1) else None, m.group(0))
    rest = rest[m.end():]
    if rest in ("", "/"):
        return route
    im = ITEM.match(rest)
    if im is None:
        route.extra = "/".join(_decode(s) for s in rest.strip("/").split("/"))
        return route
    route.item = "root" if im.group(1) == "root" else _decode(im.group(2))
    rest = rest[im.end():]
    if rest.startswith(":"):
        inner, sep, rest = rest[1:].partition(":")
        route.segments = tuple(_decode(s) for s in inner.split("/") if s)
        if not sep:
            rest = ""
    rest = rest.strip("/")
    if not rest:
        return route
    if "/" in rest:
        raise GraphError(400, "BadRequest", f"Unsupported segment {rest!r}.")
    action = _decode(rest)
    call = DELTA_CALL.match(action)
    if call is not None:
        route.action, route.token = "delta", call.group(1)
    elif action in ("delta()", "microsoft.graph.delta", "microsoft.graph.delta()"):
        route.action = "delta"
    else:
        route.action = action.removeprefix("microsoft.graph.")
    return route
