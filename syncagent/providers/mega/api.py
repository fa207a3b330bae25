"""The MEGA wire: command batches on `/cs`, the `sc` event channel, and the
ONE place where a MEGA error code, an HTTP status or a transport failure
becomes a `syncagent.errors` class.

A request carries a client-chosen `id`; a retry of the same batch reuses it,
and the server answers a repeated id from its cache (spec §3.1), so even a
move or a delete is safe to repeat after a lost answer. Request-level
`-3`/`-4`/`-18`, HTTP 5xx and broken connections are retried under the one
policy of syncagent/retry.py (one budget per request; a command answered
`-3` on its own is sent again within that budget); a request-level `-15`
(session gone) asks `relogin` for a new session once. Sessions and time
bounds come from syncagent/http.py.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from syncagent import errors
from syncagent.http import Timeouts, new_session, retry_after, status_error, transport_error
from syncagent.log import get_logger
from syncagent.retry import Attempts, RetryPolicy

DEFAULT_API = "https://g.api.mega.co.nz/"

ERROR_NAMES: dict[int, tuple[str, str]] = {
    -1: ("EINTERNAL", "internal error"), -2: ("EARGS", "invalid arguments"),
    -3: ("EAGAIN", "temporarily busy"), -4: ("ERATELIMIT", "too many requests"),
    -5: ("EFAILED", "the upload failed"), -6: ("ETOOMANY", "too many connections or pending events"),
    -7: ("ERANGE", "out of range"), -8: ("EEXPIRED", "the upload URL expired"),
    -9: ("ENOENT", "not found"), -10: ("ECIRCULAR", "a folder cannot go inside itself"),
    -11: ("EACCESS", "access denied"), -12: ("EEXIST", "already exists"),
    -13: ("EINCOMPLETE", "incomplete"), -14: ("EKEY", "cryptographic error"),
    -15: ("ESID", "the session is no longer valid"), -16: ("EBLOCKED", "the account or file is blocked"),
    -17: ("EOVERQUOTA", "the storage quota is exceeded"), -18: ("ETEMPUNAVAIL", "temporarily unavailable"),
    -19: ("ETOOMANYCONNECTIONS", "too many connections"), -22: ("EAPPKEY", "invalid application key"),
    -26: ("EMFAREQUIRED", "two-factor authentication is required"),
}
RETRY_CODES = frozenset({-3, -4, -18, -19})

_CLASSES: dict[int, type[errors.ProviderError]] = {
    -1: errors.TransientError, -2: errors.PermanentError, -3: errors.TransientError, -4: errors.Throttled,
    -5: errors.TransientError, -6: errors.TransientError, -7: errors.PermanentError,
    -8: errors.TransientError, -9: errors.NotFound, -10: errors.PermanentError, -11: errors.PermanentError,
    -12: errors.AlreadyExists, -13: errors.PermanentError, -14: errors.PermanentError,
    -16: errors.AuthError, -17: errors.QuotaExceeded, -18: errors.TransientError, -19: errors.Throttled,
    -22: errors.AuthError, -26: errors.AuthError,
}


class EventsLost(errors.TransientError):
    """`sc` answered `-6`: the server no longer keeps events from our position."""


class SessionExpired(errors.AuthError):
    """`-15 ESID`: the session id is gone; a new login may fix it."""


def error_for(code: int, *, path: str | None = None, what: str = "") -> errors.ProviderError:
    """The error class of a MEGA code, with its name in the message."""
    name, meaning = ERROR_NAMES.get(code, (f"E{-code}", "unknown error"))
    message = f"MEGA {what + ': ' if what else ''}{meaning} ({code} {name})"
    if code == -15:
        return SessionExpired(message, path=path)
    if code == -17:
        message += "; free space on the account (empty the Rubbish Bin) or upgrade it"
    return _CLASSES.get(code, errors.PermanentError)(message, path=path)


def http_error(response: requests.Response | None = None, exc: BaseException | None = None,
               what: str = "", url: str = "") -> errors.ProviderError:
    """A failure below the MEGA protocol: a status, or no (complete) answer."""
    if response is None:
        assert exc is not None
        return transport_error(exc, url or DEFAULT_API)
    status = response.status_code
    where = f" to {what}" if what else ""
    if status == 509:
        wait = retry_after(response.headers, ("X-MEGA-Time-Left", "Retry-After"))
        return TransferQuota("MEGA transfer quota exceeded (HTTP 509)", retry_after=wait)
    if status == 402:
        return errors.PermanentError("MEGA asks for a proof of work (HTTP 402 hashcash), which this client "
                                     "does not solve")
    return status_error(status, f"MEGA answered HTTP {status}{where}", retry_after=retry_after(response.headers))


class TransferQuota(errors.Throttled):
    """HTTP 509: the account's (or this IP's) transfer quota is used up; the wait can be long."""


def code_of(value: Any) -> int | None:
    """A MEGA error code, given as a bare int or as `[int]`; None otherwise."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return value
    return None


@dataclass(frozen=True)
class Tuning:
    """Time bounds and the retry policy; tests shrink them."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(read=60.0, total=900.0))
    quota_wait: float = 300.0      # a 509 without a time-left header: wait this long
    quota_waits: int = 3           # transfer-quota waits one chunk sits out (outside the retry budget)
    quota_wait_cap: float = 3600.0
    wait_timeout: float = 30.0     # how long to hold the `w` long poll open


class Api:
    """One MEGA API endpoint with a pooled HTTP session, the request ids and the retry loop."""

    def __init__(self, url: str = DEFAULT_API, session: requests.Session | None = None,
                 tuning: Tuning | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = url if url.endswith("/") else url + "/"
        self.tuning = tuning or Tuning()
        self.http = session or new_session(self.tuning.timeouts, user_agent_suffix="mega")
        self.sleep = sleep
        self.sid: str | None = None
        self.relogin: Callable[[], str] | None = None   # returns a new sid, or raises AuthError
        self._seq = secrets.randbelow(1 << 30)
        self._lock = threading.Lock()
        self.log = get_logger(provider="mega")
        self.requests = 0    # /cs and /sc requests sent (the bench counts them)

    def _next_id(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    # ---- commands -------------------------------------------------------------------
    def call(self, command: dict[str, Any], *, path: str | None = None) -> Any:
        """One command; its error code raised as the mapped class. A command answered
        -3/-4/-18/-19 is sent again (a new id: it did not run) in the same budget."""
        attempts = self.tuning.retry.start(f"mega {command.get('a')}", sleep=self.sleep)
        while True:
            (result,) = self.batch([command], attempts=attempts)
            code = code_of(result)
            if code is None:
                return result
            err = error_for(code, path=path, what=str(command.get("a")))
            if code not in RETRY_CODES:
                raise err
            attempts.failed(err)

    def batch(self, commands: list[dict[str, Any]], *, attempts: Attempts | None = None) -> list[Any]:
        """The answers of a batch, in order (an answer may be an error code). Retried
        under the policy with the same request id: the server answers a repeated id
        from its cache, so a batch whose answer was lost never runs twice."""
        what = "mega " + ",".join(str(c.get("a")) for c in commands)
        attempts = attempts or self.tuning.retry.start(what, sleep=self.sleep)
        request_id = self._next_id()
        relogged = False
        while True:
            try:
                answer = self._post_cs(request_id, self.sid, commands)
            except errors.ProviderError as exc:
                attempts.failed(exc)
                continue
            # a bare code applies to the whole batch; `[-15]` is read the same way (no
            # command is answered "session gone" on its own)
            code = code_of(answer) if isinstance(answer, int) or answer == [-15] else None
            if code is None and isinstance(answer, list) and len(answer) == len(commands):
                return answer
            if code == -15 and self.relogin is not None and not relogged:
                relogged = True
                self.sid = self.relogin()
                request_id = self._next_id()
                continue
            if code is None:
                raise errors.PermanentError(f"MEGA sent a malformed answer to {[c.get('a') for c in commands]}")
            err = error_for(code, what=what.removeprefix("mega "))
            if code not in RETRY_CODES:
                raise err
            attempts.failed(err)

    def _post_cs(self, request_id: int, sid: str | None, commands: list[dict[str, Any]]) -> Any:
        params: dict[str, Any] = {"id": request_id}
        if sid:
            params["sid"] = sid
        return self._post_json("cs", params, json.dumps(commands).encode())

    def _post_json(self, endpoint: str, params: dict[str, Any], body: bytes) -> Any:
        self.requests += 1
        url = self.base + endpoint
        try:
            response = self.http.post(url, params=params, data=body, headers={"Content-Type": "application/json"})
            content = response.content
        except requests.RequestException as exc:
            raise http_error(exc=exc, what=endpoint, url=url) from exc
        if response.status_code != 200:
            raise http_error(response, what=endpoint)
        try:
            return json.loads(content)
        except ValueError:
            raise errors.TransientError(f"MEGA sent a truncated or non-JSON answer on /{endpoint}") from None

    # ---- the event channel ------------------------------------------------------------
    def poll_events(self, sn: str) -> dict[str, Any]:
        """One `sc` poll: {"a": [...], "sn": ...} or {"w": url}; bare codes raised
        (-6: too far behind, re-read the tree; -15: session gone)."""
        attempts = self.tuning.retry.start("mega sc", sleep=self.sleep)
        relogged = False
        while True:
            try:
                answer = self._post_json("sc", {"sn": sn, "sid": self.sid or ""}, b"")
            except errors.ProviderError as exc:
                attempts.failed(exc)
                continue
            code = code_of(answer)
            if code == -15 and self.relogin is not None and not relogged:
                relogged = True
                self.sid = self.relogin()
                continue
            if code == -6:
                raise EventsLost("MEGA no longer has the events since our position (-6 ETOOMANY)")
            if code is not None:
                err = error_for(code, what="sc")
                if code not in RETRY_CODES:
                    raise err
                attempts.failed(err)
                continue
            if isinstance(answer, dict):
                return answer
            raise errors.PermanentError("MEGA sent a malformed event answer")

    def wait_events(self, url: str, timeout: float | None = None) -> None:
        """Hold the `w` long poll until the server has news or it times out."""
        limit = self.tuning.wait_timeout if timeout is None else timeout
        # a timeout or a cut is the normal end of a long poll: the caller polls `sc` again
        with contextlib.suppress(requests.RequestException):
            self.http.post(url, timeout=(self.tuning.timeouts.connect, limit)).close()

    def close(self) -> None:
        self.http.close()
