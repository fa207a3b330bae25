"""syncagent/http.py: bounded requests against servers that never answer or
trickle, errors that name the host, the status and Retry-After mapping."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from syncagent import errors
from syncagent.http import (
    DeadlineExceeded,
    StallCheck,
    Timeouts,
    host_of,
    new_session,
    retry_after,
    status_error,
    transport_error,
)
from tests.emulators.base import EmulatorServer
from tests.emulators.fixtures import smartfile_emulator


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with smartfile_emulator() as server:
        yield server


def ping_url(emu: EmulatorServer) -> str:
    return emu.base_url + "api/2/ping/"


def test_a_server_that_never_answers_is_bounded_by_the_read_timeout(emu: EmulatorServer) -> None:
    emu.inject("hang", 1, delay=30)
    url = ping_url(emu)
    with new_session(Timeouts(connect=1, read=0.3, total=20)) as session:
        started = time.monotonic()
        with pytest.raises(requests.ReadTimeout) as exc:
            session.get(url)
        assert time.monotonic() - started < 3
        err = transport_error(exc.value, url)
        assert isinstance(err, errors.TransientError) and host_of(url) in str(err)
        assert session.get(url).json() == {"ping": "pong"}  # the next request goes through


def test_a_trickling_server_is_cut_at_the_total_deadline(emu: EmulatorServer) -> None:
    emu.inject("trickle", 1, delay=0.05)  # ~250 bytes of answer: 12 s at this pace
    url = ping_url(emu)
    with new_session(Timeouts(connect=1, read=1, total=0.6)) as session:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as exc:
            session.get(url)
        elapsed = time.monotonic() - started
        assert 0.5 < elapsed < 3
        err = transport_error(exc.value, url)
        assert isinstance(err, errors.TransientError) and retryable(err)
        assert host_of(url) in str(err) and "0.6 s" in str(err)
        assert session.get(url).json() == {"ping": "pong"}


def retryable(err: errors.ProviderError) -> bool:
    return err.retryable


def test_a_listener_that_never_accepts_is_bounded_too() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the handshake; nobody ever reads
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}/api/2/ping/"
        with new_session(Timeouts(connect=1, read=0.3, total=5)) as session, \
                pytest.raises(requests.ReadTimeout) as exc:
            session.get(url)
    assert f"127.0.0.1:{port} stopped answering" in str(transport_error(exc.value, url))


def test_the_deadline_never_hits_a_connection_reused_after_its_request(emu: EmulatorServer) -> None:
    url = ping_url(emu)
    with new_session(Timeouts(connect=1, read=1, total=0.3)) as session:
        for _ in range(20):
            assert session.get(url).status_code == 200
        time.sleep(0.5)  # every earlier deadline has passed
        for _ in range(5):
            assert session.get(url).status_code == 200
        user_agent = emu.requests[-1].headers["User-Agent"]
    assert user_agent.startswith("syncagent/")


def test_the_watchdog_thread_ends_when_idle(emu: EmulatorServer) -> None:
    with new_session(Timeouts(total=5)) as session:
        session.get(ping_url(emu))

    def watchdog_alive() -> bool:
        return any(t.name == "syncagent-http-deadline" for t in threading.enumerate())

    for _ in range(40):
        if not watchdog_alive():
            break
        time.sleep(0.05)
    assert not watchdog_alive()


def test_status_mapping() -> None:
    cases = {400: errors.PermanentError, 401: errors.AuthError, 403: errors.AuthError, 402: errors.QuotaExceeded,
             404: errors.NotFound, 409: errors.Conflict, 412: errors.Conflict, 429: errors.Throttled,
             500: errors.TransientError, 502: errors.TransientError, 503: errors.TransientError,
             501: errors.Unsupported, 507: errors.QuotaExceeded, 418: errors.PermanentError}
    for status, cls in cases.items():
        assert type(status_error(status, "x")) is cls, status
    throttled = status_error(503, "busy", retry_after=4)
    assert isinstance(throttled, errors.Throttled) and throttled.retry_after == 4
    assert type(status_error(409, "x", overrides={409: errors.AlreadyExists})) is errors.AlreadyExists
    assert status_error(404, "gone", path="a/b").path == "a/b"


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after({"Retry-After": "7"}) == 7
    assert retry_after({"Retry-After": "1.5"}) == 1.5
    assert retry_after({"Retry-After": date}, now=lambda: now) == 30
    assert retry_after({"Retry-After": email.utils.formatdate(now - 30, usegmt=True)}, now=lambda: now) == 0
    assert retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None
    assert retry_after({"X-Throttle-Wait-Seconds": "3"}, ("Retry-After", "X-Throttle-Wait-Seconds")) == 3


def test_stall_check_fails_a_body_below_the_minimum_rate() -> None:
    now = [0.0]
    check = StallCheck(Timeouts(stall_window=10, min_rate=100), "https://example.invalid/x",
                       clock=lambda: now[0])
    for _ in range(10):  # 2,000 bytes in 10 s: fast enough
        now[0] += 1
        check.progress(200)
    with pytest.raises(errors.TransientError, match=r"example\.invalid sends too slowly"):
        for _ in range(10):  # 10 bytes a second: too slow
            now[0] += 1
            check.progress(10)


def test_transport_errors_name_the_host_never_the_credentials() -> None:
    url = "https://user:secret@files.example.invalid:8443/api/2/path/info/"
    err = transport_error(requests.ConnectionError(ConnectionResetError(104, "reset")), url)
    assert "files.example.invalid:8443" in str(err) and "secret" not in str(err)
    assert "ConnectionResetError" in str(err)
    assert isinstance(transport_error(requests.exceptions.SSLError("bad cert"), url), errors.PermanentError)
    assert "could not connect" in str(transport_error(requests.ConnectTimeout("x"), url))
