"""One log: structlog lines, stdlib logging (urllib3, watchdog, warnings)
routed into them, JSON under --log-format json, and no secret in any line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncagent import log
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator


@pytest.fixture
def json_log() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    log.configure("json", level=logging.INFO)
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        log._configured.update(format=None, level=log.INFO)
        log._configured.pop("done", None)


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_our_events_are_json_lines(json_log: None, capsys: pytest.CaptureFixture[str]) -> None:
    log.get_logger(pair="docs").warning("sync failed", error="boom")
    (line,) = lines(capsys.readouterr().err)
    assert line["event"] == "sync failed" and line["pair"] == "docs" and line["level"] == "warning"
    assert "timestamp" in line


def test_stdlib_records_of_libraries_become_the_same_json(json_log: None,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full, discarding connection: %s",
                                                        "example.invalid")
    logging.getLogger("watchdog.observers.inotify_buffer").error("queue overflow\nsecond line")
    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection (1): example.invalid:443")
    first, second = lines(capsys.readouterr().err)  # the debug record is below the level: dropped
    assert first == {**first, "event": "Connection pool is full, discarding connection: example.invalid",
                     "logger": "urllib3.connectionpool", "level": "warning"}
    assert second["logger"] == "watchdog.observers.inotify_buffer" and second["level"] == "error"
    assert "\n" not in second["event"]  # a newline never splits a line


def test_python_warnings_are_routed_too(json_log: None, capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Unverified HTTPS request", UserWarning, stacklevel=1)
    (line,) = lines(capsys.readouterr().err)
    assert line["logger"] == "py.warnings" and "Unverified HTTPS request" in line["event"]


def test_secrets_are_masked_by_name_by_value_and_by_shape(json_log: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    secret = "Zq8vP2rT6wY1uI4oA7sD0fG3hJ5kL9"
    log.add_secret(secret)
    log.get_logger().info("login", password="hunter2", api_key="k" * 30, detail=f"sent {secret} to the server")
    logging.getLogger("requests_oauthlib.oauth1_auth").info(
        'Updated headers: Authorization: OAuth oauth_nonce="1", oauth_signature="cs%%26%s"', secret)
    logging.getLogger("urllib3").warning("retrying https://user:pa55word@example.invalid/x?access_token=abc123")
    text = capsys.readouterr().err
    for leaked in (secret, "hunter2", "k" * 30, "pa55word", "abc123"):
        assert leaked not in text
    first, second, third = lines(text)
    assert first["password"] == "***" and first["api_key"] == "***" and first["detail"] == "sent *** to the server"
    assert "Authorization" in second["event"] and "***" in second["event"]
    assert "example.invalid" in third["event"]  # the host stays: only the credentials go


def test_a_sync_run_logs_its_transport_retries_as_json(tmp_path: Path) -> None:
    """`syncagent sync --log-format json` against the emulator with a 500 and a
    429 injected: each retry is one JSON line on stderr, no secret in any."""
    (tmp_path / "emu").mkdir()
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.txt").write_text("hello")
    config = tmp_path / "config.yaml"
    config.write_text("remotes:\n  sf: {type: smartfile, root: /docs}\n")
    with smartfile_emulator(tmp_path / "emu") as emu:
        emu.inject("500", 1, method="GET", path="path/info")
        emu.inject("429", 1, method="POST", path="path/data", retry_after=0.1)
        env = {**os.environ, "SYNCAGENT_CONFIG": str(config), "SYNCAGENT_STATE_DIR": str(tmp_path / "state"),
               "SYNCAGENT_CREDENTIALS": str(tmp_path / "creds.yaml"), "SMARTFILE_API_URL": emu.base_url,
               "SMARTFILE_API_KEY": KEY, "SMARTFILE_API_PASSWORD": PASSWORD, "PYTHON_KEYRING_BACKEND":
               "keyring.backends.null.Keyring"}
        done = subprocess.run([sys.executable, "-m", "syncagent", "sync", str(local), "sf:", "--log-format", "json"],
                              env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stderr and PASSWORD not in done.stderr
    retries = [line for line in lines(done.stderr) if line.get("event") == "retrying"]
    assert [(r["error"], r["attempt"]) for r in retries] == [("TransientError", 2), ("Throttled", 2)]
    assert retries[1]["wait_s"] == 0.1 and retries[0]["what"] == "smartfile GET path/info"


LATE = """
import sys, warnings
from syncagent import log
log.configure("json")
assert "logging" not in sys.modules, "configure imported logging"
FIRST
import logging
logging.getLogger("urllib3.connectionpool").warning("pool full: %s", "example.invalid")
logging.getLogger("urllib3.connectionpool").debug("below the level: dropped")
warnings.warn("Unverified HTTPS request", UserWarning, stacklevel=1)
"""


@pytest.mark.parametrize("first", ["", "warnings.warn('a warning before any logging', UserWarning)"])
def test_logging_imported_after_configure_is_routed_all_the_same(first: str) -> None:
    """A command that logs nothing never imports `logging` (~8 ms); a library
    that imports it later, or a first Python warning, routes it then."""
    done = subprocess.run([sys.executable, "-W", "always", "-c", LATE.replace("FIRST", first)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = lines(done.stderr)
    if first:
        early = got.pop(0)
        assert early["logger"] == "py.warnings" and "a warning before any logging" in early["event"]
    pool, warned = got   # the debug record is below the level: dropped
    assert (pool["logger"], pool["level"], pool["event"]) == ("urllib3.connectionpool", "warning",
                                                              "pool full: example.invalid")
    assert warned["logger"] == "py.warnings" and "Unverified HTTPS request" in warned["event"]
