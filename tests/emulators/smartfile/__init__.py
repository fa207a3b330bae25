"""The SmartFile API v2 emulator (spec: /work/shared/specs/smartfile.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulators.smartfile.app import SmartFileApp

if TYPE_CHECKING:
    from tests.conformance.providers import Target


def create(user: str, **options: Any) -> SmartFileApp:
    """`user` is "KEY:PASSWORD" for HTTP Basic. Options: seed, clock, storage (a folder), oauth
    ("CLIENT_TOKEN:CLIENT_SECRET[:ACCESS_TOKEN:ACCESS_SECRET]"), and anything
    `SmartFileApp.configure` takes (pending_polls, upload_answer, timezone)."""
    key, _, password = user.partition(":")
    app = SmartFileApp(key, password, seed=int(options.pop("seed", 0)), **_pick(options, "clock", "storage"))
    oauth = options.pop("oauth", None)
    if oauth:
        parts = str(oauth).split(":")
        app.auth.add_consumer(parts[0], parts[1])
        if len(parts) == 4:
            app.auth.add_access(parts[0], parts[2], parts[3])
    app.configure(options)
    return app


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: options.pop(n) for n in names if n in options}


@contextlib.contextmanager
def conformance_target(tmp: Path) -> Iterator[Target]:
    """The conformance suite's SmartFile: this emulator, a provider on it, its quirks and faults."""
    from tests.emulators.fixtures import smartfile_target

    with smartfile_target(tmp) as target:
        yield target


__all__ = ["SmartFileApp", "conformance_target", "create"]
