"""HTTP for the WebDAV provider: URLs, Basic/Digest auth, retries, and the
ONE place where an HTTP answer or a transport failure becomes a
`syncagent.errors` class.

Retries come from syncagent/retry.py and nowhere else (urllib3's own are
off): one request gets `Tuning.attempts` tries in all. A request that is
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
import requests.adapters
import requests.auth

from syncagent import __version__, errors
from syncagent.retry import with_retries

USER_AGENT = f"syncagent/{__version__} webdav"


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    attempts: int = 5              # tries per request on transient errors (the first included)
    backoff_base: float = 0.5      # seconds; full jitter up to base * 2**attempt
    backoff_cap: float = 20.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0     # silence on an open connection
    chunk: int = 1 << 20           # upload/download read size
    pool: int = 8


DEFAULT_TUNING = Tuning()


def quote_path(path: str) -> str:
    """Each segment percent-encoded: names with '?', '#', '%', ' ' reach the server intact."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/") if seg)


# The statuses whose meaning is the same for every WebDAV method; callers pass overrides
# for their own reading (409 on MKCOL/PUT: a parent is missing; 412 on MOVE: the target exists).
STATUS_CLASSES: dict[int, type[errors.ProviderError]] = {
    400: errors.PermanentError, 401: errors.AuthError, 403: errors.PermanentError,
    404: errors.NotFound, 405: errors.Unsupported, 408: errors.TransientError, 409: errors.Conflict,
    410: errors.NotFound, 412: errors.Conflict, 413: errors.QuotaExceeded, 414: errors.InvalidName,
    415: errors.PermanentError, 423: errors.Conflict, 425: errors.TransientError, 429: errors.Throttled,
    501: errors.Unsupported, 507: errors.QuotaExceeded,
}


def error_for(response: requests.Response | None = None, exc: BaseException | None = None, *,
              path: str | None = None, host: str = "the WebDAV server",
              overrides: Mapping[int, type[errors.ProviderError]] | None = None) -> errors.ProviderError:
    """Every failure of a WebDAV request, mapped onto the error tree."""
    if response is None:
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.PermanentError(f"TLS failure talking to {host}: {type(exc).__name__}", path=path)
        return errors.TransientError(f"network failure talking to {host}: {type(exc).__name__}", path=path)
    status = response.status_code
    if status == 401:
        return errors.AuthError(f"{host} refused the user name or password (401)", path=path)
    message = f"{host} answered {status} {response.reason or ''}".rstrip()
    wait = retry_after(response.headers)
    cls = (overrides or {}).get(status) or STATUS_CLASSES.get(status)
    if cls is None:
        cls = errors.TransientError if status >= 500 else errors.PermanentError
    if cls is errors.Throttled or (status == 503 and wait is not None):
        return errors.Throttled(message, retry_after=wait, path=path)
    return cls(message, path=path)


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import email.utils

        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError, IndexError):
            return None


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
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=tuning.pool, pool_maxsize=tuning.pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        self.auth = _AutoAuth(user, password, auth) if user is not None and password is not None else None
        self._primed = threading.local()

    def url(self, rel: str, *, folder: bool = False) -> str:
        """The URL of `rel` (a '/'-path below the base); folders end in '/'."""
        quoted = quote_path(rel)
        return self.base + quoted + ("/" if folder and quoted else "")

    def request(self, method: str, rel: str, *, folder: bool = False, idempotent: bool = True,
                ok: tuple[int, ...] = (), overrides: Mapping[int, type[errors.ProviderError]] | None = None,
                path: str | None = None, **kw: Any) -> requests.Response:
        """One request with retries; statuses in `ok` are returned rather than raised
        (a non-2xx status not in `ok` raises its error class)."""
        url = self.url(rel, folder=folder)
        rewind = _rewinder(kw.get("data"))

        def once() -> requests.Response:
            if rewind is not None:
                rewind()
            return self._send(method, url, ok=ok, overrides=overrides, path=path if path is not None else rel,
                              idempotent=idempotent, **kw)

        # a body that cannot be sent again gets one try
        attempts = self.tuning.attempts if rewind is not None else 1
        return with_retries(once, attempts=attempts, base=self.tuning.backoff_base,
                            cap=self.tuning.backoff_cap, sleep=self.sleep)

    def _send(self, method: str, url: str, *, ok: tuple[int, ...], overrides: Mapping[int, type[errors.ProviderError]]
              | None, path: str, idempotent: bool, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", (self.tuning.connect_timeout, self.tuning.read_timeout))
        try:
            response = self.session.request(method, url, auth=self.auth, allow_redirects=False, **kw)
        except requests.RequestException as exc:
            err = error_for(exc=exc, path=path, host=self.host)
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
