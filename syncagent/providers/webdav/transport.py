"""HTTP for the WebDAV provider: URLs, Basic/Digest auth, retries, and the
ONE place where an HTTP answer or a transport failure becomes a
`syncagent.errors` class.

The session, its time bounds and the common status table are
syncagent/http.py's; retries come from syncagent/retry.py's RetryPolicy and
nowhere else (urllib3's own are off): one request gets `Tuning.attempts`
(5) tries in all. A request that is
not safe to repeat (MOVE, COPY) is retried only when the server answered
with an error status, i.e. it certainly did not act; after a broken
connection the error goes up and the engine re-plans from a fresh listing.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.auth

from syncagent import errors, http
from syncagent.retry import Attempts, RetryPolicy


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    attempts: int = 5              # tries per request on transient errors (the first included)
    backoff_base: float = 0.5      # seconds; full jitter up to base * 2**attempt
    backoff_cap: float = 20.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0     # silence on an open connection
    total_timeout: float = 6 * 3600.0   # to the answer of a PUT, whose body is a whole file: generous
    chunk: int = 1 << 20           # upload/download read size
    pool: int = 8
    walkers: int = 4               # Depth: 1 PROPFINDs in flight when walking folders


DEFAULT_TUNING = Tuning()


def quote_path(path: str) -> str:
    """Each segment percent-encoded: names with '?', '#', '%', ' ' reach the server intact."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/") if seg)


# WebDAV's own reading of statuses over syncagent/http.py's common one: 403 is a refused operation
# (a protected property, Depth: infinity), not bad credentials; callers add theirs (409 on PUT/MKCOL:
# a parent is missing; 412 on MOVE: the target exists).
DAV_STATUS: dict[int, type[errors.ProviderError]] = {
    403: errors.PermanentError, 413: errors.QuotaExceeded, 414: errors.InvalidName, 423: errors.Conflict,
}


def error_for(response: requests.Response | None = None, exc: BaseException | None = None, *,
              path: str | None = None, url: str = "", host: str = "the WebDAV server",
              overrides: Mapping[int, type[errors.ProviderError]] | None = None) -> errors.ProviderError:
    """Every failure of a WebDAV request, mapped onto the error tree (the one place)."""
    if response is None:
        return http.transport_error(exc or OSError("no answer"), url or f"http://{host}/", path=path)
    status = response.status_code
    if status == 401:
        return errors.AuthError(f"{host} refused the user name or password (401)", path=path)
    message = f"{host} answered {status} {response.reason or ''}".rstrip()
    return http.status_error(status, message, path=path, retry_after=http.retry_after(response.headers),
                             overrides={**DAV_STATUS, **(overrides or {})})


class _AutoAuth(requests.auth.AuthBase):
    """Basic until the server challenges with Digest only; then Digest (with
    the nonce kept per thread by requests' HTTPDigestAuth)."""

    def __init__(self, user: str, password: str, mode: str) -> None:
        self.basic = requests.auth.HTTPBasicAuth(user, password)
        self.digest = requests.auth.HTTPDigestAuth(user, password)
        self.use_digest = mode == "digest"
        self.mode = mode

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        prepared: requests.PreparedRequest = self.digest(r) if self.use_digest else self.basic(r)
        return prepared

    def challenged(self, response: requests.Response) -> bool:
        """A 401 that names Digest and not Basic: switch (auto mode only); True if we did."""
        offered = response.headers.get("WWW-Authenticate", "").lower()
        if self.mode == "auto" and not self.use_digest and "digest" in offered and "basic" not in offered:
            self.use_digest = True
            return True
        return False


class Dav:
    """A pooled session against one WebDAV root URL, with the retry loop."""

    def __init__(self, url: str, user: str | None, password: str | None, *, auth: str = "auto",
                 tuning: Tuning = DEFAULT_TUNING, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = url.rstrip("/") + "/"
        parts = urllib.parse.urlsplit(self.base)
        self.base_path = urllib.parse.unquote(parts.path)
        self.host = parts.hostname or "the WebDAV server"
        self.tuning, self.sleep = tuning, sleep
        self.policy = RetryPolicy(attempts=tuning.attempts, backoff_base=tuning.backoff_base,
                                  backoff_cap=tuning.backoff_cap)
        self.timeouts = http.Timeouts(connect=tuning.connect_timeout, read=tuning.read_timeout,
                                      total=tuning.total_timeout)
        self.session = session or http.new_session(self.timeouts, user_agent_suffix="webdav", pool_size=tuning.pool)
        self.auth = _AutoAuth(user, password, auth) if user is not None and password is not None else None
        self._primed = threading.local()

    def url(self, rel: str, *, folder: bool = False) -> str:
        """The URL of `rel` (a '/'-path below the base); folders end in '/'."""
        quoted = quote_path(rel)
        return self.base + quoted + ("/" if folder and quoted else "")

    def request(self, method: str, rel: str, *, folder: bool = False, idempotent: bool = True,
                ok: tuple[int, ...] = (), overrides: Mapping[int, type[errors.ProviderError]] | None = None,
                path: str | None = None, attempts: Attempts | None = None, **kw: Any) -> requests.Response:
        """One request with retries; statuses in `ok` are returned rather than raised
        (a non-2xx status not in `ok` raises its error class). `attempts`: a
        budget shared with the operation's other requests (a download's resumes)."""
        url = self.url(rel, folder=folder)
        rewind = _rewinder(kw.get("data"))

        def once() -> requests.Response:
            if rewind is not None:
                rewind()
            return self._send(method, url, ok=ok, overrides=overrides, path=path if path is not None else rel,
                              idempotent=idempotent, **kw)

        # a body that cannot be sent again gets one try
        policy = self.policy if rewind is not None else RetryPolicy(attempts=1)
        budget = attempts or policy.start(f"{method} {path if path is not None else rel}", sleep=self.sleep)
        while True:
            try:
                return once()
            except errors.ProviderError as err:
                budget.failed(err)

    def _send(self, method: str, url: str, *, ok: tuple[int, ...], overrides: Mapping[int, type[errors.ProviderError]]
              | None, path: str, idempotent: bool, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", (self.tuning.connect_timeout, self.tuning.read_timeout))
        try:
            response = self.session.request(method, url, auth=self.auth, allow_redirects=False, **kw)
        except requests.RequestException as exc:
            err = error_for(exc=exc, path=path, url=url, host=self.host)
            if not idempotent:
                # the server may have acted: no retry (the class says "not retryable" by being permanent here)
                raise errors.PermanentError(f"{err} during {method}; the next run looks again", path=path) from exc
            raise err from exc
        if response.status_code == 401 and self.auth is not None and self.auth.challenged(response):
            response.close()
            raise errors.TransientError("the server asks for Digest authentication", path=path)
        if 200 <= response.status_code < 300 or response.status_code in ok:
            return response
        err = error_for(response, path=path, host=self.host, overrides=overrides)
        response.close()
        raise err

    def prime(self) -> None:
        """With Digest, make this thread's first request a cheap one: a streamed
        PUT body cannot be sent twice for the 401 round trip."""
        if self.auth is None or not self.auth.use_digest or getattr(self._primed, "done", False):
            return
        self.request("OPTIONS", "", ok=(404, 405)).close()
        self._primed.done = True

    def close(self) -> None:
        self.session.close()


def _rewinder(data: Any) -> Callable[[], None] | None:
    """What seeks a request body back to where it started before each try (a
    retried PUT must send the same bytes); None for a body that cannot seek."""
    if data is None or isinstance(data, bytes | str):
        return lambda: None
    if not hasattr(data, "seek") or not getattr(data, "rewindable", True):
        return None
    try:
        start = data.tell()
    except (OSError, ValueError):
        return None
    return lambda: data.seek(start)
