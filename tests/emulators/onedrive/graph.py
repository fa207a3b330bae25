"""The Graph drive endpoints (spec §5): one method per (verb, action), each
given the caller's drive and the addressed item."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.emulators.base import Request, Response
from tests.emulators.onedrive.drive import Drive, Item
from tests.emulators.onedrive.errors import GraphError
from tests.emulators.onedrive.routes import Route
from tests.emulators.onedrive.transfers import CopyJob, Hashes, UploadSession, spool_body, tag_matches
from tests.emulators.onedrive.views import download_url, drive_json, item_json, parse_stamp, select, stamp

if TYPE_CHECKING:
    from tests.emulators.onedrive.app import OneDriveApp

CONFLICT = "@microsoft.graph.conflictBehavior"
DEFAULT_PAGE = 200
MAX_PAGE = 1000


@dataclass
class Target:
    """What a URL addressed: an existing item, or a name in a folder (for
    writes by path), or both."""

    item: Item | None
    parent: Item | None
    name: str


def json_body(req: Request) -> dict[str, Any]:
    data = req.body.read()
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except ValueError:
        raise GraphError(400, "invalidRequest", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "invalidRequest", "The request body must be a JSON object.")
    return body


def fs_info_of(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out = {}
    if "lastModifiedDateTime" in value:
        out["modified"] = parse_stamp(value["lastModifiedDateTime"])
    if "createdDateTime" in value:
        out["created"] = parse_stamp(value["createdDateTime"])
    return out


class Graph:
    def __init__(self, app: OneDriveApp) -> None:
        self.app = app

    # ---- helpers ----------------------------------------------------------------------
    def render(self, drive: Drive, item: Item, req: Request | None = None) -> dict[str, Any]:
        fields = (req.arg("$select") or req.arg("select")) if req is not None else None
        obj = item_json(self.app.base_url, drive, item, download_lifetime=self.app.download_lifetime, fields=fields)
        return select(obj, fields)

    def resolve(self, drive: Drive, route: Route) -> Target:
        base = drive.root if route.item == "root" else drive.get(str(route.item))
        if not route.segments:
            return Target(base, drive.items[base.parent] if base.parent else None, base.name)
        parent = drive.walk(base, list(route.segments[:-1]))
        name = route.segments[-1]
        return Target(drive.child(parent, name) if parent.folder else None, parent, name)

    @staticmethod
    def existing(target: Target) -> Item:
        if target.item is None:
            raise GraphError(404, "itemNotFound", "Item does not exist")
        return target.item

    @staticmethod
    def check_if_match(req: Request, item: Item | None) -> None:
        wanted = req.headers.get("If-Match")
        if wanted is not None and (item is None or not tag_matches(item, wanted)):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value",
                             inner="entityTagDoesNotMatch")

    @staticmethod
    def not_modified(req: Request, item: Item) -> bool:
        wanted = req.headers.get("If-None-Match")
        return wanted is not None and tag_matches(item, wanted) and wanted.strip() != "*"

    def dispatch(self, req: Request, drive: Drive, route: Route) -> Response:
        method = "GET" if req.method == "HEAD" else req.method
        if route.item is None:
            return self.drive_level(req, drive, route, method)
        handler = HANDLERS.get((method, route.action))
        if handler is None:
            raise GraphError(405 if any(a == route.action for _, a in HANDLERS) else 400, "invalidRequest",
                             f"{req.method} is not supported on {route.action or 'an item'}.")
        return handler(self, req, drive, route)

    def drive_level(self, req: Request, drive: Drive, route: Route, method: str) -> Response:
        if method != "GET":
            raise GraphError(405, "invalidRequest", "Method not allowed.")
        if not route.extra:
            return Response.json(200, select(drive_json(drive), req.arg("$select") or req.arg("select")))
        if route.extra == "recent":
            files = sorted((i for i in drive.items.values() if not i.folder and not i.deleted),
                           key=lambda i: i.modified, reverse=True)[:20]
            values = []
            for f in files:
                obj = self.render(drive, f)
                obj["fileSystemInfo"]["lastAccessedDateTime"] = stamp(f.modified, False)
                values.append(obj)
            return Response.json(200, {"value": values})
        raise GraphError(400, "BadRequest", f"Resource not found for the segment {route.extra!r}.")

    # ---- items --------------------------------------------------------------------------
    def get_item(self, req: Request, drive: Drive, route: Route) -> Response:
        item = self.existing(self.resolve(drive, route))
        if self.not_modified(req, item):
            return Response(304)
        obj = self.render(drive, item, req)
        if (req.arg("$expand") or req.arg("expand")) == "children" and item.folder:
            obj["children"] = [self.render(drive, drive.items[c]) for c in item.children.values()]
        return Response.json(200, obj)

    def patch_item(self, req: Request, drive: Drive, route: Route) -> Response:
        item = self.existing(self.resolve(drive, route))
        self.check_if_match(req, item)
        body = json_body(req)
        parent: Item | None = None
        ref = body.get("parentReference")
        if isinstance(ref, dict) and (ref.get("id") or ref.get("path")):
            parent = self._folder_by_reference(drive, ref)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise GraphError(400, "invalidRequest", "name must be a string.")
        description = body.get("description")
        drive.update(item, name=name, parent=parent, description=description if isinstance(description, str) else None,
                     fs_info=fs_info_of(body.get("fileSystemInfo")),
                     behaviour=str(body.get(CONFLICT) or req.arg(CONFLICT) or "fail"))
        return Response.json(200, self.render(drive, item))

    def _folder_by_reference(self, drive: Drive, ref: dict[str, Any]) -> Item:
        if ref.get("driveId") not in (None, drive.id):
            raise GraphError(400, "invalidRequest", "Items cannot be moved between drives.")
        if ref.get("id"):
            if ref["id"] == "root":
                raise GraphError(400, "invalidRequest", "Use the root's id, not 'root', in parentReference.")
            folder = drive.get(str(ref["id"]))
        else:
            path = str(ref["path"]).partition(":")[2]
            folder = drive.walk(drive.root, [s for s in path.split("/") if s])
        if not folder.folder:
            raise GraphError(400, "invalidRequest", "The parent is not a folder.")
        return folder

    def delete_item(self, req: Request, drive: Drive, route: Route) -> Response:
        item = self.existing(self.resolve(drive, route))
        self.check_if_match(req, item)
        drive.delete(item)
        return Response(204)

    def restore(self, req: Request, drive: Drive, route: Route) -> Response:
        item = drive.items.get(str(route.item))
        if item is None or not item.deleted:
            raise GraphError(404, "itemNotFound", "Item does not exist")
        return Response.json(200, self.render(drive, drive.restore(item)))

    # ---- children -----------------------------------------------------------------------
    def list_children(self, req: Request, drive: Drive, route: Route) -> Response:
        folder = self.existing(self.resolve(drive, route))
        if not folder.folder:
            raise GraphError(400, "invalidRequest", "The item is not a folder.")
        if self.not_modified(req, folder):
            return Response(304)
        top = req.arg("$top") or req.arg("top") or ""
        size = min(int(top), MAX_PAGE) if top.isdigit() and int(top) > 0 else DEFAULT_PAGE
        skip = req.arg("$skiptoken") or "0"
        start = int(skip) if skip.isdigit() else 0
        kids = sorted((drive.items[c] for c in folder.children.values()), key=lambda i: i.name.casefold())
        page = kids[start:start + size]
        body: dict[str, Any] = {"value": [self.render(drive, c, req) for c in page]}
        if start + size < len(kids):
            base = f"{self.app.base_url.rstrip('/')}{req.raw_path}"
            body["@odata.nextLink"] = f"{base}?$top={size}&$skiptoken={start + size}"
        return Response.json(200, body)

    def create_child(self, req: Request, drive: Drive, route: Route) -> Response:
        folder = self.existing(self.resolve(drive, route))
        body = json_body(req)
        name = body.get("name")
        if not isinstance(name, str) or "folder" not in body:
            raise GraphError(400, "invalidRequest", "Only folders can be created here: give name and folder.")
        if not folder.folder:
            raise GraphError(400, "invalidRequest", "The parent is not a folder.")
        item, created = drive.mkdir(folder, name, str(body.get(CONFLICT) or "fail"))
        if not created:
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        return Response.json(201, self.render(drive, item))

    # ---- content ------------------------------------------------------------------------
    def get_content(self, req: Request, drive: Drive, route: Route) -> Response:
        item = self.existing(self.resolve(drive, route))
        if item.folder:
            raise GraphError(400, "invalidRequest", "Only files can be downloaded.")
        if self.not_modified(req, item):
            return Response(304)
        return Response(302, b"", {"Location": download_url(self.app.base_url, drive, item,
                                                            self.app.download_lifetime)})

    def put_content(self, req: Request, drive: Drive, route: Route) -> Response:
        target = self.resolve(drive, route)
        parent = target.parent or drive.root
        if (target.parent is None and target.item is None) or (route.segments and not parent.folder):
            raise GraphError(404, "itemNotFound", "Item does not exist")
        if req.body_size > self.app.simple_upload_limit:
            raise GraphError(413, "invalidRequest", "Use an upload session for files this large.",
                             inner="maxFileSizeExceeded")
        self.check_if_match(req, target.item)
        if req.headers.get("If-None-Match", "").strip() == "*" and target.item is not None:
            raise GraphError(412, "resourceModified", "The item exists.", inner="entityTagDoesNotMatch")
        hashes = Hashes(self.app.sha1)
        blob = drive.new_blob()
        size = spool_body(req.body, blob, hashes)
        behaviour = "replace" if not route.segments else str(req.arg(CONFLICT) or "replace")
        try:
            item, created = drive.store_file(parent, target.name, blob, size, hashes.result(), behaviour, {},
                                             target=target.item if not route.segments else None,
                                             mime=req.headers.get_content_type())
        except GraphError:
            blob.unlink(missing_ok=True)
            raise
        return Response.json(201 if created else 200, self.render(drive, item))

    def create_session(self, req: Request, drive: Drive, route: Route) -> Response:
        target = self.resolve(drive, route)
        body = json_body(req)
        found = body.get("item")
        spec: dict[str, Any] = found if isinstance(found, dict) else {}
        by_id = not route.segments
        if by_id and (target.item is None or target.item.folder):
            raise GraphError(400, "invalidRequest", "Upload sessions replace files only.")
        if target.parent is None or not target.parent.folder:
            raise GraphError(404, "itemNotFound", "The parent folder does not exist.")
        if spec.get("name") not in (None, target.name):
            raise GraphError(400, "invalidRequest", "item.name does not match the name in the URL.")
        behaviour = str(spec.get(CONFLICT) or "fail") if not by_id else "replace"
        self.check_if_match(req, target.item)
        if target.item is not None and behaviour == "fail":
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        size = spec.get("fileSize")
        if isinstance(size, int):
            drive.check_space(size)
        sid = uuid.UUID(int=self.app.rng.getrandbits(128)).hex
        expires = self.app.clock() + self.app.transfers.session_lifetime
        session = UploadSession(sid, drive, target.parent.id, target.name, target.item.id if by_id and target.item
                                else None, behaviour, req.headers.get("If-Match"),
                                size if isinstance(size, int) else None, fs_info_of(spec.get("fileSystemInfo")),
                                self.app.storage / f"session-{sid}", expires, Hashes(self.app.sha1))
        session.blob.touch()
        self.app.transfers.sessions[sid] = session
        return Response.json(200, {"uploadUrl": f"{self.app.base_url}_upload/{sid}",
                                   **self.app.transfers.status_body(session)})

    def commit_session(self, session: UploadSession) -> tuple[Item, bool]:
        """The last fragment arrived: the file appears (or is replaced)."""
        drive = session.drive
        parent = drive.get(session.parent)
        target = drive.items.get(session.target) if session.target else None
        if session.target and (target is None or target.deleted):
            raise GraphError(404, "itemNotFound", "The item being replaced is gone.")
        current = target or drive.child(parent, session.name)
        if session.if_match is not None and (current is None or not tag_matches(current, session.if_match)):
            raise GraphError(412, "resourceModified", "ETag does not match current item's value",
                             inner="entityTagDoesNotMatch")
        blob = drive.new_blob()
        os.link(session.blob, blob)
        try:
            return drive.store_file(parent, session.name, blob, session.received, session.hashes.result(),
                                    session.behaviour, session.fs_info, target=target)
        except GraphError:
            blob.unlink(missing_ok=True)
            raise

    # ---- copy, links, delta ---------------------------------------------------------------
    def copy(self, req: Request, drive: Drive, route: Route) -> Response:
        source = self.existing(self.resolve(drive, route))
        body = json_body(req)
        ref = body.get("parentReference")
        parent = self._folder_by_reference(drive, ref) if isinstance(ref, dict) and ref else \
            drive.items[source.parent or drive.root.id]
        name = str(body.get("name") or source.name)
        if drive.child(parent, name) is not None:
            raise GraphError(409, "nameAlreadyExists", "The specified item name already exists.")
        jid = uuid.UUID(int=self.app.rng.getrandbits(128)).hex
        t = self.app.transfers
        t.start_copy(jid, CopyJob(drive, source.id, parent.id, name, self.app.clock() + t.copy_delay, t.copy_polls))
        return Response(202, b"", {"Location": f"{self.app.base_url}_monitor/{jid}"})

    def create_link(self, req: Request, drive: Drive, route: Route) -> Response:
        item = self.existing(self.resolve(drive, route))
        body = json_body(req)
        kind, scope = str(body.get("type") or ""), str(body.get("scope") or "anonymous")
        if kind not in ("view", "edit", "embed") or scope not in ("anonymous", "organization"):
            raise GraphError(400, "invalidRequest", "type must be view, edit or embed; scope anonymous.")
        if scope == "organization":
            raise GraphError(400, "invalidRequest", "Organization links are not available on a personal drive.")
        if kind in item.links:
            return Response.json(200, item.links[kind])
        token = uuid.UUID(int=self.app.rng.getrandbits(128)).hex[:12]
        link: dict[str, Any] = {"type": kind, "scope": scope, "webUrl": f"{self.app.base_url}s/{token}",
                                "application": {"id": "emulator", "displayName": "syncagent"}}
        if kind == "embed":
            link["webHtml"] = f'<iframe src="{self.app.base_url}embed/{token}" width="98" height="120" ' \
                              'frameborder="0" scrolling="no"></iframe>'
        permission = {"id": token, "roles": ["write" if kind == "edit" else "read"], "link": link}
        item.links[kind] = permission
        drive.changed(item)
        return Response.json(201, permission)

    def delta(self, req: Request, drive: Drive, route: Route) -> Response:
        scope = self.existing(self.resolve(drive, route))
        if not scope.folder:
            raise GraphError(400, "invalidRequest", "Delta is only supported on folders.")
        if self.app.delta_root_only and scope.parent is not None:
            raise GraphError(400, "notSupported", "Delta is only supported on the root of the drive.")
        url = self.scope_url(route, drive, scope)
        if self.app.take_fault(req, "resync") is not None:
            raise GraphError(410, "resyncRequired", "Resync required (injected).",
                             inner="resyncChangesApplyDifferences", headers={"Location": url})
        return self.app.delta.answer(req, drive, scope, url, route.token or req.arg("token"))

    def scope_url(self, route: Route, drive: Drive, scope: Item) -> str:
        where = "root" if scope.parent is None else f"items/{scope.id}"
        return f"{self.app.base_url.rstrip('/')}{route.prefix}/drives/{drive.id}/{where}/delta"


Handler = Callable[[Graph, Request, Drive, Route], Response]
HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", ""): Graph.get_item, ("PATCH", ""): Graph.patch_item, ("DELETE", ""): Graph.delete_item,
    ("GET", "children"): Graph.list_children, ("POST", "children"): Graph.create_child,
    ("GET", "content"): Graph.get_content, ("PUT", "content"): Graph.put_content,
    ("POST", "createUploadSession"): Graph.create_session, ("POST", "copy"): Graph.copy,
    ("POST", "createLink"): Graph.create_link, ("GET", "delta"): Graph.delta, ("POST", "restore"): Graph.restore,
}
