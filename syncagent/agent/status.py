"""The status file the running agent keeps current, and its readers.

One JSON file in the state dir, replaced atomically (temp + rename) on every
change: per pair its state (starting, syncing, idle, error, refused,
paused) and why when it is not idle, last sync, pending items, the last
run's failed items and recent conflict copies; the last transfers
(activity); the agent's pid and a heartbeat. `syncagent status` reads it and
says clearly when no agent runs (pid gone, or heartbeat stale).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from syncagent.engine.report import Summary

FILE_NAME = "status.json"
STALE_AFTER = 120.0   # seconds without a heartbeat: the agent is gone
KEEP_ERRORS = 20
KEEP_ACTIVITY = 100
KEEP_SKIPPED = 100     # names listed in the status file; the count says how many in all


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


class StatusFile:
    """The agent's side: a thread-safe writer (the StatusSink of agent.py)."""

    def __init__(self, state_dir: Path, pairs: list[tuple[str, str, str]]) -> None:
        self.path = state_dir / FILE_NAME
        state_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._failing = False
        self.data: dict[str, Any] = {
            "pid": os.getpid(), "started": _iso(time.time()), "heartbeat": time.time(),
            "pairs": {name: {"name": name, "local": local, "remote": remote, "state": "starting",
                             "last_sync": None, "pending": 0, "reason": None, "errors": [], "conflicts": []}
                      for name, local, remote in pairs},
            "activity": [],
        }
        self._write()

    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   reason: str | None = None, pending: int = 0, skipped: list[str] | None = None) -> None:
        """The pair's state now. `reason` says why it is not idle (a refusal,
        a pause, a failure) and is replaced at every call: once the cause is
        gone, so is the reason. A finished run replaces the item errors.
        `skipped`: the names this pair leaves out because the other side
        cannot hold them (already escaped: never a raw newline in the file)."""
        with self.lock:
            pair = self.data["pairs"].setdefault(name, {"name": name, "errors": [], "conflicts": []})
            pair["state"], pair["pending"], pair["reason"] = state, pending, reason
            if skipped is not None:
                pair["skipped"] = skipped[:KEEP_SKIPPED]
                pair["skipped_count"] = len(skipped)
            if summary is not None:
                self._record_run(name, pair, summary)
            self._write()

    def _record_run(self, name: str, pair: dict[str, Any], summary: Summary) -> None:
        now = time.time()
        pair["last_sync"] = _iso(now)
        pair["last_summary"] = {k: v for k, v in summary.as_dict().items()
                                if k not in ("error_list", "conflict_list")}
        pair["conflicts"] = (pair["conflicts"] + summary.conflict_list)[-KEEP_ERRORS:]
        pair["errors"] = [{"time": _iso(now), **e} for e in summary.error_list][-KEEP_ERRORS:]
        if summary.changed_anything():
            self.data["activity"] = (self.data["activity"] + [{
                "time": _iso(now), "pair": name, "uploaded": summary.uploaded,
                "downloaded": summary.downloaded,
                "deleted": summary.deleted_local + summary.deleted_remote, "moved": summary.moved,
                "conflicts": summary.conflicts, "bytes": summary.bytes_sent + summary.bytes_received,
            }])[-KEEP_ACTIVITY:]

    def heartbeat(self) -> None:
        with self.lock:
            self._write()

    def stopped(self) -> None:
        with self.lock:
            self.data["stopped"] = _iso(time.time())
            self.data["pid"] = None
            self._write()

    def _write(self) -> None:
        """Replace the file; a failure (state dir gone, disk full) is logged
        once until a write succeeds again, and never stops the agent."""
        self.data["heartbeat"] = time.time()
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.data, indent=1, ensure_ascii=False))
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._failing:
                from syncagent.log import get_logger

                get_logger().warning("cannot write the status file", path=str(self.path), error=str(exc))
            self._failing = True
            return
        self._failing = False


def read(state_dir: Path, now: float | None = None) -> dict[str, Any]:
    """The status as the last agent wrote it, plus `running`."""
    try:
        data: dict[str, Any] = json.loads((state_dir / FILE_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"running": False, "pairs": {}, "activity": []}
    pid = data.get("pid")
    alive = isinstance(pid, int) and _pid_alive(pid)
    fresh = (now or time.time()) - float(data.get("heartbeat") or 0) < STALE_AFTER
    data["running"] = bool(alive and fresh)
    return data


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(data: dict[str, Any]) -> str:
    lines = []
    if data.get("running"):
        lines.append(f"agent running (pid {data['pid']}, since {data.get('started')})")
    else:
        lines.append("no agent is running" + (f" (last stopped {data['stopped']})" if data.get("stopped") else "")
                     + ("; last known state:" if data.get("pairs") else ""))
    for pair in data.get("pairs", {}).values():
        lines.append(f"  {pair['name']:<16} {pair.get('state', '?'):<8} last sync {pair.get('last_sync') or 'never'}"
                     f"  pending {pair.get('pending', 0)}  {pair.get('local')} <-> {pair.get('remote')}")
        if pair.get("reason"):
            lines.append(f"      why: {pair['reason']}")
        for e in pair.get("errors", [])[-3:]:
            lines.append(f"      error {e.get('time')}: {e.get('path', '')} {e.get('error')}".rstrip())
        for c in pair.get("conflicts", [])[-3:]:
            lines.append(f"      conflict copy: {c}")
        lines.extend(_skipped_lines(pair))
    return "\n".join(lines)


def _skipped_lines(pair: dict[str, Any], shown: int = 5) -> list[str]:
    names: list[str] = pair.get("skipped") or []
    if not names:
        return []
    count = int(pair.get("skipped_count", len(names)))
    lines = [f"      skipped {count} name(s) the other side cannot hold (rename them to sync them):"]
    lines += [f"        {n}" for n in names[:shown]]
    if count > shown:
        lines.append(f"        and {count - shown} more")
    return lines


def render_activity(data: dict[str, Any]) -> str:
    rows = data.get("activity", [])
    if not rows:
        return "no transfers recorded"
    return "\n".join(f"{r['time']}  {r['pair']:<16} up {r['uploaded']} down {r['downloaded']} "
                     f"deleted {r['deleted']} moved {r['moved']} conflicts {r['conflicts']}" for r in rows[-30:])
