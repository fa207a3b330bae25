"""SmartFile REST API v2 as the emulator serves it (spec /work/shared/specs/smartfile.md).

Routing (§2, §8.1): `/api/2/` and `/api/2.<n>/`, optional trailing slash,
each segment percent-decoded once; `/path/<op>/` with nothing after it is the
root; an unknown endpoint is a 404 with an HTML body (the official client
then says "Invalid URL"). JSON answers carry exactly `application/json`.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.faults import Fault
from tests.emulators.forms import BadForm, Form, parse_form
from tests.emulators.smartfile import rsync
from tests.emulators.smartfile.auth import Auth
from tests.emulators.smartfile.store import ApiError, Node, Store, detail, field_error, split_path
from tests.emulators.smartfile.tasks import Tasks, paths_of

API = re.compile(r"^/api/2(?:\.\d+)?(/.*)?$")
TRUTHY = {"on", "true", "True", "1", "yes"}
TASK_FAULTS = frozenset({"task-failure", "task-error"})
NOT_FOUND_HTML = "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>"

Handler = Callable[[Request, list[str], Form], Response]


class SmartFileApp:
    name = "smartfile"

    def __init__(self, key: str, password: str, *, seed: int = 0, clock: Callable[[], float] = time.time,
                 base_url: str = "", storage: str | None = None) -> None:
        self._tmp = tempfile.mkdtemp(prefix="smartfile-emulator-", dir=storage)
        self.rng = random.Random(seed)
        self.store = Store(Path(self._tmp), clock)
        self.auth = Auth(key, password, self.rng)
        self.tasks = Tasks(self.store, self.rng)
        self.base_url = base_url
        self.upload_answer = "list"          # or "object" (spec §0.1-3)
        self.faults: Any = None              # set by the server: task faults are taken here
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "ping"): self.ping, ("GET", "whoami"): self.whoami,
            ("GET", "path/info"): self.path_info, ("POST", "path/info"): self.set_attributes,
            ("GET", "path/data"): self.download, ("POST", "path/data"): self.upload,
            ("POST", "path/oper/mkdir"): self.mkdir, ("PUT", "path/oper/mkdir"): self.mkdir,
            ("POST", "path/oper/rename"): self.rename,
            ("POST", "path/oper/move"): self.task_op("move"), ("POST", "path/oper/copy"): self.task_op("copy"),
            ("POST", "path/oper/remove"): self.task_op("remove"),
            ("GET", "task"): self.task, ("GET", "path/sync/signature"): self.signature,
            ("POST", "path/sync/delta"): self.delta, ("POST", "path/sync/patch"): self.patch,
        }

    # ---- the App protocol ---------------------------------------------------------
    def configure(self, options: dict[str, Any]) -> None:
        """pending_polls, task_latency (seconds), upload_answer, timezone, check_timestamps."""
        if "pending_polls" in options:
            self.tasks.pending_polls = int(options["pending_polls"])
        if "task_latency" in options:
            self.tasks.latency = float(options["task_latency"])
        if "upload_answer" in options:
            self.upload_answer = str(options["upload_answer"])
        if "timezone" in options:
            from zoneinfo import ZoneInfo

            self.store.tz = ZoneInfo(str(options["timezone"]))
        if "check_timestamps" in options:  # may come as text from --option
            self.auth.check_timestamps = str(options["check_timestamps"]).lower() in ("1", "true", "yes", "on")

    def fault_response(self, fault: Fault) -> Response:
        wait = f"{fault.retry_after:g}"
        if fault.kind == "429":
            return Response.json(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                                 **{"Retry-After": wait, "X-Throttle-Wait-Seconds": wait})
        if fault.kind == "503":
            # exactly the legacy format the official client matches: '^.*; next=([\d\.]+) sec$'
            return Response.json(503, {"detail": "Request was throttled."},
                                 **{"X-Throttle": f"throttled; next={wait} sec"})
        return Response.json(int(fault.kind), {"detail": "Internal server error (injected)."})

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def handle(self, req: Request) -> Response:
        path = req.raw_path
        if path.startswith("/oauth/"):
            return self._oauth(req, path.strip("/").removeprefix("oauth/"))
        m = API.match(path)
        if m is None:
            return Response.text(404, NOT_FOUND_HTML, "text/html; charset=utf-8")
        try:
            segments = [urllib.parse.unquote(s, errors="strict") for s in (m.group(1) or "/").split("/") if s]
        except UnicodeDecodeError:
            return Response.json(400, {"detail": "Path is not UTF-8"})
        if any("/" in s for s in segments):
            return Response.json(400, {"detail": "A name cannot contain '/'"})
        try:
            return self._route(req, segments)
        except ApiError as exc:
            return _error(exc)
        except BadForm as exc:
            return Response.json(400, {"detail": str(exc)})

    # ---- routing ------------------------------------------------------------------
    def _route(self, req: Request, segments: list[str]) -> Response:
        method = "GET" if req.method == "HEAD" else req.method
        for depth in (3, 2, 1):
            endpoint = "/".join(segments[:depth])
            handler = self.routes.get((method, endpoint))
            known = any(e == endpoint for _, e in self.routes)
            if handler is None and known:
                raise detail(405, f'Method "{req.method}" not allowed.')
            if handler is None:
                continue
            form = parse_form(req.headers, req.body) if method in ("POST", "PUT") else Form()
            try:
                if endpoint != "ping" and not self.auth.authenticated(req, form.fields):
                    return Response.json(401, {"detail": "Invalid username/password."},
                                         **{"WWW-Authenticate": 'Basic realm="api"'})
                rest = split_path("/".join(segments[depth:]))
                return handler(req, rest, form)
            finally:
                form.close()
        return Response.text(404, NOT_FOUND_HTML, "text/html; charset=utf-8")

    def _oauth(self, req: Request, step: str) -> Response:
        form = parse_form(req.headers, req.body) if req.method == "POST" else Form()
        try:
            if step.strip("/") == "request_token":
                return self.auth.request_token(req, form.fields)
            if step.strip("/") == "access_token":
                return self.auth.access_token(req, form.fields)
            if step.strip("/") == "authorize":
                return self.auth.authorize_page(req)
            return Response.text(404, NOT_FOUND_HTML, "text/html; charset=utf-8")
        finally:
            form.close()

    def _info(self, node: Node, parts: list[str]) -> dict[str, Any]:
        return self.store.info(node, parts, self.base_url)

    # ---- endpoints ----------------------------------------------------------------
    def ping(self, req: Request, rest: list[str], form: Form) -> Response:
        return Response.json(200, {"ping": "pong"})

    def whoami(self, req: Request, rest: list[str], form: Form) -> Response:
        user = {"username": "emulated", "name": "Emulated User", "email": "user@example.invalid",
                "owner": None}
        return Response.json(200, {"address": req.client, "user": user, "site": {"name": "emulator"}})

    def path_info(self, req: Request, rest: list[str], form: Form) -> Response:
        node = self.store.get(rest)
        info = self._info(node, rest)
        if node.isdir and (req.arg("children") or "") in TRUTHY:
            info.update(self._children(req, node, rest))
        return Response.json(200, _only(info, req.query.get("fields")))

    def _children(self, req: Request, node: Node, parts: list[str]) -> dict[str, Any]:
        with self.store.lock:
            kids = sorted(node.children.values(), key=lambda n: (not n.isdir, n.name))
        total = len(kids)
        try:
            limit = int(req.arg("limit") or 0)
            page = int(req.arg("page") or 1)
        except ValueError as exc:
            raise detail(400, "limit and page must be integers") from exc
        if limit < 0 or page < 1:
            raise detail(400, "limit and page must be positive")
        per_page = limit or max(total, 1)   # no limit: everything on one page (policy)
        pages = max(1, math.ceil(total / per_page))
        if page > pages:
            raise detail(404, "Invalid page.")
        chunk = kids[(page - 1) * per_page: page * per_page]
        fields = req.query.get("fields")
        children = [_only(self._info(c, [*parts, c.name]), fields) for c in chunk]
        return {"children": children, "page": page, "pages": pages, "total": total, "per_page": per_page}

    def set_attributes(self, req: Request, rest: list[str], form: Form) -> Response:
        with self.store.lock:
            node = self.store.get(rest)
            for item in form.fields.get("attributes", []):
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise field_error(400, "attributes", f"Expected key=value, got {item[:40]!r}")
                node.attributes[key] = value
            return Response.json(200, self._info(node, rest))

    def download(self, req: Request, rest: list[str], form: Form) -> Response:
        node = self.store.get(rest)
        if node.isdir:
            raise detail(415, "Unsupported media - You may have mixed up file/folder")
        with self.store.lock:
            f = self.store.open_blob(node)
            size = node.size
        ctype = self.store.info(node, rest, "")["mime"]
        # never exactly application/json: the official client would parse the file
        headers = {"Content-Type": "application/octet-stream" if ctype == "application/json" else ctype,
                   "Accept-Ranges": "bytes"}
        start = _range_start(req.headers.get("Range"), size)
        if start is None:
            return Response(200, f, headers, size, f.close)
        f.seek(start)
        headers["Content-Range"] = f"bytes {start}-{max(size - 1, start)}/{size}"
        return Response(206, f, headers, size - start, f.close)

    def upload(self, req: Request, rest: list[str], form: Form) -> Response:
        folder = self.store.folder(rest)
        infos = []
        for part in form.files:
            # the basename the way Django cuts it: after the last "/" or "\\"
            name = (part.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
            split_path(name)
            if not name:
                raise field_error(400, part.name or "file", "A file name is required")
            blob, size = self.store.blob_from(part.data)
            node = self.store.put_file(folder, name, blob, size)
            infos.append(self._info(node, [*rest, name]))
        if not infos:
            raise field_error(400, "file", "No file was submitted.")
        return Response.json(200, infos if self.upload_answer == "list" else infos[0])

    def mkdir(self, req: Request, rest: list[str], form: Form) -> Response:
        target = form.first("path")
        parts = split_path(target) if target is not None else rest
        if not parts:
            raise field_error(400, "path", "This field is required.")
        return Response.json(200, self._info(self.store.mkdir(parts), parts))

    def rename(self, req: Request, rest: list[str], form: Form) -> Response:
        src, dst = form.first("src"), form.first("dst")
        if not src or not dst:
            raise field_error(400, "src" if not src else "dst", "This field is required.")
        sparts, dparts = split_path(src), split_path(dst)
        with self.store.lock:
            self.store.get(sparts, "src")
            folder = self.store.find(dparts[:-1])
            if folder is None or not folder.isdir or not dparts:
                raise field_error(404, "dst", f"Folder of {dst} does not exist.")
            if dparts[-1] in folder.children:
                raise field_error(409, "dst", f"{dst} already exists.")
            if dparts[: len(sparts)] == sparts:
                raise field_error(400, "dst", "Cannot move a folder into itself.")
            node = self.store.detach(sparts)
            self.store.attach(folder, node, dparts[-1])
            return Response.json(200, self._info(node, dparts))

    def task_op(self, op: str) -> Handler:
        def handler(req: Request, rest: list[str], form: Form) -> Response:
            key = "path" if op == "remove" else "src"
            items = paths_of(form.fields.get(key, []))
            if not items:
                raise field_error(400, key, "This field is required.")
            for parts in items:
                self.store.get(parts, key)  # a missing source is refused up front (policy)
            dst: list[str] = []
            if op != "remove":
                dst_value = form.first("dst")
                if dst_value is None:
                    raise field_error(400, "dst", "This field is required.")
                dst = split_path(dst_value)
                self.store.get(dst, "dst")
            fault = self.faults.take(req.method, req.raw_path, TASK_FAULTS) if self.faults else None
            tid = self.tasks.create(op, items, dst, fault.kind if fault else None)
            return Response.json(200, {"uuid": tid})
        return handler

    def task(self, req: Request, rest: list[str], form: Form) -> Response:
        state = self.tasks.poll("/".join(rest))
        if state is None:
            raise detail(404, "Not found.")
        return Response.json(200, state)

    def signature(self, req: Request, rest: list[str], form: Form) -> Response:
        return rsync.signature(self.store, rest, req)

    def delta(self, req: Request, rest: list[str], form: Form) -> Response:
        return rsync.make_delta(self.store, rest, form)

    def patch(self, req: Request, rest: list[str], form: Form) -> Response:
        rsync.apply_patch(self.store, rest, form)
        return Response.json(200, self._info(self.store.get(rest), rest))


def _error(exc: ApiError) -> Response:
    if isinstance(exc.body, str):
        # task-style messages raised synchronously become DRF "detail" bodies
        return Response.json(exc.status, {"detail": exc.body})
    return Response.json(exc.status, exc.body)


def _only(info: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return info
    keep = {f for v in fields for f in v.split(",")} | {"children", "page", "pages", "total", "per_page"}
    return {k: v for k, v in info.items() if k in keep}


def _range_start(header: str | None, size: int) -> int | None:
    """Only `bytes=N-` (what clients resume with); anything else: the whole file."""
    m = re.fullmatch(r"bytes=(\d+)-", (header or "").strip())
    if m is None:
        return None
    start = int(m.group(1))
    if start > size:
        raise detail(416, "Requested range not satisfiable")
    return start
