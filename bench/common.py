"""Shared pieces of the benchmarks: timing child processes with their peak
RSS, medians, and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    returncode: int


GNU_TIME = "/usr/bin/time"


def timed(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
          ok: tuple[int, ...] = (0,)) -> Run:
    """Run `cmd`, return wall seconds and the command's peak RSS.

    The peak comes from GNU time (`-f %M`) where it is installed: a child forked from this
    Python process and then exec'd inherits our high-water mark in its rusage (Linux keeps
    the old mm's peak across execve), so wait4's ru_maxrss would report the benchmark's own
    size for every command. GNU time's child is forked from a ~1 MiB process instead."""
    with tempfile.NamedTemporaryFile(prefix="timed-", suffix=".rss") as rss_file:
        gnu = os.access(GNU_TIME, os.X_OK)
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file.name, *cmd] if gnu else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if code not in ok:
            raise RuntimeError(f"{shlex.join(cmd)} exited {code}: {err[-2000:]}")
        text = Path(rss_file.name).read_text().strip().splitlines() if gnu else []
        peak_kib = int(text[-1]) if text and text[-1].isdigit() else usage.ru_maxrss
    return Run(elapsed, peak_kib / 1024, code)


def command_line(module: str) -> str:
    """This run's command line as a reader would type it, for the top of a section."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


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
