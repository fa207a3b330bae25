"""The Metadisk bridge emulator (spec: /work/shared/specs/metadisk.md): the
HTTP API on the emulator core's port, the WebSocket data channel on a
second one (each pointer's `channel`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulators.metadisk.app import MetadiskApp

if TYPE_CHECKING:
    from tests.conformance.providers import Target


def create(user: str, **options: Any) -> MetadiskApp:
    """`user` is "EMAIL:PASSWORD", a pre-activated account; `extra_users` adds more
    ("E1:P1,E2:P2"). Options: storage, shard_size, and anything `configure` takes."""
    app = MetadiskApp(storage=options.pop("storage", None),
                      shard_size=int(options.pop("shard_size")) if "shard_size" in options else None)
    users = [user, *[u for u in str(options.pop("extra_users", "") or "").split(",") if u]]
    for spec in users:
        email, _, password = spec.partition(":")
        app.accounts.add_user(email, password)
    app.configure(options)
    return app


@contextlib.contextmanager
def conformance_target(tmp: Path) -> Iterator[Target]:
    """The conformance suite's Metadisk: this emulator, a provider on it, its quirks and faults."""
    from tests.emulators.metadisk.fixtures import metadisk_target

    with metadisk_target(tmp) as target:
        yield target


__all__ = ["MetadiskApp", "conformance_target", "create"]
