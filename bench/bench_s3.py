"""S3 against real servers on loopback (moto's server mode, rclone serve s3):
N-file initial sync and no-op re-sync beside `rclone sync`, and one large
file's multipart upload beside `rclone copy`, with each command's peak RSS.

    python -m bench.bench_s3 [--files 10000] [--size-mib 1024] [--repeat 3] [--servers moto,rclone] [--no-write]

Each repeat goes to fresh buckets (and a fresh state dir), the two tools
taking turns; see bench_webdav for the table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.bench_webdav import Table, initial_and_noop, load, make_tree, precompile, syncagent_cmd, syncagent_env
from bench.common import Run, command_line, timed, write_section
from tests.servers import ServerProcess, tool, unique
from tests.servers.s3 import ACCESS_KEY, OPTIONS, SECRET_KEY, client_for, server


def make_big(path: Path, mib: int) -> None:
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def rclone_s3(url: str) -> list[str]:
    return ["--s3-provider", "Other", "--s3-endpoint", url, "--s3-access-key-id", ACCESS_KEY,
            "--s3-secret-access-key", SECRET_KEY, "--s3-force-path-style", "--transfers", "4"]


def buckets(srv: ServerProcess, count: int) -> list[str]:
    names = [unique("bench-") for _ in range(count)]
    with contextlib.closing(client_for(srv)) as admin:
        for b in names:
            admin.create_bucket(Bucket=b)
    return names


def bench_server(table: Table, name: str, local: Path, big: Path, work: Path, repeat: int) -> None:
    srv = server(name)
    secrets = {f"SYNCAGENT_REMOTE_{r}_{k}": v for r in ("S3", "S3BIG")
               for k, v in (("ACCESS_KEY_ID", ACCESS_KEY), ("SECRET_ACCESS_KEY", SECRET_KEY))}
    remote = {"type": "s3", "endpoint": srv.url, "region": "us-east-1", **OPTIONS[name]}
    conf = ["--config", str(work / "rclone.conf")]
    envs: dict[int, dict[str, str]] = {}

    def env_of(r: int) -> dict[str, str]:
        if r not in envs:
            ours, big_bucket = buckets(srv, 2)
            envs[r] = syncagent_env(work / f"{name}-{r}", {"s3": {**remote, "bucket": ours},
                                                           "s3big": {**remote, "bucket": big_bucket}}, secrets)
        return envs[r]

    def ours(r: int) -> Callable[[], Run]:
        env = env_of(r)
        return lambda: timed([syncagent_cmd(), "sync", str(local), "s3:"], env=env)

    def theirs(r: int) -> Callable[[], Run]:
        (bucket,) = buckets(srv, 1)
        cmd = [tool("rclone"), "sync", str(local), f":s3:{bucket}", *rclone_s3(srv.url), *conf]
        return lambda: timed(cmd)

    initial_and_noop(table, name, repeat, ours, theirs)
    size = big.stat().st_size >> 20
    before = load()
    for r in range(repeat):
        table.add(name, f"syncagent put, {size} MiB (multipart)",
                  timed([syncagent_cmd(), "put", str(big), "s3big:big.bin"], env=env_of(r)), mib=size)
        (bucket,) = buckets(srv, 1)
        table.add(name, f"rclone copy, {size} MiB",
                  timed([tool("rclone"), "copy", str(big), f":s3:{bucket}", *rclone_s3(srv.url), *conf]), mib=size)
    table.loads.append(f"{name} multipart {before} → {load()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--servers", default="moto,rclone")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        work = Path(tmp)
        local = work / "local"
        make_tree(local, args.files)
        big = work / "big.bin"
        make_big(big, args.size_mib)
        (work / "rclone.conf").touch()
        for name in args.servers.split(","):
            bench_server(table, name, local, big, work, args.repeat)
    body = (f"`{command_line('bench.bench_s3')}`\n\n"
            f"{args.files:,} files of 1 KiB in folders of 100, and one {args.size_mib} MiB file, over loopback "
            "to real servers started for the run; syncagent (16 MiB parts, 4 in flight) and rclone (its "
            f"defaults, 4 transfers) into fresh buckets of the same server, taking turns, {args.repeat} times. "
            "MiB/s of the big file: size / median seconds of the whole command (start-up included).\n\n"
            + table.markdown())
    print(body)
    if not args.no_write:
        write_section("S3: initial and no-op sync beside rclone, multipart throughput (issue 14)", body)


if __name__ == "__main__":
    main()
