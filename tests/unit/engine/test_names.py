"""Names the remote cannot hold are skipped with a warning, never mangled."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.local import LocalProvider
from tests.helpers import tree, write


class PickyProvider(LocalProvider):
    capabilities = dataclasses.replace(LocalProvider.capabilities, forbidden_chars=':*?"<>|',
                                       max_name_length=20, case_insensitive=True)


def test_unfit_names_are_skipped_and_reported(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    write(local / "ok.txt", "fine")
    write(local / "what?.txt", "forbidden char")
    write(local / ("x" * 30 + ".txt"), "too long")
    write(local / "Readme.md", "one")
    write(local / "README.md", "two")
    err = io.StringIO()
    store = Store(tmp_path / "s")
    try:
        summary = Engine(local, PickyProvider(remote), "picky", store, SyncOptions(),
                         Reporter(out=io.StringIO(), err=err)).sync()
    finally:
        store.close()
    assert summary.errors == 0
    names = set(tree(remote))
    assert "ok.txt" in names and "what?.txt" not in names and ("x" * 30 + ".txt") not in names
    assert len({"Readme.md", "README.md"} & names) == 1
    warnings = err.getvalue()
    assert "what?.txt" in warnings and "too long" in warnings and "ignores case" in warnings
    assert tree(local)["what?.txt"], "the local file is left alone"
