"""Buckets, single-use tokens, files sharded at 8 MiB onto disk, and the
farmer tokens of the data channel (spec §4.4-4.9, §7.3-7.7)."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from syncagent.providers.metadisk.content import SHARD_SIZE, ContentHasher, content_address
from tests.emulators.metadisk.accounts import ApiError, js_date

TOKEN_LIFE = 300.0


@dataclass
class Bucket:
    id: str
    user: str
    name: str
    storage: int
    transfer: int
    pubkeys: list[str]
    created: float
    status: str = "Active"
    entries: dict[str, dict[str, str]] = field(default_factory=dict)   # file hash -> {name, mimetype}

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.name, "created": js_date(self.created),
                "transfer": self.transfer, "storage": self.storage, "user": self.user,
                "pubkeys": list(self.pubkeys), "id": self.id}


@dataclass
class Token:
    token: str
    bucket: str
    operation: str
    expires: float


class Store:
    def __init__(self, clock: Callable[[], float], storage: str | None = None,
                 shard_size: int = SHARD_SIZE) -> None:
        self.clock = clock
        self.owned = storage is None
        self.root = Path(storage or tempfile.mkdtemp(prefix="metadisk-emulator-"))
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self.buckets: dict[str, Bucket] = {}
        self.tokens: dict[str, Token] = {}
        self.files: dict[str, tuple[int, list[str]]] = {}     # file hash -> (size, shard hashes)
        self.farmer_tokens: dict[str, str] = {}              # token -> shard hash (single use)
        self.lock = threading.RLock()
        self._counter = int(clock()) & 0xFFFFFF

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- buckets --------------------------------------------------------------------------
    def new_id(self) -> str:
        """A Mongo ObjectId: 4 bytes of seconds, 5 random, a 3-byte counter."""
        with self.lock:
            self._counter = (self._counter + 1) & 0xFFFFFF
            return f"{int(self.clock()):08x}{secrets.token_hex(5)}{self._counter:06x}"

    def bucket_of(self, bucket_id: str, user: str | None) -> Bucket:
        bucket = self.buckets.get(bucket_id)
        if bucket is None or (user is not None and bucket.user != user):
            raise ApiError(404, "Bucket not found")
        return bucket

    # ---- tokens ---------------------------------------------------------------------------
    def new_token(self, bucket: Bucket, operation: str) -> Token:
        if operation not in ("PUSH", "PULL"):
            raise ApiError(500, "Token validation failed: operation is invalid", 400)
        raw = secrets.token_bytes(512) + str(int(self.clock() * 1000)).encode()
        token = Token(hashlib.sha256(raw).hexdigest(), bucket.id, operation, self.clock() + TOKEN_LIFE)
        self.tokens[token.token] = token
        return token

    def consume(self, value: str | None) -> Token:
        """Look the x-token up and use it up at once (spec §4.6 step 1: even if a later check fails)."""
        with self.lock:
            token = self.tokens.get(value or "")
            if token is None or token.expires <= self.clock():
                raise ApiError(500, "Invalid or expired token", 401)
            token.expires = self.clock()
            return token

    # ---- files ----------------------------------------------------------------------------
    def store_file(self, part: IO[bytes], declared: int) -> tuple[str, int]:
        """Shard the part's bytes; the declared size is enforced as they come."""
        total, hasher = 0, ContentHasher()
        shards: list[str] = []
        while True:
            shard = part.read(self.shard_size)
            if not shard and shards:
                break
            total += len(shard)
            if total > declared:
                raise ApiError(400, "File size exceeds declared size")
            hasher.update(shard)
            shards.append(self._put_shard(shard))
            if len(shard) < self.shard_size:
                break
        if total != declared:
            raise ApiError(400, "File does not match the declared size")
        address = hasher.hexdigest()
        with self.lock:
            self.files[address] = (total, shards)
        return address, total

    def _put_shard(self, data: bytes) -> str:
        address = content_address(data)
        path = self.root / "shards" / address
        if not path.exists():
            tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return address

    def shard(self, address: str) -> bytes:
        return (self.root / "shards" / address).read_bytes()

    def farmer_token(self, shard: str) -> str:
        token = secrets.token_hex(20)
        with self.lock:
            self.farmer_tokens[token] = shard
        return token

    def take_farmer_token(self, token: str | None, shard: str | None) -> str:
        """The data channel's checks (spec §4.12, §7.7): known, unused, for this hash."""
        if not token:
            raise ApiError(400, "You did not supply a token")
        with self.lock:
            found = self.farmer_tokens.get(token)
            if found is None:
                raise ApiError(400, "The supplied token is not accepted")
            if found != shard:
                raise ApiError(400, "Token not valid for hash")
            del self.farmer_tokens[token]
        return found
