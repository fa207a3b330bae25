"""HTTP plumbing every HTTP provider shares (SmartFile, OneDrive, Metadisk, MEGA).

    session = new_session(Timeouts(read=60), user_agent_suffix="smartfile")
    response = session.get(url)            # pooled, bounded in time, never retried here
    except requests.RequestException as exc:
        raise transport_error(exc, url)    # TransientError / PermanentError naming the host
    status_error(response.status_code, "...", retry_after=retry_after(response.headers))

Time bounds of one request (`Timeouts`):

* `connect`: the TCP (and TLS) handshake;
* `read`: silence on an open connection (the longest gap between two bytes);
* `total`: the whole request, from the first byte sent to the last byte of a
  non-streamed body, or to the response headers of a streamed one. A
  watchdog thread shuts the connection down when it passes, so a server that
  trickles one byte every few seconds, or accepts and never answers, cannot
  hold a caller for longer;
* a streamed body (a download) may take as long as its size needs, but
  `StallCheck` fails it when it brings less than `min_rate` bytes/s over a
  `stall_window`.

Retries are not done here (urllib3's own are off): they belong to the one
policy in syncagent/retry.py, which the provider's transport applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.utils
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.connectionpool

from syncagent import __version__, errors

USER_AGENT = f"syncagent/{__version__}"
_LINGER = 0.25  # seconds the watchdog thread waits for new work before it ends


@dataclass(frozen=True)
class Timeouts:
    connect: float = 15.0
    read: float = 60.0
    total: float = 300.0
    stall_window: float = 60.0
    min_rate: float = 512.0            # bytes/s a streamed body must average over stall_window


class DeadlineExceeded(requests.exceptions.Timeout):
    """The request did not complete within `Timeouts.total`."""


# ---- errors -------------------------------------------------------------------------------
def host_of(url: str) -> str:
    """host[:port] of a URL, never its user info."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def transport_error(exc: BaseException, url: str, *, path: str | None = None) -> errors.ProviderError:
    """A request that got no (complete) answer, as the error tree has it, naming the host."""
    host = host_of(url)
    reason = _reason(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return errors.PermanentError(f"TLS failure talking to {host}: {reason}", path=path)
    if isinstance(exc, DeadlineExceeded):
        return errors.TransientError(f"{host} did not answer in time: {reason}", path=path)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return errors.TransientError(f"could not connect to {host} in time", path=path)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return errors.TransientError(f"{host} stopped answering (read timeout)", path=path)
    return errors.TransientError(f"network failure talking to {host}: {reason}", path=path)


def _reason(exc: BaseException) -> str:
    """The innermost cause's class (and words, for our own deadline): no URLs, no secrets."""
    if isinstance(exc, DeadlineExceeded):
        return str(exc)
    seen: BaseException = exc
    while seen.__cause__ is not None or (seen.args and isinstance(seen.args[0], BaseException)):
        nxt = seen.__cause__ or seen.args[0]
        assert isinstance(nxt, BaseException)
        seen = nxt
    reason = getattr(seen, "reason", None)
    if isinstance(reason, BaseException):
        seen = reason
    return type(seen).__name__


STATUS_CLASSES: dict[int, type[errors.ProviderError]] = {
    400: errors.PermanentError, 401: errors.AuthError, 403: errors.AuthError, 402: errors.QuotaExceeded,
    404: errors.NotFound, 405: errors.Unsupported, 408: errors.TransientError, 409: errors.Conflict,
    410: errors.NotFound, 412: errors.Conflict, 413: errors.PermanentError, 415: errors.PermanentError,
    423: errors.TransientError, 425: errors.TransientError, 429: errors.Throttled,
    501: errors.Unsupported, 507: errors.QuotaExceeded,
}


def status_error(status: int, message: str, *, path: str | None = None, retry_after: float | None = None,
                 overrides: Mapping[int, type[errors.ProviderError]] | None = None) -> errors.ProviderError:
    """An HTTP error status as the error tree has it. 429, and a 503 that says
    when to come back, are Throttled; other 5xx are transient; `overrides`
    carries a provider's own reading of a status (409 on mkdir: AlreadyExists)."""
    cls = (overrides or {}).get(status) or STATUS_CLASSES.get(status)
    if cls is None:
        cls = errors.TransientError if status >= 500 else errors.PermanentError
    if status == 503 and retry_after is not None:
        cls = errors.Throttled
    if cls is errors.Throttled:
        return errors.Throttled(message, retry_after=retry_after, path=path)
    return cls(message, path=path)


def retry_after(headers: Mapping[str, str], names: tuple[str, ...] = ("Retry-After",),
                now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from the first header present: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    for name in names:
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        with contextlib.suppress(TypeError, ValueError, IndexError):
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - now())
    return None


# ---- streamed bodies ----------------------------------------------------------------------
class StallCheck:
    """Fails a streamed body that brings less than `min_rate` bytes/s over a window."""

    def __init__(self, timeouts: Timeouts, url: str, *, path: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeouts, self.url, self.path, self.clock = timeouts, url, path, clock
        self.window_start = clock()
        self.got = 0

    def progress(self, n: int) -> None:
        self.got += n
        now = self.clock()
        if now - self.window_start < self.timeouts.stall_window:
            return
        if self.got < self.timeouts.min_rate * self.timeouts.stall_window:
            raise errors.TransientError(
                f"{host_of(self.url)} sends too slowly ({self.got} bytes in "
                f"{now - self.window_start:.0f} s)", path=self.path)
        self.window_start, self.got = now, 0


# ---- the total deadline ---------------------------------------------------------------------
class _Guard:
    """One request's deadline and the connections it used."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.done = False
        self.lock = threading.Lock()
        self.conns: list[urllib3.connection.HTTPConnection] = []

    def watch(self, conn: urllib3.connection.HTTPConnection) -> None:
        with self.lock:
            if conn not in self.conns:
                self.conns.append(conn)
            if self.expired:
                _shutdown(conn)

    def fire(self) -> None:
        with self.lock:
            if self.done:
                return
            self.expired = True
            for conn in self.conns:
                _shutdown(conn)


def _shutdown(conn: urllib3.connection.HTTPConnection) -> None:
    """Wake a read blocked on `conn` by shutting its socket down through a
    duplicate descriptor (leaves a TLS wrapper's state alone)."""
    sock = conn.sock
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


class _Watchdog:
    """One thread for every armed deadline; it ends itself when idle."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.armed: set[_Guard] = set()
        self.thread: threading.Thread | None = None

    def arm(self, guard: _Guard) -> None:
        with self.cond:
            self.armed.add(guard)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="syncagent-http-deadline", daemon=True)
                self.thread.start()
            self.cond.notify()

    def disarm(self, guard: _Guard) -> None:
        with guard.lock:
            guard.done = True
        with self.cond:
            self.armed.discard(guard)
            if not self.armed:
                self.cond.notify()  # start the idle countdown now, not at the old deadline

    def _run(self) -> None:
        with self.cond:
            while True:
                if not self.armed:
                    self.cond.wait(_LINGER)
                    if not self.armed:
                        self.thread = None
                        return
                    continue
                now = time.monotonic()
                due = [g for g in self.armed if g.deadline <= now]
                for guard in due:
                    self.armed.discard(guard)
                    guard.fire()
                if not due:
                    self.cond.wait(min(g.deadline for g in self.armed) - now)


_WATCHDOG = _Watchdog()
_CURRENT: contextvars.ContextVar[_Guard | None] = contextvars.ContextVar("syncagent_http_guard", default=None)


def _watched(conn: urllib3.connection.HTTPConnection) -> None:
    guard = _CURRENT.get()
    if guard is not None:
        guard.watch(conn)


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """Default (connect, read) timeouts, the total deadline, no retries of its own."""

    def __init__(self, timeouts: Timeouts, pool_size: int) -> None:
        self.timeouts = timeouts
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS  # through a proxy, the same bounds
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: Any = None, **kwargs: Any) -> requests.Response:
        t = self.timeouts
        if timeout is None:
            timeout = (t.connect, t.read)
        guard = _Guard(time.monotonic() + t.total)
        token = _CURRENT.set(guard)
        _WATCHDOG.arm(guard)
        try:
            response = super().send(request, stream=stream, timeout=timeout, **kwargs)
            if not stream:
                _ = response.content  # the body is part of the request's time
            if guard.expired:
                response.close()
                raise DeadlineExceeded(f"no complete answer within {t.total:g} s", request=request)
            return response
        except requests.RequestException as exc:
            if guard.expired and not isinstance(exc, DeadlineExceeded):
                raise DeadlineExceeded(f"no complete answer within {t.total:g} s", request=request) from exc
            raise
        finally:
            _WATCHDOG.disarm(guard)
            _CURRENT.reset(token)


def new_session(timeouts: Timeouts | None = None, *, user_agent_suffix: str = "",
                pool_size: int = 8) -> requests.Session:
    """A pooled Session whose every request is bounded by `timeouts`; the
    same adapter serves http and https. Close it when done."""
    session = requests.Session()
    adapter = _Adapter(timeouts or Timeouts(), pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"{USER_AGENT} {user_agent_suffix}".strip()
    return session
