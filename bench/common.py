"""Shared pieces of the benchmarks: timing child processes with their peak
RSS, medians, and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import os
import re
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int


def timed(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run `cmd`, return wall seconds and the child's peak RSS (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if code != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {code}: {err[-2000:]}")
    return Run(elapsed, usage.ru_maxrss / 1024, code)


def median(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_rss_mb for r in runs), 0)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the section `## title` of docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nMeasured on the project's 2-core machine.\n"
    block = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    DOC.write_text(text)
