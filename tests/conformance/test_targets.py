"""The conformance suite's targets come from the registry, and a provider
whose emulator cannot be reached or started fails the suite: never a skip."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncagent.providers import registry
from tests.conformance.providers import EmulatorUnavailable, Target, emulator_target, factories
from tests.emulators import EMULATORS


def test_every_type_with_an_emulator_is_a_target() -> None:
    names = set(factories())
    for ptype in registry.types().values():
        if ptype.emulator is not None:
            assert any(n == ptype.name or n.startswith(ptype.name + "-") for n in names), ptype.name
    assert "local" in names


def test_an_unlisted_emulator_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EmulatorUnavailable, match="not listed"), emulator_target("no-such-emulator")(tmp_path):
        pass


def test_an_emulator_that_does_not_import_or_start_is_an_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EMULATORS, "broken", "tests.no_such_package.emulator")
    with pytest.raises(EmulatorUnavailable, match="does not import"), emulator_target("broken")(tmp_path):
        pass

    module = types.ModuleType("tests_fake_emulator")

    @contextlib.contextmanager
    def conformance_target(tmp: Path) -> Iterator[Target]:
        raise OSError(98, "Address already in use")
        yield  # pragma: no cover

    module.conformance_target = conformance_target  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_fake_emulator", module)
    monkeypatch.setitem(EMULATORS, "unstartable", "tests_fake_emulator")
    with pytest.raises(OSError, match="in use"), emulator_target("unstartable")(tmp_path):
        pass

    bare = types.ModuleType("tests_bare_emulator")
    monkeypatch.setitem(sys.modules, "tests_bare_emulator", bare)
    monkeypatch.setitem(EMULATORS, "bare", "tests_bare_emulator")
    with pytest.raises(EmulatorUnavailable, match="no conformance_target"), emulator_target("bare")(tmp_path):
        pass
