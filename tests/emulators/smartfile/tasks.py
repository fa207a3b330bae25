"""move / copy / remove as asynchronous tasks (spec §4.10, §4.11).

The POST validates synchronously and answers `{"uuid"}`; the work itself runs
when the task is polled past its PENDING/PROGRESS polls, so a client that
does not wait for SUCCESS sees nothing done yet (the strict reading of
"asynchronous"). A task also stays PENDING for `latency` seconds after it
was created (the real service's queue; 0 by default). Per-item failures land in `result.result.errors`
({path: message}); the task is FAILURE when every item failed, else SUCCESS.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.smartfile.store import ApiError, Node, Store, join, split_path


@dataclass
class Task:
    op: str
    items: list[list[str]]
    dst: list[str]
    polls_left: int
    forced: str | None = None           # "task-failure" / "task-error" injected faults
    ready_at: float = 0.0               # monotonic time before which it stays PENDING
    state: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)


class Tasks:
    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng
        self.lock = threading.Lock()
        self.tasks: dict[str, Task] = {}
        self.pending_polls = 1
        self.latency = 0.0

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def create(self, op: str, items: list[list[str]], dst: list[str], forced: str | None) -> str:
        with self.lock:
            tid = self.new_id()
            self.tasks[tid] = Task(op, items, dst, self.pending_polls, forced,
                                   ready_at=time.monotonic() + self.latency)
            return tid

    def poll(self, tid: str) -> dict[str, Any] | None:
        with self.lock:
            task = self.tasks.get(tid)
            if task is None:
                return None
            waiting = task.state is None and time.monotonic() < task.ready_at
            if task.state is None and (task.polls_left > 0 or waiting):
                task.polls_left = max(0, task.polls_left - 1)
                status = "PENDING" if task.polls_left % 2 or waiting else "PROGRESS"
                return {"uuid": tid, "status": status, "result": {"status": status, "result": {}}}
            if task.state is None:
                task.state = self._run(task)
            return {"uuid": tid, "status": task.state["status"], "result": task.state}

    def _run(self, task: Task) -> dict[str, Any]:
        work: Callable[[Task, list[str]], None] = {
            "move": self._move, "copy": self._copy, "remove": self._remove}[task.op]
        for parts in task.items:
            if task.forced is not None:
                task.errors[join(parts)] = "Injected failure"
                continue
            try:
                work(task, parts)
            except ApiError as exc:
                body = exc.body
                task.errors[join(parts)] = body if isinstance(body, str) else str(next(iter(body.values())))
        status = "FAILURE" if task.errors and (len(task.errors) == len(task.items)
                                                and task.forced != "task-error") else "SUCCESS"
        result: dict[str, Any] = {"errors": task.errors} if task.errors else {}
        return {"status": status, "result": result}

    def _target(self, task: Task, parts: list[str]) -> tuple[Node, Node]:
        node = self.store.get(parts)
        folder = self.store.get(task.dst)
        if not folder.isdir:
            raise ApiError(409, f"{join(task.dst)} is not a directory")
        if node.isdir and task.dst[: len(parts)] == parts:
            raise ApiError(400, f"Cannot move or copy {join(parts)} into itself")
        if parts[-1] in folder.children:
            raise ApiError(409, f"{join([*task.dst, parts[-1]])} already exists")
        return node, folder

    def _move(self, task: Task, parts: list[str]) -> None:
        with self.store.lock:
            _, folder = self._target(task, parts)
            node = self.store.detach(parts)
            self.store.attach(folder, node, parts[-1])

    def _copy(self, task: Task, parts: list[str]) -> None:
        with self.store.lock:
            node, folder = self._target(task, parts)
            self.store.attach(folder, self.store.clone(node), parts[-1])

    def _remove(self, task: Task, parts: list[str]) -> None:
        with self.store.lock:
            if not parts:
                raise ApiError(400, "Cannot remove the root folder")
            self.store.discard(self.store.detach(parts))


def paths_of(values: list[str]) -> list[list[str]]:
    return [split_path(v) for v in values]
