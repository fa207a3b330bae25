"""S3 servers for tests: moto's server mode and `rclone serve s3` (which
checks signatures: a wrong secret is refused), both real, both from PyPI.

    with s3_provider("moto") as setup: setup.provider, setup.faults, setup.server
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import botocore.awsrequest
import botocore.exceptions

from syncagent.providers.s3.client import Tuning, make_client
from syncagent.providers.s3.provider import S3Provider, Settings
from tests.servers import ServerProcess, free_port, shared, tool, unique

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from tests.conformance.providers import Target

ACCESS_KEY, SECRET_KEY = "AKIASYNCAGENTTEST01", "s3cr3t/syncagent+test/0123456789abcdef"
FAST = Tuning(attempts=4, backoff_base=0.01, backoff_cap=0.05, read_timeout=30)
# multipart from 5 MiB (S3's smallest part) in 5 MiB parts, so tests reach it with small files
SMALL_PARTS = {"multipart_threshold": 5 << 20, "part_size": 5 << 20}


def start_moto(workdir: Path) -> ServerProcess:
    port = free_port()
    argv = [tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    return ServerProcess("moto", argv, port, workdir, env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"}).start()


def start_rclone(workdir: Path) -> ServerProcess:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    conf = workdir / "rclone.conf"
    conf.touch()
    port = free_port()
    argv = [tool("rclone"), "serve", "s3", str(data), "--addr", f"127.0.0.1:{port}",
            "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--config", str(conf)]
    return ServerProcess("rclone-s3", argv, port, workdir).start()


STARTERS = {"moto": start_moto, "rclone": start_rclone}
# what each server needs, as provider settings (quirks are data): rclone serve s3 stores a key `a/`
# as a file `a`, so its folders are kept by a marker file
OPTIONS: dict[str, dict[str, Any]] = {"moto": {}, "rclone": {"folder_markers": "file"}}


def server(name: str) -> ServerProcess:
    return shared(f"s3-{name}", STARTERS[name])


class BotoFaults:
    """The next N requests of one client fail (a status answered without reaching the server,
    or a connection reset), through botocore's before-send event."""

    def __init__(self, client: S3Client) -> None:
        self.pending: list[str] = []
        self.lock = threading.Lock()
        client.meta.events.register_first("before-send.s3", self._before_send)

    def inject(self, kind: str, count: int = 1) -> None:
        with self.lock:
            self.pending.extend([kind] * count)

    def _before_send(self, request: botocore.awsrequest.AWSPreparedRequest, **_: Any) -> Any:
        with self.lock:
            kind = self.pending.pop(0) if self.pending else None
        if kind is None:
            return None
        if kind == "reset":
            raise botocore.exceptions.ConnectionClosedError(endpoint_url=request.url)
        headers = {"Retry-After": "0.01"} if kind in ("429", "503") else {}
        return botocore.awsrequest.AWSResponse(request.url, int(kind), cast(Any, headers), _EmptyBody())


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""

    def read(self, *_: Any, **__: Any) -> bytes:
        return b""


@dataclass
class S3Setup:
    provider: S3Provider
    faults: BotoFaults
    server: ServerProcess
    bucket: str
    prefix: str


def client_for(srv: ServerProcess, secret: str = SECRET_KEY) -> S3Client:
    return make_client(srv.url, "us-east-1", access_key_id=ACCESS_KEY, secret_access_key=secret, tuning=FAST)


@contextlib.contextmanager
def s3_provider(name: str, *, bucket: str | None = None, prefix: str = "sync", secret: str = SECRET_KEY,
                **settings: Any) -> Iterator[S3Setup]:
    """A connected provider on the shared server `name`, in a fresh bucket (unless given)."""
    srv = server(name)
    if bucket is None:
        bucket = unique("bk-")
        with contextlib.closing(client_for(srv)) as admin:
            admin.create_bucket(Bucket=bucket)
    client = client_for(srv, secret)
    faults = BotoFaults(client)
    options = {**SMALL_PARTS, **OPTIONS[name], **settings}
    provider = S3Provider(client, Settings(bucket, prefix, **options), host=srv.url, tuning=FAST)
    try:
        provider.connect()
        yield S3Setup(provider, faults, srv, bucket, prefix)
    finally:
        provider.close()


@contextlib.contextmanager
def conformance_target(tmp: Path, server_name: str) -> Iterator[Target]:
    """The conformance suite's S3 on a real server: a provider, its quirks, its faults."""
    from tests.conformance.providers import Quirks, Target

    del tmp
    with s3_provider(server_name) as setup:
        yield Target(setup.provider, Quirks(mtime_precision_s=0.000001, chunk=1 << 20, inject=setup.faults.inject))


if __name__ == "__main__":  # python -m tests.servers.s3 moto|rclone: serve one in the foreground
    import time

    srv = server(sys.argv[1] if len(sys.argv) > 1 else "moto")
    print(f"{srv.url} access key {ACCESS_KEY!r} secret {SECRET_KEY!r} (Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(1)
