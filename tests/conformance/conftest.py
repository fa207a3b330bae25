from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.providers import Target, factories

FACTORIES = factories()


@pytest.fixture(params=sorted(FACTORIES), scope="class")
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp: Path = tmp_path_factory.mktemp(f"conformance-{request.param}")
    with FACTORIES[request.param](tmp) as t:
        yield t


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fresh_target" in metafunc.fixturenames:
        metafunc.parametrize("fresh_target", sorted(FACTORIES), indirect=True)


@pytest.fixture
def fresh_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty provider per test."""
    with FACTORIES[request.param](tmp_path) as t:
        yield t
