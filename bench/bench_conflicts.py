"""W5: a two-way sync with changes on both sides and conflicts, beside unison.

Two replicas of 10,000 files of 1-16 KiB in 100 folders, in step (each tool
has made its own state by one untimed sync). Then, the same on each tool's
replicas: 100 files changed on side A only, 100 on side B only, 50 changed
on both sides differently (true conflicts), 20 changed on both sides to the
same bytes (no conflict: a tool that reports one invents it), 50 added and
50 deleted on each side. Timed: one two-way sync. Checked after it, for
syncagent: the two replicas are equal, every version of the 50 conflicts is
there (one under the name, one in a conflict copy), no conflict copy for
anything else, nothing lost. For unison (`-batch -auto`, as it runs
unattended) the table notes how many conflicts it left unresolved (the two
replicas still differ there).

    python -m bench.bench_conflicts [--files 10000] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.bench_sync import env_for, generate, precompile, table
from bench.common import Run, median, timed, write_section

SYNCAGENT = os.environ.get("SYNCAGENT_CMD", str(Path(sys.executable).with_name("syncagent")))
CONFLICTS, SAME, ONE_SIDE, ADDED, DELETED = 50, 20, 100, 50, 50


def tools(work: Path) -> dict[str, Callable[[Path, Path], list[str]]]:
    out: dict[str, Callable[[Path, Path], list[str]]] = {
        "syncagent": lambda a, b: [SYNCAGENT, "sync", str(a), str(b), "--state-dir", str(work / "sa-state"),
                                   "-q", "--mode", "two-way", "--max-delete", "100"],
    }
    if shutil.which("unison"):
        out["unison"] = lambda a, b: ["unison", str(a), str(b), "-batch", "-auto", "-times", "-silent",
                                      "-confirmbigdeletes=false"]
    return out


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def change_both(a: Path, b: Path, files: list[str], rng: random.Random) -> dict[str, tuple[bytes, bytes]]:
    """Apply W5's changes to replicas a and b; return each conflict's two versions."""
    picked = rng.sample(files, 2 * ONE_SIDE + CONFLICTS + SAME + 2 * DELETED)
    one_a, one_b = picked[:ONE_SIDE], picked[ONE_SIDE:2 * ONE_SIDE]
    both = picked[2 * ONE_SIDE:2 * ONE_SIDE + CONFLICTS]
    same = picked[2 * ONE_SIDE + CONFLICTS:2 * ONE_SIDE + CONFLICTS + SAME]
    gone = picked[2 * ONE_SIDE + CONFLICTS + SAME:]
    for rel in one_a:
        (a / rel).write_bytes(os.urandom(rng.randint(1024, 16384)))
    for rel in one_b:
        (b / rel).write_bytes(os.urandom(rng.randint(1024, 16384)))
    versions = {}
    for rel in both:
        va, vb = os.urandom(rng.randint(1024, 16384)), os.urandom(rng.randint(1024, 16384))
        (a / rel).write_bytes(va)
        (b / rel).write_bytes(vb)
        versions[rel] = (va, vb)
    for rel in same:
        data = os.urandom(rng.randint(1024, 16384))
        (a / rel).write_bytes(data)
        (b / rel).write_bytes(data)
    for rel in gone[:DELETED]:
        (a / rel).unlink()
    for rel in gone[DELETED:]:
        (b / rel).unlink()
    for i in range(ADDED):
        (a / f"d{i % 100:04}" / f"new-a-{i}.bin").write_bytes(os.urandom(rng.randint(1024, 16384)))
        (b / f"d{i % 100:04}" / f"new-b-{i}.bin").write_bytes(os.urandom(rng.randint(1024, 16384)))
    return versions


def check_syncagent(a: Path, b: Path, versions: dict[str, tuple[bytes, bytes]]) -> None:
    """Converged, each conflict's two versions kept, no other conflict copy."""
    left, right = contents(a), contents(b)
    if left != right:
        raise SystemExit(f"syncagent: the replicas differ at {sorted(set(left) ^ set(right))[:5]}")
    copies = [p for p in left if "(conflict " in p]
    if len(copies) != len(versions):
        raise SystemExit(f"syncagent: {len(copies)} conflict copies for {len(versions)} conflicts")
    for rel, (va, vb) in versions.items():
        stem = rel.rsplit(".", 1)[0]
        kept = {left[rel]} | {left[c] for c in copies if c.startswith(stem + " (conflict ")}
        if kept != {va, vb}:
            raise SystemExit(f"syncagent: a version of {rel} is missing")


def unresolved(a: Path, b: Path) -> int:
    left, right = contents(a), contents(b)
    return sum(1 for p in set(left) | set(right) if left.get(p) != right.get(p))


def run(files: int, repeat: int) -> tuple[dict[str, Run], dict[str, int]]:
    times: dict[str, list[Run]] = {}
    left_over: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="syncagent-w5-") as tmp:
        base = Path(tmp)
        seed = base / "seed"
        generate(seed, files, 100, 1024, 16384)
        names = sorted(str(p.relative_to(seed)) for p in seed.rglob("*.bin"))
        for r in range(repeat):
            for name in tools(base):
                work = base / f"{name}-{r}"
                a, b = work / "a", work / "b"
                shutil.copytree(seed, a)
                shutil.copytree(seed, b)
                make, env = tools(work)[name], env_for(name, work)
                timed(make(a, b), env=env)   # the tool's own state of the pair in step
                versions = change_both(a, b, names, random.Random(500 + r))
                os.sync()   # the set-up's writes on disk: a tool that syncs pays for its own writes only
                times.setdefault(name, []).append(timed(make(a, b), env=env, ok=(0, 1)))
                if name == "syncagent":
                    check_syncagent(a, b, versions)
                else:
                    left_over[name] = unresolved(a, b)
                shutil.rmtree(work)
                print(f"W5 {name} round {r}: {times[name][-1].seconds:.3f}s", file=sys.stderr)
    return {n: median(v) for n, v in times.items()}, left_over


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()
    changed = 2 * ONE_SIDE + CONFLICTS + SAME + 2 * DELETED
    if args.files < 2 * changed:
        ap.error(f"--files must be at least {2 * changed}: each round changes {changed} of them")
    precompile()
    load_before = os.getloadavg()[0]
    runs, left_over = run(args.files, args.repeat)
    body = [f"`python -m bench.bench_conflicts --files {args.files} --repeat {args.repeat}`; two replicas of "
            f"{args.files:,} files; per round {ONE_SIDE} changed on each side alone, {CONFLICTS} on both "
            f"(conflicts), {SAME} on both to the same bytes, {ADDED} added and {DELETED} deleted on each side; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores, shared).", "",
            table("W5 two-way sync with conflicts", runs),
            f"syncagent: replicas equal after each round, {CONFLICTS} conflict copies holding the other version, "
            f"none for the {SAME} identical changes (checked). "
            + "; ".join(f"{n}: {k} paths still differ after its run (conflicts left unresolved)"
                        for n, k in left_over.items())]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Sync engine: W5, two-way with conflicts (issue 13)", text)


if __name__ == "__main__":
    main()
