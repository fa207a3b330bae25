"""The farmers' WebSocket data channel (spec §4.12, §7.7), served by the
emulator on its own port: one JSON text frame in, the shard back as binary
frames of at most 64 KiB, then a normal close; an error is a text frame
`{"code","message"}` and a close.

Faults (taken like HTTP ones, method "WS", path "/<shard hash>"):
    dc-drop     the connection is cut half-way through the shard
    dc-slow     each frame waits `delay` seconds
    dc-refuse   the token is refused (as if expired or used)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.emulators.faults import Faults
from tests.emulators.metadisk.accounts import ApiError
from tests.emulators.metadisk.store import Store

FRAME = 64 * 1024
KINDS = frozenset({"dc-drop", "dc-slow", "dc-refuse"})


class DataChannel:
    def __init__(self, store: Store, faults: Callable[[], Faults | None], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.store, self.faults = store, faults
        self.served = 0                      # shards sent in full (tests, bench)
        self.server: Server = serve(self._handle, host, port, compression=None, max_size=1 << 20,
                                    ping_interval=None, logger=_quiet())
        self.thread = threading.Thread(target=self.server.serve_forever, name="metadisk-datachannel", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)

    def _handle(self, ws: ServerConnection) -> None:
        try:
            message = ws.recv(timeout=30)
            request: Any = json.loads(message) if isinstance(message, str) else None
            if not isinstance(request, dict):
                raise ApiError(400, "Invalid message")
            shard_hash = str(request.get("hash") or "")
            found = self.faults()
            fault = found.take("WS", "/" + shard_hash, kinds=KINDS) if found is not None else None
            if fault is not None and fault.kind == "dc-refuse":
                raise ApiError(400, "The supplied token is not accepted")
            if request.get("operation", "PULL") != "PULL":
                raise ApiError(400, "Invalid operation")
            self.store.take_farmer_token(request.get("token"), shard_hash)
            self._send(ws, self.store.shard(shard_hash), fault.kind if fault else None,
                       fault.delay if fault else 0.0)
        except ApiError as err:
            ws.send(json.dumps({"code": err.status, "message": err.message}))
            ws.close()
        except (ConnectionClosed, TimeoutError, ValueError):
            ws.close()

    def _send(self, ws: ServerConnection, data: bytes, fault: str | None, delay: float) -> None:
        for start in range(0, max(len(data), 1), FRAME):
            if fault == "dc-drop" and start >= len(data) // 2 and len(data) > FRAME:
                ws.close_socket()
                return
            if fault == "dc-slow":
                time.sleep(delay)
            ws.send(data[start:start + FRAME])
        if fault == "dc-drop":
            ws.close_socket()
            return
        self.served += 1
        ws.close()


def _quiet() -> logging.Logger:
    """The websockets server's logger: silent (tests read counters, not logs)."""
    log = logging.getLogger("tests.emulators.metadisk.datachannel")
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    return log
