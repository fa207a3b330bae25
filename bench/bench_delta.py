"""Delta transfers (issue 4): a random file with 1 MiB overwritten in the middle.

Our signature, delta and patch (each in a fresh process, for an honest peak
RSS) beside `rdiff` with the same parameters and with its own defaults, and
rsync's delta mode (`--no-whole-file`) copying to a local folder, whose bytes
sent + received are the bytes-on-wire reference.

    python -m bench.bench_delta [--size 1G] [--repeat 3] [--no-write]

Repeats interleave the tools so that page-cache and write-back noise hits
them alike; the files' pages are warm before any timing. Peak RSS comes from
GNU time when installed: a child spawned straight from this Python process
inherits its RSS as the floor of ru_maxrss (vfork + exec), which would
report every tool at this process's ~30 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Run, timed, write_section

MIB = 1 << 20
STEPS = ("signature", "delta", "patch")
STEP = r"""
import sys
from syncagent import delta
op, a, b, out = sys.argv[1:5]
if op == "signature":
    with open(a, "rb") as f, open(out, "wb") as o: delta.signature(f, o)
elif op == "delta":
    with open(a, "rb") as s, open(b, "rb") as n, open(out, "wb") as o: delta.delta(s, n, o)
else:
    with open(a, "rb") as f, open(b, "rb") as d, open(out, "wb") as o: delta.patch(f, d, o)
"""


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G, 64M, 100000)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


def human(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def make_files(work: Path, size: int) -> tuple[Path, Path]:
    old, new = work / "old.bin", work / "new.bin"
    with open(old, "wb") as f:
        left = size
        while left:
            f.write(os.urandom(min(left, MIB)))
            left -= min(left, MIB)
    shutil.copyfile(old, new)
    with open(new, "r+b") as f:
        f.seek(max(size // 2 - MIB // 2, 0))
        f.write(os.urandom(min(MIB, size)))
    return old, new


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


class Tool:
    def __init__(self, name: str, work: Path, tag: str) -> None:
        self.name, self.work, self.tag = name, work, tag
        self.runs: list[dict[str, Run]] = []
        self.sig, self.delta, self.out = work / f"{tag}.sig", work / f"{tag}.delta", work / f"{tag}.out"

    def commands(self, old: Path, new: Path) -> dict[str, list[str]]:
        raise NotImplementedError

    def run(self, old: Path, new: Path, want: str) -> None:
        cmds = self.commands(old, new)
        self.runs.append({step: measured(cmds[step], self.work / "rss") for step in STEPS})
        if digest(self.out) != want:
            raise SystemExit(f"{self.name}: the patched file differs from the new file")
        self.out.unlink()  # unwritten pages of a deleted file are dropped, not flushed into the next timing

    def median(self, step: str) -> float:
        return statistics.median(r[step].seconds for r in self.runs)

    def total(self) -> float:
        return sum(self.median(s) for s in STEPS)

    def peak_rss(self) -> float:
        return max(r[s].peak_rss_mb for r in self.runs for s in STEPS)


def measured(cmd: list[str], rss_file: Path) -> Run:
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        return timed(cmd)
    run = timed([gnu_time, "-f", "%M", "-o", str(rss_file), *cmd])
    return Run(run.seconds, int(rss_file.read_text().split()[-1]) / 1024, run.returncode)


class Ours(Tool):
    def commands(self, old: Path, new: Path) -> dict[str, list[str]]:
        py = sys.executable
        return {"signature": [py, "-c", STEP, "signature", str(old), "", str(self.sig)],
                "delta": [py, "-c", STEP, "delta", str(self.sig), str(new), str(self.delta)],
                "patch": [py, "-c", STEP, "patch", str(old), str(self.delta), str(self.out)]}


class Rdiff(Tool):
    def __init__(self, name: str, work: Path, tag: str, params: list[str]) -> None:
        super().__init__(name, work, tag)
        self.params = params

    def commands(self, old: Path, new: Path) -> dict[str, list[str]]:
        return {"signature": ["rdiff", "-f", *self.params, "signature", str(old), str(self.sig)],
                "delta": ["rdiff", "-f", "delta", str(self.sig), str(new), str(self.delta)],
                "patch": ["rdiff", "-f", "patch", str(old), str(self.delta), str(self.out)]}


def rsync_run(work: Path, old: Path, new: Path) -> tuple[float, dict[str, int]]:
    """rsync's delta mode onto a local copy of the old file: (seconds, stats)."""
    src, dest = work / "rsync-src", work / "rsync-dest"
    for d in (src, dest):
        d.mkdir(exist_ok=True)
    if not (src / "f.bin").exists():
        shutil.copyfile(new, src / "f.bin")
    shutil.copyfile(old, dest / "f.bin")
    start = time.perf_counter()
    # --ignore-times: both copies are fresh, so size and mtime would say "unchanged"
    proc = subprocess.run(["rsync", "--no-whole-file", "--ignore-times", "--stats", str(src / "f.bin"),
                           str(dest / "f.bin")], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    stats = {}
    for key, label in (("sent", "Total bytes sent"), ("received", "Total bytes received"),
                       ("literal", "Literal data"), ("matched", "Matched data")):
        m = re.search(rf"{label}: ([\d,.]+)", proc.stdout)
        stats[key] = int(re.sub(r"[,.]", "", m.group(1))) if m else 0
    if digest(dest / "f.bin") != digest(new):
        raise SystemExit("rsync did not rebuild the new file")
    return seconds, stats


def librsync_version() -> str:
    out = subprocess.run(["rdiff", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"librsync ([\d.]+)", out)
    return m.group(1) if m else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="file size: 1G (default), 64M, 100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    if shutil.which("rdiff") is None:
        raise SystemExit("rdiff is missing (apt-get install rdiff)")
    from syncagent import delta

    size = args.size
    block, strong = delta.default_params(size)
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-delta-") as tmp:
        work = Path(tmp)
        old, new = make_files(work, size)
        want = digest(new)
        ours = Ours("syncagent.delta (blake2, size-derived block/strong)", work, "o")
        same = Rdiff(f"rdiff -H blake2 -R rollsum -b {block} -S {strong} (same format and parameters)",
                     work, "s", ["-H", "blake2", "-R", "rollsum", "-b", str(block), "-S", str(strong)])
        default = Rdiff("rdiff with its defaults (RabinKarp + BLAKE2, block 2048, 32-byte sums)", work, "d", [])
        tools: list[Tool] = [ours, same, default]
        rsync_times: list[float] = []
        rsync_stats: dict[str, int] = {}
        for _ in range(args.repeat):
            for tool in tools:
                tool.run(old, new, want)
            if shutil.which("rsync"):
                seconds, rsync_stats = rsync_run(work, old, new)
                rsync_times.append(seconds)
        sizes = {t.tag: (t.sig.stat().st_size, t.delta.stat().st_size) for t in tools}

    lines = [
        f"`python -m bench.bench_delta --size {human(size).replace(' ', '').replace('iB', '')} "
        f"--repeat {args.repeat}`: a {human(size)} random file with 1 MiB overwritten in the middle; "
        f"medians of {args.repeat} interleaved runs, each step a fresh process (Python startup included, "
        f"~20 ms); "
        f"librsync {librsync_version()}, {os.cpu_count()} CPUs. Our parameters for this size "
        f"(rs_sig_args, minimum safe strong sum): block {block} B, strong sum {strong} B.", "",
        "| tool | signature s | delta s | patch s | total s | signature + delta bytes | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tools:
        s, d = sizes[t.tag]
        lines.append(f"| {t.name} | {t.median('signature'):.2f} | {t.median('delta'):.2f} | "
                     f"{t.median('patch'):.2f} | {t.total():.2f} | {s:,} + {d:,} = {(s + d) / MIB:.2f} MiB | "
                     f"{t.peak_rss():.0f} |")
    if rsync_stats:
        wire = rsync_stats["sent"] + rsync_stats["received"]
        lines.append(f"| rsync --no-whole-file --stats, local folder (sent + received) | | | | "
                     f"{statistics.median(rsync_times):.2f} | {rsync_stats['sent']:,} + {rsync_stats['received']:,} "
                     f"= {wire / MIB:.2f} MiB | |")
    ours_bytes = sum(sizes["o"])
    lines += ["", f"Time: {ours.total() / same.total():.2f}× rdiff with the same parameters, "
                  f"{ours.total() / default.total():.2f}× rdiff with its defaults. "
                  f"Peak RSS {ours.peak_rss():.0f} MB."]
    if rsync_stats:
        lines[-1] += (f" Bytes: signature + delta = {ours_bytes / (rsync_stats['sent'] + rsync_stats['received']):.2f}×"
                      f" rsync's sent + received ({rsync_stats['sent'] / MIB:.2f} MiB sent, of which "
                      f"{rsync_stats['literal'] / MIB:.2f} MiB literal data).")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Delta transfers (issue 4)", text)


if __name__ == "__main__":
    main()
