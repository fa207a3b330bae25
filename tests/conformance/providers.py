"""The providers under conformance test, as data.

Each entry makes a connected provider rooted at a fresh folder, plus the
quirks the suite must know (as data, never as `if name == ...` in a test):
how coarse its mtimes are, how big "larger than one chunk" is, and how to
inject faults into its transport (None: it has no network to break).
Later providers add one entry here.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from syncagent.providers.base import Provider
from syncagent.providers.local import LocalProvider


@dataclass
class Quirks:
    mtime_precision_s: float = 0.000001
    chunk: int = 1 << 20
    # inject(kind, count): make the next `count` requests fail with `kind`
    # ("500", "429", "503", "reset", "slow"); None when the provider has no network.
    inject: Callable[[str, int], None] | None = None


@dataclass
class Target:
    provider: Provider
    quirks: Quirks


Factory = Callable[[Path], contextlib.AbstractContextManager[Target]]


@contextlib.contextmanager
def local_target(tmp: Path) -> Iterator[Target]:
    root = tmp / "remote-root"
    with LocalProvider(root) as provider:
        yield Target(provider, Quirks())


def _smartfile() -> Factory | None:
    """The SmartFile emulator's factory, once tests/emulators provides it."""
    try:
        module = importlib.import_module("tests.emulators.fixtures")
    except ImportError:
        return None
    factory: Factory | None = getattr(module, "smartfile_target", None)
    return factory


def factories() -> dict[str, Factory]:
    out: dict[str, Factory] = {"local": local_target}
    for name, make in (("smartfile", _smartfile),):
        factory = make()
        if factory is not None:
            out[name] = factory
    return out
