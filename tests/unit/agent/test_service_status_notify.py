"""Service files, sd_notify datagrams and the status file."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import structlog

from syncagent.agent import service, status
from syncagent.agent.sdnotify import Notifier
from syncagent.engine.report import Summary
from syncagent.log import get_logger


def _recorder(ran: list[list[str]]) -> service.Runner:
    def run(cmd: list[str]) -> int:
        ran.append(cmd)
        return 0

    return run


def test_systemd_unit_is_rendered_and_enabled(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    done = service.install("/etc/sa.yaml", target=tmp_path, runner=_recorder(ran),
                           platform="linux")
    unit = (tmp_path / "syncagent.service").read_text()
    for line in ("Type=notify", "Restart=on-failure", "RestartPreventExitStatus=78", "WatchdogSec=",
                 "--config /etc/sa.yaml", " run --log-format json"):
        assert line in unit
    assert ["systemctl", "--user", "enable", "--now", "syncagent.service"] in ran
    assert done[0].startswith("wrote")
    directives = [x for x in unit.splitlines() if not x.startswith("#")]
    assert not [x for x in directives if "network-online" in x], "a user unit cannot wait for the system's network"
    service.uninstall(target=tmp_path, runner=_recorder(ran), platform="linux")
    assert not (tmp_path / "syncagent.service").exists()
    assert ["systemctl", "--user", "disable", "--now", "syncagent.service"] in ran


def _exec_start_words(unit: str) -> list[str]:
    """ExecStart= split the way systemd does for these characters: quotes
    and backslash escapes removed, then `%%` and `$$` undoubled."""
    line = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line.removeprefix("ExecStart="))]


def test_unit_quotes_paths_with_spaces_and_specials() -> None:
    exe, cfg = "/home/Jo Smith/.local/bin/syncagent", '/home/Jo Smith/100% "mine"/$HOME.yaml'
    unit = service.render_unit(exe, cfg)
    assert _exec_start_words(unit) == [exe, "run", "--log-format", "json", "--config", cfg]
    plain = service.render_unit("/usr/bin/syncagent", None)
    assert "ExecStart=/usr/bin/syncagent run --log-format json\n" in plain


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    exe = tmp_path / "a folder" / "syncagent"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "syncagent.service"
    unit.write_text(service.render_unit(str(exe), str(tmp_path / "my config.yaml")))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if "Failed to initialize manager" in r.stderr:
        pytest.skip("systemd-analyze cannot run without a manager here")
    assert r.returncode == 0, r.stderr


def test_launchd_plist_escapes_paths(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    service.install("/Users/a&b/<cfg>.yaml", target=tmp_path, runner=_recorder(ran), platform="darwin")
    plist = (tmp_path / "com.syncagent.agent.plist").read_text()
    assert "<string>/Users/a&amp;b/&lt;cfg&gt;.yaml</string>" in plist


def test_launchd_plist(tmp_path: Path) -> None:
    ran: list[list[str]] = []
    service.install(None, target=tmp_path, runner=_recorder(ran), platform="darwin")
    plist = (tmp_path / "com.syncagent.agent.plist").read_text()
    assert "<string>run</string>" in plist and "KeepAlive" in plist
    assert ran[0][:2] == ["launchctl", "load"]


def test_sd_notify_messages_reach_the_socket(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        n = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000000"})
        assert n.enabled and n.watchdog_interval == 10.0
        n.ready("watching 1 pair(s)")
        n.watchdog()
        n.stopping()
        got = [server.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=watching 1 pair(s)", "WATCHDOG=1", "STOPPING=1"]
    assert not Notifier({}).ready(), "without NOTIFY_SOCKET it is a no-op"


def test_status_file_round_trip(tmp_path: Path) -> None:
    board = status.StatusFile(tmp_path, [("docs", "/home/u/Documents", "sf:docs")])
    board.pair_state("docs", "syncing", pending=3)
    data = status.read(tmp_path)
    assert data["running"] and data["pairs"]["docs"]["state"] == "syncing"
    s = Summary(uploaded=2, conflicts=1, conflict_list=["a (conflict h 2026-01-01 000000).txt"])
    board.pair_state("docs", "idle", summary=s)
    data = status.read(tmp_path)
    assert data["pairs"]["docs"]["last_sync"] and data["activity"][-1]["uploaded"] == 2
    text = status.render(data)
    assert "docs" in text and "idle" in text and "conflict copy" in text
    board.stopped()
    assert not status.read(tmp_path)["running"]
    assert "no agent is running" in status.render(status.read(tmp_path))


def test_no_status_file_means_no_agent(tmp_path: Path) -> None:
    assert status.render(status.read(tmp_path)).startswith("no agent is running")


def test_a_reason_holds_only_while_its_cause_does(tmp_path: Path) -> None:
    board = status.StatusFile(tmp_path, [("docs", "/home/u/Documents", "sf:docs")])
    board.pair_state("docs", "refused", reason="this run would delete 8 of 10 files on the remote side")
    text = status.render(status.read(tmp_path))
    assert "refused" in text and "would delete 8 of 10 files" in text
    board.pair_state("docs", "syncing")
    board.pair_state("docs", "idle", summary=Summary(uploaded=8))
    pair = status.read(tmp_path)["pairs"]["docs"]
    assert pair["state"] == "idle" and pair["reason"] is None and pair["errors"] == []
    assert "would delete" not in status.render(status.read(tmp_path))


def test_failed_items_are_those_of_the_last_run(tmp_path: Path) -> None:
    board = status.StatusFile(tmp_path, [("docs", "/l", "sf:docs")])
    failed = Summary(errors=1, error_list=[{"path": "a.txt", "op": "upload", "error": "quota exceeded"}])
    board.pair_state("docs", "error", summary=failed, reason="1 item(s) failed; retrying")
    assert "quota exceeded" in status.render(status.read(tmp_path))
    board.pair_state("docs", "idle", summary=Summary(uploaded=1))
    assert "quota exceeded" not in status.render(status.read(tmp_path))


def test_a_paused_pair_says_what_to_run(tmp_path: Path) -> None:
    board = status.StatusFile(tmp_path, [("docs", "/l", "sf:docs")])
    board.pair_state("docs", "paused", reason="the remote sf refused the credentials: run `syncagent auth sf`")
    text = status.render(status.read(tmp_path))
    assert "paused" in text and "run `syncagent auth sf`" in text


def test_a_status_file_that_cannot_be_written_stops_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    board = status.StatusFile(state, [("docs", "/l", "sf:docs")])
    shutil.rmtree(state)
    state.write_text("a file where the state folder was")
    get_logger()        # structlog set up first, so capture_logs is not replaced by the set-up
    with structlog.testing.capture_logs() as logs:
        board.pair_state("docs", "idle")
        board.heartbeat()
    assert [e["event"] for e in logs] == ["cannot write the status file"], "said once, not at every write"
    state.unlink()
    board.pair_state("docs", "idle")
    assert status.read(state)["pairs"]["docs"]["state"] == "idle", "written again once it can be"


def test_skipped_names_are_shown_with_their_count(tmp_path: Path) -> None:
    board = status.StatusFile(tmp_path, [("docs", "/l", "sf:docs")])
    names = [f"bad-\\xff-{i}.txt" for i in range(7)]
    board.pair_state("docs", "idle", summary=Summary(skipped_names=names), skipped=names)
    text = status.render(status.read(tmp_path))
    assert "skipped 7 name(s)" in text and "bad-\\xff-0.txt" in text and "and 2 more" in text
    board.pair_state("docs", "idle", summary=Summary(), skipped=[])
    assert "skipped" not in status.render(status.read(tmp_path))
