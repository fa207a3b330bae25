"""A remote listing the engine must sort, kept in RAM or on disk (issue 13).

Every network provider lists in no particular order, so the engine sorts
its listing before the merge (and, while the listing runs, holds the local
walk): engine/spill.py does both on disk past `MEMORY_ENTRIES` entries. This
runs the real `Engine` in a child process against a network-like provider,
the plain-folder provider declaring what a network service declares
(`sorted_listing=False`, `expensive_bytes=True`: the threaded branch, the
walk beside the listing) and listing in no order (a shuffle within a sliding
window of 4,096 entries, so the provider itself holds no more). The folder
lists fast (the native reader: a few microseconds an entry), so without
`--page-ms` this is the spill's worst case: a service's listing costs tens
of microseconds an entry at least, and the listing thread mostly waits;
`--page-ms` has the listing wait that long per 1,000 entries, as for a page
of a service's listing. Both sides are hard-linked copies of one tree of
tiny files, so the first sync finds identical content and moves nothing.

Each measure runs with the spill (the default bound) and without it (a bound
no listing reaches: the engine as it was before, `sorted()` over the whole
listing and the walk held in a list), alternately: the first sync of the
pair (no base: every path stays in view, the plan holds them all) and then
no-op re-syncs (medians of --repeat).

    python -m bench.bench_spill [--files 1000000] [--repeat 3] [--page-ms 0] [--cache DIR] [--no-write]

The tree is made once in the cache (W7's tree of bench_sync is reused when it
is there) and hard-linked, never written to by a run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.bench_sync import HUGE_PER_FOLDER, default_cache, generate_tiny, precompile, warm
from bench.common import Run, command_line, median, timed, write_section

NO_BOUND = 10**12
WINDOW = 4096
PAGE = 1000


def tree(cache: Path, files: int) -> Path:
    """The source tree: W7's when bench_sync made one of this size, else one made here once."""
    w7 = cache / f"w7-{files}" / "src"
    if w7.is_dir():
        return w7
    src = cache / f"spill-{files}" / "src"
    if not src.is_dir():
        print(f"generating {files:,} files in {src} (once)", file=sys.stderr)
        src.parent.mkdir(parents=True, exist_ok=True)
        generate_tiny(src, files, HUGE_PER_FOLDER)
    return src


def linked_copy(src: Path, dst: Path) -> None:
    """A copy of `src` whose files are hard links (made once; a no-op run writes nothing)."""
    if dst.is_dir():
        return
    part = dst.with_name(dst.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    subprocess.run(["cp", "-al", str(src), str(part)], check=True)
    part.rename(dst)


def child_command(local: Path, remote: Path, state: Path, bound: int, page_ms: float) -> list[str]:
    return [sys.executable, "-m", "bench.bench_spill", "--page-ms", str(page_ms),
            "--child", str(local), str(remote), str(state), str(bound)]


def run_child(local: Path, remote: Path, state: Path, bound: int, page_ms: float) -> int:
    """One sync in this process (the measured child): prints its summary as JSON."""
    from syncagent.engine import spill
    from syncagent.engine.report import Reporter
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine, SyncOptions
    from syncagent.providers.base import RemoteEntry
    from syncagent.providers.folder import LocalProvider

    class NetworkLike(LocalProvider):
        capabilities = dataclasses.replace(LocalProvider.capabilities, sorted_listing=False, expensive_bytes=True)

        def list(self, path: str = "") -> Iterator[RemoteEntry]:
            rng = random.Random(7)
            window: list[RemoteEntry] = []
            for n, e in enumerate(super().list(path)):
                if page_ms and n % PAGE == 0:
                    time.sleep(page_ms / 1000)   # a page of the service's listing on its way
                window.append(e)
                if len(window) == WINDOW:
                    i = rng.randrange(WINDOW)
                    window[i], window[-1] = window[-1], window[i]
                    yield window.pop()
            rng.shuffle(window)
            yield from window

    spill.MEMORY_ENTRIES = bound
    store = Store(state)
    try:
        engine = Engine(local, NetworkLike(remote), "bench-spill", store, SyncOptions(), Reporter(quiet=True))
        s = engine.sync()
    finally:
        store.close()
    moved = s.uploaded + s.downloaded + s.deleted_local + s.deleted_remote + s.moved + s.conflicts
    print(json.dumps({"moved": moved, "errors": s.errors}))
    return 1 if s.errors or s.refused else 0


def measure(work: Path, src: Path, repeat: int, page_ms: float, first: bool) -> dict[str, dict[str, Run]]:
    """initial / no-op -> case -> Run; the cases alternate so neither gets the quieter minutes. Without
    `first`, the no-op runs reuse the pairs' state of an earlier run (made by a first sync if missing)."""
    from syncagent.engine.spill import MEMORY_ENTRIES

    cases = {f"on disk past {MEMORY_ENTRIES:,} entries": MEMORY_ENTRIES, "all in RAM (before)": NO_BOUND}
    local, remote = work / "local", work / "remote"
    linked_copy(src, local)
    linked_copy(src, remote)
    warm(local)     # both sides are the same files: neither case pays for a cold page cache
    out: dict[str, dict[str, Run]] = {"initial": {}, "noop": {}}
    noops: dict[str, list[Run]] = {name: [] for name in cases}
    for name, bound in cases.items():
        state = work / f"state-{bound}"
        if not first and (state / "state.db").exists():
            continue
        shutil.rmtree(state, ignore_errors=True)
        out["initial"][name] = timed(child_command(local, remote, state, bound, page_ms))
        print(f"initial, {name}: {out['initial'][name].seconds:.1f} s {out['initial'][name].peak_rss_mb:.0f} MB",
              file=sys.stderr)
    for _ in range(repeat):
        for name, bound in cases.items():
            run = timed(child_command(local, remote, work / f"state-{bound}", bound, page_ms))
            noops[name].append(run)
            print(f"no-op, {name}: {run.seconds:.1f} s {run.peak_rss_mb:.0f} MB", file=sys.stderr)
    out["noop"] = {name: median(runs) for name, runs in noops.items()}
    return out


def table(title: str, runs: dict[str, Run]) -> str:
    lines = [f"**{title}**", "", "| remote listing | median s | peak RSS MB |", "|---|---|---|"]
    lines += [f"| {name} | {r.seconds:.2f} | {r.peak_rss_mb:.0f} |" for name, r in runs.items()]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1_000_000, help="files of the tree (100 to a folder)")
    ap.add_argument("--repeat", type=int, default=3, help="no-op runs of each case (medians)")
    ap.add_argument("--page-ms", type=float, default=0.0, help="the listing waits this long per 1,000 entries")
    ap.add_argument("--no-first-sync", action="store_true", help="time the no-op runs only, on the pairs' "
                    "state of an earlier run")
    ap.add_argument("--cache", type=Path, default=None, help="where the tree and its copies are kept "
                    "(default $XDG_CACHE_HOME/syncagent-bench)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--child", nargs=4, metavar=("LOCAL", "REMOTE", "STATE", "BOUND"), help=argparse.SUPPRESS)
    return ap


def main() -> int:
    args = parser().parse_args()
    if args.child:
        local, remote, state, bound = args.child
        return run_child(Path(local), Path(remote), Path(state), int(bound), args.page_ms)
    precompile()
    cache = args.cache or default_cache()
    load_before = os.getloadavg()[0]
    runs = measure(cache / f"spill-{args.files}", tree(cache, args.files), args.repeat, args.page_ms,
                   not args.no_first_sync)
    folders = max(1, args.files // HUGE_PER_FOLDER)
    wait = f"waiting {args.page_ms:g} ms per 1,000 entries" if args.page_ms else "at the native reader's speed"
    body = [f"`{command_line('bench.bench_spill')}`; the real `Engine` in a child process against the folder "
            f"provider declaring a network service's capabilities (listing in no order, {wait}); "
            f"{args.files:,} files of 100-2000 bytes in {folders:,} folders, hard-linked on both sides; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores, shared).", ""]
    body.append(table(f"No-op sync over {args.files:,} files (median of {args.repeat})", runs["noop"]))
    if runs["initial"]:
        body.append(table(f"First sync of the pair over {args.files:,} identical files (one run)", runs["initial"]))
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section(f"Remote listings kept on disk (issue 13): {args.files:,} files, "
                      f"{args.page_ms:g} ms a page", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
