"""The Metadisk bridge (Bridge@8771269) over the shared emulator core: the
routes of spec §4 with the checks of §7, and the data channel beside it.

Options (create/configure): nonce_mode (monotonic|strict|unique),
modern_status (400/401 where 2016 answered 500), shard_size, advance
(seconds to move the clock: token expiry), storage (a folder for shards).
Fault kinds beyond the transport ones: token-refused (the next x-token is
refused as expired), and the data channel's (channel.py).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.emulators.base import Request, Response
from tests.emulators.faults import Fault, Faults
from tests.emulators.forms import BadForm, parse_form
from tests.emulators.metadisk.accounts import Accounts, ApiError, Caller
from tests.emulators.metadisk.channel import DataChannel
from tests.emulators.metadisk.store import Bucket, Store

Handler = Callable[[Request, bytes, re.Match[str]], Response]
APP_KINDS = frozenset({"token-refused"})


class MetadiskApp:
    name = "metadisk"

    def __init__(self, *, storage: str | None = None, shard_size: int | None = None) -> None:
        self.offset = 0.0
        self.lock = threading.RLock()
        self.activations: list[str] = []
        self.accounts = Accounts(self.now, self._log)
        self.store = Store(self.now, storage, **({"shard_size": shard_size} if shard_size else {}))
        self.faults: Faults | None = None
        self.base_url = ""
        self.modern_status = False
        self.channel = DataChannel(self.store, lambda: self.faults)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"^/$"), self._spec),
            ("POST", re.compile(r"^/users$"), self._register),
            ("GET", re.compile(r"^/activations/(?P<token>[^/]+)$"), self._activate),
            ("GET", re.compile(r"^/keys$"), self._keys),
            ("POST", re.compile(r"^/keys$"), self._add_key),
            ("DELETE", re.compile(r"^/keys/(?P<key>[^/]+)$"), self._remove_key),
            ("GET", re.compile(r"^/buckets$"), self._buckets),
            ("POST", re.compile(r"^/buckets$"), self._create_bucket),
            ("GET", re.compile(r"^/buckets/(?P<id>[^/]+)$"), self._bucket),
            ("PATCH", re.compile(r"^/buckets/(?P<id>[^/]+)$"), self._update_bucket),
            ("DELETE", re.compile(r"^/buckets/(?P<id>[^/]+)$"), self._delete_bucket),
            ("POST", re.compile(r"^/buckets/(?P<id>[^/]+)/tokens$"), self._token),
            ("PUT", re.compile(r"^/buckets/(?P<id>[^/]+)/files$"), self._upload),
            ("GET", re.compile(r"^/buckets/(?P<id>[^/]+)/files$"), self._files),
            ("GET", re.compile(r"^/buckets/(?P<id>[^/]+)/files/(?P<hash>[^/]+)$"), self._pointers),
            ("DELETE", re.compile(r"^/buckets/(?P<id>[^/]+)/files/(?P<hash>[^/]+)$"), self._delete_file),
        ]

    # ---- the App protocol ------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def _log(self, line: str) -> None:
        self.activations.append(line.rsplit("/", 1)[-1])
        print(f"metadisk emulator: {line}", file=sys.stderr, flush=True)

    def configure(self, options: dict[str, Any]) -> None:
        if "nonce_mode" in options:
            self.accounts.nonce_mode = str(options["nonce_mode"])
        if "modern_status" in options:
            self.modern_status = str(options["modern_status"]).lower() in ("1", "true", "yes")
        if "shard_size" in options:
            self.store.shard_size = int(options["shard_size"])
        if "advance" in options:
            self.offset += float(options["advance"])

    def close(self) -> None:
        self.channel.close()
        self.store.close()

    def fault_response(self, fault: Fault) -> Response:
        status = int(fault.kind) if fault.kind.isdigit() else 500
        headers = {"Retry-After": f"{fault.retry_after:g}"} if status in (429, 503) else {}
        return Response.json(status, {"error": f"injected {fault.kind}"}, **headers)

    def handle(self, request: Request) -> Response:
        raw = request.body.read()
        path = request.raw_path
        for method, pattern, handler in self.routes:
            m = pattern.match(path)
            if m is not None and method == request.method:
                try:
                    return handler(request, raw, m)
                except ApiError as err:
                    status = err.modern if self.modern_status else err.status
                    return Response.json(status, {"error": err.message})
        return Response.json(404, {"error": "Not found"})

    def _caller(self, request: Request, raw: bytes) -> Caller:
        return self.accounts.authenticate(request, raw)

    # ---- routes: accounts ------------------------------------------------------------------
    def _spec(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        return Response.json(200, {"swagger": "2.0", "info": {"title": "MetaDisk API", "version": "0.2.4"},
                                   "host": request.headers.get("Host", ""), "paths": {}})

    def _register(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        user = self.accounts.register(_json(raw))
        body = user.as_json()
        pubkey = _json(raw).get("pubkey")
        return Response.json(200, {**body, **({"pubkey": pubkey} if pubkey else {})})

    def _activate(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        user = self.accounts.activate(m["token"])
        redirect = request.arg("redirect")
        if redirect:
            return Response(302, b"", {"Location": redirect})
        return Response.json(200, user.as_json())

    def _keys(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        return Response.json(200, self.accounts.keys_of(self._caller(request, raw).email))

    def _add_key(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        caller = self._caller(request, raw)
        return Response.json(200, self.accounts.add_key(caller.email, str(_json(raw).get("key") or "")))

    def _remove_key(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        self.accounts.remove_key(self._caller(request, raw).email, m["key"])
        return Response(200, b"")

    # ---- routes: buckets -------------------------------------------------------------------
    def _buckets(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        email = self._caller(request, raw).email
        return Response.json(200, [b.as_json() for b in self.store.buckets.values() if b.user == email])

    def _create_bucket(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        caller = self._caller(request, raw)
        body = _json(raw)
        pubkeys = [str(k) for k in body.get("pubkeys") or []]
        if caller.pubkey and caller.pubkey not in pubkeys:
            pubkeys.append(caller.pubkey)
        _check_keys(pubkeys)
        bucket = Bucket(self.store.new_id(), caller.email, str(body.get("name") or "New Bucket"),
                        int(body.get("storage") or 10), int(body.get("transfer") or 30), pubkeys, self.now())
        with self.store.lock:
            self.store.buckets[bucket.id] = bucket
        return Response.json(200, bucket.as_json())

    def _bucket(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        return Response.json(200, self.store.bucket_of(m["id"], self._caller(request, raw).email).as_json())

    def _update_bucket(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        bucket = self.store.bucket_of(m["id"], self._caller(request, raw).email)
        body = _json(raw)
        if "pubkeys" in body:
            _check_keys([str(k) for k in body["pubkeys"]])
            bucket.pubkeys = [str(k) for k in body["pubkeys"]]
        for name in ("storage", "transfer"):
            if name in body:
                setattr(bucket, name, int(body[name]))
        if "name" in body:
            bucket.name = str(body["name"])
        return Response.json(200, bucket.as_json())

    def _delete_bucket(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        bucket = self.store.bucket_of(m["id"], self._caller(request, raw).email)
        with self.store.lock:
            del self.store.buckets[bucket.id]
        return Response(204, b"")

    # ---- routes: tokens and files ------------------------------------------------------------
    def _token(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        """Spec §4.5: normal auth and the owner, or a valid signature by a key the bucket lists."""
        try:
            caller = self._caller(request, raw)
            bucket = self.store.bucket_of(m["id"], caller.email)
        except ApiError as err:
            signature, pubkey = request.headers.get("x-signature"), request.headers.get("x-pubkey")
            if err.status == 404 or not (signature and pubkey) or request.headers.get("Authorization"):
                raise
            if not self.accounts.signature_valid(request, raw, signature, pubkey):
                raise
            found = self.store.buckets.get(m["id"])
            if found is None or pubkey not in found.pubkeys:
                raise ApiError(404, "Bucket not found") from None
            bucket = found
        token = self.store.new_token(bucket, str(_json(raw).get("operation") or ""))
        return Response.json(200, {"operation": token.operation, "expires": _date(token.expires),
                                   "bucket": bucket.id, "token": token.token, "id": token.token})

    def _x_token(self, request: Request, bucket_id: str, operation: str, verb: str) -> Bucket:
        token = self.store.consume(request.headers.get("x-token"))
        if self.faults is not None and self.faults.take(request.method, request.raw_path, kinds=APP_KINDS):
            raise ApiError(500, "Invalid or expired token", 401)
        return self._token_bucket(token.bucket, token.operation, bucket_id, operation, verb)

    def _token_bucket(self, token_bucket: str, token_op: str, bucket_id: str, operation: str, verb: str) -> Bucket:
        bucket = self.store.bucket_of(bucket_id, None)
        if token_bucket != bucket_id or token_op != operation:
            raise ApiError(401, f"Not authorized to {verb} bucket")
        return bucket

    def _upload(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        token = self.store.consume(request.headers.get("x-token"))
        if self.faults is not None and self.faults.take(request.method, request.raw_path, kinds=APP_KINDS):
            raise ApiError(500, "Invalid or expired token", 401)
        try:
            declared = int(request.headers.get("x-filesize") or "")
            if declared < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "Missing or invalid x-filesize header sent") from None
        bucket = self._token_bucket(token.bucket, token.operation, m["id"], "PUSH", "store in")
        request.body.seek(0)
        try:
            form = parse_form(request.headers, request.body)
        except BadForm as exc:
            raise ApiError(400, str(exc)) from None
        try:
            if not form.files:
                raise ApiError(400, "No file part in the upload")
            part = form.files[0]
            part.data.seek(0)
            address, size = self.store.store_file(part.data, declared)
        finally:
            form.close()
        mimetype = part.content_type or "application/octet-stream"
        with self.store.lock:
            bucket.entries[address] = {"name": part.filename or address, "mimetype": mimetype}
        return Response.json(200, {"mimetype": mimetype, "hash": address, "size": size, "bucket": bucket.id,
                                   "filename": part.filename or address})

    def _files(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        bucket = self.store.bucket_of(m["id"], self._caller(request, raw).email)
        with self.store.lock:
            out = [{"mimetype": e["mimetype"], "hash": h, "size": self.store.files[h][0], "bucket": bucket.id,
                    "filename": e["name"] or h} for h, e in bucket.entries.items()]
        return Response.json(200, out)

    def _pointers(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        bucket = self._x_token(request, m["id"], "PULL", "retrieve from")
        with self.store.lock:
            if m["hash"] not in bucket.entries:
                raise ApiError(404, "The requested file was not found")
            _, shards = self.store.files[m["hash"]]
        channel = self.channel.url
        return Response.json(200, [{"hash": s, "token": self.store.farmer_token(s), "operation": "PULL",
                                    "channel": channel} for s in shards])

    def _delete_file(self, request: Request, raw: bytes, m: re.Match[str]) -> Response:
        bucket = self.store.bucket_of(m["id"], self._caller(request, raw).email)
        with self.store.lock:
            if bucket.entries.pop(m["hash"], None) is None:
                raise ApiError(404, "File not found")
        return Response(204, b"")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "Bad JSON body") from None
    return body if isinstance(body, dict) else {}


def _check_keys(keys: list[str]) -> None:
    from syncagent.providers.metadisk.signing import valid_public_key

    for key in keys:
        if not valid_public_key(key):
            raise ApiError(400, f"Invalid public key supplied: {key[:20]}")


def _date(t: float) -> str:
    from tests.emulators.metadisk.accounts import js_date

    return js_date(t)
