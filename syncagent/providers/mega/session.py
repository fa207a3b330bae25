"""Logging in (spec §4.1–4.5): `us0` prelogin, then a v1 or v2 login with
an e-mail and password, or an ephemeral (anonymous) account made with `up`
and resumed with `us` and its handle.

What is kept afterwards is a `Session`: the session id and the master key
(plus, for an ephemeral account, its handle and password key, without
which it cannot be resumed). Never the password.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from syncagent import errors
from syncagent.providers.mega import keys
from syncagent.providers.mega.api import Api, code_of, error_for
from syncagent.providers.mega.codec import BadEncoding, b64dec, b64enc


@dataclass(frozen=True)
class Session:
    sid: str
    master_key: bytes
    user: str                               # the 11-character user handle
    ephemeral_key: bytes | None = None      # the password key of an ephemeral account
    email: str | None = None                # lower case; None for an ephemeral account

    def to_secret(self) -> str:
        data: dict[str, str] = {"sid": self.sid, "mk": b64enc(self.master_key), "u": self.user}
        if self.ephemeral_key is not None:
            data["pk"] = b64enc(self.ephemeral_key)
        if self.email:
            data["e"] = self.email
        return b64enc(json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def from_secret(cls, text: str) -> Session:
        try:
            data = json.loads(b64dec(text))
            mk = b64dec(data["mk"])
            pk = b64dec(data["pk"]) if data.get("pk") else None
            if len(mk) != 16 or (pk is not None and len(pk) != 16):
                raise ValueError("key length")
            return cls(str(data["sid"]), mk, str(data["u"]), pk, str(data["e"]) if data.get("e") else None)
        except (BadEncoding, ValueError, KeyError, TypeError):
            raise errors.AuthError("the stored MEGA session is unreadable; log in again") from None


def _answer(api: Api, command: dict[str, Any], what: str) -> Any:
    """A login command's answer, with login failures worded for a person."""
    answer = api.batch([command])[0]
    code = code_of(answer)
    if code in (-9, -2):
        raise errors.AuthError(f"MEGA refused the {what}: wrong e-mail or password ({code})")
    if code == -26:
        raise errors.AuthError("MEGA asks for a two-factor code, which this client does not support yet")
    if code is not None:
        raise error_for(code, what=what)
    if not isinstance(answer, dict | str):
        raise errors.PermanentError(f"MEGA sent a malformed answer to the {what}")
    return answer


def prelogin(api: Api, email: str) -> tuple[int, bytes | None]:
    """(account version, v2 salt)."""
    answer = _answer(api, {"a": "us0", "user": email.lower()}, "prelogin")
    version = int(answer.get("v", 1)) if isinstance(answer, dict) else 1
    if version == 2:
        salt = answer.get("s")
        if not isinstance(salt, str):
            raise errors.PermanentError("MEGA named a v2 account without its salt")
        return 2, b64dec(salt)
    if version != 1:
        raise errors.Unsupported(f"MEGA account version {version} is not supported")
    return 1, None


def login(api: Api, email: str, password: str) -> Session:
    """A full login with e-mail and password (v1 or v2, as the account says)."""
    api.sid = None
    version, salt = prelogin(api, email)
    if version == 2 and salt is not None:
        pw_key, uh = keys.derive_v2(password, salt)
    else:
        pw_key, uh = keys.v1_login(email, password)
    answer = _answer(api, {"a": "us", "user": email.lower(), "uh": uh}, "login")
    if not isinstance(answer, dict) or not isinstance(answer.get("k"), str):
        raise errors.PermanentError("MEGA sent a login answer without a master key")
    try:
        mk = keys.decrypt_master_key(pw_key, answer["k"])
        sid = _sid_of(answer, mk)
    except (keys.CryptoError, BadEncoding) as exc:
        raise errors.AuthError(f"the MEGA login answer does not decrypt: {exc}") from None
    api.sid = sid
    user = answer.get("u") if isinstance(answer.get("u"), str) else None
    return Session(sid, mk, user or whoami(api), email=email.lower())


def _sid_of(answer: dict[str, Any], mk: bytes) -> str:
    if isinstance(answer.get("csid"), str) and isinstance(answer.get("privk"), str):
        rsa = keys.decrypt_private_key(mk, answer["privk"])
        user = answer.get("u") if isinstance(answer.get("u"), str) else None
        return keys.session_from_csid(rsa, answer["csid"], user)
    if isinstance(answer.get("tsid"), str):
        return keys.check_tsid(mk, answer["tsid"])
    raise keys.CryptoError("neither csid nor tsid in the login answer")


def whoami(api: Api) -> str:
    answer = api.call({"a": "ug"})
    if not isinstance(answer, dict) or not isinstance(answer.get("u"), str):
        raise errors.PermanentError("MEGA sent a user record without its handle")
    return str(answer["u"])


def create_ephemeral(api: Api) -> Session:
    """A new anonymous account (no e-mail), logged in."""
    api.sid = None
    eph = keys.new_ephemeral()
    handle = _answer(api, {"a": "up", "k": eph.k, "ts": eph.ts}, "new anonymous account")
    if not isinstance(handle, str):
        raise errors.PermanentError("MEGA did not name the new anonymous account")
    return resume_ephemeral(api, handle, eph.password_key)


def resume_ephemeral(api: Api, user: str, password_key: bytes) -> Session:
    api.sid = None
    answer = _answer(api, {"a": "us", "user": user}, "anonymous login")
    if not isinstance(answer, dict) or not isinstance(answer.get("k"), str) \
            or not isinstance(answer.get("tsid"), str):
        raise errors.PermanentError("MEGA sent an anonymous login answer without k and tsid")
    try:
        mk = keys.decrypt_master_key(password_key, answer["k"])
        sid = keys.check_tsid(mk, answer["tsid"])
    except (keys.CryptoError, BadEncoding) as exc:
        raise errors.AuthError(f"the anonymous MEGA account does not answer to its key: {exc}") from None
    api.sid = sid
    return Session(sid, mk, user, password_key)
