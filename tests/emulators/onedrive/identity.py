"""The Microsoft identity platform endpoints the emulator serves on its own
port (spec §2, §9.1-3): `/{tenant}/oauth2/v2.0/{devicecode,token,authorize}`,
plus the pages a person would use in a browser (`/devicelogin` to enter a
user code, the consent page of `authorize`).

Access tokens are opaque random strings with a lifetime; each user given on
the command line also has a static token that never expires. Refresh tokens
rotate on every use (the old one stays valid, as on the real service, unless
`rotate_revokes=True`) and can be revoked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import random
import string
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.base import Request, Response

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
TENANTS_ANY = True  # common, consumers, organizations or a tenant id: all accepted


@dataclass
class Grant:
    """What a token was issued for."""

    user: str
    client_id: str
    scope: str


@dataclass
class DeviceCode:
    grant: Grant
    user_code: str
    expires: float
    interval: float
    approved_by: str | None = None
    declined: bool = False
    last_poll: float = 0.0


@dataclass
class AuthCode:
    grant: Grant
    redirect_uri: str
    challenge: str
    method: str
    expires: float
    used: bool = False


@dataclass
class RefreshToken:
    grant: Grant
    expires: float
    revoked: bool = False


@dataclass
class Identity:
    users: dict[str, str]                      # user -> static access token
    clock: Callable[[], float]
    rng: random.Random
    base_url: Callable[[], str]
    access_lifetime: float = 3600.0
    refresh_lifetime: float = 90 * 86400.0
    device_lifetime: float = 900.0
    device_interval: float = 5.0
    code_lifetime: float = 600.0
    auto_approve: bool = False
    rotate_revokes: bool = False
    client_ids: set[str] = field(default_factory=set)    # empty: any client id is registered
    access: dict[str, tuple[str, float]] = field(default_factory=dict)   # token -> (user, expires)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    devices: dict[str, DeviceCode] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    pending_authorize: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- tokens on Graph calls ------------------------------------------------------
    def user_of(self, token: str) -> tuple[str | None, bool]:
        """(user, expired) for a bearer token; (None, False) when unknown."""
        for user, static in self.users.items():
            if token == static:
                return user, False
        with self.lock:
            found = self.access.get(token)
        if found is None:
            return None, False
        user, expires = found
        return user, self.clock() >= expires

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access = {t: (u, 0.0) for t, (u, _) in self.access.items()}

    def revoke_refresh_tokens(self, user: str | None = None) -> int:
        with self.lock:
            hit = [r for r in self.refresh.values() if user is None or r.grant.user == user]
            for r in hit:
                r.revoked = True
        return len(hit)

    def _random(self, n: int, alphabet: str = string.ascii_letters + string.digits + "-_") -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def _issue(self, grant: Grant) -> dict[str, Any]:
        now = self.clock()
        access = "EwB" + self._random(60)
        self.access[access] = (grant.user, now + self.access_lifetime)
        body: dict[str, Any] = {"token_type": "Bearer", "scope": grant.scope, "expires_in": int(self.access_lifetime),
                                "ext_expires_in": int(self.access_lifetime), "access_token": access}
        if "offline_access" in grant.scope.split():
            refresh = "M.C5" + self._random(80)
            self.refresh[refresh] = RefreshToken(grant, now + self.refresh_lifetime)
            body["refresh_token"] = refresh
        return body

    # ---- HTTP --------------------------------------------------------------------
    def handle(self, req: Request, endpoint: str) -> Response:
        if endpoint == "authorize" and req.method == "GET":
            return self._authorize(req)
        if endpoint == "authorize/consent":
            return self._consent(req)
        if req.method != "POST":
            return oauth_error(405, "invalid_request", 90056, "The endpoint only accepts POST requests.")
        if req.headers.get_content_type() != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", 900144, "The request body must be form-encoded.")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(req.body.read().decode("utf-8", "replace"),
                                                           keep_blank_values=True).items()}
        if endpoint == "devicecode":
            return self._devicecode(form)
        if endpoint == "token":
            with self.lock:
                return self._token(form)
        return oauth_error(404, "invalid_request", 900561, "Unknown endpoint.")

    def _known_client(self, client_id: str) -> bool:
        return bool(client_id) and (not self.client_ids or client_id in self.client_ids)

    def _devicecode(self, form: dict[str, str]) -> Response:
        client_id, scope = form.get("client_id", ""), form.get("scope", "")
        if not self._known_client(client_id):
            return oauth_error(400, "unauthorized_client", 700016, "Application not found in the directory.")
        if not scope:
            return oauth_error(400, "invalid_request", 900144, "The request body must contain 'scope'.")
        with self.lock:
            user_code = self._random(9, string.ascii_uppercase + string.digits)
            device = "DAQABAAEAAA" + self._random(60)
            entry = DeviceCode(Grant("", client_id, scope), user_code, self.clock() + self.device_lifetime,
                               self.device_interval)
            if self.auto_approve and self.users:
                entry.approved_by = next(iter(self.users))
            self.devices[device] = entry
        uri = self.base_url() + "devicelogin"
        return Response.json(200, {
            "user_code": user_code, "device_code": device, "verification_uri": uri,
            "expires_in": int(self.device_lifetime), "interval": _interval(self.device_interval),
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                       "to authenticate."})

    def approve_device(self, user_code: str, user: str, decline: bool = False) -> bool:
        with self.lock:
            for entry in self.devices.values():
                if entry.user_code == user_code.strip().upper() and user in self.users:
                    entry.approved_by, entry.declined = (None, True) if decline else (user, False)
                    return True
        return False

    def devicelogin(self, req: Request) -> Response:
        """The page a person opens: enter the code (`?code=...&user=...`; `&decline=1` to refuse)."""
        code, user = req.arg("code"), req.arg("user") or next(iter(self.users), "")
        if not code:
            return Response.text(200, "<form>Code: <input name=code> User: <input name=user>"
                                 "<button>Next</button></form>", "text/html; charset=utf-8")
        if not self.approve_device(code, user, decline=req.arg("decline") == "1"):
            return Response.text(400, "That code was not recognised.", "text/html; charset=utf-8")
        return Response.text(200, "You have signed in. You can close this window.", "text/html; charset=utf-8")

    def _token(self, form: dict[str, str]) -> Response:
        grant_type = form.get("grant_type", "")
        if form.get("client_secret"):
            return oauth_error(401, "invalid_client", 700025,
                                "Client is public so neither 'client_assertion' nor 'client_secret' should be "
                                "presented.")
        if not self._known_client(form.get("client_id", "")):
            return oauth_error(400, "unauthorized_client", 700016, "Application not found in the directory.")
        if grant_type == DEVICE_GRANT:
            return self._device_token(form)
        if grant_type == "authorization_code":
            return self._code_token(form)
        if grant_type == "refresh_token":
            return self._refresh_token(form)
        return oauth_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")

    def _device_token(self, form: dict[str, str]) -> Response:
        entry = self.devices.get(form.get("device_code", ""))
        if entry is None or entry.grant.client_id != form.get("client_id"):
            return oauth_error(400, "bad_verification_code", 70019, "Verification code is not valid.")
        now = self.clock()
        if now >= entry.expires:
            return oauth_error(400, "expired_token", 70020, "The provided value for 'device_code' has expired.")
        if entry.declined:
            return oauth_error(400, "authorization_declined", 70018, "The user declined the sign-in.")
        entry.last_poll = now
        if entry.approved_by is None:
            return oauth_error(400, "authorization_pending", 70016,
                                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
        del self.devices[form["device_code"]]
        grant = Grant(entry.approved_by, entry.grant.client_id, entry.grant.scope)
        return Response.json(200, self._issue(grant))

    def _code_token(self, form: dict[str, str]) -> Response:
        code = self.codes.get(form.get("code", ""))
        if code is None or self.clock() >= code.expires:
            return oauth_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                                "expired due to inactivity.")
        if code.used:
            return oauth_error(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                                "please retry with a new valid code or use an existing refresh token.")
        if code.grant.client_id != form.get("client_id") or code.redirect_uri != form.get("redirect_uri"):
            return oauth_error(400, "invalid_grant", 50148, "The redirect URI or client id does not match the "
                                "authorization request.")
        if code.challenge and not _pkce_ok(form.get("code_verifier", ""), code.challenge, code.method):
            return oauth_error(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge "
                                "supplied in the authorization request.")
        code.used = True
        return Response.json(200, self._issue(code.grant))

    def _refresh_token(self, form: dict[str, str]) -> Response:
        presented = form.get("refresh_token", "")
        entry = self.refresh.get(presented)
        if entry is None or entry.grant.client_id != form.get("client_id"):
            return oauth_error(400, "invalid_grant", 9002313, "Invalid request. The refresh token is malformed.")
        if entry.revoked:
            return oauth_error(400, "invalid_grant", 50173, "The provided grant has expired due to it being "
                                "revoked, a fresh auth token is needed.")
        if self.clock() >= entry.expires:
            return oauth_error(400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        scope = form.get("scope") or entry.grant.scope
        if not set(scope.split()) <= set(entry.grant.scope.split()):
            return oauth_error(400, "invalid_scope", 70011, "The requested scope exceeds the original grant.")
        if self.rotate_revokes:
            entry.revoked = True
        return Response.json(200, self._issue(Grant(entry.grant.user, entry.grant.client_id, scope)))

    # ---- the browser side of the code flow -----------------------------------------------
    def _authorize(self, req: Request) -> Response:
        q = {k: v[0] for k, v in req.query.items()}
        redirect = q.get("redirect_uri", "")
        if not self._known_client(q.get("client_id", "")):
            return Response.text(400, "AADSTS700016: Application not found.", "text/html; charset=utf-8")
        if not _registered_redirect(redirect):
            return Response.text(400, "AADSTS50011: The redirect URI does not match a registered one.",
                                 "text/html; charset=utf-8")
        if q.get("response_type") != "code":
            return _redirect(redirect, error="unsupported_response_type", state=q.get("state"))
        if q.get("code_challenge") and q.get("code_challenge_method", "plain") not in ("S256", "plain"):
            return _redirect(redirect, error="invalid_request", state=q.get("state"))
        user = q.get("login_hint") if q.get("login_hint") in self.users else None
        if self.auto_approve and self.users:
            return self._grant_code(q, user or next(iter(self.users)))
        ticket = str(uuid.UUID(int=self.rng.getrandbits(128)))
        with self.lock:
            self.pending_authorize[ticket] = q
        links = "".join(f'<li><a href="authorize/consent?ticket={ticket}&user={urllib.parse.quote(u)}">'
                        f"Sign in as {html.escape(u)}</a></li>" for u in self.users)
        deny = f'<a href="authorize/consent?ticket={ticket}&deny=1">Cancel</a>'
        return Response.text(200, f"<ul>{links}</ul>{deny}", "text/html; charset=utf-8")

    def _consent(self, req: Request) -> Response:
        with self.lock:
            q = self.pending_authorize.pop(req.arg("ticket") or "", None)
        if q is None:
            return Response.text(400, "This sign-in request is no longer valid.", "text/html; charset=utf-8")
        if req.arg("deny") == "1":
            return _redirect(q["redirect_uri"], error="access_denied", state=q.get("state"),
                             error_description="AADSTS65004: User declined to consent to access the app.")
        user = req.arg("user") or ""
        if user not in self.users:
            return Response.text(400, "Unknown user.", "text/html; charset=utf-8")
        return self._grant_code(q, user)

    def _grant_code(self, q: dict[str, str], user: str) -> Response:
        code = "M." + self._random(60)
        with self.lock:
            self.codes[code] = AuthCode(Grant(user, q["client_id"], q.get("scope", "")), q["redirect_uri"],
                                        q.get("code_challenge", ""), q.get("code_challenge_method", "plain"),
                                        self.clock() + self.code_lifetime)
        return _redirect(q["redirect_uri"], code=code, state=q.get("state"))


def _interval(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def _pkce_ok(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    return verifier == challenge


def _registered_redirect(uri: str) -> bool:
    """Desktop apps: loopback on any port (RFC 8252 §7.3) or the nativeclient page."""
    parts = urllib.parse.urlsplit(uri)
    if uri == "https://login.microsoftonline.com/common/oauth2/nativeclient":
        return True
    return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")


def _redirect(uri: str, **params: str | None) -> Response:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return Response(302, b"", {"Location": f"{uri}{'&' if '?' in uri else '?'}{query}"})


def oauth_error(status: int, error: str, code: int, text: str) -> Response:
    """The identity platform's error body (spec §2.2-6)."""
    return Response.json(status, {
        "error": error, "error_description": f"AADSTS{code}: {text}", "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4())})
