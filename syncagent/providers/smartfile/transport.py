"""HTTP for the SmartFile provider: URLs, the retry loop, throttling, and the
ONE place where an HTTP answer or a transport failure becomes a
`syncagent.errors` class.

Sessions, time bounds and the generic mapping come from syncagent/http.py;
the retry policy (which errors, how many tries, backoff, Retry-After, the
deadline) is `Tuning.retry`, a syncagent.retry.RetryPolicy: this module only
applies it. A request that is not safe to repeat (rename, task creation,
patch) is retried only when the server answered with an error status, i.e.
it certainly did not act; after a broken connection we cannot know, so the
error goes up to the engine, which re-plans from a fresh listing.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.auth

from syncagent import errors
from syncagent.http import Timeouts, retry_after, status_error, transport_error
from syncagent.retry import Attempts, RetryPolicy

API_PREFIX = "api/2/"
X_THROTTLE = re.compile(r"^.*; next=([\d.]+) sec$")


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    page_size: int = 500           # children per listing page
    poll_initial: float = 0.2      # task polling: start, doubling up to poll_max
    poll_max: float = 6.0
    task_timeout: float = 600.0
    chunk: int = 1 << 20           # upload/download read size
    batch: int = 200               # paths per remove task (one form body)


def encode_path(path: str) -> str:
    """Each segment percent-encoded (RFC 3986, like encodeURIComponent): names
    with '?', '#', '%' or '&' reach the server intact."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/") if seg)


def error_for(response: requests.Response | None = None, exc: BaseException | None = None, *,
              path: str | None = None, on_conflict: type[errors.ProviderError] = errors.Conflict,
              url: str | None = None) -> errors.ProviderError:
    """Every failure of a SmartFile request, mapped onto the error tree."""
    if response is None:
        request = getattr(exc, "request", None)
        where = url or getattr(request, "url", None) or "https://SmartFile"
        return transport_error(exc or ConnectionError("no answer"), where, path=path)
    status = response.status_code
    return status_error(status, f"SmartFile answered {status}: {_detail(response)}", path=path,
                        retry_after=_throttle_wait(response), overrides={409: on_conflict})


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
    """Seconds to wait: Retry-After (seconds or a date), DRF's X-Throttle-Wait-Seconds,
    or the legacy `X-Throttle: ...; next=N sec` (spec §6)."""
    wait = retry_after(response.headers, ("Retry-After", "X-Throttle-Wait-Seconds"))
    if wait is not None:
        return wait
    m = X_THROTTLE.match(response.headers.get("X-Throttle", ""))
    return float(m.group(1)) if m else None


class _Outcome:
    """What one try learnt: whether the server answered (then it did not act)."""

    answered = False


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

    def attempts(self, what: str) -> Attempts:
        """A retry budget, for callers that make several requests of one operation."""
        return self.tuning.retry.start(f"smartfile {what}", sleep=self.sleep)

    def call(self, method: str, endpoint: str, path: str = "", *, safe: bool = True,
             body: Callable[[], dict[str, Any]] | None = None, stream: bool = False,
             error_path: str | None = None, on_conflict: type[errors.ProviderError] = errors.Conflict,
             attempts: Attempts | None = None, **kwargs: Any) -> requests.Response:
        """One API request under the retry policy. `body()` builds fresh request
        arguments (data/headers) for each try, so a streamed upload can start over;
        `attempts` shares a budget with the caller's other requests."""
        url = self.url(endpoint, path)
        budget = attempts or self.attempts(f"{method} {endpoint}")
        while True:
            outcome = _Outcome()
            try:
                return self._once(method, url, outcome, body, stream, error_path, on_conflict, kwargs)
            except errors.ProviderError as err:
                budget.failed(err, may_retry=safe or outcome.answered)

    def _once(self, method: str, url: str, outcome: _Outcome, body: Callable[[], dict[str, Any]] | None,
              stream: bool, error_path: str | None, on_conflict: type[errors.ProviderError],
              kwargs: dict[str, Any]) -> requests.Response:
        extra = body() if body is not None else {}
        try:
            response = self.session.request(method, url, stream=stream, auth=self.auth, **kwargs, **extra)
        except requests.RequestException as exc:
            raise error_for(exc=exc, path=error_path, url=url) from exc
        if response.status_code < 400:
            return response
        outcome.answered = True
        err = error_for(response, path=error_path, on_conflict=on_conflict)
        response.close()
        raise err

    def json(self, method: str, endpoint: str, path: str = "", **kwargs: Any) -> Any:
        response = self.call(method, endpoint, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise errors.PermanentError(f"SmartFile sent a non-JSON answer to {endpoint}",
                                        path=kwargs.get("error_path")) from exc
