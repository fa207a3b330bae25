"""Local folder to local folder, side by side with rsync, rclone and unison.

W1 initial sync of 10,000 files of 1-16 KiB in 100 folders; W2 no-op re-sync
of that tree; W3 1 % modified + 100 added + 100 deleted; W6 no-op over
100,000 files (peak RSS too). Medians of --repeat runs; ratios against the
fastest peer. Writes its table into docs/benchmarks.md.

W7 (opt-in, `--huge 1000000`): a no-op sync over a million tiny files in
10,000 folders, beside rsync. The tree, each tool's copy of it and
syncagent's state are made once in a cache folder outside the repository
(--cache, default $XDG_CACHE_HOME/syncagent-bench or ~/.cache/...) and
reused by later runs; the initial sync that made each copy was timed then
and is reported from the cache.

    python -m bench.bench_sync [--repeat 5] [--files 10000] [--big 100000] [--huge 0] [--no-write]

syncagent is byte-compiled first, as an installed wheel is (this machine
sets PYTHONDONTWRITEBYTECODE, which would make every start compile ~100
modules of an editable checkout).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import syncagent
from bench.common import Run, median, timed, write_section

SYNCAGENT = os.environ.get("SYNCAGENT_CMD", str(Path(sys.executable).with_name("syncagent")))
HUGE_PER_FOLDER = 100      # W7: 1,000,000 files in 10,000 folders


def precompile() -> None:
    """Byte-code for syncagent as an installed wheel has it (PYTHONDONTWRITEBYTECODE is set here)."""
    compileall.compile_dir(str(Path(syncagent.__file__).parent), quiet=1)


def generate(root: Path, files: int, folders: int, lo: int, hi: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    blob = os.urandom(hi)
    for i in range(files):
        folder = root / f"d{i % folders:04}"
        folder.mkdir(parents=True, exist_ok=True)
        size, offset = rng.randint(lo, hi), rng.randrange(hi)
        (folder / f"f{i:06}.bin").write_bytes((blob[offset:] + blob[:offset])[:size])


def tools(work: Path) -> dict[str, Callable[[Path, Path], list[str]]]:
    """name -> (src, dst) -> command line. Each keeps its own state under `work`."""
    out: dict[str, Callable[[Path, Path], list[str]]] = {
        "syncagent": lambda s, d: [SYNCAGENT, "sync", str(s), str(d), "--state-dir", str(work / "sa-state"),
                                   "-q", "--mode", "two-way", "--max-delete", "100"],
    }
    if shutil.which("rsync"):
        out["rsync"] = lambda s, d: ["rsync", "-a", "--delete", f"{s}/", f"{d}/"]
    if shutil.which("rclone"):
        out["rclone"] = lambda s, d: ["rclone", "sync", "--config", "/dev/null", "-q", str(s), str(d)]
    if shutil.which("unison"):
        out["unison"] = lambda s, d: ["unison", str(s), str(d), "-batch", "-auto", "-times", "-silent",
                                      "-confirmbigdeletes=false"]
    return out


def env_for(name: str, work: Path) -> dict[str, str]:
    return {"UNISON": str(work / "unison-archive")} if name == "unison" else {}


def modify(src: Path, round_no: int, files: int) -> None:
    """W3: 1 % of the files modified, 100 added, 100 deleted."""
    rng = random.Random(1000 + round_no)
    existing = sorted(p for p in src.rglob("*.bin"))
    for p in rng.sample(existing, max(1, files // 100)):
        p.write_bytes(os.urandom(rng.randint(1024, 16384)))
    for p in rng.sample(existing, 100):
        p.unlink()
    for i in range(100):
        (src / f"d{i % 100:04}" / f"new-{round_no}-{i}.bin").write_bytes(os.urandom(rng.randint(1024, 16384)))


def warm(root: Path) -> None:
    """Read a tree once so no tool pays for a cold page cache the others don't."""
    for p in root.rglob("*"):
        if p.is_file():
            p.read_bytes()


def bench_tree(files: int, folders: int, repeat: int, lo: int, hi: int, big: bool,
               pristine: bool = False) -> dict[str, dict[str, Run]]:
    results: dict[str, dict[str, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-") as tmp:
        base = Path(tmp)
        src = base / "src"
        generate(src, files, folders, lo, hi)
        warm(src)
        # The tree on disk, as a user's files are: a tool that makes its own writes durable (syncfs)
        # would otherwise also write out the sources generated a second ago (W6's set-up: 4.2 s
        # against 2.7 s with them dirty) and whatever an earlier benchmark left dirty.
        os.sync()
        names = list(tools(base))
        initial: dict[str, list[Run]] = {n: [] for n in names}
        rounds = 1 if big else repeat
        for r in range(rounds):
            # Round-robin, each round in another order, and every run into a new folder: nothing is
            # deleted while W1 is measured. On ext4 without a journal (this machine's root) every
            # create scans past the inodes freed in the last 60-360 s (ialloc.c, recently_deleted),
            # so a run right after an `rm -rf` of the last copy measured the kernel's scan (0.8 s to
            # 7 s for the same rsync), not the tool. The copies go with the temporary folder.
            for name in names[r % len(names):] + names[:r % len(names)]:
                last = r == rounds - 1
                work = base / (f"work-{name}" if last else f"w1-{name}-{r}")   # the last copy: W2 and W3's
                work.mkdir()
                (work / "dst").mkdir()
                os.sync()   # what the run before left dirty is written out by it, not by this one's flush
                initial[name].append(timed(tools(work)[name](src, work / "dst"), env=env_for(name, work)))
        if pristine and not big:
            results["initial-pristine"] = pristine_initial(base, src, names, repeat)
        for name in names:
            work = base / f"work-{name}"
            make = tools(work)[name]
            env = env_for(name, work)
            noop = [timed(make(src, work / "dst"), env=env) for _ in range(repeat)]
            results.setdefault("initial", {})[name] = median(initial[name])
            results.setdefault("noop", {})[name] = median(noop)
            print(f"{name}: initial {results['initial'][name].seconds:.3f}s no-op {results['noop'][name].seconds:.3f}s",
                  file=sys.stderr)
        if not big:
            changes: dict[str, list[Run]] = {n: [] for n in tools(base)}
            for r in range(repeat):
                modify(src, r, files)
                os.sync()   # the edits on disk, as the kernel has them within seconds: a tool pays for its own writes
                for name in changes:
                    work = base / f"work-{name}"
                    make = tools(work)[name]
                    os.sync()   # (as for W1: each tool pays for its own writes only)
                    changes[name].append(timed(make(src, work / "dst"), env=env_for(name, work)))
            results["changes"] = {n: median(v) for n, v in changes.items()}
    return results


def can_make_file_systems() -> bool:
    return (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mkfs.ext4") is not None
            and shutil.which("mount") is not None and Path("/dev/loop-control").exists())


@contextlib.contextmanager
def fresh_file_system(base: Path, src: Path) -> Iterator[Path]:
    """A new ext4 (no journal, mounted with discard: as this machine's root) on
    a loop device, holding a copy of `src` written out to it: no inode in it was
    ever freed, whatever ran on the machine before. The loop device does direct
    I/O where losetup can: a buffered one copies every written block into the
    image file's page cache and then writes the image out at each flush, so a
    tool that makes its writes durable would pay for the disk twice (W1's
    three syncfs: 160 ms in all buffered, 118 ms direct, ~30 ms on the root
    file system)."""
    image, mount = base / "fs.img", base / "mnt"
    mount.mkdir(exist_ok=True)
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    with open(image, "wb") as f:
        f.truncate(max(1 << 30, 8 * size))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", str(image)], check=True)
    attached = subprocess.run(["losetup", "--direct-io=on", "--show", "-f", str(image)],
                              capture_output=True, text=True, check=False) if shutil.which("losetup") else None
    if attached is not None and attached.returncode == 0:
        subprocess.run(["mount", "-o", "discard", attached.stdout.strip(), str(mount)], check=True)
    else:
        subprocess.run(["mount", "-o", "loop,discard", str(image), str(mount)], check=True)
    try:
        shutil.copytree(src, mount / "src")
        os.sync()
        yield mount
    finally:
        subprocess.run(["umount", "-d", str(mount)], check=True)   # -d: the loop device goes with it
        image.unlink()


def pristine_initial(base: Path, src: Path, names: list[str], repeat: int) -> dict[str, Run]:
    """W1 again, each run on a file system made for it (round-robin): the
    tools' own work, without the kernel's scan past recently freed inodes
    that /tmp carries from whatever was deleted in the minutes before."""
    runs: dict[str, list[Run]] = {n: [] for n in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            with fresh_file_system(base, src) as fs:
                work = fs / "work"
                (work / "dst").mkdir(parents=True)
                runs[name].append(timed(tools(work)[name](fs / "src", work / "dst"), env=env_for(name, work)))
    return {n: median(v) for n, v in runs.items()}


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syncagent-bench"


def generate_tiny(root: Path, files: int, per_folder: int) -> None:
    """`files` files of 100-2000 bytes, `per_folder` to a folder; written to `root`.part, renamed when whole."""
    part = root.with_name(root.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    rng = random.Random(7)
    blob = os.urandom(4096)
    for i in range(files):
        if i % per_folder == 0:
            folder = part / f"d{i // per_folder:05}"
            folder.mkdir(parents=True)
        size, offset = rng.randint(100, 2000), rng.randrange(2048)
        fd = os.open(folder / f"f{i:07}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, blob[offset:offset + size])
        finally:
            os.close(fd)
    part.rename(root)


def huge_tree(cache: Path, files: int, repeat: int) -> dict[str, dict[str, Run]]:
    """W7: no-op syncs over a cached tree of `files` tiny files, syncagent beside rsync.

    Each tool's copy (and syncagent's state) is made by one timed initial sync the
    first time and kept, with that timing, in `setup.json` beside it."""
    root = cache / f"w7-{files}"
    src = root / "src"
    if not src.is_dir():
        print(f"W7: generating {files:,} files in {root} (once)", file=sys.stderr)
        root.mkdir(parents=True, exist_ok=True)
        generate_tiny(src, files, HUGE_PER_FOLDER)
    results: dict[str, dict[str, Run]] = {"initial": {}, "noop": {}}
    for name in ("syncagent", "rsync"):
        if name not in tools(root):
            continue
        work = root / f"work-{name}"
        make = tools(work)[name]
        setup = work / "setup.json"
        if not setup.exists():
            shutil.rmtree(work, ignore_errors=True)
            (work / "dst").mkdir(parents=True)
            print(f"W7: initial {name} sync of {files:,} files (once)", file=sys.stderr)
            first = timed(make(src, work / "dst"))
            setup.write_text(json.dumps({"seconds": first.seconds, "peak_rss_mb": first.peak_rss_mb}))
        made = json.loads(setup.read_text())
        results["initial"][name] = Run(made["seconds"], made["peak_rss_mb"], 0)
        timed(make(src, work / "dst"))      # one untimed run: both tools start with a warm inode cache
        results["noop"][name] = median([timed(make(src, work / "dst")) for _ in range(repeat)])
        print(f"W7 {name}: no-op {results['noop'][name].seconds:.2f}s "
              f"{results['noop'][name].peak_rss_mb:.0f} MB", file=sys.stderr)
    return results


def table(title: str, runs: dict[str, Run], target_rss: float | None = None) -> str:
    peers = {n: r for n, r in runs.items() if n != "syncagent"}
    fastest = min(peers.values(), key=lambda r: r.seconds) if peers else None
    lines = [f"**{title}**", "", "| tool | median s | peak RSS MB | vs fastest peer |", "|---|---|---|---|"]
    for name, r in sorted(runs.items(), key=lambda kv: kv[1].seconds):
        ratio = f"{r.seconds / fastest.seconds:.2f}×" if fastest else "-"
        lines.append(f"| {name} | {r.seconds:.3f} | {r.peak_rss_mb:.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs per measure (medians)")
    ap.add_argument("--files", type=int, default=10_000, help="files of W1-W3")
    ap.add_argument("--big", type=int, default=100_000, help="files of W6 (0: skip)")
    ap.add_argument("--huge", type=int, default=0, help="files of W7, beside rsync (0: skip; the issue's is 1000000)")
    ap.add_argument("--huge-repeat", type=int, default=3, help="no-op runs of W7 (medians)")
    ap.add_argument("--cache", type=Path, default=None, help="where W7's tree is kept between runs "
                    "(default $XDG_CACHE_HOME/syncagent-bench)")
    ap.add_argument("--only-huge", action="store_true", help="run W7 alone (its own section of docs/benchmarks.md)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    ap.add_argument("--pristine", action="store_true", help="W1 once more, each run on an ext4 made for it "
                    "(as root, with mkfs.ext4 and loop devices)")
    return ap


def main() -> None:
    args = parser().parse_args()
    precompile()
    if args.huge:
        huge_main(args)
    if args.only_huge:
        return
    load_before = os.getloadavg()[0]
    if args.pristine and not can_make_file_systems():
        raise SystemExit("--pristine needs root, mkfs.ext4, mount and loop devices")
    small = bench_tree(args.files, 100, args.repeat, 1024, 16384, big=False, pristine=args.pristine)
    large = bench_tree(args.big, 1000, max(3, args.repeat // 2), 100, 2000, big=True) if args.big else {}
    flags = " --pristine" if args.pristine else ""
    body = [f"`python -m bench.bench_sync --repeat {args.repeat} --files {args.files} --big {args.big}{flags}`; "
            "local folder to local folder; each tool keeps its own destination and state; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores, shared).", ""]
    body.append(table(f"W1 initial sync, {args.files:,} files of 1-16 KiB in 100 folders", small["initial"]))
    if "initial-pristine" in small:
        body.append(table("W1 again, each run on an ext4 made for it (no inode freed before it)",
                          small["initial-pristine"]))
    body.append(table("W2 no-op re-sync of that tree", small["noop"]))
    body.append(table("W3 1 % modified + 100 added + 100 deleted", small["changes"]))
    if large:
        body.append(table(f"W6 no-op over {args.big:,} files (peak RSS target 60 MB)", large["noop"]))
        body.append(table(f"(W6 set-up: initial sync of {args.big:,} files, one run)", large["initial"]))
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Sync engine: W1, W2, W3, W6 (issue 2)", text)


def huge_main(args: argparse.Namespace) -> None:
    cache = args.cache or default_cache()
    load_before = os.getloadavg()[0]
    runs = huge_tree(cache, args.huge, args.huge_repeat)
    folders = max(1, args.huge // HUGE_PER_FOLDER)
    body = [f"`python -m bench.bench_sync --huge {args.huge} --huge-repeat {args.huge_repeat} --only-huge`; "
            f"{args.huge:,} files of 100-2000 bytes in {folders:,} folders, generated once into {cache} and "
            f"reused; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores).", ""]
    body.append(table(f"W7 no-op over {args.huge:,} files (targets: ≤ 1.0× rsync, ≤ 100 MB)", runs["noop"]))
    body.append(table(f"(W7 set-up: initial sync of {args.huge:,} files, one run, when the cache was made)",
                      runs["initial"]))
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("Sync engine: W7, a no-op over a million files (issue 13)", text)


if __name__ == "__main__":
    main()
