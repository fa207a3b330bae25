"""Delta transfers (issue 4): a file with 1 MiB overwritten in the middle.

Our signature + delta + patch (each in a fresh process, for honest peak RSS)
beside `rdiff` with its defaults and with the same parameters, and rsync's
delta mode (`--no-whole-file`) copying to a local folder, whose "Total bytes
sent" is the bytes-on-wire reference.

    python -m bench.bench_delta [--size-mib 1024] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Run, timed, write_section

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


def make_files(work: Path, size: int) -> tuple[Path, Path]:
    old, new = work / "old.bin", work / "new.bin"
    with open(old, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    shutil.copyfile(old, new)
    with open(new, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(1 << 20))
    return old, new


def ours(work: Path, old: Path, new: Path) -> dict[str, Run]:
    py = sys.executable
    sig, dlt, out = work / "o.sig", work / "o.delta", work / "o.out"
    return {
        "signature": timed([py, "-c", STEP, "signature", str(old), "", str(sig)]),
        "delta": timed([py, "-c", STEP, "delta", str(sig), str(new), str(dlt)]),
        "patch": timed([py, "-c", STEP, "patch", str(old), str(dlt), str(out)]),
    }


def rdiff(work: Path, old: Path, new: Path, params: list[str], tag: str) -> dict[str, Run]:
    sig, dlt, out = work / f"{tag}.sig", work / f"{tag}.delta", work / f"{tag}.out"
    return {
        "signature": timed(["rdiff", "-f", *params, "signature", str(old), str(sig)]),
        "delta": timed(["rdiff", "-f", "delta", str(sig), str(new), str(dlt)]),
        "patch": timed(["rdiff", "-f", "patch", str(old), str(dlt), str(out)]),
    }


def rsync_bytes(work: Path, old: Path, new: Path) -> tuple[int, float]:
    dest = work / "rsync-dest"
    dest.mkdir(exist_ok=True)
    shutil.copyfile(old, dest / "f.bin")
    shutil.copyfile(new, work / "f.bin")
    # --ignore-times: the two copies share size and (to the second) mtime
    proc = subprocess.run(["rsync", "--no-whole-file", "--ignore-times", "--stats", str(work / "f.bin"),
                           str(dest / "f.bin")], capture_output=True, text=True, check=True)

    def stat(label: str) -> int:
        m = re.search(rf"Total bytes {label}: ([\d,.]+)", proc.stdout)
        return int(m.group(1).replace(",", "").replace(".", "")) if m else 0

    return stat("sent") + stat("received"), 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from syncagent import delta

    size = args.size_mib << 20
    block, strong = delta.default_params(size)
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-delta-") as tmp:
        work = Path(tmp)
        old, new = make_files(work, size)
        runs_ours = [ours(work, old, new) for _ in range(args.repeat)]
        runs_same = [rdiff(work, old, new, ["-b", str(block), "-S", str(strong)], "rs") for _ in range(args.repeat)]
        runs_default = [rdiff(work, old, new, [], "rd") for _ in range(args.repeat)]
        assert (work / "o.out").read_bytes() == new.read_bytes(), "our patch did not rebuild the new file"
        sizes = {tag: (os.path.getsize(work / f"{tag}.sig"), os.path.getsize(work / f"{tag}.delta"))
                 for tag in ("o", "rs", "rd")}
        rsync_sent = rsync_bytes(work, old, new)[0] if shutil.which("rsync") else 0

    def med(runs: list[dict[str, Run]], step: str) -> float:
        return statistics.median(r[step].seconds for r in runs)

    def total(runs: list[dict[str, Run]]) -> float:
        return sum(med(runs, s) for s in ("signature", "delta", "patch"))

    peak = max(r[s].peak_rss_mb for r in runs_ours for s in ("signature", "delta", "patch"))
    mib = 1 << 20
    rows = [
        ("syncagent.delta (size-derived block/strong)", runs_ours, sizes["o"]),
        (f"rdiff -b {block} -S {strong} (same parameters)", runs_same, sizes["rs"]),
        ("rdiff with its defaults", runs_default, sizes["rd"]),
    ]
    lines = [f"`python -m bench.bench_delta --size-mib {args.size_mib} --repeat {args.repeat}`: a "
             f"{args.size_mib} MiB random file, 1 MiB overwritten in the middle; medians of {args.repeat}; "
             f"block {block} B, strong sum {strong} B (librsync's rs_sig_args, minimum safe strong length).", "",
             "| tool | signature s | delta s | patch s | total s | signature + delta MiB | peak RSS MB |",
             "|---|---|---|---|---|---|---|"]
    for name, runs, (s, d) in rows:
        rss = max(r[x].peak_rss_mb for r in runs for x in ("signature", "delta", "patch"))
        lines.append(f"| {name} | {med(runs, 'signature'):.2f} | {med(runs, 'delta'):.2f} | {med(runs, 'patch'):.2f} "
                     f"| {total(runs):.2f} | {(s + d) / mib:.2f} | {rss:.0f} |")
    if rsync_sent:
        lines.append(f"| rsync --no-whole-file (bytes sent + received) | | | | | {rsync_sent / mib:.2f} | |")
    lines += ["", f"Time vs rdiff with the same parameters: {total(runs_ours) / total(runs_same):.2f}×; "
              f"vs rdiff's defaults: {total(runs_ours) / total(runs_default):.2f}×. "
              f"Bytes vs rsync: {(sizes['o'][0] + sizes['o'][1]) / max(rsync_sent, 1):.2f}×. Peak RSS {peak:.0f} MB."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Delta transfers (issue 4)", text)


if __name__ == "__main__":
    main()
