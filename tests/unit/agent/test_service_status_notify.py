"""Service files, sd_notify datagrams and the status file."""

from __future__ import annotations

import socket
from pathlib import Path

from syncagent.agent import service, status
from syncagent.agent.sdnotify import Notifier
from syncagent.engine.report import Summary


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
    service.uninstall(target=tmp_path, runner=_recorder(ran), platform="linux")
    assert not (tmp_path / "syncagent.service").exists()
    assert ["systemctl", "--user", "disable", "--now", "syncagent.service"] in ran


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
