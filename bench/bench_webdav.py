"""WebDAV against real servers on loopback (wsgidav, rclone serve webdav):
N-file initial sync and no-op re-sync, syncagent beside `rclone sync` to
the same server in the same run, with each command's peak RSS.

    python -m bench.bench_webdav [--files 10000] [--repeat 3] [--servers wsgidav,rclone] [--no-write]

Each repeat syncs into fresh folders (a fresh state dir for syncagent), the
two tools taking turns so a change of load on the shared machine hits both;
the table gives the median, the range and the highest peak RSS, and the
load average before and after each server's runs.

The helpers here (a tree of small files, a config for the `syncagent`
command, repeats and the side-by-side table) serve bench_s3 too.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import syncagent
from bench.common import Run, command_line, timed, write_section
from tests.servers import PASSWORD, USER, tool
from tests.servers.webdav import server, start_wsgidav


def make_tree(root: Path, files: int, size: int = 1024) -> None:
    """`files` files of `size` bytes in folders of 100."""
    for i in range(files):
        path = root / f"d{i // 100:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def syncagent_env(work: Path, remotes: dict[str, dict[str, object]], secrets: dict[str, str]) -> dict[str, str]:
    """Environment for the `syncagent` command: a config with `remotes`, secrets by variable."""
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"remotes": remotes}))
    return {"SYNCAGENT_CONFIG": str(config), "SYNCAGENT_CREDENTIALS": str(work / "creds.yaml"),
            "SYNCAGENT_STATE_DIR": str(work / "state"), **secrets}


def syncagent_cmd() -> str:
    return str(Path(tool("python")).parent / "syncagent")


def precompile() -> None:
    """Byte-compile syncagent as an installed wheel is: where PYTHONDONTWRITEBYTECODE is set
    (this machine), an editable checkout would otherwise compile ~60 modules on every start."""
    compileall.compile_dir(str(Path(syncagent.__file__).parent), quiet=1)


def obscure(password: str) -> str:
    out = subprocess.run([tool("rclone"), "obscure", password], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def load() -> str:
    """The 1-minute load average (the machine has 2 cores shared with others)."""
    return f"{os.getloadavg()[0]:.1f}"


@dataclass
class Case:
    server: str
    command: str
    runs: list[Run] = field(default_factory=list)
    mib: float = 0.0          # bytes moved, for a MiB/s column

    def row(self) -> str:
        secs = [r.seconds for r in self.runs]
        med = statistics.median(secs)
        rate = f"{self.mib / med:.0f}" if self.mib else ""
        return (f"| {self.server} | {self.command} | {med:.2f} | {min(secs):.2f}–{max(secs):.2f} | {len(secs)} "
                f"| {rate} | {max(r.peak_rss_mb for r in self.runs):.0f} |")


@dataclass
class Table:
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def add(self, server: str, command: str, run: Run, mib: float = 0.0) -> None:
        case = self.cases.setdefault((server, command), Case(server, command, mib=mib))
        case.runs.append(run)

    def markdown(self) -> str:
        lines = ["| server | command | median s | range s | runs | MiB/s | peak RSS MiB |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        lines += [case.row() for case in self.cases.values()]
        return "\n".join(lines) + "\n\nLoad average (1 min) around each server's runs: " + "; ".join(self.loads) + "."


def initial_and_noop(table: Table, srv: str, repeat: int, ours: Callable[[int], Callable[[], Run]],
                     theirs: Callable[[int], Callable[[], Run]]) -> None:
    """Per repeat: syncagent's initial sync and a no-op re-sync, then rclone's, each into fresh folders."""
    before = load()
    for r in range(repeat):
        mine, other = ours(r), theirs(r)
        table.add(srv, "syncagent sync (initial)", mine())
        table.add(srv, "syncagent sync (no-op)", mine())
        table.add(srv, "rclone sync (initial)", other())
        table.add(srv, "rclone sync (no-op)", other())
    table.loads.append(f"{srv} {before} → {load()}")


def bench_server(table: Table, name: str, local: Path, work: Path, repeat: int) -> None:
    # rclone's WebDAV client speaks Basic only: this wsgidav takes Basic too (the test one is Digest-only)
    srv = start_wsgidav(work / "wsgidav-server", basic=True) if name == "wsgidav" else server(name)
    try:
        _bench(table, name, srv.url, local, work, repeat)
    finally:
        if name == "wsgidav":
            srv.stop()


def _bench(table: Table, name: str, url: str, local: Path, work: Path, repeat: int) -> None:
    mtime = "auto" if name == "wsgidav" else "x-oc-mtime"
    password = obscure(PASSWORD)

    def ours(r: int) -> Callable[[], Run]:
        env = syncagent_env(work / f"{name}-{r}", {"dav": {
            "type": "webdav", "url": url + "/", "user": USER, "root": f"bench-{name}-syncagent-{r}",
            "auth": "basic", "mtime": mtime}}, {"SYNCAGENT_REMOTE_DAV_PASSWORD": PASSWORD})
        return lambda: timed([syncagent_cmd(), "sync", str(local), "dav:"], env=env)

    def theirs(r: int) -> Callable[[], Run]:
        cmd = [tool("rclone"), "sync", str(local), f":webdav:bench-{name}-rclone-{r}", "--webdav-url", url,
               "--webdav-user", USER, "--webdav-pass", password, "--config", str(work / "rclone.conf"),
               "--transfers", "4"]
        return lambda: timed(cmd)

    initial_and_noop(table, name, repeat, ours, theirs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--servers", default="wsgidav,rclone")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    precompile()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="bench-webdav-") as tmp:
        work = Path(tmp)
        local = work / "local"
        make_tree(local, args.files)
        (work / "rclone.conf").touch()
        for name in args.servers.split(","):
            bench_server(table, name, local, work, args.repeat)
    body = (f"`{command_line('bench.bench_webdav')}`\n\n"
            f"{args.files:,} files of 1 KiB in folders of 100, over loopback to real servers started for the "
            f"run; syncagent and `rclone sync` (4 transfers each) into fresh folders of the same server, taking "
            f"turns, {args.repeat} times.\n\n" + table.markdown())
    print(body)
    if not args.no_write:
        write_section("WebDAV: initial and no-op sync beside rclone (issue 14)", body)


if __name__ == "__main__":
    main()
