"""Metadisk content addresses (spec §5.4): RIPEMD-160 over the *hex text* of
SHA-256, 40 hex characters. A file's address and each 8 MiB shard's are
computed the same way; the hash kind "metadisk" of syncagent.hashing.

Light on purpose: the package's `__init__` imports this to register the
kind, so only hashlib is loaded here (pycryptodome only where OpenSSL 3
lacks RIPEMD-160).
"""

from __future__ import annotations

import hashlib
from typing import Any

HASH_KIND = "metadisk"
SHARD_SIZE = 8 * 1024 * 1024          # the server's shard size (spec §4.6 step 5)


def _ripemd160() -> Any:
    try:
        return hashlib.new("ripemd160")
    except ValueError:  # OpenSSL 3 without its legacy provider
        from Crypto.Hash import RIPEMD160

        return RIPEMD160.new()


def rmd160_of_hex(sha256_hex: str) -> str:
    h = _ripemd160()
    h.update(sha256_hex.encode("ascii"))
    return str(h.hexdigest())


def content_address(data: bytes) -> str:
    """`rmd160(ascii(sha256hex(data)))`: a file's or a shard's id."""
    return rmd160_of_hex(hashlib.sha256(data).hexdigest())


class ContentHasher:
    """The streaming form: `update` chunks in order, then `hexdigest`."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes, /) -> None:
        self._sha.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return rmd160_of_hex(self._sha.hexdigest())
