"""HTTP for the OneDrive provider: Graph URLs, the bearer token, the retry
loop, and the ONE place where a Graph answer or a transport failure becomes
a `syncagent.errors` class.

Sessions and time bounds come from syncagent/http.py; the retry policy
(which errors, how many tries, backoff, Retry-After, the deadline) is
`Tuning.retry`, applied here once per request. A request that is not safe
to repeat (a move, a copy, a create) is retried only when the server
answered with an error status (it certainly did not act).

A 401 refreshes the access token once and repeats the request once; a
second 401 is an AuthError that names `syncagent auth NAME`. Upload-session,
download and copy-monitor URLs are pre-authenticated: they never get the
bearer token (spec §2.5).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from syncagent import errors
from syncagent.http import Timeouts, retry_after, status_error, transport_error
from syncagent.providers.onedrive.tokens import TokenSource
from syncagent.retry import Attempts, RetryPolicy

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
NAME_CODES = frozenset({"invalidPath", "pathIsTooLong", "nameContainsInvalidCharacters", "invalidName"})


class ResyncRequired(errors.PermanentError):
    """410 Gone on a delta link: the feed must start over (spec §5.4)."""


class RangeMismatch(errors.PermanentError):
    """416 on an upload fragment: the session holds other bytes than this fragment assumed."""


class Locked(errors.PermanentError):
    """423: the item is locked (open for editing elsewhere); the next run tries again."""


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    simple_limit: int = 4 << 20          # simple upload up to here, an upload session above (spec §0.1-1)
    fragment: int = 32 * 327_680         # 10 MiB per upload fragment: a multiple of 320 KiB
    page_size: int = 1000                # children per page ($top)
    delta_page: int = 1000               # delta items per page ($top)
    chunk: int = 1 << 20                 # read size of streams
    copy_poll_initial: float = 0.2       # copy monitor polling: start, doubling up to copy_poll_max
    copy_poll_max: float = 5.0
    copy_timeout: float = 3600.0


def quote_path(path: str) -> str:
    """Each segment percent-encoded once (RFC 3986 pchar; spec §4)."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/") if seg)


def graph_error(response: requests.Response, *, path: str | None = None,
                overrides: Mapping[int, type[errors.ProviderError]] | None = None) -> errors.ProviderError:
    """Every Graph error answer, mapped onto the error tree (spec §6)."""
    status = response.status_code
    code, inner, message = _error_body(response)
    text = f"OneDrive answered {status} {code or response.reason}: {message}".rstrip(": ")
    wait = retry_after(response.headers)
    if status == 410:
        return ResyncRequired(text, path=path)
    if status == 416:
        return RangeMismatch(text, path=path)
    if status == 423:
        return Locked(f"{text} (the item is locked, perhaps open for editing elsewhere; tried again next run)",
                      path=path)
    if status == 400 and (NAME_CODES & ({code} | inner)):
        return errors.InvalidName(text, path=path)
    if status == 403:
        return errors.PermanentError(text, path=path)
    if status == 509:
        return errors.Throttled(text, retry_after=wait, path=path)
    return status_error(status, text, path=path, retry_after=wait, overrides=overrides)


def _error_body(response: requests.Response) -> tuple[str, set[str], str]:
    """(code, inner codes, message) of `{"error": {"code", "message", "innerError": {...}}}`."""
    try:
        body = response.json()
    except ValueError:
        return "", set(), (response.text or "").strip()[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", set(), ""
    inner: set[str] = set()
    nested = err.get("innerError") or err.get("innererror")
    while isinstance(nested, dict):
        if isinstance(nested.get("code"), str):
            inner.add(nested["code"])
        nested = nested.get("innerError") or nested.get("innererror")
    return str(err.get("code") or ""), inner, str(err.get("message") or "")[:200]


class _Outcome:
    answered = False


class Graph:
    """One drive on Graph: URLs and requests under the retry policy."""

    def __init__(self, tokens: TokenSource, session: requests.Session, *, graph_url: str = DEFAULT_GRAPH_URL,
                 drive_id: str | None = None, tuning: Tuning | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.tokens, self.session = tokens, session
        self.base = graph_url.rstrip("/")
        self.drive = f"{self.base}/drives/{urllib.parse.quote(drive_id, safe='')}" if drive_id \
            else f"{self.base}/me/drive"
        self.tuning = tuning or Tuning()
        self.sleep = sleep
        self.requests = 0

    # ---- URLs ----------------------------------------------------------------------------
    def item(self, remote_path: str) -> str:
        """The item at a path from the drive root ("" is the root)."""
        quoted = quote_path(remote_path)
        return f"{self.drive}/root:/{quoted}:" if quoted else f"{self.drive}/root"

    def action(self, remote_path: str, action: str) -> str:
        return f"{self.item(remote_path)}/{action}"

    def by_id(self, item_id: str, action: str = "") -> str:
        url = f"{self.drive}/items/{urllib.parse.quote(item_id, safe='')}"
        return f"{url}/{action}" if action else url

    # ---- requests ------------------------------------------------------------------------
    def attempts(self, what: str) -> Attempts:
        return self.tuning.retry.start(f"onedrive {what}", sleep=self.sleep)

    def call(self, method: str, url: str, *, safe: bool = True, auth: bool = True, path: str | None = None,
             overrides: Mapping[int, type[errors.ProviderError]] | None = None, stream: bool = False,
             body: Callable[[], dict[str, Any]] | None = None, attempts: Attempts | None = None,
             **kwargs: Any) -> requests.Response:
        """One request under the retry policy. `body()` gives fresh request
        arguments for each try (a stream that must start over)."""
        budget = attempts or self.attempts(f"{method} {urllib.parse.urlsplit(url).path[-60:]}")
        while True:
            outcome = _Outcome()
            try:
                return self._authorized(method, url, outcome, auth, path, overrides, stream, body, kwargs)
            except errors.ProviderError as err:
                budget.failed(err, may_retry=safe or outcome.answered)

    def _authorized(self, method: str, url: str, outcome: _Outcome, auth: bool, path: str | None,
                    overrides: Mapping[int, type[errors.ProviderError]] | None, stream: bool,
                    body: Callable[[], dict[str, Any]] | None, kwargs: dict[str, Any]) -> requests.Response:
        token = self.tokens.bearer() if auth else ""
        response = self._once(method, url, token, stream, body, kwargs)
        if response.status_code == 401 and auth:
            response.close()
            token = self.tokens.refresh(token)
            response = self._once(method, url, token, stream, body, kwargs)
            if response.status_code == 401:
                outcome.answered = True
                response.close()
                raise errors.AuthError(f"OneDrive refused a fresh access token; run `syncagent auth "
                                       f"{self.tokens.remote or 'NAME'}`", path=path)
        if response.status_code < 400:
            return response
        outcome.answered = True
        err = graph_error(response, path=path, overrides=overrides)
        response.close()
        raise err

    def _once(self, method: str, url: str, token: str, stream: bool, body: Callable[[], dict[str, Any]] | None,
              kwargs: dict[str, Any]) -> requests.Response:
        extra = body() if body is not None else {}
        headers = {**kwargs.get("headers", {}), **extra.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        args = {k: v for k, v in kwargs.items() if k != "headers"}
        self.requests += 1
        try:
            return self.session.request(method, url, headers=headers, stream=stream, allow_redirects=False,
                                        **args, **extra)
        except requests.RequestException as exc:
            raise transport_error(exc, url) from exc

    def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, url, **kwargs)
        try:
            data = response.json()
        except ValueError as exc:
            raise errors.PermanentError(f"OneDrive sent a non-JSON answer ({response.status_code})",
                                        path=kwargs.get("path")) from exc
        if not isinstance(data, dict):
            raise errors.PermanentError("OneDrive sent an unexpected answer", path=kwargs.get("path"))
        return data
