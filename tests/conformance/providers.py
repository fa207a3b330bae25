"""The providers under conformance test, as data.

Each entry makes a connected provider rooted at a fresh folder, plus the
quirks the suite must know (as data, never as `if name == ...` in a test):
how coarse its mtimes are, how big "larger than one chunk" is, and how to
inject faults into its transport (None: it has no network to break).
A provider joins by declaring `emulator=NAME` in its ProviderType; nothing
here changes. NAME is either an emulator (tests/emulators/NAME with
`conformance_target(tmp)`), or, for a standard protocol tested against real
servers, a key of tests.servers.SERVERS: then the suite runs once per
listed server as target `TYPE-SERVER`, through
`tests.servers.NAME.conformance_target(tmp, server)`.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from syncagent.providers import registry
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


class EmulatorUnavailable(AssertionError):
    """A provider's emulator cannot be found or started: the suite fails, it never skips."""


def emulator_target(emulator: str) -> Factory:
    """The factory of a registered type's emulator: `tests/emulators/NAME`'s
    `conformance_target(tmp)`. Any failure to reach or start it is an error."""
    from tests.emulators import EMULATORS

    @contextlib.contextmanager
    def make(tmp: Path) -> Iterator[Target]:
        module_name = EMULATORS.get(emulator)
        if module_name is None:
            raise EmulatorUnavailable(f"emulator {emulator!r} is declared by a provider type but not listed "
                                      "in tests.emulators.EMULATORS")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise EmulatorUnavailable(f"emulator {emulator!r} does not import: {exc!r}") from exc
        factory: Factory | None = getattr(module, "conformance_target", None)
        if factory is None:
            raise EmulatorUnavailable(f"{module_name} has no conformance_target(tmp)")
        with factory(tmp) as target:
            yield target

    return make


def server_target(name: str, server: str) -> Factory:
    """The factory of one real server of tests/servers/NAME. A server that
    cannot start is an error, like an emulator that cannot."""

    @contextlib.contextmanager
    def make(tmp: Path) -> Iterator[Target]:
        try:
            module = importlib.import_module(f"tests.servers.{name}")
        except Exception as exc:
            raise EmulatorUnavailable(f"tests.servers.{name} does not import: {exc!r}") from exc
        with module.conformance_target(tmp, server) as target:
            yield target

    return make


def factories() -> dict[str, Factory]:
    """local, plus one Target per registered provider type that declares an
    emulator, or one per real server for the types tested against servers."""
    from tests.servers import SERVERS

    out: dict[str, Factory] = {"local": local_target}
    for ptype in registry.types().values():
        if ptype.emulator in SERVERS:
            for server in SERVERS[ptype.emulator]:
                out[f"{ptype.name}-{server}"] = server_target(ptype.emulator, server)
        elif ptype.emulator is not None:
            out[ptype.name] = emulator_target(ptype.emulator)
    return out
