"""OneDrive (Microsoft Graph v1.0) as a syncagent provider.

Paths are addressed from the drive root (`root:/<root>/<path>:`); the
provider's root is a folder of the drive ("" = the whole drive). Listing for
the engine goes through the delta feed (feed.py); `list()` walks children
pages (any folder, any account type). Transfers: upload.py and reader.py.
The service's spelling of a name that is not in NFC is remembered from
listings, so an item created elsewhere in NFD is still addressed as it is
spelled there.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import IO, Any

from syncagent import errors
from syncagent.providers.base import (
    ANY,
    Capabilities,
    ChangeBatch,
    Expect,
    PairContext,
    Provider,
    Quota,
    RemoteEntry,
    walk_breadth_first,
)
from syncagent.providers.onedrive.feed import SELECT, DeltaFeed
from syncagent.providers.onedrive.items import (
    FORBIDDEN_CHARS,
    MAX_NAME,
    MAX_PATH,
    engine_name,
    format_time,
    is_folder,
    name_problem,
    not_followed,
    to_entry,
    valid_listed_name,
)
from syncagent.providers.onedrive.reader import download_reader
from syncagent.providers.onedrive.transport import Graph
from syncagent.providers.onedrive.upload import Uploader

LINK_KINDS = ("view", "edit", "embed")
NOT_FOLLOWED_REASONS = frozenset(filter(None, (not_followed({"package": {}}), not_followed({"remoteItem": {}}))))
SESSION_MAX_AGE = 7 * 86400.0


class OneDriveProvider(Provider):
    name = "onedrive"
    capabilities = Capabilities(
        hash_kind="quickxor",
        server_move=True, server_copy=True,
        change_feed=True,           # root/delta: a quiet poll is one request
        set_mtime=True,             # fileSystemInfo.lastModifiedDateTime
        ids=True,                   # item ids survive renames and moves
        case_insensitive=True,
        forbidden_chars=FORBIDDEN_CHARS,
        max_name_length=MAX_NAME,
        max_path_length=MAX_PATH,
        mtime_precision_ns=1_000_000_000,
        links=True, quota=True, transfers=4,
    )

    def __init__(self, graph: Graph, root: str = "", *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.graph, self.sleep = graph, sleep
        self.root = "/".join(p for p in root.split("/") if p)
        room = MAX_PATH - (len(self.root) + 1 if self.root else 0)
        self.capabilities = dataclasses.replace(type(self).capabilities, max_path_length=max(1, room))
        self._spelling: dict[str, str] = {}      # engine path (NFC) -> the service's spelling
        self._skipped: dict[str, str] = {}
        self._drive_id: str | None = None
        self.feed = DeltaFeed(graph, lambda: self.pair.state, lambda: self._item(""),
                              self._spelling.__setitem__, self._skipped.__setitem__)
        self.uploads = Uploader(graph, lambda: self.pair.state)

    # ---- paths -------------------------------------------------------------------------------
    def remote(self, path: str) -> str:
        """The path from the drive root, in the service's spelling where it differs."""
        return "/".join(p for p in (self.root, self._spelled(path.strip("/"))) if p)

    def _spelled(self, path: str) -> str:
        if not path or path.isascii():
            return path
        if path in self._spelling:
            return self._spelling[path]
        head, _, name = path.rpartition("/")
        return f"{self._spelled(head)}/{name}" if head else name

    def _learn(self, path: str, spelled: str) -> None:
        if path != spelled:
            self._spelling[path] = spelled

    def name_problem(self, path: str) -> str | None:
        """The declared limits, then OneDrive's own rules (reserved names,
        leading/trailing spaces, a trailing dot)."""
        return super().name_problem(path) or name_problem(path.rpartition("/")[2])

    def _check_name(self, path: str) -> None:
        why = self.name_problem(path)
        if why is not None:
            raise errors.InvalidName(why, path=path)

    def describe(self) -> str:
        return f"onedrive:{self.graph.drive.rsplit('/', 2)[-1]}/{self.root}"

    def attach(self, pair: PairContext) -> None:
        super().attach(pair)
        self.feed.forget()

    def close(self) -> None:
        self.graph.session.close()

    # ---- items -------------------------------------------------------------------------------
    def _item(self, path: str) -> dict[str, Any]:
        return self.graph.json("GET", self.graph.item(self.remote(path)), path=path or None)

    def stat(self, path: str) -> RemoteEntry:
        return to_entry(path.strip("/"), self._item(path))

    def root_exists(self) -> bool:
        try:
            return is_folder(self._item(""))
        except errors.NotFound:
            return False

    def ensure_root(self) -> None:
        at = ""
        for part in self.root.split("/") if self.root else ():
            self._create_folder(at, part, "")
            at = f"{at}/{part}" if at else part

    def drive_id(self) -> str:
        if self._drive_id is None:
            self._drive_id = str(self.graph.json("GET", self.graph.drive, params={"$select": "id"})["id"])
        return self._drive_id

    # ---- listing -----------------------------------------------------------------------------
    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        """Breadth first over children pages: memory holds one page and the folder queue."""
        self._skipped.clear()
        yield from walk_breadth_first(path.strip("/"), self._children)

    def _children(self, folder: str) -> Iterator[RemoteEntry]:
        url: str | None = self.graph.action(self.remote(folder), "children")
        params: dict[str, Any] | None = {"$top": self.graph.tuning.page_size, "$select": SELECT}
        seen: set[str] = set()
        while url:
            page = self.graph.json("GET", url, path=folder or None, params=params)
            params = None
            for item in page.get("value") or ():
                entry = self._child_entry(folder, item, seen)
                if entry is not None:
                    yield entry
            url = page.get("@odata.nextLink")

    def _child_entry(self, folder: str, item: Any, seen: set[str]) -> RemoteEntry | None:
        name = item.get("name") if isinstance(item, dict) else None
        if not valid_listed_name(name):
            return None
        assert isinstance(name, str)
        path = f"{folder}/{engine_name(name)}" if folder else engine_name(name)
        if path.casefold() in seen:
            self._skipped[path] = "two items of one name (they differ only in Unicode form)"
            return None
        seen.add(path.casefold())
        parent_spelled = self._spelled(folder)
        self._learn(path, f"{parent_spelled}/{name}" if parent_spelled else name)
        why = not_followed(item)
        if why is not None:
            self._skipped[path] = why
            return None
        return to_entry(path, item)

    def skipped(self) -> dict[str, str]:
        return dict(self._skipped)

    def unfit_names(self) -> dict[str, str]:
        """Skipped names, less the items left out on purpose (notebooks, shared folders)."""
        return {p: why for p, why in self._skipped.items() if why not in NOT_FOLLOWED_REASONS}

    def changes(self, cursor: str | None) -> ChangeBatch:
        if cursor is None:
            self._skipped.clear()
        return self.feed.changes(cursor)

    def cleanup_temps(self) -> int:
        """Upload sessions saved for resuming that are too old to be worth it."""
        return self.uploads.stale_sessions(SESSION_MAX_AGE)

    # ---- content -----------------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        return io.BufferedReader(download_reader(self.graph, lambda: self._item(path), path), self.graph.tuning.chunk)

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        path = path.strip("/")
        self._check_name(path)
        remote = self.remote(path)
        if size <= self.graph.tuning.simple_limit:
            item = self.uploads.simple(path, remote, stream, size, expect)
            if mtime_ns:
                item = self._set_times(path, item, mtime_ns)
        else:
            item = self.uploads.session(path, remote, stream, size, mtime_ns, expect)
        return to_entry(path, item)

    def _set_times(self, path: str, item: dict[str, Any], mtime_ns: int) -> dict[str, Any]:
        """PATCH fileSystemInfo after a simple upload (If-Match: a racing writer wins)."""
        body = {"fileSystemInfo": {"lastModifiedDateTime": format_time(mtime_ns)}}
        try:
            return self.graph.json("PATCH", self.graph.by_id(str(item["id"])), path=path, json=body,
                                   headers={"If-Match": str(item.get("eTag") or "*")})
        except errors.Conflict:
            return item

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        body = {"fileSystemInfo": {"lastModifiedDateTime": format_time(mtime_ns)}}
        item = self.graph.json("PATCH", self.graph.item(self.remote(path)), path=path, json=body)
        return to_entry(path.strip("/"), item)

    def content_hash(self, path: str) -> str | None:
        try:
            return self.stat(path).hash
        except errors.NotFound:
            return None

    # ---- folders, moves, copies, deletes ---------------------------------------------------------
    def mkdir(self, path: str) -> RemoteEntry:
        path = path.strip("/")
        parent, _, name = path.rpartition("/")
        self._check_name(path)
        try:
            item = self._create_folder(self.remote(parent), name, path)
        except errors.NotFound:
            self.mkdir(parent)
            item = self._create_folder(self.remote(parent), name, path)
        return to_entry(path, item)

    def _create_folder(self, parent_remote: str, name: str, path: str) -> dict[str, Any]:
        body = {"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}
        try:
            return self.graph.json("POST", self.graph.action(parent_remote, "children"), path=path, json=body,
                                   overrides={409: errors.AlreadyExists})
        except errors.AlreadyExists:
            item = self.graph.json("GET", self.graph.item(f"{parent_remote}/{name}".strip("/")), path=path)
            if not is_folder(item):
                raise errors.AlreadyExists("a file has that name", path=path) from None
            return item

    def _folder_id(self, path: str) -> str:
        item = self._item(path)
        if not is_folder(item):
            raise errors.AlreadyExists("not a folder", path=path)
        return str(item["id"])

    def move(self, src: str, dst: str) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        self._check_name(dst)
        body: dict[str, Any] = {"name": dst.rpartition("/")[2], "@microsoft.graph.conflictBehavior": "fail"}
        if src.rpartition("/")[0] != dst.rpartition("/")[0]:
            body["parentReference"] = {"id": self._folder_id(dst.rpartition("/")[0])}
        item = self.graph.json("PATCH", self.graph.item(self.remote(src)), path=src, json=body, safe=False,
                               overrides={409: errors.AlreadyExists})
        self._spelling.pop(src, None)
        return to_entry(dst, item)

    def copy(self, src: str, dst: str) -> RemoteEntry:
        src, dst = src.strip("/"), dst.strip("/")
        self._check_name(dst)
        body = {"parentReference": {"driveId": self.drive_id(), "id": self._folder_id(dst.rpartition("/")[0])},
                "name": dst.rpartition("/")[2]}
        response = self.graph.call("POST", self.graph.action(self.remote(src), "copy"), path=src, json=body,
                                   safe=False, overrides={409: errors.AlreadyExists})
        monitor = response.headers.get("Location")
        if not monitor:
            raise errors.PermanentError("OneDrive gave no copy monitor", path=src)
        item_id = self._wait_copy(monitor, dst)
        return to_entry(dst, self.graph.json("GET", self.graph.by_id(item_id), path=dst))

    def _wait_copy(self, monitor: str, path: str) -> str:
        """Poll the copy's monitor URL (no token) until it completes (spec §5.10)."""
        t = self.graph.tuning
        delay, deadline = t.copy_poll_initial, time.monotonic() + t.copy_timeout
        while True:
            status = self.graph.json("GET", monitor, auth=False, path=path)
            state = status.get("status")
            if state == "completed" and status.get("resourceId"):
                return str(status["resourceId"])
            if state in ("failed", "cancelled", "deleteFailed"):
                code = (status.get("error") or {}).get("code") if isinstance(status.get("error"), dict) else None
                if code == "nameAlreadyExists":
                    raise errors.AlreadyExists("the copy's name was taken meanwhile", path=path)
                raise errors.PermanentError(f"OneDrive could not copy ({code or state})", path=path)
            if time.monotonic() > deadline:
                raise errors.TransientError("the copy did not finish in time", path=path)
            self.sleep(delay)
            delay = min(delay * 2, t.copy_poll_max)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        path = path.strip("/")
        if not path:
            raise errors.PermanentError("refusing to delete the root of a remote")
        if recursive:   # one request: OneDrive deletes a folder with its contents
            self.graph.call("DELETE", self.graph.item(self.remote(path)), path=path)
        else:
            item = self._item(path)
            if is_folder(item) and int((item.get("folder") or {}).get("childCount") or 0):
                raise errors.PermanentError("the folder is not empty", path=path)
            self.graph.call("DELETE", self.graph.by_id(str(item["id"])), path=path,
                            headers={"If-Match": str(item.get("eTag") or "*")})
        self._spelling.pop(path, None)

    # ---- extras --------------------------------------------------------------------------------
    def quota(self) -> Quota:
        q = self.graph.json("GET", self.graph.drive).get("quota") or {}
        return Quota(int(q.get("used") or 0), int(q["total"]) if q.get("total") is not None else None)

    def drive_info(self) -> dict[str, Any]:
        return self.graph.json("GET", self.graph.drive)

    def link(self, path: str) -> str:
        return self.share_link(path, "view")

    def share_link(self, path: str, kind: str = "view") -> str:
        if kind not in LINK_KINDS:
            raise errors.UsageError(f"link type must be one of {', '.join(LINK_KINDS)}")
        body = {"type": kind, "scope": "anonymous"}
        permission = self.graph.json("POST", self.graph.action(self.remote(path), "createLink"), path=path,
                                     json=body)
        link = permission.get("link") or {}
        return str(link.get("webHtml") if kind == "embed" and link.get("webHtml") else link.get("webUrl") or "")

    def info(self, path: str) -> dict[str, Any]:
        item = self._item(path)
        entry = to_entry(path.strip("/"), item)
        keep = ("id", "name", "size", "eTag", "cTag", "createdDateTime", "lastModifiedDateTime", "webUrl",
                "description", "fileSystemInfo", "file", "folder", "parentReference")
        return {"path": entry.path, "kind": str(entry.kind), "mtime_ns": entry.mtime_ns, "hash": entry.hash,
                **{k: item[k] for k in keep if k in item}}

    def set_info(self, path: str, *, name: str | None = None, description: str | None = None) -> RemoteEntry:
        """The seed's `info_set`: rename in place and/or set the description (Personal drives)."""
        path = path.strip("/")
        body: dict[str, Any] = {}
        target = path
        if name is not None:
            target = f"{path.rpartition('/')[0]}/{name}".strip("/")
            self._check_name(target)
            body["name"] = name
            body["@microsoft.graph.conflictBehavior"] = "fail"
        if description is not None:
            body["description"] = description
        item = self.graph.json("PATCH", self.graph.item(self.remote(path)), path=path, json=body,
                               overrides={409: errors.AlreadyExists})
        if target != path:
            self._spelling.pop(path, None)
        return to_entry(target, item)

    def recent(self) -> builtins.list[RemoteEntry]:
        """The drive's recent files below the root, newest first (deprecated by
        Microsoft: degraded, then empty after November 2026)."""
        value = self.graph.json("GET", f"{self.graph.drive}/recent").get("value")
        out = []
        prefix = f"/drive/root:/{self.root}" if self.root else "/drive/root:"
        for item in value if isinstance(value, list) else ():
            ref = item.get("parentReference") if isinstance(item, dict) else None
            where = str(ref.get("path") or "") if isinstance(ref, dict) else ""
            if not valid_listed_name(item.get("name")) or not (where == prefix or where.startswith(prefix + "/")):
                continue
            folder = urllib.parse.unquote(where[len(prefix):]).strip("/")
            out.append(to_entry("/".join(engine_name(p) for p in (*folder.split("/"), item["name"]) if p), item))
        return out

    def comments(self, path: str) -> builtins.list[dict[str, Any]]:
        raise errors.Unsupported("Microsoft Graph has no comments on OneDrive items (SkyDrive's went with Live "
                                 "Connect)", path=path or None)
