"""Shared helpers for the project's own tests."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.local import LocalProvider


def tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 (files) or 'DIR'; links and specials left out."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for d in dirnames:
            if not Path(dirpath, d).is_symlink():
                out[str(rel / d)] = "DIR"
        for f in filenames:
            p = Path(dirpath, f)
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                out[str(rel / f)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def age_files(*roots: Path) -> None:
    """Every file below `roots` set an hour back: no base row recorded now is
    racy, so what a run keeps in view is deterministic."""
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                os.utime(os.path.join(dirpath, f), ns=(an_hour_ago, an_hour_ago))


def sync_in_process(local: Path, remote: Path, state: Path, paths: set[str] | None = None,
                    **options: object) -> Summary:
    store = Store(state)
    try:
        # closed as the command closes it: a run's folder descriptors go with the provider
        with LocalProvider(remote) as provider:
            engine = Engine(local, provider, f"local:{remote}", store, SyncOptions(**options),  # type: ignore[arg-type]
                            Reporter(quiet=True))
            return engine.sync(paths)
    finally:
        store.close()


def sync_cli(local: Path, remote: Path | str, state: Path, *extra: str, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "syncagent", "sync", str(local), str(remote), "--state-dir", str(state), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL)
