"""Metadisk, against the emulator on loopback (HTTP + the WebSocket data channel).

Upload and download of one large file (several 8 MiB shards) through the
provider (signed token requests, streamed multipart with the content address
computed on the way, shards verified one by one and the whole file at the
end), beside the emulator's raw throughput: `curl -F` for the upload, and a
bare WebSocket client pulling the same shards with no verification for the
download. Each side runs in its own process: its peak RSS is measured and
must not grow with the file size.

    python -m bench.bench_metadisk [--size-mib 256] [--small-mib 64] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.bench_delta import measured
from bench.common import Run, write_section
from tests.emulators.metadisk.fixtures import EMAIL, metadisk_setup


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_metadisk")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--small-mib", type=int, default=64, help="a second size: peak RSS must not follow it")
    ap.add_argument("--no-write", action="store_true", help="print, do not update docs/benchmarks.md")
    return ap


def child(what: str, url: str, key: str, *rest: str) -> list[str]:
    return [sys.executable, "-c", STEP, what, url, key, EMAIL, *rest]


# The measured process: `upload|download|raw-download URL KEY EMAIL [FILE]`.
STEP = r"""
import io, json, sys, websocket
from syncagent.providers.metadisk.api import Bridge
from syncagent.providers.metadisk.provider import MetadiskProvider
from syncagent.providers.metadisk.signing import KeyPair
from syncagent.providers.metadisk.transport import Api, Credentials
what, url, key, email = sys.argv[1:5]
api = Api(url, Credentials(email, None, KeyPair.from_hex(key)))
p = MetadiskProvider(api, "bench")
if what == "upload":
    size = __import__("os").path.getsize(sys.argv[5])
    p.ensure_root()
    with open(sys.argv[5], "rb", buffering=0) as f:
        class Once(io.RawIOBase):            # not seekable: the bytes cross once, as the engine's hashing stream
            def readable(self): return True
            def readinto(self, b): return f.readinto(b)
        p.write("big.bin", io.BufferedReader(Once(), 1 << 20), size, 0)
    p.close()
elif what == "download":
    with p.read("big.bin") as f:
        while f.read(1 << 20):
            pass
    p.close()
else:
    bridge = Bridge(api)
    bucket = p.bucket_id()
    address = p.stat("big.bin").hash
    for ptr in bridge.pointers(bucket, address):
        ws = websocket.create_connection(ptr.channel, timeout=60)
        ws.send(json.dumps({"token": ptr.token, "hash": ptr.hash, "operation": "PULL"}))
        while ws.recv_data()[0] != websocket.ABNF.OPCODE_CLOSE:
            pass
        ws.shutdown()
"""


def curl_upload(url: str, key_hex: str, path: Path, rss: Path) -> Run:
    from syncagent.providers.metadisk.api import Bridge
    from syncagent.providers.metadisk.provider import MetadiskProvider
    from syncagent.providers.metadisk.signing import KeyPair
    from syncagent.providers.metadisk.transport import Api, Credentials

    p = MetadiskProvider(Api(url, Credentials(EMAIL, None, KeyPair.from_hex(key_hex))), "bench")
    p.ensure_root()
    token = Bridge(p.api).token(p.bucket_id(), "PUSH")
    cmd = ["curl", "-sS", "-f", "-o", os.devnull, "-X", "PUT", "-H", f"x-token: {token}",
           "-H", f"x-filesize: {path.stat().st_size}", "-F", f"file=@{path}", f"{url}/buckets/{p.bucket_id()}/files"]
    p.close()
    return measured(cmd, rss)


def one_size(size_mib: int, work: Path) -> dict[str, Run]:
    data = work / f"big-{size_mib}.bin"
    with open(data, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(1 << 20))
    out: dict[str, Run] = {}
    with metadisk_setup(work / f"emu-{size_mib}") as md:
        url, key = md.url, md.key.private_hex
        rss = work / "rss.txt"
        if shutil.which("curl"):
            out["raw upload (curl -F)"] = curl_upload(url, key, data, rss)
        out["syncagent upload"] = measured(child("upload", url, key, str(data)), rss)
        out["raw download (bare WebSocket, no checks)"] = measured(child("raw-download", url, key), rss)
        out["syncagent download (verified)"] = measured(child("download", url, key), rss)
    data.unlink()
    for name, run in out.items():
        print(f"  {size_mib} MiB {name}: {run.seconds:.2f} s, {size_mib / run.seconds:.0f} MiB/s, "
              f"peak RSS {run.peak_rss_mb:.0f} MB", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-metadisk-"))
    try:
        big = one_size(args.size_mib, work)
        small = one_size(args.small_mib, work) if args.small_mib else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [f"One file through the emulator on loopback (8 MiB shards), {args.size_mib} MiB"
             + (f" and {args.small_mib} MiB" if small else "") + "; each side a separate process.", "",
             "| step | size | seconds | MiB/s | peak RSS |", "|---|---|---|---|---|"]
    for size, runs in ((args.size_mib, big), (args.small_mib, small)):
        for name, run in runs.items():
            lines.append(f"| {name} | {size} MiB | {run.seconds:.2f} | {size / run.seconds:.0f} | "
                         f"{run.peak_rss_mb:.0f} MB |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Metadisk: upload and download", body)


if __name__ == "__main__":
    main()
