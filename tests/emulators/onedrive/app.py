"""Microsoft Graph (OneDrive) and the identity platform on one loopback port.

    /{tenant}/oauth2/v2.0/{devicecode,token,authorize}   identity.py
    /devicelogin                                         where a person enters a device code
    /v1.0/..., /_api/v2.0/...                            the drive API (routes.py, graph.py)
    /_upload/{id}, /_download/{token}, /_monitor/{id}    pre-authenticated URLs (transfers.py)

Faults: the server core's transport kinds (500, 502, 429, 503, reset,
reset-mid, slow) answer in Graph's shape with `Retry-After`; the app's own
kinds are `resync` (a delta request answers 410), `423` (locked),
`401` (the access token is reported expired) and `invalid_grant` (a token
request is refused as if the refresh token were revoked).
"""

from __future__ import annotations

import hashlib
import random
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.faults import Fault
from tests.emulators.onedrive.delta import DeltaFeed
from tests.emulators.onedrive.drive import Drive
from tests.emulators.onedrive.errors import GraphError
from tests.emulators.onedrive.graph import Graph
from tests.emulators.onedrive.identity import Identity, oauth_error
from tests.emulators.onedrive.routes import parse
from tests.emulators.onedrive.transfers import Transfers
from tests.emulators.onedrive.views import item_json

IDENTITY = re.compile(r"^/([^/]+)/oauth2/v2\.0/(devicecode|token|authorize|authorize/consent)$")
APP_KINDS = frozenset({"resync", "423", "401", "invalid_grant"})
TRUE = ("1", "true", "yes", "on")


class OneDriveApp:
    name = "onedrive"

    def __init__(self, users: dict[str, str], *, seed: int = 0, clock: Callable[[], float] = time.time,
                 storage: str | None = None, quota_total: int = 5 << 30) -> None:
        self._tmp = tempfile.mkdtemp(prefix="onedrive-emulator-", dir=storage)
        self.storage = Path(self._tmp)
        self.rng = random.Random(seed)
        self.clock = clock
        self.lock = threading.RLock()
        self.base_url = ""
        self.faults: Any = None              # set by the server: the app's own fault kinds are taken here
        self.simple_upload_limit = 4 << 20
        self.download_lifetime = 3600.0
        self.sha1 = True
        self.delta_root_only = False         # OneDrive for Business: delta on the drive root only
        self.drives: dict[str, Drive] = {}   # user -> drive
        for user in users:
            drive_id = hashlib.sha1(f"{seed}:{user}".encode()).hexdigest()[:16]
            self.drives[user] = Drive(drive_id, user, self.storage, clock, self.lock, quota_total)
        self.identity = Identity(dict(users), clock, self.rng, lambda: self.base_url)
        self.graph = Graph(self)
        self.transfers = Transfers(clock, self.lock, self.graph.commit_session, self.graph.render,
                                   lambda: {d.id: d for d in self.drives.values()})
        self.delta = DeltaFeed(clock, lambda d, i, gone, fields: item_json(
            self.base_url, d, i, delta=True, gone=gone, download_lifetime=self.download_lifetime, fields=fields))

    def drive_of(self, user: str) -> Drive:
        return self.drives[user]

    # ---- the App protocol -------------------------------------------------------------
    def configure(self, options: dict[str, Any]) -> None:
        """Policies and test hooks; values may come as text from --option."""
        ident, t = self.identity, self.transfers
        floats = {"access_lifetime": (ident, "access_lifetime"), "refresh_lifetime": (ident, "refresh_lifetime"),
                  "device_lifetime": (ident, "device_lifetime"), "device_interval": (ident, "device_interval"),
                  "code_lifetime": (ident, "code_lifetime"), "session_lifetime": (t, "session_lifetime"),
                  "copy_delay": (t, "copy_delay"), "delta_retention": (self.delta, "retention"),
                  "download_lifetime": (self, "download_lifetime")}
        flags = {"auto_approve": (ident, "auto_approve"), "rotate_revokes": (ident, "rotate_revokes"),
                 "strict_fragments": (t, "strict_fragments"), "strict_upload_auth": (t, "strict_upload_auth"),
                 "sha1": (self, "sha1"), "delta_root_only": (self, "delta_root_only")}
        for key, value in options.items():
            if key in floats:
                setattr(*floats[key], float(value))
            elif key in flags:
                setattr(*flags[key], str(value).lower() in TRUE)
            elif key in ("copy_polls", "copy_done_status"):
                setattr(t, key, int(value))
            elif key == "simple_upload_limit":
                self.simple_upload_limit = int(value)
            elif key == "client_ids":
                ident.client_ids = {c for c in str(value).split(",") if c}
            elif key == "quota_total":
                for d in self.drives.values():
                    d.quota_total = int(value)
            elif key == "expire_access_tokens" and str(value).lower() in TRUE:
                ident.expire_access_tokens()
            elif key == "revoke_refresh_tokens" and str(value).lower() in TRUE:
                ident.revoke_refresh_tokens()
            elif key == "populate":
                for d in self.drives.values():
                    d.populate(int(value))
            elif key == "approve_device":
                ident.approve_device(str(value), next(iter(self.drives)))
            else:
                raise ValueError(f"unknown onedrive emulator option {key!r}")

    def fault_response(self, fault: Fault) -> Response:
        wait = f"{fault.retry_after:g}"
        if fault.kind == "429":
            return GraphError(429, "activityLimitReached", "Too Many Requests", inner="throttledRequest",
                              headers={"Retry-After": wait}).response()
        if fault.kind == "503":
            return GraphError(503, "serviceNotAvailable", "Service Unavailable",
                              headers={"Retry-After": wait}).response()
        return GraphError(int(fault.kind), "generalException",
                          "An unspecified error has occurred (injected).").response()

    def take_fault(self, req: Request, kind: str) -> Fault | None:
        if self.faults is None:
            return None
        found: Fault | None = self.faults.take(req.method, urllib.parse.unquote(req.raw_path), kinds=frozenset({kind}))
        return found

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ---- requests ----------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except GraphError as exc:
            return exc.response()

    def _handle(self, req: Request) -> Response:
        path = req.raw_path
        m = IDENTITY.match(path)
        if m is not None:
            if m.group(2) == "token" and self.take_fault(req, "invalid_grant") is not None:
                return _refused_grant()
            return self.identity.handle(req, m.group(2))
        if path == "/devicelogin":
            return self.identity.devicelogin(req)
        for prefix, handler in (("/_upload/", self.transfers.upload), ("/_download/", self.transfers.download),
                                ("/_monitor/", lambda r, key: self.transfers.monitor(key))):
            if path.startswith(prefix):
                return handler(req, path[len(prefix):])
        if self.take_fault(req, "423") is not None:
            raise GraphError(423, "resourceLocked", "The resource you are attempting to access is locked.")
        user = self._caller(req)
        route = parse(path)
        with self.lock:
            self.transfers.tick()
            drive = self.drives[user]
            if route.drive_id is not None and route.drive_id.lower() != drive.id:
                known = any(d.id == route.drive_id.lower() for d in self.drives.values())
                raise GraphError(403 if known else 404, "accessDenied" if known else "itemNotFound",
                                 "Access denied." if known else "The drive does not exist.")
            return self.graph.dispatch(req, drive, route)

    def _caller(self, req: Request) -> str:
        header = req.headers.get("Authorization") or ""
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        user, expired = self.identity.user_of(token) if token else (None, False)
        if user is not None and not expired and self.take_fault(req, "401") is None:
            return user
        expired = expired or user is not None
        description = "expired_token: The access token has expired." if expired else \
            "The access token is missing or not valid."
        raise GraphError(401, "InvalidAuthenticationToken",
                         "Access token has expired or is not yet valid." if expired else "Access token is empty.",
                         headers={"WWW-Authenticate": f'Bearer realm="", error="invalid_token", '
                                                      f'error_description="{description}"'})


def _refused_grant() -> Response:
    return oauth_error(400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, "
                        "a fresh auth token is needed.")
