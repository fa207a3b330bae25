"""The delta feed (spec §5.4, §9.12, §10.3).

A start (no token) enumerates every live item of the scope, parents before
children. A token holds the sequence number it was issued at: the answer is
the latest state of every item changed since, with `deleted: {}` for items
that left the scope (deleted, or moved out of it); a folder that moved into
the scope brings its contents. Answers are paged by `$top` (default 200)
from a snapshot taken at the first page; the last page carries the
`@odata.deltaLink`. Tokens older than `retention` seconds answer 410 Gone
with a `Location` to start over. `token=latest` skips the enumeration.
"""

from __future__ import annotations

import itertools
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.onedrive.drive import Drive, Item
from tests.emulators.onedrive.errors import GraphError
from tests.emulators.onedrive.views import select, sign, unsign

DEFAULT_TOP = 200
MAX_TOP = 1000
SNAPSHOT_LIFETIME = 3600.0


@dataclass
class Snapshot:
    values: list[dict[str, Any]]
    seq: int
    scope: str
    created: float
    fields: str | None = None         # $select, carried by the links


@dataclass
class DeltaFeed:
    clock: Callable[[], float]
    render: Callable[[Drive, Item, bool, str | None], dict[str, Any]]   # (drive, item, gone, $select)
    retention: float = 30 * 86400.0
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, req: Request, drive: Drive, scope: Item, scope_url: str, token: str | None) -> Response:
        top = _top(req.arg("$top") or req.arg("top"))
        skip = req.arg("$skiptoken")
        now = self.clock()
        if skip:
            sid, _, offset = skip.partition(".")
            snap = self.snapshots.get(sid)
            if snap is None or not offset.isdigit() or snap.scope != scope.id:
                raise GraphError(400, "invalidRequest", "The page token is not valid.")
            return self._page(sid, snap, int(offset), top, scope_url, req)
        if token == "latest":
            link = self._link(scope_url, drive.seq, scope.id, req.arg("$select"))
            return Response.json(200, {"value": [], "@odata.deltaLink": link})
        since: int | None = None
        if token:
            claims = unsign(token)
            if claims is None or claims.get("i") != scope.id:
                raise GraphError(400, "invalidRequest", "The delta token is not valid for this item.")
            if now - float(claims.get("t", 0)) > self.retention:
                raise GraphError(410, "resyncRequired", "Resync required: the delta token is too old.",
                                 inner="resyncChangesApplyDifferences", headers={"Location": scope_url})
            since = int(claims["s"])
        items = [(i, False) for i in full(drive, scope)] if since is None else changed(drive, scope, since)
        fields = req.arg("$select")
        snap = Snapshot([select(self.render(drive, i, gone, fields), fields) for i, gone in items], drive.seq,
                        scope.id, now, fields)
        with self.lock:
            self._expire(now)
            sid = str(next(self._ids))
            self.snapshots[sid] = snap
        return self._page(sid, snap, 0, top, scope_url, req)

    def _page(self, sid: str, snap: Snapshot, offset: int, top: int, scope_url: str, req: Request) -> Response:
        values = snap.values[offset:offset + top]
        body: dict[str, Any] = {"@odata.context": "$metadata#Collection(driveItem)", "value": values}
        if offset + top < len(snap.values):
            query = {"$skiptoken": f"{sid}.{offset + top}", "$top": str(top)}
            if req.arg("$select"):
                query["$select"] = str(req.arg("$select"))
            body["@odata.nextLink"] = f"{scope_url}?{urllib.parse.urlencode(query)}"
        else:
            with self.lock:
                self.snapshots.pop(sid, None)
            body["@odata.deltaLink"] = self._link(scope_url, snap.seq, snap.scope, snap.fields)
        return Response.json(200, body)

    def _link(self, scope_url: str, seq: int, scope_id: str, fields: str | None) -> str:
        """The next round's link; it keeps the round's $select (and any caller's $top)."""
        query = {"token": sign({"s": seq, "t": self.clock(), "i": scope_id})}
        if fields:
            query["$select"] = fields
        return f"{scope_url}?{urllib.parse.urlencode(query)}"

    def _expire(self, now: float) -> None:
        for sid in [s for s, snap in self.snapshots.items() if now - snap.created > SNAPSHOT_LIFETIME]:
            del self.snapshots[sid]


def _top(value: str | None) -> int:
    if value is None or not value.isdigit() or int(value) < 1:
        return DEFAULT_TOP
    return min(int(value), MAX_TOP)


def full(drive: Drive, scope: Item) -> list[Item]:
    return [scope, *drive.descendants(scope)]


def changed(drive: Drive, scope: Item, since: int) -> list[tuple[Item, bool]]:
    """The latest state of what changed in `scope` after `since`: items that
    left it first (gone: shown as deleted), then the live ones parents first."""
    entries = drive.changes_since(since)
    left: dict[str, Item] = {}
    live: dict[str, Item] = {}
    moved_in: list[Item] = []
    for e in entries:
        item = drive.items[e.item]
        was_in = e.item == scope.id or scope.id in e.was_under
        if not item.deleted and drive.is_under(item, scope):
            live[item.id] = item
            if not was_in and item.folder:
                moved_in.append(item)
        elif was_in:
            left[item.id] = item
    for folder in moved_in:
        for child in drive.descendants(folder):
            live.setdefault(child.id, child)
    for item_id in live:
        left.pop(item_id, None)
    ordered = sorted(live.values(), key=lambda i: (len(drive.ancestors(i)), i.seq))
    return [(i, True) for i in left.values()] + [(i, False) for i in ordered]
