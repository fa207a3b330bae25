"""Account and node cryptography (spec §5.1–5.7): password keys, the user
hash, the master key, the RSA session challenge, ephemeral accounts, node
keys and encrypted attributes.

Everything here is pure: bytes in, bytes out, no I/O. Repeated AES-ECB of
one block under a fixed key is done as CBC over zero blocks (each output
block is the encryption of the previous one), so the 65,536 rounds of
`prepare_key` and the 16,384 of `stringhash` run in C, not in a Python loop.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from Crypto.Cipher import AES

from syncagent.providers.mega.codec import BadEncoding, b64dec, b64enc, from_a32, read_mpis

PREPARE_KEY_START = bytes.fromhex("93c467e37db0c7a4d1be3f810152cb56")
PREPARE_KEY_ROUNDS = 0x10000
STRINGHASH_ROUNDS = 0x4000
V2_ITERATIONS = 100_000
SID_BYTES = 43
ZERO_IV = b"\0" * 16


class CryptoError(ValueError):
    """A key or blob that does not decrypt to what it must (the SDK's EKEY)."""


def ecb_encrypt(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).encrypt(data)


def ecb_decrypt(key: bytes, data: bytes) -> bytes:
    return AES.new(key, AES.MODE_ECB).decrypt(data)


def _iterate(key: bytes, block: bytes, rounds: int) -> bytes:
    """`rounds` times: block = AES_ECB(key, block); in one C call."""
    chain = AES.new(key, AES.MODE_CBC, iv=block).encrypt(bytes(16 * rounds))
    return chain[-16:]


# ---- password-based keys -----------------------------------------------------
def password_words(password: str) -> list[int]:
    """The web client's packing of a password into 32-bit words: one slot per
    UTF-16 code unit, shifted into its byte position, bits past 32 dropped."""
    raw = password.encode("utf-16-be", "surrogatepass")
    units = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    words = [0] * ((len(units) + 3) // 4)
    for j, unit in enumerate(units):
        words[j // 4] = (words[j // 4] | (unit << (24 - 8 * (j % 4)))) & 0xFFFFFFFF
    return words


def prepare_key(password: str | bytes) -> bytes:
    """The v1 password key. `bytes` are taken as already packed (a raw key)."""
    data = password if isinstance(password, bytes) else from_a32(password_words(password))
    data = data + b"\0" * (-len(data) % 16)
    blocks = [data[i:i + 16] for i in range(0, len(data), 16)]
    key = PREPARE_KEY_START
    if len(blocks) == 1:
        return _iterate(blocks[0], key, PREPARE_KEY_ROUNDS)
    ciphers = [AES.new(b, AES.MODE_ECB) for b in blocks]
    for _ in range(PREPARE_KEY_ROUNDS):
        for cipher in ciphers:
            key = cipher.encrypt(key)
    return key


def stringhash(text: str, key: bytes) -> str:
    """The v1 user hash `uh` of an e-mail address under the password key."""
    data = text.encode("utf-8")
    data += b"\0" * (-len(data) % 16)
    h = bytearray(16)
    for i in range(0, len(data), 16):
        for j in range(16):
            h[j] ^= data[i + j]
    out = _iterate(key, bytes(h), STRINGHASH_ROUNDS)
    return b64enc(out[0:4] + out[8:12])


def derive_v2(password: str, salt: bytes) -> tuple[bytes, str]:
    """(password key, user hash) of a v2 account: PBKDF2-HMAC-SHA512, 100,000 rounds."""
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, V2_ITERATIONS, 32)
    return dk[:16], b64enc(dk[16:])


def v1_login(email: str, password: str) -> tuple[bytes, str]:
    """(password key, user hash) of a v1 account."""
    pw_key = prepare_key(password)
    return pw_key, stringhash(email.lower(), pw_key)


# ---- the login answer ----------------------------------------------------------
@dataclass(frozen=True)
class RsaKey:
    p: int
    q: int
    d: int
    u: int

    @property
    def n(self) -> int:
        return self.p * self.q

    def decrypt(self, c: int) -> int:
        """c^d mod n, by the CRT (four times faster than one big pow)."""
        mp = pow(c % self.p, self.d % (self.p - 1), self.p)
        mq = pow(c % self.q, self.d % (self.q - 1), self.q)
        h = ((mq - mp) * self.u) % self.q  # u = p^-1 mod q
        return mp + h * self.p


def decrypt_master_key(pw_key: bytes, k: str) -> bytes:
    mk = ecb_decrypt(pw_key, _exact(b64dec(k), 16, "master key"))
    return mk


def decrypt_private_key(master_key: bytes, privk: str) -> RsaKey:
    blob = b64dec(privk)
    if not blob or len(blob) % 16:
        raise CryptoError("the RSA private key has a bad length")
    try:
        (p, q, d, u), _pad = read_mpis(ecb_decrypt(master_key, blob), 4)
    except BadEncoding:
        raise CryptoError("the RSA private key does not decrypt (wrong password?)") from None
    if p < 3 or q < 3 or (p * u) % q != 1:
        raise CryptoError("the RSA private key does not decrypt (wrong password?)")
    return RsaKey(p, q, d, u)


def session_from_csid(key: RsaKey, csid: str, user_handle: str | None = None) -> str:
    """The session id: the first 43 bytes of the RSA-decrypted challenge."""
    (c,), _ = read_mpis(b64dec(csid), 1)
    m = key.decrypt(c)
    # written over at least len(p)+len(q)-2 bytes, as the SDK does
    width = max((key.p.bit_length() + 7) // 8 + (key.q.bit_length() + 7) // 8 - 2, (m.bit_length() + 7) // 8)
    plain = m.to_bytes(width, "big")
    if user_handle is not None and plain[16:27] != user_handle.encode("ascii"):
        raise CryptoError("the session challenge does not name this account")
    return b64enc(plain[:SID_BYTES])


def check_tsid(master_key: bytes, tsid: str) -> str:
    """A temporary session (no RSA key): valid when its last 16 bytes are its
    first 16 encrypted under the master key. The sid is the text as given."""
    raw = b64dec(tsid)
    if len(raw) != SID_BYTES or ecb_encrypt(master_key, raw[:16]) != raw[-16:]:
        raise CryptoError("the temporary session does not match the master key")
    return tsid


@dataclass(frozen=True)
class Ephemeral:
    """A new anonymous account: what `up` sends and what resuming needs."""

    master_key: bytes
    password_key: bytes
    k: str    # the master key under the password key
    ts: str   # self-challenge ‖ its encryption under the master key


def new_ephemeral(master_key: bytes | None = None, password_key: bytes | None = None,
                  challenge: bytes | None = None) -> Ephemeral:
    mk = master_key or secrets.token_bytes(16)
    pk = password_key or secrets.token_bytes(16)
    ssc = challenge or secrets.token_bytes(16)
    return Ephemeral(mk, pk, b64enc(ecb_encrypt(pk, mk)), b64enc(ssc + ecb_encrypt(mk, ssc)))


# ---- node keys and attributes ----------------------------------------------------
def split_key_list(k: str) -> list[tuple[str, str]]:
    """`"<handle>:<key>/<handle>:<key>"` -> [(handle, key)]."""
    out: list[tuple[str, str]] = []
    for item in k.split("/"):
        handle, sep, key = item.partition(":")
        if sep and key:
            out.append((handle, key))
    return out


def decrypt_node_key(k: str, keys: dict[str, bytes]) -> bytes | None:
    """The node key from its key list, with the first entry whose handle has a
    known key (the user's own handle -> master key; a share handle -> share key)."""
    for handle, blob in split_key_list(k):
        wrap = keys.get(handle)
        if wrap is None:
            continue
        try:
            raw = b64dec(blob)
        except BadEncoding:
            continue
        if len(raw) in (16, 32):
            return ecb_decrypt(wrap, raw)
    return None


def encrypt_node_key(master_key: bytes, node_key: bytes) -> str:
    return b64enc(ecb_encrypt(master_key, node_key))


def encrypt_attrs(attrs: dict[str, Any], key: bytes) -> str:
    data = b"MEGA" + json.dumps(attrs, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    data += b"\0" * (-len(data) % 16)
    return b64enc(AES.new(key, AES.MODE_CBC, iv=ZERO_IV).encrypt(data))


def decrypt_attrs(a: str, key: bytes) -> dict[str, Any] | None:
    """The attribute object, or None when `a` does not decrypt under `key`."""
    try:
        raw = b64dec(a)
    except BadEncoding:
        return None
    if not raw or len(raw) % 16:
        return None
    plain = AES.new(key, AES.MODE_CBC, iv=ZERO_IV).decrypt(raw).rstrip(b"\0")
    if not plain.startswith(b'MEGA{"'):
        return None
    try:
        value = json.loads(plain[4:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _exact(data: bytes, size: int, what: str) -> bytes:
    if len(data) != size:
        raise CryptoError(f"the {what} has {len(data)} bytes, not {size}")
    return data
