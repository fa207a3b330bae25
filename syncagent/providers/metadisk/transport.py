"""HTTP for the Metadisk provider: the three ways a request authenticates
(ECDSA signature, HTTP Basic, single-use token), retries, and the ONE place
where an answer or a transport failure becomes a `syncagent.errors` class.

The 2016 bridge answers several failures with a bare 500 and only its
message tells them apart (spec §3.4: wrong Basic password, invalid or
expired x-token, duplicate e-mail); newer bridges say 400/401. Both are
mapped here, once. Retries are decided by the class:

* `NonceRejected` (a nonce that lost a race with another process of the
  same account) and `TokenRejected` (a single-use token expired or used)
  are transient: the next try signs a fresh nonce or mints a fresh token;
* 5xx and broken connections are transient; a request the server may have
  acted on (creating a bucket, registering) is retried only when it
  certainly did not (it answered with an error status).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from syncagent import errors
from syncagent.http import Timeouts, new_session, transport_error
from syncagent.providers.metadisk.signing import KeyPair, NonceClock, basic_header, sign_request
from syncagent.retry import RetryPolicy

DEFAULT_API = "https://api.metadisk.org"


class NonceRejected(errors.TransientError):
    """The bridge refused the nonce (another process of this account signed a later one first)."""


class TokenRejected(errors.TransientError):
    """A PUSH/PULL or farmer token was refused (expired, used, or for another operation): mint a new one."""


class NotActivated(errors.AuthError):
    """The account exists but its activation link was never opened."""


class BadLogin(errors.AuthError):
    """No account with this e-mail and password (or the password is wrong)."""


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    attempts: int = 5                 # tries per request on transient errors
    backoff_base: float = 0.5         # seconds; full jitter up to base * 2**attempt
    backoff_cap: float = 20.0
    connect_timeout: float = 15.0
    timeout: float = 60.0             # silence on an open connection (HTTP and data channel)
    request_total: float = 6 * 3600.0  # one whole request (a large upload included)
    manifest_races: int = 4           # re-read-merge-write rounds after a concurrent manifest writer
    gc_grace: float = 3600.0          # seconds content stays unreferenced before it is deleted
    tombstone_days: float = 30.0      # how long a deletion is remembered for late concurrent writers


_HINT = "run `syncagent auth {name}`"


def error_for(response: requests.Response | None = None, exc: BaseException | None = None, *,
              token: bool = False, remote: str = "", path: str | None = None,
              url: str = DEFAULT_API) -> errors.ProviderError:
    """Every failure of a Metadisk request, mapped onto the error tree (spec §3.4)."""
    if response is None:
        return transport_error(exc or OSError("no answer"), url, path=path)
    status, message = response.status_code, _message(response)
    text = f"Metadisk answered {status}: {message}"
    lowered = message.lower()
    hint = _HINT.format(name=remote or "NAME")
    if "invalid or expired token" in lowered or (token and status == 401):
        return TokenRejected(text, path=path)
    if "nonce" in lowered and status in (400, 401):
        return NonceRejected(text, path=path)
    if "not been activated" in lowered:
        return NotActivated(f"{text}: open the activation link the service e-mailed, then {hint}", path=path)
    if "invalid email or password" in lowered:
        return BadLogin(f"{text}: wrong e-mail or password; {hint}", path=path)
    if "already registered" in lowered:
        return errors.AlreadyExists(text, path=path)
    if status in (401, 403):
        return errors.AuthError(f"{text}; {hint}", path=path)
    if status == 404:
        return errors.NotFound(text, path=path)
    if status == 429:
        return errors.Throttled(text, retry_after=_retry_after(response), path=path)
    if status >= 500:
        return errors.TransientError(text, path=path)
    return errors.PermanentError(text, path=path)


def _message(response: requests.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:200]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])[:200]
    return str(body)[:200]


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


@dataclass
class Credentials:
    """Who the requests are for: the e-mail, the password hash (Basic, the fallback)
    and the key pair (ECDSA, the normal way)."""

    email: str = ""
    password_sha256: str | None = None
    key: KeyPair | None = None


class Api:
    """A pooled session against one bridge, with the retry loop."""

    def __init__(self, url: str, creds: Credentials, *, tuning: Tuning | None = None,
                 session: requests.Session | None = None, remote: str = "",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = (url or DEFAULT_API).rstrip("/")
        self.creds = creds
        self.tuning = tuning or Tuning()
        t = self.tuning
        # an upload is one request however large the file (the bridge shards it): the total bound
        # is generous, silence on the connection (`read`) is what catches a dead peer
        self.session = session or new_session(Timeouts(connect=t.connect_timeout, read=t.timeout,
                                                       total=t.request_total), user_agent_suffix="metadisk")
        self.policy = RetryPolicy(attempts=t.attempts, backoff_base=t.backoff_base, backoff_cap=t.backoff_cap)
        self.remote = remote
        self.sleep = sleep
        self.nonces = NonceClock()
        self._signing = threading.Lock()   # signed requests go out in nonce order (spec §3.3: per user)

    def close(self) -> None:
        self.session.close()

    # ---- the three authentications ---------------------------------------------------
    def auth(self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
             safe: bool = True, basic: bool = False) -> Any:
        """An authenticated route: signed with the key, or Basic when there is no key
        (or `basic=True`: managing keys before one is registered)."""
        params = dict(params or {})
        if self.creds.key is not None and not basic:
            return self._json(lambda: self._signed(method, path, params), method, path, safe)
        if not self.creds.email or not self.creds.password_sha256:
            raise errors.AuthError(f"no key and no password for Metadisk remote {self.remote!r}; "
                                   + _HINT.format(name=self.remote or "NAME"))
        return self._json(lambda: self._basic(method, path, params), method, path, safe)

    def anonymous(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                  safe: bool = True) -> Any:
        """A route with no authentication (register, activate, the API description)."""
        def send() -> requests.Response:
            return self._send(method, path, json=dict(body) if body is not None else None)

        return self._json(send, method, path, safe)

    def with_token(self, method: str, path: str, token_for: Callable[[], str], *, stream: bool = False,
                   body: Callable[[], dict[str, Any]] | None = None,
                   error_path: str | None = None) -> requests.Response:
        """A token route (upload, pointers): each try mints a fresh single-use token."""
        def send() -> requests.Response:
            extra = body() if body is not None else {}
            headers = {"x-token": token_for(), **extra.pop("headers", {})}
            return self._send(method, path, headers=headers, stream=stream, **extra)

        return self._retrying(send, method, path, safe=True, token=True, error_path=error_path)

    # ---- sending --------------------------------------------------------------------
    def _signed(self, method: str, path: str, params: dict[str, Any]) -> requests.Response:
        assert self.creds.key is not None
        with self._signing:
            req = sign_request(self.creds.key, method, path, params, self.nonces.next())
            return self._send(method, req.target, data=req.body, headers=req.headers)

    def _basic(self, method: str, path: str, params: dict[str, Any]) -> requests.Response:
        assert self.creds.password_sha256 is not None
        headers = {"Authorization": basic_header(self.creds.email, self.creds.password_sha256)}
        if method.upper() in ("POST", "PUT", "PATCH"):
            return self._send(method, path, json=params, headers=headers)
        return self._send(method, path, params=params or None, headers=headers)

    def _send(self, method: str, target: str, **kwargs: Any) -> requests.Response:
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        return self.session.request(method, self.base + target, headers=headers,
                                    timeout=(self.tuning.connect_timeout, self.tuning.timeout), **kwargs)

    def _json(self, send: Callable[[], requests.Response], method: str, path: str, safe: bool) -> Any:
        response = self._retrying(send, method, path, safe=safe)
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise errors.PermanentError(f"Metadisk sent a non-JSON answer to {method} {path}") from exc

    def _retrying(self, send: Callable[[], requests.Response], method: str, path: str, *, safe: bool,
                  token: bool = False, error_path: str | None = None) -> requests.Response:
        """The one retry policy (syncagent/retry.py): a request the server may have acted on
        (not `safe`) is tried again only when it answered with an error."""
        attempts = self.policy.start(f"metadisk {method} {_route(path)}", sleep=self.sleep)
        while True:
            try:
                response = send()
            except requests.RequestException as exc:
                attempts.failed(error_for(exc=exc, path=error_path, url=self.base), may_retry=safe)
                continue
            if response.status_code < 400:
                return response
            err = error_for(response, token=token, remote=self.remote, path=error_path)
            response.close()
            attempts.failed(err)


def _route(path: str) -> str:
    """A path for logs: no query (it carries the nonce), no tokens."""
    return path.split("?", 1)[0]
