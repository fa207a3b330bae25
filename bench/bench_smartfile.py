"""SmartFile, against the emulator on loopback (real HTTP).

- throughput (issue 5): initial upload throughput of syncagent's SmartFile
  provider (streaming multipart) beside `curl -F` uploading the same file to
  the same emulator; bytes sent to upload a 1 MiB change inside a large file
  through the sync API (delta), beside the size of the same delta from `rdiff`.
- identical (issue 8): N identical small files already on both sides, the
  remote's uploaded by a plain HTTP client (no syncagent attributes): the
  first `syncagent sync` must send 0 content bytes and make no conflict copy.
- deletions (issue 9): N remote deletions one task per path (before) and in
  one batched task (`delete_many`, after), with the emulator's task latency.

    python -m bench.bench_smartfile [--what all|throughput|identical|deletions]
        [--size-mib 256] [--files 10000] [--deletions 40] [--no-write]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import write_section
from syncagent import delta
from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_setup


def request_bytes(requests: Sequence[object]) -> tuple[int, int]:
    """(body bytes, header bytes) the client sent, from the emulator's log."""
    body = head = 0
    for r in requests:
        headers: dict[str, str] = getattr(r, "headers", {})
        body += int(headers.get("Content-Length", "0") or 0)
        head += len(f"{getattr(r, 'method', '')} {getattr(r, 'path', '')} HTTP/1.1\r\n") + sum(
            len(k) + len(v) + 4 for k, v in headers.items()) + 2
    return body, head


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", choices=["all", "throughput", "identical", "deletions"], default="all")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--deletions", type=int, default=40)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.what in ("all", "throughput"):
        throughput(args.size_mib, args.no_write)
    if args.what in ("all", "identical"):
        from bench.smartfile_cases import identical

        identical(args.files, args.no_write)
    if args.what in ("all", "deletions"):
        from bench.smartfile_cases import deletions

        deletions(args.deletions, args.no_write)


def throughput(size_mib: int, no_write: bool) -> None:
    size = size_mib << 20
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-sf-") as tmp:
        work = Path(tmp)
        local = work / "local"
        local.mkdir()
        big = local / "disk.img"
        with open(big, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
        (work / "emu").mkdir()
        past = time.time_ns() - 60_000_000_000  # not "racy": no extra hashing pass
        os.utime(big, ns=(past, past))
        with smartfile_setup(work / "emu", root="/bench") as s:
            store = Store(work / "state")
            engine = Engine(local, s.provider, "sf:/bench", store, SyncOptions(), Reporter(quiet=True))
            t0 = time.perf_counter()
            first = engine.sync()
            ours_s = time.perf_counter() - t0
            assert first.uploaded == 1 and first.errors == 0, first.error_list
            curl_s = 0.0
            if shutil.which("curl"):
                t0 = time.perf_counter()
                subprocess.run(["curl", "-sf", "-u", f"{KEY}:{PASSWORD}", "-F", f"file=@{big}",
                                f"{s.emulator.base_url.rstrip('/')}/api/2/path/data/"], check=True,
                               stdout=subprocess.DEVNULL)
                curl_s = time.perf_counter() - t0
            old = big.read_bytes()
            with open(big, "r+b") as f:
                f.seek(size // 2)
                f.write(os.urandom(1 << 20))
            os.utime(big, ns=(past + 10**9, past + 10**9))
            s.emulator.clear_log()
            t0 = time.perf_counter()
            second = engine.sync()
            delta_s = time.perf_counter() - t0
            body, head = request_bytes(s.emulator.requests)
            store.close()
        assert second.uploaded == 1 and second.errors == 0, second.error_list
        sig, ref = io.BytesIO(), io.BytesIO()
        delta.signature(io.BytesIO(old), sig, hash="md4", block_len=2048, strong_len=8)
        sig.seek(0)
        with open(big, "rb") as f:
            delta.delta(sig, f, ref)
        ref_size = ref.tell()
    mib = 1 << 20
    text = "\n".join([
        f"`python -m bench.bench_smartfile --size-mib {size_mib}`; emulator on loopback "
        "(tests/emulators, real HTTP).", "",
        "| measure | syncagent | reference |", "|---|---|---|",
        f"| initial upload of {size_mib} MiB | {ours_s:.2f} s ({size_mib / ours_s:.0f} MiB/s) "
        f"| curl -F: {curl_s:.2f} s ({size_mib / max(curl_s, 1e-9):.0f} MiB/s) |",
        f"| 1 MiB change: request bodies sent | {body / mib:.3f} MiB | delta of the same change "
        f"(rdiff format, block 2048): {ref_size / mib:.3f} MiB |",
        f"| same: request headers | {head / 1024:.1f} KiB | |",
        f"| ratio bodies / delta | {body / ref_size:.3f}× | target ≤ 1.05× plus request overhead |",
        f"| 1 MiB change: sync time | {delta_s:.2f} s | |",
    ])
    print(text)
    if not no_write:
        write_section("SmartFile: upload throughput and delta bytes (issue 5)", text)


if __name__ == "__main__":
    main()
