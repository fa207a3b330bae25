"""Providers and sinks for the agent's tests: a local folder with a change
feed that counts what it is asked, one that refuses credentials on demand,
and a status sink that remembers every state."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from syncagent import errors
from syncagent.engine.report import Summary
from syncagent.providers.base import ANY, ChangeBatch, Deleted, Expect, LocalSource, RemoteEntry, StagedWrite
from syncagent.providers.local import LocalProvider


class FeedProvider(LocalProvider):
    """A local folder with a change feed: each cursor names a snapshot of
    the listing; `changes(cursor)` returns what differs from it. Counts the
    calls a poll could make; `auth_failures` makes the next calls raise
    AuthError; `reset_next` makes the next batch a reset."""

    capabilities = dataclasses.replace(LocalProvider.capabilities, change_feed=True)

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: dict[str, int] = {"changes": 0, "changes(None)": 0, "list": 0, "close": 0}
        self.snapshots: dict[str, dict[str, RemoteEntry]] = {}
        self.auth_failures = 0
        self.reset_next = False
        self.closed = False
        self.refuse: set[str] = set()       # uploads of these paths fail (quota)

    def _auth(self) -> None:
        if self.auth_failures:
            self.auth_failures -= 1
            raise errors.AuthError("token expired")

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        self.calls["list"] += 1
        self._auth()
        yield from super().list(path)

    def changes(self, cursor: str | None) -> ChangeBatch:
        self.calls["changes" if cursor is not None else "changes(None)"] += 1
        self._auth()
        now = {e.path: e for e in LocalProvider.list(self)}
        new_cursor = str(len(self.snapshots))
        self.snapshots[new_cursor] = now
        if cursor is None or self.reset_next:
            self.reset_next = False
            return ChangeBatch(list(now.values()), new_cursor, reset=cursor is not None)
        before = self.snapshots[cursor]
        changed: list[RemoteEntry | Deleted] = [e for p, e in now.items() if before.get(p) != e]
        changed += [Deleted(p) for p in before if p not in now]
        return ChangeBatch(changed, new_cursor)

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY) -> StagedWrite:
        if path in self.refuse:
            raise errors.QuotaExceeded("quota exceeded", path=path)
        return super().stage_write(path, stream, size, mtime_ns, expect=expect)

    def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception]:
        """The folder's own copies (files not freshly written), refusing the same paths."""
        copied = iter(super().stage_copies([s for s in sources if s.path not in self.refuse]))
        return [errors.QuotaExceeded("quota exceeded", path=s.path) if s.path in self.refuse else next(copied)
                for s in sources]

    def close(self) -> None:
        self.calls["close"] += 1
        self.closed = True


class Opener:
    """`open_remote` for tests: a new FeedProvider on every open, all kept."""

    def __init__(self, root: Path, auth_failures: int = 0) -> None:
        self.root, self.auth_failures = root, auth_failures
        self.opened: list[FeedProvider] = []
        self.fail_with: Exception | None = None

    def __call__(self, spec: str, config_path: str | None) -> tuple[FeedProvider, str]:
        if self.fail_with is not None:
            raise self.fail_with
        provider = FeedProvider(self.root)
        provider.auth_failures = self.auth_failures
        self.opened.append(provider)
        return provider, f"local:{self.root}"


class Board:
    """A StatusSink that remembers every call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: list[dict[str, Any]] = []

    def pair_state(self, name: str, state: str, *, summary: Summary | None = None,
                   reason: str | None = None, pending: int = 0, skipped: list[str] | None = None) -> None:
        with self.lock:
            self.states.append({"name": name, "state": state, "reason": reason, "summary": summary,
                                "skipped": skipped})

    def last(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(s for s in reversed(self.states) if s["name"] == name)
