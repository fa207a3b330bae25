"""Every benchmark, one after the other: what `make bench` runs.

    python -m bench.run_all [--full] [--write] [--only NAME ...]

By default each script runs with small parameters that finish in a few
minutes on the project's 2-core machine and only prints its tables: enough
to see a regression, not the documented numbers. `--full` runs the
parameters docs/benchmarks.md quotes (an hour or more); `--write` lets each
script replace its section of docs/benchmarks.md (do it with --full only).
Peers (rsync, rclone, unison) are compared where installed.

Every `bench/bench_*.py` must have a line in PLAN: a new script that is not
listed stops this runner instead of being skipped quietly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    small: tuple[str, ...]
    full: tuple[str, ...]


PLAN: dict[str, Bench] = {
    "bench_sync": Bench(("--repeat", "2", "--files", "1000", "--big", "0"),
                        ("--repeat", "5", "--files", "10000", "--big", "100000", "--huge", "1000000")),
    "bench_agent": Bench(("--files", "2000", "--changes", "10", "--idle", "10", "--warmup", "5", "--big", "10000"),
                         ("--files", "10000", "--changes", "50", "--idle", "600", "--warmup", "65",
                          "--big", "100000")),
    "bench_spill": Bench(("--files", "50000", "--repeat", "1"), ("--files", "1000000", "--repeat", "3")),
    "bench_conflicts": Bench(("--files", "1000", "--repeat", "1"), ("--files", "10000", "--repeat", "3")),
    "bench_delta": Bench(("--size", "64M", "--repeat", "1"), ("--size", "1G", "--repeat", "3")),
    "bench_smartfile": Bench(("--size-mib", "32", "--files", "500", "--deletions", "10"),
                             ("--size-mib", "256", "--files", "10000", "--deletions", "40")),
    "bench_webdav": Bench(("--files", "500"), ("--files", "10000")),
    "bench_s3": Bench(("--files", "500", "--size-mib", "64"), ("--files", "10000", "--size-mib", "1024")),
    "bench_onedrive": Bench(("--size-mib", "32", "--items", "10000"), ("--size-mib", "256", "--items", "100000")),
    "bench_mega": Bench(("--size-mib", "32", "--small-mib", "8"), ("--size-mib", "256", "--small-mib", "32")),
    "bench_metadisk": Bench(("--size-mib", "32", "--small-mib", "16"), ("--size-mib", "256", "--small-mib", "64")),
}


def scripts() -> list[str]:
    """The bench scripts on disk."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def command(name: str, full: bool, write: bool) -> list[str]:
    args = PLAN[name].full if full else PLAN[name].small
    if full and name == "bench_sync" and _can_make_file_systems():
        args = (*args, "--pristine")    # W1 once more on fresh file systems, as the documented run
    return [sys.executable, "-m", f"bench.{name}", *args, *(() if write else ("--no-write",))]


def _can_make_file_systems() -> bool:
    from bench.bench_sync import can_make_file_systems

    return can_make_file_systems()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the documented parameters (an hour or more)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md (with --full)")
    ap.add_argument("--only", nargs="+", choices=sorted(PLAN), metavar="NAME", help="run only these scripts")
    return ap


def main() -> int:
    args = parser().parse_args()
    unlisted = set(scripts()) - set(PLAN)
    if unlisted:
        print(f"bench/run_all.py: no PLAN entry for {', '.join(sorted(unlisted))}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for name in args.only or list(PLAN):
        cmd = command(name, args.full, args.write)
        print(f"\n== {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        code = subprocess.run(cmd, cwd=HERE.parent, check=False).returncode
        results.append((name, code, time.monotonic() - t0))
    print("\n== summary")
    for name, code, seconds in results:
        print(f"{name:<16} {'ok' if code == 0 else f'FAILED (exit {code})':<16} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
