"""Bridge request signing (spec §3.3, §5): secp256k1 key pairs, the signed
contract `METHOD\\nPATH\\nPAYLOAD`, the password hash and the nonce.

Signatures are ECDSA over SHA-256 of the contract, DER hex-encoded, with a
deterministic k (RFC 6979): the same request signs the same way, which is
what lets the spec's §9.2 vectors be tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecdsa import BadSignatureError, SECP256k1, SigningKey, VerifyingKey
from ecdsa.util import sigdecode_der, sigencode_der


def password_hash(password: str) -> str:
    """What the service takes as the password (register, Basic): sha256 hex of the UTF-8 text."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def basic_header(email: str, password_sha256: str) -> str:
    token = base64.b64encode(f"{email}:{password_sha256}".encode()).decode("ascii")
    return f"Basic {token}"


def contract(method: str, path: str, payload: str) -> bytes:
    """The exact bytes signed: upper-case method, the raw path without query, the raw body or query."""
    return f"{method.upper()}\n{path}\n{payload}".encode()


@dataclass(frozen=True)
class KeyPair:
    """A secp256k1 key; `public` is the hex form registered (compressed unless told)."""

    private: SigningKey
    compressed: bool = True

    @classmethod
    def generate(cls, *, compressed: bool = True) -> KeyPair:
        return cls(SigningKey.generate(curve=SECP256k1, hashfunc=hashlib.sha256), compressed)

    @classmethod
    def from_hex(cls, private_hex: str, *, compressed: bool = True) -> KeyPair:
        try:
            raw = bytes.fromhex(private_hex.strip())
            key = SigningKey.from_string(raw, curve=SECP256k1, hashfunc=hashlib.sha256)
        except (ValueError, AssertionError) as exc:
            raise ValueError("not a secp256k1 private key in hex") from exc
        return cls(key, compressed)

    @property
    def private_hex(self) -> str:
        return bytes(self.private.to_string()).hex()

    @property
    def public(self) -> str:
        vk = self.private.get_verifying_key()
        assert vk is not None
        return bytes(vk.to_string("compressed" if self.compressed else "uncompressed")).hex()

    def sign(self, data: bytes) -> str:
        der = self.private.sign_deterministic(data, hashfunc=hashlib.sha256, sigencode=sigencode_der)
        return bytes(der).hex()


def verify(public_hex: str, signature_hex: str, data: bytes) -> bool:
    """Whether `signature_hex` (DER) signs `data` for the key `public_hex`
    (compressed or uncompressed); a key or signature that does not parse is invalid."""
    try:
        vk = VerifyingKey.from_string(bytes.fromhex(public_hex), curve=SECP256k1, hashfunc=hashlib.sha256)
        return bool(vk.verify(bytes.fromhex(signature_hex), data, hashfunc=hashlib.sha256,
                              sigdecode=sigdecode_der))
    except (BadSignatureError, ValueError, AssertionError):
        return False
    except Exception:  # ecdsa raises its own errors for malformed DER
        return False


def valid_public_key(public_hex: str) -> bool:
    try:
        VerifyingKey.from_string(bytes.fromhex(public_hex), curve=SECP256k1)
    except Exception:
        return False
    return True


class NonceClock:
    """Strictly increasing integer nonces: max(last + 1, milliseconds now).
    Satisfies the 2016 rule (>= last), strict servers (> last) and the later
    unique-string cache alike (spec §3.3, §8)."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, int(self._now() * 1000))
            return self._last


@dataclass(frozen=True)
class SignedRequest:
    """A request ready to send: the target (path plus query), the body, the headers."""

    target: str
    body: bytes | None
    headers: dict[str, str]


def sign_request(key: KeyPair, method: str, path: str, params: Mapping[str, Any], nonce: int) -> SignedRequest:
    """The recipe of spec §3.3: the nonce joins the params; POST/PUT/PATCH send and sign
    compact JSON, GET/DELETE sign the url-encoded query they send."""
    method = method.upper()
    values = {**params, "__nonce": nonce}
    if method in ("POST", "PUT", "PATCH"):
        payload = json.dumps(values, separators=(",", ":"))
        headers = {"Content-Type": "application/json"}
        target, body = path, payload.encode()
    else:
        payload = urllib.parse.urlencode(values)
        headers, target, body = {}, f"{path}?{payload}", None
    headers.update({"x-pubkey": key.public, "x-signature": key.sign(contract(method, path, payload))})
    return SignedRequest(target, body, headers)
