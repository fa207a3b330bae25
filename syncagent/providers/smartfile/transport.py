"""HTTP for the SmartFile provider: URLs, retries, throttling, and the ONE
place where an HTTP answer or a transport failure becomes a
`syncagent.errors` class.

Retry policy comes from the class (`retryable`): Throttled waits what the
server asked (bounded), TransientError backs off exponentially with full
jitter. A request that is not safe to repeat (rename, task creation, patch)
is retried only when the server answered with an error status, i.e. it
certainly did not act; after a broken connection we cannot know, so the
error goes up to the engine, which re-plans from a fresh listing.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import requests.auth

from syncagent import errors

log = logging.getLogger("syncagent.providers.smartfile")

API_PREFIX = "api/2/"
X_THROTTLE = re.compile(r"^.*; next=([\d.]+) sec$")


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    attempts: int = 5              # tries per request on transient errors
    backoff_base: float = 0.5      # seconds; full jitter up to base * 2**attempt
    backoff_cap: float = 20.0
    throttle_waits: int = 6        # how many throttle answers one request sits out
    max_throttle_wait: float = 60.0
    timeout: float = 60.0          # connect/read timeout per socket operation
    page_size: int = 500           # children per listing page
    poll_initial: float = 0.2      # task polling: start, doubling up to poll_max
    poll_max: float = 6.0
    task_timeout: float = 600.0
    chunk: int = 1 << 20           # upload/download read size


def encode_path(path: str) -> str:
    """Each segment percent-encoded (RFC 3986, like encodeURIComponent): names
    with '?', '#', '%' or '&' reach the server intact."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/") if seg)


def error_for(response: requests.Response | None = None, exc: BaseException | None = None, *,
              path: str | None = None, on_conflict: type[errors.ProviderError] = errors.Conflict
              ) -> errors.ProviderError:
    """Every failure of a SmartFile request, mapped onto the error tree."""
    if response is None:
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.PermanentError(f"TLS failure talking to SmartFile: {type(exc).__name__}", path=path)
        # connection refused/reset, timeouts, a body cut short, a bad chunk
        return errors.TransientError(f"network failure talking to SmartFile: {type(exc).__name__}", path=path)
    status = response.status_code
    message = f"SmartFile answered {status}: {_detail(response)}"
    if status == 429 or (status == 503 and _throttle_wait(response) is not None):
        return errors.Throttled(message, retry_after=_throttle_wait(response), path=path)
    classes: dict[int, type[errors.ProviderError]] = {
        400: errors.PermanentError, 401: errors.AuthError, 403: errors.AuthError,
        402: errors.QuotaExceeded, 404: errors.NotFound, 409: on_conflict, 410: errors.NotFound,
        412: errors.Conflict, 413: errors.PermanentError, 415: errors.PermanentError,
        408: errors.TransientError, 501: errors.Unsupported, 507: errors.QuotaExceeded,
    }
    cls = classes.get(status) or (errors.TransientError if status >= 500 else errors.PermanentError)
    return cls(message, path=path)


def _detail(response: requests.Response) -> str:
    """The server's own words, short: DRF `detail`, a field error, or text."""
    try:
        body: Any = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:200]
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])[:200]
        for key, value in body.items():
            first = value[0] if isinstance(value, list) and value else value
            return f"{key}: {first}"[:200]
    return str(body)[:200]


def _throttle_wait(response: requests.Response) -> float | None:
    """Seconds to wait: Retry-After (seconds or a date), X-Throttle-Wait-Seconds,
    or the legacy `X-Throttle: ...; next=N sec`."""
    headers = response.headers
    for name in ("Retry-After", "X-Throttle-Wait-Seconds"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                when = email.utils.parsedate_to_datetime(value) if value else None
                if when is not None:
                    return max(0.0, when.timestamp() - time.time())
    m = X_THROTTLE.match(headers.get("X-Throttle", ""))
    return float(m.group(1)) if m else None


class Api:
    """A pooled session against one SmartFile site, with the retry loop."""

    def __init__(self, url: str, session: requests.Session, tuning: Tuning, auth: requests.auth.AuthBase,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = url if url.endswith("/") else url + "/"
        self.session, self.tuning, self.sleep = session, tuning, sleep
        self.auth = auth  # per request, so a session handed in by a test stays untouched

    def url(self, endpoint: str, path: str = "") -> str:
        tail = encode_path(path)
        return f"{self.base}{API_PREFIX}{endpoint.strip('/')}/{tail}"

    def call(self, method: str, endpoint: str, path: str = "", *, safe: bool = True,
             body: Callable[[], dict[str, Any]] | None = None, stream: bool = False,
             error_path: str | None = None, on_conflict: type[errors.ProviderError] = errors.Conflict,
             **kwargs: Any) -> requests.Response:
        """One API request with retries. `body()` builds fresh request arguments
        (data/headers) for each attempt, so a streamed upload can start over."""
        url = self.url(endpoint, path)
        attempt = throttled = 0
        while True:
            extra = body() if body is not None else {}
            try:
                response = self.session.request(method, url, stream=stream, timeout=self.tuning.timeout,
                                                auth=self.auth, **kwargs, **extra)
            except requests.RequestException as exc:
                err: errors.ProviderError = error_for(exc=exc, path=error_path)
                answered = False
            else:
                if response.status_code < 400:
                    if not stream:
                        try:
                            _ = response.content  # read it here, inside the retry loop
                        except requests.RequestException as exc:
                            err, answered = error_for(exc=exc, path=error_path), False
                            if not safe:
                                raise err from exc
                            attempt = self._after_failure(err, attempt, method, endpoint)
                            continue
                    return response
                err, answered = error_for(response, path=error_path, on_conflict=on_conflict), True
                response.close()
            if not err.retryable or (not safe and not answered):
                raise err
            if isinstance(err, errors.Throttled):
                throttled = self._after_throttle(err, throttled, method, endpoint)
            else:
                attempt = self._after_failure(err, attempt, method, endpoint)

    def _after_failure(self, err: errors.ProviderError, attempt: int, method: str, endpoint: str) -> int:
        attempt += 1
        if attempt >= self.tuning.attempts:
            raise err
        delay = random.uniform(0, min(self.tuning.backoff_cap, self.tuning.backoff_base * 2 ** attempt))
        log.info("smartfile %s %s failed (%s); retry %d in %.2fs", method, endpoint, type(err).__name__,
                 attempt, delay)
        self.sleep(delay)
        return attempt

    def _after_throttle(self, err: errors.Throttled, throttled: int, method: str, endpoint: str) -> int:
        throttled += 1
        if throttled > self.tuning.throttle_waits:
            raise err
        wait = err.retry_after if err.retry_after is not None else self.tuning.backoff_base * 2 ** throttled
        wait = min(wait, self.tuning.max_throttle_wait)
        log.info("smartfile %s %s throttled; waiting %.2fs", method, endpoint, wait)
        self.sleep(wait)
        return throttled

    def json(self, method: str, endpoint: str, path: str = "", **kwargs: Any) -> Any:
        response = self.call(method, endpoint, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.PermanentError(f"SmartFile sent a non-JSON answer to {endpoint}",
                                        path=kwargs.get("error_path")) from exc
