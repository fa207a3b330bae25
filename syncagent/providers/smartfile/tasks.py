"""move / copy / remove run as server tasks (spec §4.10, §4.11): the POST
answers `{"uuid"}`, then `GET /task/<uuid>/` is polled with backoff until
SUCCESS or FAILURE. A SUCCESS can still carry per-path errors
(`result.result.errors`); those fail the operation for the paths named."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from syncagent import errors
from syncagent.providers.smartfile.transport import Api

DONE = {"SUCCESS", "FAILURE"}


def run_task(api: Api, op: str, form: dict[str, Any], *, error_path: str,
             relative: Callable[[str], str], clock: Callable[[], float] = time.monotonic) -> None:
    """Start `op` and wait for it; raise for a FAILURE or any per-path error."""
    result = run_task_result(api, op, form, error_path=error_path, clock=clock)
    failed = path_errors(result)
    if failed:
        where, message = next(iter(failed.items()))
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise errors.PermanentError(f"SmartFile {op} failed: {message}{more}", path=relative(where))
    if result.get("status") == "FAILURE":
        raise errors.PermanentError(f"SmartFile {op} task failed", path=error_path)


def run_task_result(api: Api, op: str, form: dict[str, Any], *, error_path: str,
                    clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Start `op` and wait for its end: the task's `result` object (status, result)."""
    started = api.json("POST", f"path/oper/{op}", data=form, safe=False, error_path=error_path)
    tid = started.get("uuid") if isinstance(started, dict) else None
    if not tid:
        raise errors.PermanentError(f"SmartFile started no task for {op}", path=error_path)
    return _wait(api, str(tid), error_path, clock)


def path_errors(result: dict[str, Any]) -> dict[str, str]:
    """The per-path errors of a finished task: {absolute path: message}."""
    inner = result.get("result")
    failed = inner.get("errors") if isinstance(inner, dict) else None
    if not isinstance(failed, dict):
        return {}
    return {"/" + str(where).strip("/"): str(message) for where, message in failed.items()}


def _wait(api: Api, tid: str, error_path: str, clock: Callable[[], float]) -> dict[str, Any]:
    delay, deadline = api.tuning.poll_initial, clock() + api.tuning.task_timeout
    while True:
        api.sleep(delay)
        state = api.json("GET", "task", tid, error_path=error_path)
        result = state.get("result") if isinstance(state, dict) else None
        status = result.get("status") if isinstance(result, dict) else None
        if status in DONE and isinstance(result, dict):
            return result
        if clock() > deadline:
            raise errors.TransientError(f"task {tid} still {status} after {api.tuning.task_timeout:.0f}s",
                                        path=error_path)
        delay = min(delay * 2, api.tuning.poll_max)
