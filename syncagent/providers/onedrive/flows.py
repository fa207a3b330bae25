"""The two interactive ways to get OneDrive tokens (spec §2.2, §2.3).

* Device code (the default: an agent often runs where no browser is): ask
  for a code, show the address and the code, poll the token endpoint every
  `interval` seconds until the person has signed in elsewhere.
* Authorization code with PKCE on a loopback redirect (`--browser`): open
  the browser at the authorize URL; a one-shot HTTP server on 127.0.0.1
  receives the redirect with the code, which is redeemed with the verifier.

Both return a TokenSet. The terminal is reached only through the callbacks
given (echo, open_browser), so tests drive the flows against the emulator.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from syncagent import errors
from syncagent.http import transport_error
from syncagent.providers.onedrive.tokens import Endpoints, SignInPending, TokenSet, grant_error, token_request

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOGIN_TIMEOUT = 600.0


@dataclass
class Terminal:
    echo: Callable[[str], None]
    open_browser: Callable[[str], bool] = lambda url: False
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def device_code(session: requests.Session, endpoints: Endpoints, client_id: str, scope: str,
                term: Terminal) -> TokenSet:
    """The device authorization grant (RFC 8628 as Microsoft serves it)."""
    from oauthlib.oauth2 import DeviceClient

    url = endpoints.url("devicecode")
    try:
        response = session.post(url, data={"client_id": client_id, "scope": scope}, timeout=60)
    except requests.RequestException as exc:
        raise transport_error(exc, url) from exc
    info = _json(response)
    if response.status_code != 200 or "device_code" not in info:
        raise grant_error(str(info.get("error") or f"http {response.status_code}"), "")
    term.echo(str(info.get("message") or f"open {info['verification_uri']} and enter the code {info['user_code']}"))
    interval = max(0.05, float(info.get("interval") or 5))
    deadline = term.clock() + min(float(info.get("expires_in") or 900), LOGIN_TIMEOUT * 3)
    body = DeviceClient(client_id).prepare_request_body(str(info["device_code"]), include_client_id=True)
    while True:
        term.sleep(interval)
        try:
            return TokenSet.from_response(token_request(session, endpoints, body))
        except SignInPending as exc:
            if exc.code == "slow_down":
                interval += 5
        except errors.TransientError:
            pass  # the sign-in service had a hiccup: poll again
        if term.clock() >= deadline:
            raise errors.AuthError("the device code expired before the sign-in was finished; try again")


class _Redirect(http.server.BaseHTTPRequestHandler):
    """Receives the one redirect of the browser flow."""

    server: _LoopbackServer

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if "code" not in query and "error" not in query:
            self.send_response(404)
            self.end_headers()
            return
        self.server.result = {k: v[0] for k, v in query.items()}
        ok = "code" in query
        text = ("Signed in: you can close this window and return to syncagent." if ok
                else "The sign-in did not complete; see the terminal.")
        body = f"<!doctype html><title>syncagent</title><p>{text}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the query holds the authorization code."""


class _LoopbackServer(http.server.HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Redirect)
        self.result: dict[str, str] = {}
        self.done = threading.Event()


def browser(session: requests.Session, endpoints: Endpoints, client_id: str, scope: str, term: Terminal,
            timeout: float = LOGIN_TIMEOUT) -> TokenSet:
    """Authorization code + PKCE (S256) with a loopback redirect URI."""
    from oauthlib.oauth2 import WebApplicationClient

    client = WebApplicationClient(client_id)
    verifier = client.create_code_verifier(64)
    challenge = client.create_code_challenge(verifier, "S256")
    state = secrets.token_urlsafe(24)
    server = _LoopbackServer()
    redirect_uri = f"http://localhost:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="onedrive-login-redirect")
    thread.start()
    try:
        url = endpoints.url("authorize") + "?" + urllib.parse.urlencode({
            "client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "response_mode": "query", "scope": scope, "state": state, "code_challenge": challenge,
            "code_challenge_method": "S256"})
        if not term.open_browser(url):
            term.echo(f"open this address in a browser on this machine and sign in:\n  {url}")
        else:
            term.echo("sign in in the browser window that opened; waiting...")
        if not server.done.wait(timeout):
            raise errors.AuthError("no answer from the browser sign-in in time; try again (or without --browser)")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    got = server.result
    if got.get("state") != state:
        raise errors.AuthError("the sign-in answer does not belong to this request (state mismatch); try again")
    if "code" not in got:
        raise grant_error(got.get("error", "access_denied"), "")
    body = client.prepare_request_body(code=got["code"], redirect_uri=redirect_uri, code_verifier=verifier,
                                       include_client_id=True, scope=scope)
    return TokenSet.from_response(token_request(session, endpoints, body))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
