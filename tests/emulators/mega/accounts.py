"""Accounts and logins as the MEGA server sees them (spec §7 "Users",
"Login checks"): what is stored per account, how `uh` is checked, and how
a session id is minted and handed out (RSA-encrypted `csid`, or `tsid`).

The server never learns a password or a master key: it stores the user
hash (v1) or `hak` (v2), the encrypted master key `k`, and the encrypted
RSA private key, exactly as a real signup leaves them. The crypto here is
written independently of the client's (syncagent/providers/mega), so a
mistake on one side does not hide behind the same mistake on the other.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import threading
from dataclasses import dataclass, field

from Crypto.Cipher import AES
from Crypto.PublicKey import RSA

RSA_BITS = 2048
RSA_E = 257
_RSA_CACHE: dict[str, RSA.RsaKey] = {}   # per account e-mail, for the life of the test process
_RSA_LOCK = threading.Lock()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mpi(value: int) -> bytes:
    bits = value.bit_length()
    return bits.to_bytes(2, "big") + value.to_bytes((bits + 7) // 8, "big")


def ecb(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).encrypt(data)


@functools.cache   # a pure function, 65,536 rounds: seeding the same account twice need not redo it
def v1_password_key(password: str) -> bytes:
    """prepare_key, the plain way: ASCII/Latin-1 passwords (seed accounts only)."""
    data = password.encode("latin-1")
    data += b"\0" * (-len(data) % 16)
    blocks = [AES.new(data[i:i + 16], AES.MODE_ECB) for i in range(0, len(data), 16)]
    key = bytes.fromhex("93c467e37db0c7a4d1be3f810152cb56")
    for _ in range(65536):
        for block in blocks:
            key = block.encrypt(key)
    return key


def v1_user_hash(email: str, pw_key: bytes) -> bytes:
    data = email.lower().encode()
    data += b"\0" * (-len(data) % 16)
    h = bytes(16)
    for i in range(0, len(data), 16):
        h = bytes(a ^ b for a, b in zip(h, data[i:i + 16], strict=True))
    cipher = AES.new(pw_key, AES.MODE_ECB)
    for _ in range(16384):
        h = cipher.encrypt(h)
    return h[0:4] + h[8:12]


def _rsa_for(email: str) -> RSA.RsaKey:
    with _RSA_LOCK:
        key = _RSA_CACHE.get(email)
        if key is None:
            key = _RSA_CACHE[email] = RSA.generate(RSA_BITS, e=RSA_E)
        return key


@dataclass
class Account:
    handle: str                     # 11 characters (8 bytes)
    email: str | None               # None: an ephemeral account
    k: str                          # the master key under the password key (as sent at signup)
    version: int = 2
    salt: bytes = b""               # v2
    hak: bytes = b""                # v2: SHA-256(uh16)[:16]
    uh8: bytes = b""                # v1: the stringhash
    ts: bytes = b""                 # ephemeral: the 32-byte self-challenge
    rsa: RSA.RsaKey | None = None
    privk: str = ""
    roots: dict[int, str] = field(default_factory=dict)   # node type (2, 3, 4) -> handle

    @property
    def pubk(self) -> str:
        return b64(mpi(self.rsa.n) + mpi(self.rsa.e)) if self.rsa is not None else ""

    def check_uh(self, uh: str) -> bool:
        try:
            raw = unb64(uh)
        except ValueError:
            return False
        if self.version == 2:
            return len(raw) == 16 and secrets.compare_digest(hashlib.sha256(raw).digest()[:16], self.hak)
        return secrets.compare_digest(raw, self.uh8)

    def new_sid(self) -> tuple[str, dict[str, str]]:
        """(session id, what `us` answers besides k): a csid for RSA accounts, else a tsid."""
        rand = secrets.token_bytes(16)
        rand = bytes([rand[0] | 1]) + rand[1:]
        sid43 = rand + self.handle.encode() + secrets.token_bytes(16)
        if self.rsa is None:
            tsid = self.ephemeral_tsid()
            return tsid, {"tsid": tsid}
        size = (self.rsa.n.bit_length() + 7) // 8 - 1
        m = int.from_bytes(sid43 + secrets.token_bytes(size - len(sid43)), "big")
        c = pow(m, self.rsa.e, self.rsa.n)
        return b64(sid43), {"csid": b64(mpi(c)), "privk": self.privk}

    def ephemeral_tsid(self) -> str:  # also the session of a full account without RSA keys
        """ts[0:16] ‖ b64(handle) ‖ ts[16:32]: 43 bytes whose ends the client can check."""
        return b64(self.ts[:16] + self.handle.encode() + self.ts[16:])


def new_handle(nbytes: int = 8) -> str:
    return b64(secrets.token_bytes(nbytes))


def seed_account(email: str, password: str, version: int = 2, rsa: bool = True) -> Account:
    """A signed-up account: master key, password key, user hash, RSA key pair."""
    email = email.lower()
    mk = secrets.token_bytes(16)
    handle = new_handle()
    if version == 2:
        salt = hashlib.sha256(b"mega.nz".ljust(200, b"P") + secrets.token_bytes(16)).digest()
        dk = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100_000, 32)
        account = Account(handle, email, b64(ecb(dk[:16], mk)), 2, salt=salt,
                          hak=hashlib.sha256(dk[16:]).digest()[:16])
    else:
        pw_key = v1_password_key(password)
        account = Account(handle, email, b64(ecb(pw_key, mk)), 1, uh8=v1_user_hash(email, pw_key))
    challenge = secrets.token_bytes(16)
    account.ts = challenge + ecb(mk, challenge)   # what the signup's `up` left on the account
    if rsa:
        key = _rsa_for(email)
        account.rsa = key
        u = pow(key.p, -1, key.q)
        blob = mpi(key.p) + mpi(key.q) + mpi(key.d) + mpi(u)
        blob += secrets.token_bytes(-len(blob) % 16)
        account.privk = b64(ecb(mk, blob))
    return account


def ephemeral_account(k: str, ts: str) -> Account | None:
    """The account `up` makes; None when `k`/`ts` have the wrong shape."""
    try:
        raw_k, raw_ts = unb64(k), unb64(ts)
    except ValueError:
        return None
    if len(raw_k) != 16 or len(raw_ts) != 32:
        return None
    return Account(new_handle(), None, k, 0, ts=raw_ts)
