"""S3 against real servers on loopback (moto's server mode, rclone serve s3):
N-file initial sync and no-op re-sync beside `rclone sync`, and one large
file's multipart upload beside `rclone copy`, with each command's peak RSS.

    python -m bench.bench_s3 [--files 10000] [--size-mib 1024] [--servers moto,rclone] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

from bench.bench_webdav import initial_and_noop, make_tree, side_by_side, syncagent_cmd, syncagent_env
from bench.common import Run, timed, write_section
from tests.servers import tool, unique
from tests.servers.s3 import ACCESS_KEY, OPTIONS, SECRET_KEY, client_for, server


def make_big(path: Path, mib: int) -> None:
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def rclone_s3(url: str) -> list[str]:
    return ["--s3-provider", "Other", "--s3-endpoint", url, "--s3-access-key-id", ACCESS_KEY,
            "--s3-secret-access-key", SECRET_KEY, "--s3-force-path-style", "--transfers", "4"]


def bench_server(name: str, local: Path, big: Path, work: Path) -> list[tuple[str, str, Run]]:
    srv = server(name)
    buckets = [unique("bench-") for _ in range(4)]
    with contextlib.closing(client_for(srv)) as admin:
        for b in buckets:
            admin.create_bucket(Bucket=b)
    secrets = {f"SYNCAGENT_REMOTE_{r}_{k}": v for r in ("S3", "S3BIG")
               for k, v in (("ACCESS_KEY_ID", ACCESS_KEY), ("SECRET_ACCESS_KEY", SECRET_KEY))}
    remote = {"type": "s3", "endpoint": srv.url, "region": "us-east-1", **OPTIONS[name]}
    env = syncagent_env(work / name, {"s3": {**remote, "bucket": buckets[0]},
                                      "s3big": {**remote, "bucket": buckets[2]}}, secrets)
    conf = ["--config", str(work / "rclone.conf")]
    rows = initial_and_noop(name, local, lambda: timed([syncagent_cmd(), "sync", str(local), "s3:"], env=env),
                            lambda: timed([tool("rclone"), "sync", str(local), f":s3:{buckets[1]}",
                                           *rclone_s3(srv.url), *conf]))
    size = big.stat().st_size >> 20
    rows.append((name, f"syncagent put, {size} MiB (multipart)",
                 timed([syncagent_cmd(), "put", str(big), "s3big:big.bin"], env=env)))
    rows.append((name, f"rclone copy, {size} MiB",
                 timed([tool("rclone"), "copy", str(big), f":s3:{buckets[3]}", *rclone_s3(srv.url), *conf])))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--servers", default="moto,rclone")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        work = Path(tmp)
        local = work / "local"
        make_tree(local, args.files)
        big = work / "big.bin"
        make_big(big, args.size_mib)
        (work / "rclone.conf").touch()
        rows = [row for name in args.servers.split(",") for row in bench_server(name, local, big, work)]
    body = (f"{args.files:,} files of 1 KiB in folders of 100, and one {args.size_mib} MiB file, over loopback "
            "to real servers started for the run; syncagent (16 MiB parts) and rclone (its defaults, 4 "
            "transfers) into separate buckets of the same server, one after the other. MiB/s of the big file: "
            "size / seconds of the whole command.\n\n" + side_by_side(rows))
    print(body)
    if not args.no_write:
        write_section("S3: initial and no-op sync beside rclone, multipart throughput (issue 14)", body)


if __name__ == "__main__":
    main()
