"""WebDAV against real servers on loopback (wsgidav, rclone serve webdav):
N-file initial sync and no-op re-sync, syncagent beside `rclone sync` to
the same server in the same run, with each command's peak RSS.

    python -m bench.bench_webdav [--files 10000] [--servers wsgidav,rclone] [--no-write]

The helpers here (a tree of small files, a config for the `syncagent`
command, the side-by-side table) serve bench_s3 too.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.common import Run, timed, write_section
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


def obscure(password: str) -> str:
    out = subprocess.run([tool("rclone"), "obscure", password], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def side_by_side(rows: list[tuple[str, str, Run]]) -> str:
    lines = ["| server | command | seconds | peak RSS MiB |", "|---|---|---:|---:|"]
    lines += [f"| {srv} | {what} | {run.seconds:.1f} | {run.peak_rss_mb:.0f} |" for srv, what, run in rows]
    return "\n".join(lines)


def initial_and_noop(srv: str, local: Path, ours: Callable[[], Run], theirs: Callable[[], Run]
                     ) -> list[tuple[str, str, Run]]:
    """Initial sync then a no-op re-sync, syncagent then rclone, into separate folders of one server."""
    rows = [(srv, "syncagent sync (initial)", ours()), (srv, "syncagent sync (no-op)", ours()),
            (srv, "rclone sync (initial)", theirs()), (srv, "rclone sync (no-op)", theirs())]
    return rows


def bench_server(name: str, local: Path, work: Path) -> list[tuple[str, str, Run]]:
    # rclone's WebDAV client speaks Basic only: this wsgidav takes Basic too (the test one is Digest-only)
    srv = start_wsgidav(work / "wsgidav-server", basic=True) if name == "wsgidav" else server(name)
    try:
        return _bench(name, srv.url, local, work)
    finally:
        if name == "wsgidav":
            srv.stop()


def _bench(name: str, url: str, local: Path, work: Path) -> list[tuple[str, str, Run]]:
    auth = "basic"
    mtime = "auto" if name == "wsgidav" else "x-oc-mtime"
    env = syncagent_env(work / name, {"dav": {"type": "webdav", "url": url + "/", "user": USER,
                                              "root": f"bench-{name}-syncagent", "auth": auth, "mtime": mtime}},
                        {"SYNCAGENT_REMOTE_DAV_PASSWORD": PASSWORD})
    rclone = [tool("rclone"), "sync", str(local), f":webdav:bench-{name}-rclone", "--webdav-url", url,
              "--webdav-user", USER, "--webdav-pass", obscure(PASSWORD), "--config", str(work / "rclone.conf"),
              "--transfers", "4"]
    return initial_and_noop(name, local,
                            lambda: timed([syncagent_cmd(), "sync", str(local), "dav:"], env=env),
                            lambda: timed(rclone))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--servers", default="wsgidav,rclone")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webdav-") as tmp:
        work = Path(tmp)
        local = work / "local"
        make_tree(local, args.files)
        (work / "rclone.conf").touch()
        rows = [row for name in args.servers.split(",") for row in bench_server(name, local, work)]
    body = (f"{args.files:,} files of 1 KiB in folders of 100, over loopback to real servers started for the "
            "run; syncagent and `rclone sync` (4 transfers each) into separate folders of the same server, "
            "one after the other.\n\n" + side_by_side(rows))
    print(body)
    if not args.no_write:
        write_section("WebDAV: initial and no-op sync beside rclone (issue 14)", body)


if __name__ == "__main__":
    main()
