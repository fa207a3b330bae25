"""Delta transfers (issue 4): a random file with 1 MiB overwritten in the middle.

Our signature, delta and patch (each in a fresh process, for an honest peak
RSS) beside `rdiff` with the same parameters and with its own defaults, and
rsync's delta mode (`--no-whole-file`) copying to a local folder, whose bytes
sent + received are the bytes-on-wire reference.

    python -m bench.bench_delta [--size 1G] [--repeat 3] [--dir /dev/shm] [--no-write]

Repeats interleave the tools in a rotating order and every step starts after
a sync(): a patch writes the whole file, and dirty pages left by the previous
tool would otherwise throttle whoever runs next. The input files' pages are
warm (in the page cache) before any timing. Peak RSS comes from
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
# Writing the 1 GiB result costs whatever the machine's page allocation and
# write-back cost (0.4 to 3 s on the project VM, for every tool alike); the
# same patch into /dev/null shows the tools' own work.
TIMED = (*STEPS, "patch-null")
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
        runs = {}
        for step in TIMED:
            os.sync()
            runs[step] = measured(cmds[step], self.work / "rss")
        self.runs.append(runs)
        print(f"  {self.tag}: " + ", ".join(f"{s} {r.seconds:.2f} s" for s, r in runs.items()), file=sys.stderr)
        if digest(self.out) != want:
            raise SystemExit(f"{self.name}: the patched file differs from the new file")
        self.out.unlink()  # unwritten pages of a deleted file are dropped, not flushed into the next timing

    def median(self, step: str) -> float:
        return statistics.median(r[step].seconds for r in self.runs)

    def total(self, patch: str = "patch") -> float:
        return self.median("signature") + self.median("delta") + self.median(patch)

    def peak_rss(self) -> float:
        return max(r[s].peak_rss_mb for r in self.runs for s in TIMED)


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
                "patch": [py, "-c", STEP, "patch", str(old), str(self.delta), str(self.out)],
                "patch-null": [py, "-c", STEP, "patch", str(old), str(self.delta), os.devnull]}


class Rdiff(Tool):
    def __init__(self, name: str, work: Path, tag: str, params: list[str]) -> None:
        super().__init__(name, work, tag)
        self.params = params

    def commands(self, old: Path, new: Path) -> dict[str, list[str]]:
        return {"signature": ["rdiff", "-f", *self.params, "signature", str(old), str(self.sig)],
                "delta": ["rdiff", "-f", "delta", str(self.sig), str(new), str(self.delta)],
                "patch": ["rdiff", "-f", "patch", str(old), str(self.delta), str(self.out)],
                "patch-null": ["rdiff", "-f", "patch", str(old), str(self.delta), os.devnull]}


def rsync_run(work: Path, old: Path, new: Path) -> tuple[float, dict[str, int]]:
    """rsync's delta mode onto a local copy of the old file: (seconds, stats)."""
    src, dest = work / "rsync-src", work / "rsync-dest"
    for d in (src, dest):
        d.mkdir(exist_ok=True)
    if not (src / "f.bin").exists():
        shutil.copyfile(new, src / "f.bin")
    shutil.copyfile(old, dest / "f.bin")
    os.sync()
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


def filesystem(path: Path) -> str:
    out = subprocess.run(["df", "--output=fstype", str(path)], capture_output=True, text=True).stdout.split()
    return out[-1] if out else "?"


def librsync_version() -> str:
    out = subprocess.run(["rdiff", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"librsync ([\d.]+)", out)
    return m.group(1) if m else "?"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="file size: 1G (default), 64M, 100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the files go (default: the temp dir); a tmpfs takes the disk's write-back noise "
                         "out of the patch timings")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    return ap


def main() -> None:
    args = parser().parse_args()
    if shutil.which("rdiff") is None:
        raise SystemExit("rdiff is missing (apt-get install rdiff)")
    from syncagent import delta

    size = args.size
    block, strong = delta.default_params(size)
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-delta-", dir=args.dir) as tmp:
        work = Path(tmp)
        fs = filesystem(work)
        old, new = make_files(work, size)
        want = digest(new)
        ours = Ours("syncagent.delta (blake2, size-derived block/strong)", work, "o")
        same = Rdiff(f"rdiff -H blake2 -R rollsum -b {block} -S {strong} (same format and parameters)",
                     work, "s", ["-H", "blake2", "-R", "rollsum", "-b", str(block), "-S", str(strong)])
        default = Rdiff("rdiff with its defaults (RabinKarp + BLAKE2, block 2048, 32-byte sums)", work, "d", [])
        tools: list[Tool] = [ours, same, default]
        rsync_times: list[float] = []
        rsync_stats: dict[str, int] = {}
        for i in range(args.repeat):
            for tool in tools[i % 3:] + tools[:i % 3]:
                tool.run(old, new, want)
            if shutil.which("rsync"):
                seconds, rsync_stats = rsync_run(work, old, new)
                rsync_times.append(seconds)
        sizes = {t.tag: (t.sig.stat().st_size, t.delta.stat().st_size) for t in tools}

    command = f"python -m bench.bench_delta --size {human(size).replace(' ', '').replace('iB', '')} " \
              f"--repeat {args.repeat}" + (f" --dir {args.dir}" if args.dir else "")
    lines = [
        f"`{command}`: a {human(size)} random file with 1 MiB overwritten in the middle; "
        f"medians of {args.repeat} interleaved runs, each step a fresh process (Python startup included, "
        f"~20 ms); files on {fs}; librsync {librsync_version()}, {os.cpu_count()} CPUs. Our parameters for this size "
        f"(rs_sig_args, minimum safe strong sum): block {block} B, strong sum {strong} B.", "",
        "| tool | signature s | delta s | patch s | total s | patch → /dev/null s | total s, patch → /dev/null "
        "| signature + delta bytes | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tools:
        s, d = sizes[t.tag]
        lines.append(f"| {t.name} | {t.median('signature'):.2f} | {t.median('delta'):.2f} | "
                     f"{t.median('patch'):.2f} | {t.total():.2f} | {t.median('patch-null'):.2f} | "
                     f"{t.total('patch-null'):.2f} | {s:,} + {d:,} = {(s + d) / MIB:.2f} MiB | "
                     f"{t.peak_rss():.0f} |")
    if rsync_stats:
        wire = rsync_stats["sent"] + rsync_stats["received"]
        lines.append(f"| rsync --no-whole-file --stats, local folder (sent + received) | | | | "
                     f"{statistics.median(rsync_times):.2f} | | | {rsync_stats['sent']:,} + "
                     f"{rsync_stats['received']:,} = {wire / MIB:.2f} MiB | |")
    ours_bytes = sum(sizes["o"])
    lines += ["", f"Time: {ours.total() / same.total():.2f}× rdiff with the same parameters, "
                  f"{ours.total() / default.total():.2f}× rdiff with its defaults; patching into /dev/null: "
                  f"{ours.total('patch-null') / same.total('patch-null'):.2f}× and "
                  f"{ours.total('patch-null') / default.total('patch-null'):.2f}×. "
                  f"Peak RSS {ours.peak_rss():.0f} MB (of which ~12 MB is the Python interpreter)."]
    short = {"o": "ours", "s": "rdiff same parameters", "d": "rdiff defaults"}
    spread = ", ".join(f"{short[t.tag]} {min(r['patch'].seconds for r in t.runs):.2f}–"
                       f"{max(r['patch'].seconds for r in t.runs):.2f} s" for t in tools)
    lines += ["", f"- The patch column includes writing the {human(size)} result (the machine's page allocation and "
                  f"write-back, which vary a lot on the project VM): single runs ranged {spread}. The patch into "
                  "/dev/null is the tools' own work."]
    if rsync_stats:
        wire = rsync_stats["sent"] + rsync_stats["received"]
        lines[-1] += (f"\n- Bytes: signature + delta = {ours_bytes / wire:.2f}× rsync's sent + received "
                      f"({rsync_stats['sent'] / MIB:.2f} MiB sent, of which {rsync_stats['literal'] / MIB:.2f} MiB "
                      f"literal data, + {rsync_stats['received'] / MIB:.2f} MiB of block sums received). "
                      f"Both deltas are the changed data itself; the difference is "
                      f"the per-block sums: rsync sends shorter strong sums and relies on its whole-file checksum "
                      f"(retrying on a mismatch), we keep rs_sig_args' minimum safe {strong}-byte sums "
                      f"({4 + strong} bytes per block).")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Delta transfers (issue 4)", text)


if __name__ == "__main__":
    main()
