"""OneDrive (issue 11), against the emulator in its own process on loopback.

- A 256 MiB upload through an upload session (10 MiB fragments) by the
  provider, beside `curl` PUTting the same fragments to a session of the
  same emulator (the floor: no hashing, no Python on the client side); the
  download beside `curl` fetching the same download URL.
- Peak RSS of the upload and the download at 64 MiB and at the full size
  (it must not grow with the file).
- QuickXorHash throughput (pure Python, no numpy).
- A quiet delta poll over a drive of 100,000 items: requests, time and the
  peak RSS of a fresh process that polls once; beside the first enumeration.

    python -m bench.bench_onedrive [--size-mib 256] [--items 100000] [--no-write]

Each measured step runs as a child process (`--phase ...`), so its peak
RSS is its own (wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Run, timed, write_section

USER, TOKEN = "bench", "EwB-bench-static-token"
FRAGMENT = 32 * 327_680


# ---- child phases ------------------------------------------------------------------------------
def _provider(url: str) -> Any:
    from syncagent.providers.onedrive.provider import OneDriveProvider
    from syncagent.providers.onedrive.tokens import TokenSet
    from syncagent.providers.onedrive.transport import Tuning
    from tests.emulators.onedrive.fixtures import graph_at

    graph = graph_at(url, TokenSet(TOKEN, "", time.time() + 86400), tuning=Tuning())
    return OneDriveProvider(graph, "")


def _attached(url: str, state: Path) -> tuple[Any, Any, int]:
    """A provider whose state lives in a state DB, as the engine gives it: (provider, store, pair)."""
    from syncagent.engine.state import Store
    from syncagent.providers.base import PairContext

    provider = _provider(url)
    store = Store(state)
    pair = store.pair_id("bench", "od:")
    provider.attach(PairContext("bench", store.provider_state(pair)))
    return provider, store, pair


def phase_upload(url: str, path: Path) -> dict[str, Any]:
    provider = _provider(url)
    st = path.stat()
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        entry = provider.write(path.name, f, st.st_size, st.st_mtime_ns)
    return {"seconds": time.perf_counter() - t0, "size": entry.size, "requests": provider.graph.requests}


def phase_download(url: str, name: str, out: Path) -> dict[str, Any]:
    provider = _provider(url)
    t0 = time.perf_counter()
    with provider.read(name) as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return {"seconds": time.perf_counter() - t0, "size": out.stat().st_size}


def phase_enumerate(url: str, state: Path) -> dict[str, Any]:
    provider, store, pair = _attached(url, state)
    t0 = time.perf_counter()
    batch = provider.changes(None)
    store.write_base(pair, [], [], cursor=batch.cursor)   # the map and the cursor, as a sync commits them
    return {"seconds": time.perf_counter() - t0, "items": len(batch.changes), "requests": provider.graph.requests}


def phase_poll(url: str, state: Path) -> dict[str, Any]:
    provider, store, pair = _attached(url, state)
    cursor = store.get_cursor(pair)
    t0 = time.perf_counter()
    batch = provider.changes(cursor)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "changes": len(batch.changes), "reset": batch.reset,
            "requests": provider.graph.requests}


def phase_quickxor(size_mib: int) -> dict[str, Any]:
    from syncagent.providers.onedrive.quickxor import QuickXorHash

    data = memoryview(os.urandom(64 << 20))
    h = QuickXorHash()
    t0 = time.perf_counter()
    done = 0
    while done < size_mib << 20:
        for at in range(0, len(data), 1 << 20):
            h.update(data[at:at + (1 << 20)])
        done += len(data)
    h.hexdigest()
    return {"seconds": time.perf_counter() - t0, "mib": done >> 20}


PHASES = {"upload": lambda a: phase_upload(a.url, Path(a.args[0])),
          "download": lambda a: phase_download(a.url, a.args[0], Path(a.args[1])),
          "enumerate": lambda a: phase_enumerate(a.url, Path(a.args[0])),
          "poll": lambda a: phase_poll(a.url, Path(a.args[0])),
          "quickxor": lambda a: phase_quickxor(int(a.args[0]))}


# ---- the orchestrator --------------------------------------------------------------------------
@contextmanager
def emulator(storage: Path, *options: str) -> Iterator[str]:
    storage.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tests.emulators", "onedrive", "--user", f"{USER}:{TOKEN}",
           "--option", f"storage={storage}", "--option", "quota_total=1099511627776", *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the emulator did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM: unlike wait4's ru_maxrss of a
    child, it does not start from the parent's size at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(phase: str, url: str, *args: str) -> tuple[dict[str, Any], Run]:
    """Run one phase in a fresh process; its Run carries the phase's own peak RSS."""
    out = Path(tempfile.mktemp(prefix="bench-od-", suffix=".json"))
    run = timed([sys.executable, "-m", "bench.bench_onedrive", "--phase", phase, "--url", url, "--result", str(out),
                 *args])
    result = json.loads(out.read_text())
    out.unlink()
    return result, Run(run.seconds, float(result.get("peak_rss_mb", run.peak_rss_mb)), run.returncode)


def same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def curl_upload(url: str, path: Path, work: Path) -> float:
    """PUT the file's fragments to a fresh session with one curl process (the floor)."""
    import requests

    auth = {"Authorization": f"Bearer {TOKEN}"}
    session = requests.post(f"{url}v1.0/me/drive/root:/curl-{path.name}:/createUploadSession", headers=auth,
                            json={"item": {"@microsoft.graph.conflictBehavior": "replace"}}).json()["uploadUrl"]
    size = path.stat().st_size
    parts: list[str] = []
    with open(path, "rb") as f:
        for n, start in enumerate(range(0, size, FRAGMENT)):
            piece = work / f"fragment-{n:04d}"
            piece.write_bytes(f.read(FRAGMENT))
            end = min(start + FRAGMENT, size) - 1
            parts += [*(["--next"] if n else []), "-sf", "-o", "/dev/null", "-X", "PUT", "-T", str(piece),
                      "-H", f"Content-Range: bytes {start}-{end}/{size}", session]
    t0 = time.perf_counter()
    subprocess.run(["curl", *parts], check=True)
    seconds = time.perf_counter() - t0
    for piece in work.glob("fragment-*"):
        piece.unlink()
    return seconds


def curl_download(url: str, name: str, out: Path) -> float:
    import requests

    item = requests.get(f"{url}v1.0/me/drive/root:/{name}", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    t0 = time.perf_counter()
    subprocess.run(["curl", "-sf", "-o", str(out), item["@microsoft.graph.downloadUrl"]], check=True)
    return time.perf_counter() - t0


def transfers(work: Path, size_mib: int) -> list[str]:
    rows = []
    small_mib = min(64, size_mib)
    files = {}
    for mib in sorted({small_mib, size_mib}):
        files[mib] = work / f"file-{mib}.bin"
        with open(files[mib], "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
    with emulator(work / "emu") as url:
        rss: dict[tuple[str, int], float] = {}
        for mib, path in files.items():
            up, up_run = child("upload", url, str(path))
            down, down_run = child("download", url, path.name, str(work / "down.bin"))
            assert same_file(work / "down.bin", path), "the download differs"
            rss[("up", mib)], rss[("down", mib)] = up_run.peak_rss_mb, down_run.peak_rss_mb
            if mib == size_mib:
                curl_up = curl_upload(url, path, work) if shutil.which("curl") else 0.0
                curl_down = curl_download(url, path.name, work / "curl.bin") if shutil.which("curl") else 0.0
                rows += [
                    f"| upload {mib} MiB (session, {FRAGMENT >> 20} MiB fragments) | {up['seconds']:.2f} s "
                    f"({mib / up['seconds']:.0f} MiB/s), {up['requests']} requests | curl PUTs of the same fragments: "
                    f"{curl_up:.2f} s ({mib / max(curl_up, 1e-9):.0f} MiB/s) |",
                    f"| download {mib} MiB | {down['seconds']:.2f} s ({mib / down['seconds']:.0f} MiB/s) "
                    f"| curl GET of the download URL: {curl_down:.2f} s ({mib / max(curl_down, 1e-9):.0f} MiB/s) |"]
        rows.append(f"| peak RSS, upload {small_mib} MiB → {size_mib} MiB | {rss[('up', small_mib)]:.0f} MB → "
                    f"{rss[('up', size_mib)]:.0f} MB | constant in file size |")
        rows.append(f"| peak RSS, download {small_mib} MiB → {size_mib} MiB | {rss[('down', small_mib)]:.0f} MB → "
                    f"{rss[('down', size_mib)]:.0f} MB | |")
    return rows


def delta_poll(work: Path, items: int) -> list[str]:
    state = work / "state"
    started = time.perf_counter()
    with emulator(work / "emu-delta", "--option", f"populate={items}") as url:
        ready = time.perf_counter() - started
        first, first_run = child("enumerate", url, str(state))
        quiet, quiet_run = child("poll", url, str(state))
    assert quiet["changes"] == 0 and not quiet["reset"], quiet
    return [
        f"| first enumeration of {first['items']:,} items (delta, 1000 per page) | {first['seconds']:.2f} s, "
        f"{first['requests']} requests, peak RSS {first_run.peak_rss_mb:.0f} MB | (emulator filled in {ready:.1f} s) |",
        f"| quiet delta poll over {items:,} items, fresh process | {quiet['seconds'] * 1000:.1f} ms, "
        f"{quiet['requests']} request; process {quiet_run.seconds:.2f} s, peak RSS {quiet_run.peak_rss_mb:.0f} MB "
        "| one request, no listing |"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--phase", choices=sorted(PHASES))
    ap.add_argument("--url", default="")
    ap.add_argument("--result", default="")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if a.phase:
        result = PHASES[a.phase](a)
        Path(a.result).write_text(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-od-") as tmp:
        work = Path(tmp)
        rows = transfers(work, a.size_mib)
        qx, _ = child("quickxor", "", "512")
        rows.append(f"| QuickXorHash, 1 MiB updates | {qx['mib'] / qx['seconds']:.0f} MiB/s | pure Python "
                    "(big-int XOR of 160 KiB pieces), no numpy |")
        rows += delta_poll(work, a.items)
    cmd = shlex.join(["python", "-m", "bench.bench_onedrive", "--size-mib", str(a.size_mib), "--items", str(a.items)])
    text = "\n".join([f"`{cmd}`; the emulator in its own process on loopback (tests/emulators/onedrive, real HTTP).",
                      "", "| measure | syncagent | reference |", "|---|---|---|", *rows])
    print(text)
    if not a.no_write:
        write_section("OneDrive: transfers, QuickXorHash, a quiet delta poll (issue 11)", text)


if __name__ == "__main__":
    main()
