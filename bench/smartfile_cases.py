"""The SmartFile benchmarks that run the `syncagent` command against the
emulator (see bench/bench_smartfile.py for how to run them).

identical: N small files (1-16 KiB, 100 folders) already on both sides, the
    remote's uploaded by a plain HTTP client, so they carry none of
    syncagent's attributes (no hash). The first `syncagent sync` has to prove
    each pair equal without moving content (the engine compares the remote's
    delta signature); target: 0 content bytes sent, 0 conflict copies.
deletions: N remote deletions, one remove task per path (the default
    `Provider.delete_many`, what every delete cost before) against one
    batched task (SmartFile's `delete_many`), with production timings and
    the emulator's task latency; then the same N deletions through a sync.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from bench.bench_sync import generate
from bench.common import write_section
from syncagent.providers.smartfile import SmartFileProvider
from tests.emulators.base import LoggedRequest
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator

SYNCAGENT = os.environ.get("SYNCAGENT_CMD", str(Path(sys.executable).with_name("syncagent")))
TITLE = "SmartFile: first sync onto identical files, batched deletions (issues 8, 9)"


def plain_upload(base_url: str, root: str, local: Path) -> int:
    """Every file under `local` into `root`, the way any HTTP client would:
    mkdir, then one multipart POST per folder. Returns the files sent."""
    session = requests.Session()
    session.auth = (KEY, PASSWORD)
    api = base_url.rstrip("/") + "/api/2/"
    sent = 0
    for folder in sorted(p for p in local.rglob("*") if p.is_dir()):
        target = f"{root}/{folder.relative_to(local).as_posix()}"
        session.post(api + "path/oper/mkdir/", data={"path": target}, timeout=60).raise_for_status()
        files = sorted(f for f in folder.iterdir() if f.is_file())
        parts = [("file", (f.name, f.read_bytes())) for f in files]
        session.post(api + "path/data" + target, files=parts, timeout=60).raise_for_status()
        sent += len(files)
    session.close()
    return sent


def traffic(log: Sequence[LoggedRequest]) -> dict[str, int]:
    """Content bytes each way, from the emulator's request log."""
    out = {"requests": len(log), "upload": 0, "patch": 0, "download": 0, "signature": 0}
    for r in log:
        body = int(r.headers.get("Content-Length") or 0)
        if r.method == "POST" and r.path.startswith("/api/2/path/data"):
            out["upload"] += body
        elif r.method == "POST" and r.path.startswith("/api/2/path/sync/patch"):
            out["patch"] += body
        elif r.method == "GET" and r.path.startswith("/api/2/path/data"):
            out["download"] += r.response_bytes
        elif r.path.startswith("/api/2/path/sync/"):
            out["signature"] += r.response_bytes
    return out


class Command:
    """`syncagent` with a config naming the emulator as remote `sf`."""

    def __init__(self, work: Path, base_url: str, root: str) -> None:
        config = work / "config.yaml"
        config.write_text(f"remotes:\n  sf: {{type: smartfile, url: '{base_url}', root: {root}}}\n")
        self.env = {**os.environ, "SYNCAGENT_CONFIG": str(config), "SYNCAGENT_STATE_DIR": str(work / "state"),
                    "SYNCAGENT_CREDENTIALS": str(work / "credentials.yaml"), "SMARTFILE_API_KEY": KEY,
                    "SMARTFILE_API_PASSWORD": PASSWORD, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}

    def sync(self, local: Path, *extra: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        done = subprocess.run([SYNCAGENT, "sync", str(local), "sf:", "--json", *extra], env=self.env,
                              capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise RuntimeError(f"syncagent sync exited {done.returncode}: {done.stderr[-2000:]}")
        summary = json.loads(done.stdout[done.stdout.index("{"):])
        return seconds, summary


def conflict_copies(local: Path, provider: SmartFileProvider) -> tuple[int, int]:
    here = sum(1 for p in local.rglob("*") if "conflict" in p.name)
    there = sum(1 for e in provider.list() if "conflict" in e.path.rpartition("/")[2])
    return here, there


def identical(files: int, no_write: bool) -> bool:
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-sf-same-") as tmp:
        work = Path(tmp)
        local = work / "local"
        generate(local, files, 100, 1024, 16 * 1024)
        (work / "emu").mkdir()
        with smartfile_emulator(work / "emu") as emu:
            uploaded = plain_upload(emu.base_url, "/bench", local)
            command = Command(work, emu.base_url, "/bench")
            emu.clear_log()
            first_s, first = command.sync(local)
            first_t = traffic(emu.requests)
            emu.clear_log()
            second_s, second = command.sync(local)
            second_t = traffic(emu.requests)
            with SmartFileProvider("/bench", api_key=KEY, api_password=PASSWORD, url=emu.base_url) as provider:
                assert isinstance(provider, SmartFileProvider)
                copies = conflict_copies(local, provider)
    sent = first_t["upload"] + first_t["patch"]
    ok = sent == 0 and copies == (0, 0) and first["conflicts"] == 0 and first["errors"] == 0
    kib = 1024
    text = "\n".join([
        f"`python -m bench.bench_smartfile --what identical --files {files}`: {uploaded:,} files of 1-16 KiB "
        "in 100 folders on both sides, the remote's uploaded by plain HTTP (multipart POSTs with `requests`: "
        "no syncagent attributes, so no hash); then `syncagent sync` twice.", "",
        "| measure | first sync | second sync | target |", "|---|---|---|---|",
        f"| wall time | {first_s:.1f} s | {second_s:.1f} s | |",
        f"| content bytes sent (uploads + patches) | {sent:,} | {second_t['upload'] + second_t['patch']:,} "
        "| 0 |",
        f"| content bytes received (downloads) | {first_t['download']:,} | {second_t['download']:,} | 0 |",
        f"| signature bytes received | {first_t['signature'] / kib:,.0f} KiB | "
        f"{second_t['signature'] / kib:,.0f} KiB | |",
        f"| conflict copies (local, remote) | {copies[0]}, {copies[1]} | | 0, 0 |",
        f"| summary: uploaded / downloaded / conflicts / recorded / errors | {first['uploaded']} / "
        f"{first['downloaded']} / {first['conflicts']} / {first['recorded']} / {first['errors']} | "
        f"{second['uploaded']} / {second['downloaded']} / {second['conflicts']} / {second['recorded']} / "
        f"{second['errors']} | |",
        f"| HTTP requests | {first_t['requests']:,} | {second_t['requests']:,} | |",
        "", f"Verdict: {'met' if ok else 'NOT met'}. The first sync proves each pair by its delta signature, "
        f"one request per file, four at a time ({first_s / max(first_t['requests'], 1) * 1000:.1f} ms a "
        "request here, wall time over requests; client and emulator share this machine's two cores).",
    ])
    print(text)
    if not no_write:
        _write_part("identical", text)
    return ok


def deletions(count: int, no_write: bool) -> None:
    names = [f"d/f{i:03}.txt" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="syncagent-bench-sf-del-") as tmp:
        work = Path(tmp)
        (work / "emu").mkdir()
        with smartfile_emulator(work / "emu") as emu, \
                SmartFileProvider("/del", api_key=KEY, api_password=PASSWORD, url=emu.base_url) as provider:
            assert isinstance(provider, SmartFileProvider)
            provider.ensure_root()
            before = _timed_deletes(provider, names, batched=False)
            after = _timed_deletes(provider, names, batched=True)
            local = work / "local"
            for name in names:
                (local / name).parent.mkdir(parents=True, exist_ok=True)
                (local / name).write_text(name)
            command = Command(work, emu.base_url, "/sync")
            command.sync(local)
            shutil.rmtree(local / "d")
            (local / "d").mkdir()
            through_sync, summary = command.sync(local, "--force")
            assert summary["deleted_remote"] == count, summary
    text = "\n".join([
        f"`python -m bench.bench_smartfile --what deletions --deletions {count}`: production timings "
        "(task polling from 0.2 s, doubling), the emulator's default task latency (one PENDING poll).", "",
        f"| {count} remote deletions | seconds |", "|---|---|",
        f"| one remove task per path (before) | {before:.2f} |",
        f"| `delete_many`: one task for the batch (after) | {after:.2f} |",
        f"| through `syncagent sync --force` (the engine's remote deletes) | {through_sync:.2f} |",
    ])
    print(text)
    if not no_write:
        _write_part("deletions", text)


def _timed_deletes(provider: SmartFileProvider, names: list[str], *, batched: bool) -> float:
    provider.mkdir("d")
    for name in names:
        provider.write(name, io.BytesIO(name.encode()), len(name), 0)
    started = time.perf_counter()
    if batched:
        failed = provider.delete_many([(n, False) for n in names])
    else:
        failed = {}
        for name in names:
            provider.delete(name)
    elapsed = time.perf_counter() - started
    assert not failed and not list(provider.list("d")), failed
    return elapsed


def _write_part(part: str, text: str) -> None:
    """This bench's section holds both parts; each run replaces its own."""
    from bench.common import DOC

    marker_start, marker_end = f"<!-- {part} -->", f"<!-- /{part} -->"
    current = DOC.read_text() if DOC.exists() else ""
    section = current.partition(f"## {TITLE}\n")[2].split("\n## ", 1)[0] if f"## {TITLE}\n" in current else ""
    block = f"{marker_start}\n{text.strip()}\n{marker_end}"
    if marker_start in section:
        head, _, rest = section.partition(marker_start)
        section = head + block + rest.partition(marker_end)[2]
    else:
        section = section.strip() + "\n\n" + block if section.strip() else block
    write_section(TITLE, section.strip())
