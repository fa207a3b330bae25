"""Who is calling: HTTP Basic (API key:password) and OAuth 1.0a PLAINTEXT
(spec §3), including the three-legged token dance at /oauth/*.

OAuth parameters are read from the `Authorization: OAuth` header, the form
body or the query string (clients differ). The PLAINTEXT signature is
`pct(client_secret)&pct(token_secret)`; header values arrive percent-encoded
once more and are decoded once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from tests.emulators.base import Request, Response

OAUTH_FAILED = "Could not verify OAuth request."
TIMESTAMP_WINDOW = 300


def pct(value: str) -> str:
    return urllib.parse.quote(value, safe="-._~")


@dataclass
class RequestToken:
    secret: str
    consumer: str
    callback: str | None
    verifier: str | None = None
    used: bool = False


@dataclass
class OAuthState:
    consumers: dict[str, str] = field(default_factory=dict)        # client token -> secret
    access: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (secret, consumer)
    requests: dict[str, RequestToken] = field(default_factory=dict)
    nonces: set[tuple[str, str, str]] = field(default_factory=set)


class Auth:
    def __init__(self, key: str, password: str, rng: random.Random) -> None:
        self.key, self.password = key, password
        self.oauth = OAuthState()
        self.rng = rng
        self.lock = threading.Lock()
        self.check_timestamps = True

    def add_consumer(self, token: str, secret: str) -> None:
        self.oauth.consumers[token] = secret

    def add_access(self, consumer: str, token: str, secret: str) -> None:
        self.oauth.access[token] = (secret, consumer)

    def _token(self, n: int = 30) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    # ---- API calls --------------------------------------------------------------
    def authenticated(self, req: Request, form: dict[str, list[str]] | None = None) -> bool:
        header = req.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            return self._basic(header[6:])
        params = oauth_params(req, form)
        if not params:
            return False
        with self.lock:
            access = self.oauth.access.get(params.get("oauth_token", ""))
            if access is None:
                return False
            secret, consumer = access
            return consumer == params.get("oauth_consumer_key") and self._verify(params, secret)

    def _basic(self, encoded: str) -> bool:
        try:
            key, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(key, self.key) and hmac.compare_digest(password, self.password)

    def _verify(self, p: dict[str, str], token_secret: str) -> bool:
        """Consumer, PLAINTEXT signature, version, timestamp window, nonce replay."""
        consumer_secret = self.oauth.consumers.get(p.get("oauth_consumer_key", ""))
        if consumer_secret is None or p.get("oauth_signature_method") != "PLAINTEXT":
            return False
        if p.get("oauth_version", "1.0") != "1.0":
            return False
        wanted = f"{pct(consumer_secret)}&{pct(token_secret)}"
        if not hmac.compare_digest(p.get("oauth_signature", ""), wanted):
            return False
        return self._fresh(p)

    def _fresh(self, p: dict[str, str]) -> bool:
        nonce, stamp = p.get("oauth_nonce", ""), p.get("oauth_timestamp", "")
        if not nonce or len(nonce) > 64 or not nonce.isalnum():
            return False
        if self.check_timestamps:
            try:
                if abs(int(stamp) - time.time()) > TIMESTAMP_WINDOW:
                    return False
            except ValueError:
                return False
        key = (p.get("oauth_consumer_key", ""), nonce, stamp)
        if key in self.oauth.nonces:
            return False
        self.oauth.nonces.add(key)
        return True

    # ---- the token dance --------------------------------------------------------
    def request_token(self, req: Request, form: dict[str, list[str]]) -> Response:
        p = oauth_params(req, form)
        with self.lock:
            if p.get("oauth_token") or not self._verify(p, ""):
                return Response.text(403, OAUTH_FAILED)
            token, secret = self._token(), self._token()
            self.oauth.requests[token] = RequestToken(secret, p["oauth_consumer_key"], p.get("oauth_callback"))
        return _form_answer(token, secret)

    def authorize(self, token: str) -> str | None:
        """The user pressed "Allow": the verifier, or None for an unknown token."""
        with self.lock:
            rt = self.oauth.requests.get(token)
            if rt is None or rt.used:
                return None
            rt.verifier = rt.verifier or self._token(12)
            return rt.verifier

    def authorize_page(self, req: Request) -> Response:
        token = req.arg("oauth_token") or ""
        verifier = self.authorize(token)
        if verifier is None:
            return Response.text(404, "Unknown request token")
        callback = self.oauth.requests[token].callback
        if callback and callback != "oob":
            sep = "&" if "?" in callback else "?"
            query = urllib.parse.urlencode({"oauth_token": token, "oauth_verifier": verifier})
            return Response(302, b"", {"Location": f"{callback}{sep}{query}"})
        return Response.text(200, f"Your verification code is: {verifier}")

    def access_token(self, req: Request, form: dict[str, list[str]]) -> Response:
        p = oauth_params(req, form)
        with self.lock:
            rt = self.oauth.requests.get(p.get("oauth_token", ""))
            if (rt is None or rt.used or rt.verifier is None or rt.consumer != p.get("oauth_consumer_key")
                    or not hmac.compare_digest(p.get("oauth_verifier", ""), rt.verifier)
                    or not self._verify(p, rt.secret)):
                return Response.text(403, OAUTH_FAILED)
            rt.used = True  # request tokens are good for one exchange only
            token, secret = self._token(), self._token()
            self.oauth.access[token] = (secret, rt.consumer)
        return _form_answer(token, secret)


def _form_answer(token: str, secret: str) -> Response:
    body = urllib.parse.urlencode({"oauth_token": token, "oauth_token_secret": secret})
    return Response.text(200, body, "application/x-www-form-urlencoded")


def oauth_params(req: Request, form: dict[str, list[str]] | None) -> dict[str, str]:
    """oauth_* from the header, else the body, else the query string."""
    header = req.headers.get("Authorization") or ""
    if header.startswith("OAuth "):
        return _parse_header(header[6:])
    for source in (form or {}, req.query):
        found = {k: v[0] for k, v in source.items() if k.startswith("oauth_") and v}
        if found:
            return found
    return {}


def _parse_header(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in value.split(","):
        key, sep, raw = item.strip().partition("=")
        if sep and key.startswith("oauth_"):
            out[key] = urllib.parse.unquote(raw.strip().strip('"'))
    return out
