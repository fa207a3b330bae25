"""The MEGA API as the emulator serves it, all on one 127.0.0.1 port:

    POST /cs?id=ID[&sid=SID]        command batches (answered in order; cached by (sid, id))
    POST /sc?sn=SN&sid=SID           action packets after SN, or {"w": wait URL}
    GET|POST /wsc/<token>            the long poll: returns when SN is outdated or after a timeout
    POST /ul/<token>/<offset>        upload chunks (ciphertext)
    GET|POST /dl/<token>[/<a>-<b>]   download, whole or an inclusive byte range

Faults (tests/emulators/faults.py) beside the core's 500/502/429/503/reset/slow:
    "-3", "-18"   a bare error code (request level) on /cs, /sc or /ul; HTTP 503 on /dl
    "509"         a download refused for bandwidth quota (X-MEGA-Time-Left: retry_after)
    "esid"        every session ends now and the request answers a bare -15
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.faults import Fault
from tests.emulators.mega.accounts import Account, b64
from tests.emulators.mega.commands import Commands
from tests.emulators.mega.store import ApiError, Store

MEGA_FAULTS = frozenset({"-3", "-18", "509", "esid"})
CACHE_SIZE = 2000
_DL = re.compile(r"^/dl/([A-Za-z0-9_-]+)(?:/(\d+)-(\d+))?/?$")
_UL = re.compile(r"^/ul/([A-Za-z0-9_-]+)/(\d+)/?$")
_WSC = re.compile(r"^/wsc/([A-Za-z0-9_-]+)/?$")
COPY = 1 << 20


def _code(code: int) -> Response:
    """A bare error code, as MEGA sends it: HTTP 200, a JSON number."""
    return Response(200, str(code).encode(), {"Content-Type": "application/json"})


class MegaApp:
    name = "mega"

    def __init__(self, storage: str | None = None) -> None:
        self._tmp = tempfile.mkdtemp(prefix="mega-emulator-", dir=storage)
        self.store = Store(Path(self._tmp))
        self.commands = Commands(self.store, lambda: self.base_url)
        self.base_url = ""
        self.faults: Any = None                 # set by the server core
        self.wait_timeout = 20.0                # how long /wsc holds a long poll
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._waits: dict[str, tuple[str, str]] = {}   # wait token -> (user, sn)
        self._closed = False

    # ---- the App protocol -------------------------------------------------------------
    def configure(self, options: dict[str, Any]) -> None:
        """wait_timeout (seconds), quota (bytes), expire_sessions (true: end every session now)."""
        if "wait_timeout" in options:
            self.wait_timeout = float(options["wait_timeout"])
        if "quota" in options:
            self.store.quota = int(options["quota"])
        if str(options.get("expire_sessions", "")).lower() in ("1", "true", "yes"):
            self.expire_sessions()

    def expire_sessions(self) -> None:
        with self.store.lock:
            self.store.sessions.clear()

    def add_account(self, account: Account) -> Account:
        return self.store.add_account(account)

    def fault_response(self, fault: Fault) -> Response:
        status = int(fault.kind) if fault.kind.isdigit() else 500
        headers = {"Retry-After": f"{fault.retry_after:g}"} if status in (429, 503) else {}
        return Response(status, b"", headers)

    def close(self) -> None:
        self._closed = True
        self.store.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def handle(self, req: Request) -> Response:
        path = req.raw_path
        fault = self.faults.take(req.method, path, kinds=MEGA_FAULTS) if self.faults is not None else None
        if fault is not None:
            return self._mega_fault(fault, path)
        if path in ("/cs", "/cs/") and req.method == "POST":
            return self._cs(req)
        if path in ("/sc", "/sc/") and req.method == "POST":
            return self._sc(req)
        m = _WSC.match(path)
        if m is not None:
            return self._wait(m.group(1))
        m = _UL.match(path)
        if m is not None and req.method == "POST":
            return self._upload(req, m.group(1), int(m.group(2)))
        m = _DL.match(path)
        if m is not None and req.method in ("GET", "POST"):
            return self._download(m.group(1), m.group(2), m.group(3))
        return Response.text(404, "not found")

    def _mega_fault(self, fault: Fault, path: str) -> Response:
        if fault.kind == "509":
            return Response(509, b"", {"X-MEGA-Time-Left": f"{fault.retry_after:g}"})
        if fault.kind == "esid":
            self.expire_sessions()
            return _code(-15)
        if path.startswith("/dl/"):
            return Response(503, b"", {"Retry-After": f"{fault.retry_after:g}"})
        return _code(int(fault.kind))

    # ---- /cs ----------------------------------------------------------------------------
    def _cs(self, req: Request) -> Response:
        request_id, sid = req.arg("id"), req.arg("sid") or ""
        try:
            batch = json.loads(req.body.read() or b"null")
        except ValueError:
            return _code(-2)
        if not request_id or not isinstance(batch, list):
            return _code(-2)
        key = (sid, request_id)
        with self.store.lock:
            cached = self._cache.get(key)
            if cached is not None:
                return Response(200, cached, {"Content-Type": "application/json"})
            account = self.store.user_of(sid) if sid else None
            if any(self.commands.needs_session(c) for c in batch) and account is None:
                return _code(-15)
            answers = [self.commands.run(account, c) for c in batch]
            body = json.dumps(answers).encode()
            self._cache[key] = body
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return Response(200, body, {"Content-Type": "application/json"})

    # ---- the event channel ------------------------------------------------------------------
    def _sc(self, req: Request) -> Response:
        account = self.store.user_of(req.arg("sid"))
        if account is None:
            return _code(-15)
        sn = req.arg("sn") or ""
        with self.store.lock:
            log = self.store.logs[account.handle]
            start = log.marks.get(sn)
            if start is None:
                return _code(-6)
            if start < len(log.packets):
                return Response.json(200, {"a": log.packets[start:], "sn": log.latest})
            token = b64(secrets.token_bytes(12))
            self._waits[token] = (account.handle, sn)
        return Response.json(200, {"w": f"{self.base_url}wsc/{token}"})

    def _wait(self, token: str) -> Response:
        deadline = time.monotonic() + self.wait_timeout
        with self.store.lock:
            user, sn = self._waits.pop(token, ("", ""))
            log = self.store.logs.get(user)
            while log is not None and not self._closed and log.latest == sn:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.store.changed.wait(min(left, 1.0))
        return Response(200, b"")

    # ---- transfers ------------------------------------------------------------------------
    def _upload(self, req: Request, token: str, offset: int) -> Response:
        def write(path: Path) -> None:
            req.body.seek(0)
            with open(path, "r+b") as out:
                out.seek(offset)
                shutil.copyfileobj(req.body, out, COPY)

        try:
            upload = self.store.receive(token, offset, req.body_size, write)
        except ApiError as exc:
            return Response.text(200, str(exc.code))
        if upload.token is None:
            return Response(200, b"")
        if upload.raw_token:
            return Response(200, upload.token, {"Content-Type": "application/octet-stream"})
        return Response.text(200, b64(upload.token))

    def _download(self, token: str, first: str | None, last: str | None) -> Response:
        with self.store.lock:
            node = self.store.nodes.get(self.store.downloads.get(token, ""))
            if node is None or node.blob is None:
                return Response.text(404, "not found")
            blob, size = node.blob, node.s
        start, end = (int(first), int(last)) if first is not None and last is not None else (0, size - 1)
        if size and (start > end or end >= size):
            return Response.text(416, "range not satisfiable")
        length = max(0, end - start + 1) if size else 0
        f = open(blob, "rb")  # noqa: SIM115 (closed by on_close after the body is sent)
        f.seek(start)
        return Response(200, f, {"Content-Type": "application/octet-stream"}, length=length, on_close=f.close)
