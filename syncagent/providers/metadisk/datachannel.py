"""Downloads: the pointers of a file (spec §4.8), then each shard over the
farmer's WebSocket data channel (spec §4.12), checked before use.

A shard is one text frame out (`{"token","hash","operation":"PULL"}`),
binary frames back until the server closes; an error comes as a text frame
`{"code","message"}`. Every shard must hash to its pointer's hash, and the
whole file to its content address, before the reader hands out its last
byte: a caller that places the file only after EOF never places bad bytes.
Farmer tokens are single use: a refused, expired or broken channel fetches
fresh pointers and carries on from the shard that failed.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import websocket

from syncagent import errors
from syncagent.log import get_logger
from syncagent.providers.metadisk.api import Bridge, Pointer
from syncagent.providers.metadisk.content import ContentHasher, content_address
from syncagent.providers.metadisk.transport import TokenRejected, Tuning
from syncagent.retry import backoff_delay

_TOKEN_WORDS = ("token", "not accepted")


def fetch_shard(pointer: Pointer, *, timeout: float, path: str | None = None) -> bytes:
    """One shard's bytes from its data channel, verified against the pointer's hash."""
    try:
        ws = websocket.create_connection(pointer.channel, timeout=timeout, enable_multithread=False)
    except (OSError, websocket.WebSocketException) as exc:
        raise errors.TransientError(f"cannot open the data channel: {type(exc).__name__}", path=path) from exc
    data = bytearray()
    try:
        ws.send(json.dumps({"token": pointer.token, "hash": pointer.hash, "operation": "PULL"}))
        while True:
            opcode, frame = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_BINARY:
                data += frame
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                raise _channel_error(frame, path)
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                break
    except (OSError, websocket.WebSocketException) as exc:
        raise errors.TransientError(f"the data channel broke after {len(data)} bytes: {type(exc).__name__}",
                                    path=path) from exc
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]  # the closing handshake is done (or moot)
    if content_address(bytes(data)) != pointer.hash:
        raise errors.TransientError(f"shard {pointer.hash} failed verification ({len(data)} bytes came)", path=path)
    return bytes(data)


def _channel_error(frame: bytes, path: str | None) -> errors.ProviderError:
    """An error frame of the data channel, on the error tree."""
    try:
        obj: Any = json.loads(frame)
    except ValueError:
        obj = {}
    message = str(obj.get("message", frame[:200])) if isinstance(obj, dict) else str(frame[:200])
    code = obj.get("code") if isinstance(obj, dict) else None
    text = f"the data channel refused the shard ({code}): {message}"
    if any(w in message.lower() for w in _TOKEN_WORDS):
        return TokenRejected(text, path=path)
    return errors.TransientError(text, path=path)


class ShardReader(io.RawIOBase):
    """The file's bytes, one verified shard at a time (memory: one shard)."""

    def __init__(self, bridge: Bridge, bucket_id: str, file_hash: str, size: int, tuning: Tuning, *,
                 path: str | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.bridge, self.bucket_id, self.file_hash, self.size = bridge, bucket_id, file_hash, size
        self.tuning, self.path, self.sleep = tuning, path, sleep
        self.pointers: list[Pointer] | None = None
        self.index = 0                   # the next shard to fetch
        self.buffer = memoryview(b"")
        self.hasher = ContentHasher()
        self.done = size == 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while not self.buffer:
            if self.done:
                return 0
            self._next_shard()
        n = min(len(view), len(self.buffer))
        view[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n

    def _next_shard(self) -> None:
        shard = self._fetch_with_retries()
        self.hasher.update(shard)
        self.index += 1
        assert self.pointers is not None
        if self.index >= len(self.pointers):
            self._check_whole()
            self.done = True
        self.buffer = memoryview(shard)

    def _fetch_with_retries(self) -> bytes:
        failures = 0
        while True:
            try:
                if self.pointers is None:
                    self.pointers = self.bridge.pointers(self.bucket_id, self.file_hash, error_path=self.path)
                    if not self.pointers:
                        raise errors.PermanentError("Metadisk gave no pointers for a non-empty file", path=self.path)
                return fetch_shard(self.pointers[self.index], timeout=self.tuning.timeout, path=self.path)
            except errors.TransientError as err:
                failures += 1
                if failures >= self.tuning.attempts:
                    raise
                self.pointers = None   # farmer tokens are single use: the next try needs new ones
                delay = 0.0 if isinstance(err, TokenRejected) else backoff_delay(
                    failures - 1, base=self.tuning.backoff_base, cap=self.tuning.backoff_cap)
                get_logger().info("metadisk shard failed; fetching new pointers", shard=self.index,
                                  error=type(err).__name__, reason=str(err), wait_s=round(delay, 3))
                self.sleep(delay)

    def _check_whole(self) -> None:
        got = self.hasher.hexdigest()
        if self.hasher.size != self.size or got != self.file_hash:
            raise errors.PermanentError(f"the shards add up to {got} ({self.hasher.size} bytes), not the content "
                                        f"address {self.file_hash} ({self.size} bytes)", path=self.path)


def open_download(bridge: Bridge, bucket_id: str, file_hash: str, size: int, tuning: Tuning, *,
                  path: str | None = None, sleep: Callable[[float], None] = time.sleep) -> io.BufferedReader:
    return io.BufferedReader(ShardReader(bridge, bucket_id, file_hash, size, tuning, path=path, sleep=sleep),
                             buffer_size=1 << 20)
