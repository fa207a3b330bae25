"""Wire-faithful local servers, one per provider, for tests and manual runs.

    with start_emulator("smartfile", user="KEY:PASSWORD") as emu:
        emu.base_url            # http://127.0.0.1:PORT/
        emu.inject("500", 2)    # the next two requests fail
        emu.app                 # the emulator's own handle (store, tasks, auth)

`python -m tests.emulators NAME --port PORT --user ID:SECRET` serves one in
the foreground. A new emulator is a package with `create(user, **options)`
returning an `App` (tests/emulators/base.py) and `conformance_target(tmp)`
(the provider on it, for tests/conformance), plus one line in EMULATORS.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from tests.emulators.base import EmulatorServer

EMULATORS: dict[str, str] = {
    "smartfile": "tests.emulators.smartfile",
    "mega": "tests.emulators.mega",
    "metadisk": "tests.emulators.metadisk",
    "onedrive": "tests.emulators.onedrive",
}


def build(name: str, user: str, port: int = 0, **options: Any) -> EmulatorServer:
    """An emulator server bound to 127.0.0.1:port (0: any free port), not started."""
    if name not in EMULATORS:
        raise KeyError(f"unknown emulator {name!r}; known: {', '.join(sorted(EMULATORS))}")
    module = importlib.import_module(EMULATORS[name])
    app = module.create(user, **options)
    server = EmulatorServer(app, port=port)
    # the app learns where it lives (for `url` fields) and where task faults are kept
    if hasattr(app, "base_url"):
        app.base_url = server.base_url
    if hasattr(app, "faults"):
        app.faults = server.faults
    return server


@contextlib.contextmanager
def start_emulator(name: str, user: str, **options: Any) -> Iterator[EmulatorServer]:
    server = build(name, user, **options).start()
    try:
        yield server
    finally:
        server.stop()
