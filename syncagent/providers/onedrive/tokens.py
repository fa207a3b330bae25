"""OAuth 2 against the Microsoft identity platform (spec §2): the access
token a Graph request needs, refreshed early and saved back when the
refresh token rotates.

oauthlib builds the token requests' bodies and reads the answers (its error
classes carry the identity platform's `error` codes); requests carries
them, with our timeouts. oauthlib's URL helpers refuse plain http, which an
emulator on 127.0.0.1 needs, so URLs are built here; nothing else is.

A refresh token that is expired, revoked or unknown (`invalid_grant`)
becomes an AuthError telling the user to run `syncagent auth NAME`: the
agent pauses the pair on it instead of retrying.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from syncagent import errors
from syncagent.http import transport_error

DEFAULT_AUTH_URL = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "Files.ReadWrite offline_access"
REFRESH_EARLY = 300.0      # seconds before expiry an access token is replaced
FATAL_GRANT = ("invalid_grant", "interaction_required", "consent_required", "invalid_client",
               "unauthorized_client", "invalid_scope")


@dataclass
class Endpoints:
    """The identity platform's URLs for one tenant (`common`, `consumers`, ...)."""

    auth_url: str = DEFAULT_AUTH_URL
    tenant: str = "common"

    def url(self, endpoint: str) -> str:
        return f"{self.auth_url.rstrip('/')}/{urllib.parse.quote(self.tenant, safe='')}/oauth2/v2.0/{endpoint}"


@dataclass
class TokenSet:
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0    # epoch seconds

    def as_secrets(self) -> dict[str, str]:
        return {"access_token": self.access_token, "refresh_token": self.refresh_token,
                "access_expires": str(int(self.expires_at))}

    @classmethod
    def from_response(cls, token: dict[str, Any], previous: TokenSet | None = None,
                      now: Callable[[], float] = time.time) -> TokenSet:
        expires_in = float(token.get("expires_in") or 3600)
        return cls(str(token["access_token"]),
                   str(token.get("refresh_token") or (previous.refresh_token if previous else "")),
                   now() + expires_in)


def token_request(session: requests.Session, endpoints: Endpoints, body: str, *, timeout: float = 60.0,
                  reauth: str = "") -> dict[str, Any]:
    """POST a form to the token endpoint and read the answer with oauthlib;
    identity errors come back as the tree's classes (never with the body)."""
    from oauthlib.oauth2 import OAuth2Error, WebApplicationClient

    url = endpoints.url("token")
    try:
        response = session.post(url, data=body, timeout=timeout, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    except requests.RequestException as exc:
        raise transport_error(exc, url) from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise errors.TransientError(f"the sign-in service answered {response.status_code}")
    client = WebApplicationClient("")
    try:
        token: dict[str, Any] = dict(client.parse_request_body_response(response.text))
    except OAuth2Error as exc:
        raise grant_error(exc.error, reauth) from None
    except (ValueError, KeyError) as exc:
        raise errors.PermanentError(f"the sign-in service sent an unreadable answer ({response.status_code})") from exc
    if not token.get("access_token"):
        raise errors.PermanentError("the sign-in service sent no access token")
    return token


class SignInPending(errors.TransientError):
    """The device-code sign-in is not finished yet (`code`: authorization_pending or slow_down)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"sign-in: {code}")


def grant_error(code: str, reauth: str) -> errors.ProviderError:
    if code in ("authorization_pending", "slow_down"):
        return SignInPending(code)
    if code == "temporarily_unavailable":
        return errors.TransientError("the sign-in service is temporarily unavailable")
    hint = f"; run `syncagent auth {reauth}`" if reauth else ""
    if code in FATAL_GRANT or code in ("expired_token", "authorization_declined", "bad_verification_code",
                                       "access_denied"):
        return errors.AuthError(f"OneDrive sign-in is no longer valid ({code}){hint}")
    return errors.PermanentError(f"the sign-in service refused the request ({code})")


class TokenSource:
    """The bearer token for Graph requests, shared by every thread of one provider."""

    def __init__(self, endpoints: Endpoints, client_id: str, tokens: TokenSet, *, scope: str = DEFAULT_SCOPE,
                 session: requests.Session, save: Callable[[dict[str, str]], None] | None = None,
                 remote: str = "", clock: Callable[[], float] = time.time) -> None:
        self.endpoints, self.client_id, self.tokens, self.scope = endpoints, client_id, tokens, scope
        self.session, self.save, self.remote, self.clock = session, save, remote, clock
        self.lock = threading.Lock()
        self.refreshes = 0

    def bearer(self) -> str:
        """A token that will last a while (refreshed ~5 min before it expires)."""
        with self.lock:
            if not self.tokens.access_token or self.clock() >= self.tokens.expires_at - REFRESH_EARLY:
                self._refresh()
            return self.tokens.access_token

    def refresh(self, rejected: str) -> str:
        """Graph refused `rejected` (401): refresh, unless another thread already did."""
        with self.lock:
            if self.tokens.access_token == rejected:
                self._refresh()
            return self.tokens.access_token

    def _refresh(self) -> None:
        from oauthlib.oauth2 import WebApplicationClient

        if not self.tokens.refresh_token:
            raise errors.AuthError(f"no OneDrive refresh token; run `syncagent auth {self.remote or 'NAME'}`")
        body = WebApplicationClient(self.client_id).prepare_refresh_body(
            refresh_token=self.tokens.refresh_token, scope=self.scope, client_id=self.client_id)
        token = token_request(self.session, self.endpoints, body, reauth=self.remote or "NAME")
        self.tokens = TokenSet.from_response(token, self.tokens, self.clock)
        self.refreshes += 1
        if self.save is not None:
            self.save(self.tokens.as_secrets())
