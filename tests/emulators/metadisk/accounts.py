"""Users, public keys, nonces and the authentication of spec §3 / §7.1-2,
as the Bridge@8771269 server checks them."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncagent.providers.metadisk.signing import contract, valid_public_key, verify
from tests.emulators.base import Request


class ApiError(Exception):
    """An answer `{"error": message}` with the 2016 status (and the newer bridge's, see `modern`)."""

    def __init__(self, status: int, message: str, modern: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.modern = status, message, modern or status


def js_date(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


@dataclass
class User:
    email: str
    hashpass: str                      # sha256(sha256hex(password)): the server's double hash
    activated: bool
    created: float
    activator: str | None = None
    last_nonce: float = 0.0
    seen_nonces: dict[str, float] = field(default_factory=dict)    # "unique" mode: nonce -> when

    def as_json(self) -> dict[str, Any]:
        return {"id": self.email, "activated": self.activated, "email": self.email, "created": js_date(self.created)}


@dataclass
class Caller:
    email: str
    pubkey: str | None = None          # set when the request was signed


def _double(password_sha256: str) -> str:
    return hashlib.sha256(password_sha256.encode("ascii")).hexdigest()


class Accounts:
    def __init__(self, clock: Callable[[], float], log: Callable[[str], None]) -> None:
        self.clock, self.log = clock, log
        self.users: dict[str, User] = {}
        self.pubkeys: dict[str, str] = {}          # hex as registered -> email
        self.nonce_mode = "monotonic"              # monotonic (2016-03) | strict | unique (2016-05)
        self.lock = threading.RLock()

    # ---- registration --------------------------------------------------------------------
    def add_user(self, email: str, password: str, *, activated: bool = True) -> User:
        pw = hashlib.sha256(password.encode()).hexdigest()
        user = User(email, _double(pw), activated, self.clock())
        self.users[email] = user
        return user

    def register(self, body: dict[str, Any]) -> User:
        email, password = str(body.get("email") or ""), str(body.get("password") or "")
        with self.lock:
            if "@" not in email:
                raise ApiError(500, "User validation failed", 400)
            if email in self.users:
                raise ApiError(500, "Email is already registered", 400)
            try:
                if len(bytes.fromhex(password)) != 32:
                    raise ValueError
            except ValueError:
                raise ApiError(500, "Password must be hex encoded SHA-256 hash", 400) from None
            user = User(email, _double(password), False, self.clock(), activator=secrets.token_hex(32))
            self.users[email] = user
            pubkey = body.get("pubkey")
            if pubkey:
                try:
                    self.add_key(email, str(pubkey))
                except ApiError:
                    del self.users[email]
                    raise
            # the activation e-mail: the token goes to the emulator's log instead
            self.log(f"activation for {email}: /activations/{user.activator}")
            return user

    def activate(self, token: str) -> User:
        with self.lock:
            for user in self.users.values():
                if user.activator and secrets.compare_digest(user.activator, token):
                    user.activated, user.activator = True, None
                    return user
        raise ApiError(400, "Invalid activation token")

    def add_key(self, email: str, key: str) -> dict[str, str]:
        with self.lock:
            if ":" in key or not valid_public_key(key):
                raise ApiError(400, f"Invalid public key supplied: {key[:20]} is not a secp256k1 point")
            if key in self.pubkeys:
                raise ApiError(400, "Public key is already registered")
            self.pubkeys[key] = email
        return {"user": email, "key": key, "id": key}

    def keys_of(self, email: str) -> list[dict[str, str]]:
        return [{"user": e, "key": k, "id": k} for k, e in self.pubkeys.items() if e == email]

    def remove_key(self, email: str, key: str) -> None:
        with self.lock:
            if self.pubkeys.get(key) != email:
                raise ApiError(404, "Public key was not found")
            del self.pubkeys[key]

    # ---- authentication (spec §3.1-3.3) --------------------------------------------------------
    def authenticate(self, request: Request, raw_body: bytes) -> Caller:
        basic = _basic(request.headers.get("Authorization"))
        if basic is not None:
            return self._basic(*basic)
        signature, pubkey = request.headers.get("x-signature"), request.headers.get("x-pubkey")
        if signature and pubkey:
            return self._ecdsa(request, raw_body, signature, pubkey)
        raise ApiError(401, "No authentication strategy detected")

    def _basic(self, email: str, password_sha256: str) -> Caller:
        user = self.users.get(email)
        if user is None or not secrets.compare_digest(user.hashpass, _double(password_sha256)):
            raise ApiError(500, "Invalid email or password", 401)
        if not user.activated:
            raise ApiError(401, "User account has not been activated")
        return Caller(email)

    def signature_valid(self, request: Request, raw_body: bytes, signature: str, pubkey: str) -> bool:
        payload = raw_body.decode("utf-8", "replace") if request.method in ("POST", "PUT", "PATCH") \
            else request.raw_query
        return verify(pubkey, signature, contract(request.method, request.raw_path, payload))

    def _ecdsa(self, request: Request, raw_body: bytes, signature: str, pubkey: str) -> Caller:
        if not self.signature_valid(request, raw_body, signature, pubkey):
            raise ApiError(401, "Invalid signature")
        email = self.pubkeys.get(pubkey)
        if email is None:
            raise ApiError(401, "Public key not registered")
        user = self.users.get(email)
        if user is None:
            raise ApiError(401, "User not found")
        if not user.activated:
            raise ApiError(401, "User account has not been activated")
        self._nonce(user, _nonce_of(request, raw_body))
        return Caller(email, pubkey)

    def _nonce(self, user: User, nonce: Any) -> None:
        with self.lock:
            if self.nonce_mode == "unique":
                now = self.clock()
                user.seen_nonces = {n: t for n, t in user.seen_nonces.items() if now - t < 300}
                if not nonce or str(nonce) in user.seen_nonces:
                    raise ApiError(401, "Invalid nonce supplied")
                user.seen_nonces[str(nonce)] = now
                return
            try:
                value = float(nonce)
            except (TypeError, ValueError):
                raise ApiError(401, "Invalid nonce supplied") from None
            stale = value <= user.last_nonce if self.nonce_mode == "strict" else value < user.last_nonce
            if value <= 0 or stale:
                raise ApiError(401, "Invalid nonce supplied")
            user.last_nonce = value


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if user and password else None


def _nonce_of(request: Request, raw_body: bytes) -> Any:
    if request.method in ("POST", "PUT", "PATCH"):
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            return None
        return body.get("__nonce") if isinstance(body, dict) else None
    return request.arg("__nonce")
