"""OAuth 2 for provider logins: the device code grant (RFC 8628), the
authorization code grant with PKCE on a loopback redirect (RFC 7636, RFC
8252 §7.3), and refreshing, with rotated tokens handed back for saving.

oauthlib builds the requests and reads the answers (PKCE verifier and
challenge, token request bodies, token responses and their errors); this
module only drives the exchanges. Any authority works, an emulator's too:
plain http is accepted for loopback hosts only.

    client = OAuth2Client(client_id=..., token_url=..., authorize_url=..., device_url=...)
    token = device_login(client, ctx)            # or browser_login(client, ctx)
    keeper = TokenKeeper(client, token, settings.save_secrets)
    session.headers["Authorization"] = f"Bearer {keeper.access_token()}"
"""

from __future__ import annotations

import http.server
import ipaddress
import secrets as random_tokens
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncagent import errors

if TYPE_CHECKING:
    import requests

    from syncagent.providers.registry import LoginContext

REFRESH_MARGIN = 60.0   # seconds before expiry a token counts as expired
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class OAuth2Client:
    client_id: str
    token_url: str
    authorize_url: str | None = None
    device_url: str | None = None
    client_secret: str | None = None
    scopes: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)   # more authorize-URL parameters (prompt=...)


@dataclass(frozen=True)
class Token:
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None     # epoch seconds

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at - REFRESH_MARGIN

    def secrets(self) -> dict[str, str]:
        """The fields to store (a provider declares them as secrets)."""
        out = {"access_token": self.access_token}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.expires_at is not None:
            out["token_expires_at"] = str(int(self.expires_at))
        return out

    @classmethod
    def from_secrets(cls, values: Mapping[str, Any]) -> Token:
        expires = values.get("token_expires_at")
        return cls(str(values.get("access_token") or ""), values.get("refresh_token") or None,
                   float(expires) if expires else None)


def _check_transport(url: str) -> None:
    """https, or http to this machine (an emulator); never a secret over plain http elsewhere."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise errors.ConfigError(f"OAuth endpoint {parts.scheme}://{parts.netloc} must use https")


def _session(session: requests.Session | None) -> requests.Session:
    import requests

    return session or requests.Session()


def _post_token(client: OAuth2Client, session: requests.Session | None, grant_type: str,
                **params: Any) -> tuple[int, dict[str, Any]]:
    """POST a token request; (status, parsed JSON)."""
    import requests
    from oauthlib.oauth2.rfc6749.parameters import prepare_token_request

    _check_transport(client.token_url)
    body = prepare_token_request(grant_type, client_id=client.client_id, include_client_id=True,
                                 client_secret=client.client_secret, **params)
    try:
        answer = _session(session).post(client.token_url, data=body, timeout=HTTP_TIMEOUT, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    except requests.RequestException as exc:
        raise errors.TransientError(f"cannot reach {urllib.parse.urlsplit(client.token_url).netloc}: "
                                    f"{type(exc).__name__}") from None
    try:
        data = answer.json()
    except ValueError:
        data = {}
    return answer.status_code, data if isinstance(data, dict) else {}


def _token(client: OAuth2Client, status: int, data: dict[str, Any], old_refresh: str | None = None) -> Token:
    """A successful token response, checked by oauthlib; an error response as AuthError/TransientError."""
    import json

    from oauthlib.oauth2.rfc6749.errors import OAuth2Error
    from oauthlib.oauth2.rfc6749.parameters import parse_token_response

    if status >= 500:
        raise errors.TransientError(f"the OAuth server answered {status}")
    if "error" in data or status >= 400:
        reason = str(data.get("error_description") or data.get("error") or f"HTTP {status}")
        raise errors.AuthError(f"the OAuth server refused: {reason}")
    try:
        parsed = parse_token_response(json.dumps(data), scope=" ".join(client.scopes) or None)
    except (OAuth2Error, ValueError) as exc:
        raise errors.AuthError(f"the OAuth server sent an unusable token ({type(exc).__name__})") from None
    expires = parsed.get("expires_at")
    return Token(str(parsed["access_token"]), parsed.get("refresh_token") or old_refresh,
                 float(expires) if expires else None)


def refresh(client: OAuth2Client, refresh_token: str, session: requests.Session | None = None) -> Token:
    """A new access token (and, where the server rotates them, a new refresh token)."""
    status, data = _post_token(client, session, "refresh_token", refresh_token=refresh_token,
                               scope=" ".join(client.scopes) or None)
    return _token(client, status, data, old_refresh=refresh_token)


# ---- device code (RFC 8628) -------------------------------------------------------------
def device_login(client: OAuth2Client, ctx: LoginContext, session: requests.Session | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> Token:
    """Show a code and an address; poll until the user has approved it there."""
    import requests

    if not client.device_url:
        raise errors.Unsupported("this service has no device login")
    _check_transport(client.device_url)
    form = {"client_id": client.client_id, **({"scope": " ".join(client.scopes)} if client.scopes else {})}
    try:
        answer = _session(session).post(client.device_url, data=form, timeout=HTTP_TIMEOUT,
                                        headers={"Accept": "application/json"})
        grant = answer.json()
    except (requests.RequestException, ValueError):
        raise errors.TransientError("cannot start the device login") from None
    if answer.status_code >= 400 or not isinstance(grant, dict) or "device_code" not in grant:
        raise errors.AuthError(f"the OAuth server refused the device login: {grant.get('error', answer.status_code)}"
                               if isinstance(grant, dict) else "the OAuth server refused the device login")
    where = grant.get("verification_uri_complete") or grant.get("verification_uri")
    ctx.echo(f"to log in, open {where} and enter the code {grant.get('user_code')}")
    ctx.open_browser(str(where))
    interval = float(grant.get("interval") or 5)
    deadline = clock() + float(grant.get("expires_in") or 900)
    while clock() < deadline:
        sleep(interval)
        status, data = _post_token(client, session, "urn:ietf:params:oauth:grant-type:device_code",
                                   device_code=grant["device_code"])
        error = data.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5          # RFC 8628 §3.5
            continue
        return _token(client, status, data)
    raise errors.AuthError("the device code expired before it was approved; run `syncagent auth` again")


# ---- authorization code + PKCE on a loopback redirect (RFC 8252) ----------------------------
class _Catcher(http.server.BaseHTTPRequestHandler):
    """Receives the one redirect of the browser after the user allowed access."""

    server: _LoopbackServer

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.end_headers()
            return
        self.server.result = {k: v[0] for k, v in query.items()}
        text = b"syncagent: you can close this window and return to the terminal.\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: nothing of the exchange goes to the terminal."""


class _LoopbackServer(http.server.HTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Catcher)
        self.result: dict[str, str] = {}
        self.done = threading.Event()


def browser_login(client: OAuth2Client, ctx: LoginContext, session: requests.Session | None = None, *,
                  port: int = 0, timeout: float = 300.0) -> Token:
    """Open the authority's consent page; its redirect comes back to
    http://127.0.0.1:PORT/ with a code, exchanged with the PKCE verifier."""
    from oauthlib.common import add_params_to_uri
    from oauthlib.oauth2 import WebApplicationClient

    if not client.authorize_url:
        raise errors.Unsupported("this service has no browser login")
    _check_transport(client.authorize_url)
    pkce = WebApplicationClient(client.client_id)
    verifier = pkce.create_code_verifier(64)
    state = random_tokens.token_urlsafe(24)
    with _LoopbackServer(port) as server:
        redirect = f"http://127.0.0.1:{server.server_address[1]}/"
        params = [("response_type", "code"), ("client_id", client.client_id), ("redirect_uri", redirect),
                  ("state", state), ("code_challenge", pkce.create_code_challenge(verifier, "S256")),
                  ("code_challenge_method", "S256"), *(("scope", " ".join(client.scopes)),) * bool(client.scopes),
                  *client.extra.items()]
        url = add_params_to_uri(client.authorize_url, params)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            if not ctx.open_browser(url):
                ctx.echo(f"open this address in a browser on this machine and allow access:\n  {url}")
            arrived = server.done.wait(timeout)
        finally:
            server.shutdown()
            thread.join(5)
    if not arrived:
        raise errors.AuthError(f"no answer from the browser within {int(timeout)} s; run `syncagent auth` again")
    answer = server.result
    if answer.get("state") != state:
        raise errors.AuthError("the login answer does not match the request (state); nothing stored")
    if "error" in answer:
        raise errors.AuthError(f"access was not granted: {answer.get('error_description') or answer['error']}")
    status, data = _post_token(client, session, "authorization_code", code=answer["code"],
                               redirect_uri=redirect, code_verifier=verifier)
    return _token(client, status, data)


# ---- keeping a token fresh -----------------------------------------------------------------
class TokenKeeper:
    """The current access token of a provider, refreshed before it expires
    (or at once after a 401 with `refresh_now`); every new token is handed
    to `save` (RemoteSettings.save_secrets) so a rotated refresh token survives."""

    def __init__(self, client: OAuth2Client, token: Token, save: Callable[[dict[str, str]], None],
                 session: requests.Session | None = None) -> None:
        self.client, self._token, self._save, self._session = client, token, save, session
        self._lock = threading.Lock()

    def access_token(self) -> str:
        with self._lock:
            if self._token.expired() or not self._token.access_token:
                self._refresh()
            return self._token.access_token

    def refresh_now(self, stale: str) -> str:
        """After a 401 with `stale`: refresh unless another thread already did."""
        with self._lock:
            if self._token.access_token == stale:
                self._refresh()
            return self._token.access_token

    def _refresh(self) -> None:
        if not self._token.refresh_token:
            raise errors.AuthError("the access token expired and there is no refresh token; "
                                   "run `syncagent auth` again")
        self._token = refresh(self.client, self._token.refresh_token, self._session)
        self._save(self._token.secrets())
