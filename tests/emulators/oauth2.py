"""A small OAuth 2 authority for tests, and for emulators that need one:
the authorization code grant with PKCE (S256), the device code grant
(RFC 8628) and refresh tokens that rotate.

    authority = OAuth2Authority(client_id="app")
    with EmulatorServer(authority) as server: ...      # or mount it: authority.handle(request)

    GET  /oauth2/authorize   the user "allows" at once: 302 to redirect_uri?code=&state=
                             (deny=True in the config: ?error=access_denied)
    POST /oauth2/devicecode  device_code, user_code, verification_uri, interval, expires_in
    GET  /oauth2/device      ?user_code=: the user approves that code
    POST /oauth2/token       authorization_code | urn:...:device_code | refresh_token

`valid(access_token)` lets a resource server check a bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.faults import Fault

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    used: bool = False


@dataclass
class _Device:
    user_code: str
    approved: bool = False
    polls: int = 0


@dataclass
class OAuth2Authority:
    client_id: str = "syncagent-test"
    name: str = "oauth2"
    lifetime: int = 3600                 # seconds an access token lives
    interval: int = 1                    # device polling interval it asks for
    slow_down_once: bool = False         # answer one poll with slow_down
    deny: bool = False                   # the user refuses in the browser
    base_url: str = ""
    codes: dict[str, _Code] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    access: set[str] = field(default_factory=set)
    refresh: set[str] = field(default_factory=set)
    requests: list[dict[str, str]] = field(default_factory=list)   # token request forms, for assertions
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- App protocol ----------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        route = (request.method, request.raw_path.rstrip("/"))
        if route == ("GET", "/oauth2/authorize"):
            return self._authorize(request)
        if route == ("POST", "/oauth2/devicecode"):
            return self._device_code(_form(request))
        if route == ("GET", "/oauth2/device"):
            return self._approve(request.arg("user_code") or "")
        if route == ("POST", "/oauth2/token"):
            return self._token(_form(request))
        return Response.json(404, {"error": "not_found"})

    def fault_response(self, fault: Fault) -> Response:
        return Response.json(int(fault.kind) if fault.kind.isdigit() else 500, {"error": "server_error"})

    def configure(self, options: dict[str, Any]) -> None:
        for key, value in options.items():
            setattr(self, key, value)

    def close(self) -> None:
        """Nothing to release."""

    def valid(self, access_token: str) -> bool:
        with self.lock:
            return access_token in self.access

    # ---- endpoints --------------------------------------------------------------------
    def _authorize(self, request: Request) -> Response:
        arg = request.arg
        redirect = arg("redirect_uri") or ""
        if arg("client_id") != self.client_id or arg("response_type") != "code" or not redirect:
            return Response.json(400, {"error": "invalid_request"})
        if arg("code_challenge_method") != "S256" or not arg("code_challenge"):
            return Response.json(400, {"error": "invalid_request", "error_description": "PKCE S256 required"})
        answer: dict[str, str] = {"state": arg("state") or ""}
        if self.deny:
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            with self.lock:
                self.codes[code] = _Code(self.client_id, redirect, arg("code_challenge") or "")
            answer["code"] = code
        return Response(302, b"", {"Location": redirect + "?" + urllib.parse.urlencode(answer)})

    def _device_code(self, form: dict[str, str]) -> Response:
        if form.get("client_id") != self.client_id:
            return Response.json(400, {"error": "invalid_client"})
        device, user = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        with self.lock:
            self.devices[device] = _Device(user)
        return Response.json(200, {"device_code": device, "user_code": user, "expires_in": 600,
                                   "interval": self.interval, "verification_uri": self.base_url + "oauth2/device"})

    def _approve(self, user_code: str) -> Response:
        with self.lock:
            found = [d for d in self.devices.values() if d.user_code == user_code]
            for d in found:
                d.approved = True
        return Response.text(200 if found else 404, "approved" if found else "unknown code")

    def _token(self, form: dict[str, str]) -> Response:
        with self.lock:
            self.requests.append(form)
        if form.get("client_id") != self.client_id:
            return Response.json(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == DEVICE_GRANT:
            return self._exchange_device(form)
        if grant == "refresh_token":
            with self.lock:
                known = form.get("refresh_token") in self.refresh
                if known:
                    self.refresh.discard(form["refresh_token"])   # rotates: the old one is spent
            return self._issue() if known else Response.json(400, {"error": "invalid_grant"})
        return Response.json(400, {"error": "unsupported_grant_type"})

    def _exchange_code(self, form: dict[str, str]) -> Response:
        with self.lock:
            code = self.codes.get(form.get("code", ""))
            if code is None or code.used or code.redirect_uri != form.get("redirect_uri"):
                return Response.json(400, {"error": "invalid_grant"})
            code.used = True
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
            return Response.json(400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"})
        return self._issue()

    def _exchange_device(self, form: dict[str, str]) -> Response:
        with self.lock:
            device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return Response.json(400, {"error": "invalid_grant"})
            device.polls += 1
            if self.slow_down_once and device.polls == 1:
                return Response.json(400, {"error": "slow_down"})
            if not device.approved:
                return Response.json(400, {"error": "authorization_pending"})
            del self.devices[form["device_code"]]
        return self._issue()

    def _issue(self) -> Response:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with self.lock:
            self.access.add(access)
            self.refresh.add(refresh)
        return Response.json(200, {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime,
                                   "refresh_token": refresh})


def _form(request: Request) -> dict[str, str]:
    data = request.body.read().decode()
    return {k: v[0] for k, v in urllib.parse.parse_qs(data, keep_blank_values=True).items()}
