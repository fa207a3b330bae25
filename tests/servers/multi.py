"""An engine scenario for any provider: several machines (each its own local
folder and state dir) syncing one remote folder converge with nothing lost."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import Kind, Provider
from tests.helpers import tree, write


def sync(provider: Provider, local: Path, state: Path) -> Summary:
    store = Store(state)
    try:
        return Engine(local, provider, "multi:remote", store, SyncOptions(), Reporter(quiet=True)).sync()
    finally:
        store.close()


def remote_tree(provider: Provider) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in provider.list():
        if e.kind is Kind.DIR:
            out[e.path] = "DIR"
        else:
            with provider.read(e.path) as f:
                out[e.path] = hashlib.sha256(f.read()).hexdigest()
    return out


def machines_converge(providers: Sequence[Provider], tmp: Path) -> None:
    """Each machine adds its own files, all edit one shared file, one deletes
    another's file; after rounds of syncs every machine holds the same tree,
    every version written survives (the losers as conflict copies)."""
    homes = [(tmp / f"m{i}" / "local", tmp / f"m{i}" / "state") for i in range(len(providers))]
    write(homes[0][0] / "shared.txt", "base")
    write(homes[0][0] / "doomed.txt", "delete me")
    sync(providers[0], *homes[0])
    for p, (local, state) in zip(providers[1:], homes[1:], strict=True):
        assert sync(p, local, state).errors == 0
    written = set()
    for i, (local, _) in enumerate(homes):
        write(local / f"own-{i}/note.txt", f"machine {i}")
        text = f"edit by machine {i}"
        write(local / "shared.txt", text)
        written.add(hashlib.sha256(text.encode()).hexdigest())
    (homes[-1][0] / "doomed.txt").unlink()
    for _ in range(2):
        for p, (local, state) in zip(providers, homes, strict=True):
            summary = sync(p, local, state)
            assert summary.errors == 0, summary.error_list
    trees = [tree(local) for local, _ in homes]
    assert all(t == trees[0] for t in trees), "the machines disagree"
    assert trees[0] == remote_tree(providers[0])
    assert written <= set(trees[0].values()), "an edit was lost"
    assert "doomed.txt" not in trees[0]
    assert {f"own-{i}/note.txt" for i in range(len(homes))} <= set(trees[0])
    for p, (local, state) in zip(providers, homes, strict=True):
        assert not sync(p, local, state).changed_anything()
