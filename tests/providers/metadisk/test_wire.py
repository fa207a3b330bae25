"""The emulator checks what the 2016 bridge checked (spec §7), on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from syncagent.providers.metadisk.content import content_address
from syncagent.providers.metadisk.signing import KeyPair, basic_header, password_hash, sign_request
from tests.emulators.metadisk.fixtures import EMAIL, PASSWORD, MetadiskSetup, metadisk_setup


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[MetadiskSetup]:
    with metadisk_setup(tmp_path) as setup:
        yield setup


class Client:
    def __init__(self, emu: MetadiskSetup, key: KeyPair) -> None:
        self.emu, self.key, self.nonce = emu, key, 1000

    def signed(self, method: str, path: str, params: dict[str, Any] | None = None, *,
               nonce: int | None = None, tamper: bool = False) -> requests.Response:
        if nonce is None:
            self.nonce += 1
        req = sign_request(self.key, method, path, params or {}, nonce if nonce is not None else self.nonce)
        body = req.body + b" " if tamper and req.body is not None else req.body
        return requests.request(method, self.emu.url + req.target, data=body, headers=req.headers, timeout=10)

    def basic(self, method: str, path: str, body: Any = None, password: str = PASSWORD) -> requests.Response:
        headers = {"Authorization": basic_header(EMAIL, password_hash(password))}
        return requests.request(method, self.emu.url + path, json=body, headers=headers, timeout=10)

    def bucket(self) -> str:
        return str(self.signed("POST", "/buckets", {"name": "b"}).json()["id"])

    def token(self, bucket: str, op: str) -> str:
        return str(self.signed("POST", f"/buckets/{bucket}/tokens", {"operation": op}).json()["token"])

    def upload(self, bucket: str, data: bytes, *, declared: int | None = None, token: str | None = None,
               name: str = "f.bin") -> requests.Response:
        headers = {"x-token": token or self.token(bucket, "PUSH"),
                   "x-filesize": str(len(data) if declared is None else declared)}
        return requests.put(f"{self.emu.url}/buckets/{bucket}/files", headers=headers, timeout=10,
                            files={"file": (name, data, "application/octet-stream")})


@pytest.fixture
def client(emu: MetadiskSetup) -> Client:
    return Client(emu, emu.key)


def test_register_activate_and_key_management_with_basic(emu: MetadiskSetup) -> None:
    pw = password_hash("s3cret")
    r = requests.post(emu.url + "/users", json={"email": "x@y.org", "password": pw}, timeout=10)
    assert r.status_code == 200 and r.json()["activated"] is False and set(r.json()) == {
        "id", "activated", "email", "created"}
    again = requests.post(emu.url + "/users", json={"email": "x@y.org", "password": pw}, timeout=10)
    assert again.status_code == 500 and again.json() == {"error": "Email is already registered"}
    bad = requests.post(emu.url + "/users", json={"email": "z@y.org", "password": "short"}, timeout=10)
    assert bad.status_code == 500 and "SHA-256" in bad.json()["error"]
    auth = {"Authorization": basic_header("x@y.org", pw)}
    assert requests.get(emu.url + "/keys", headers=auth, timeout=10).status_code == 401   # not activated
    token = emu.app.activations[-1]
    assert len(token) == 64
    assert requests.get(f"{emu.url}/activations/{token}", timeout=10).json()["activated"] is True
    assert requests.get(f"{emu.url}/activations/{token}", timeout=10).status_code == 400   # used
    key = KeyPair.generate(compressed=False)
    added = requests.post(emu.url + "/keys", json={"key": key.public}, headers=auth, timeout=10)
    assert added.json() == {"user": "x@y.org", "key": key.public, "id": key.public}
    dup = requests.post(emu.url + "/keys", json={"key": key.public}, headers=auth, timeout=10)
    assert dup.status_code == 400 and "already registered" in dup.json()["error"]
    removed = requests.delete(f"{emu.url}/keys/{key.public}", headers=auth, timeout=10)
    assert removed.status_code == 200 and removed.content == b""
    assert requests.delete(f"{emu.url}/keys/{key.public}", headers=auth, timeout=10).status_code == 404


def test_strategy_and_signature_checks_in_order(emu: MetadiskSetup, client: Client) -> None:
    assert requests.get(emu.url + "/buckets", timeout=10).json() == {"error": "No authentication strategy detected"}
    assert client.basic("GET", "/buckets", password="wrong").status_code == 500     # 2016's accidental 500
    emu.app.configure({"modern_status": True})
    assert client.basic("GET", "/buckets", password="wrong").status_code == 401
    emu.app.configure({"modern_status": False})
    assert client.signed("GET", "/buckets").status_code == 200
    tampered = client.signed("POST", "/buckets", {"name": "x"}, tamper=True)
    assert tampered.status_code == 401 and tampered.json()["error"] == "Invalid signature"
    stranger = Client(emu, KeyPair.generate())
    assert stranger.signed("GET", "/buckets").json()["error"] == "Public key not registered"
    # the uncompressed form of a registered compressed key is another string: not registered
    other_form = Client(emu, KeyPair(emu.key.private, compressed=False))
    assert other_form.signed("GET", "/buckets").json()["error"] == "Public key not registered"


def test_nonce_modes(emu: MetadiskSetup, client: Client) -> None:
    assert client.signed("GET", "/buckets", nonce=500).status_code == 200
    assert client.signed("GET", "/buckets", nonce=500).status_code == 200          # equal: accepted (2016)
    stale = client.signed("GET", "/buckets", nonce=499)
    assert stale.status_code == 401 and stale.json()["error"] == "Invalid nonce supplied"
    emu.app.configure({"nonce_mode": "strict"})
    assert client.signed("GET", "/buckets", nonce=500).status_code == 401
    assert client.signed("GET", "/buckets", nonce=501).status_code == 200
    emu.app.configure({"nonce_mode": "unique"})
    assert client.signed("GET", "/buckets", nonce=7).status_code == 200            # any unseen value
    assert client.signed("GET", "/buckets", nonce=7).status_code == 401


def test_tokens_are_single_use_bound_and_expire(emu: MetadiskSetup, client: Client) -> None:
    bucket = client.bucket()
    assert client.signed("POST", f"/buckets/{bucket}/tokens", {"operation": "DELETE"}).status_code == 500
    token = client.token(bucket, "PUSH")
    assert client.upload(bucket, b"hello", token=token).status_code == 200
    reused = client.upload(bucket, b"hello", token=token)
    assert reused.status_code == 500 and reused.json()["error"] == "Invalid or expired token"
    pull = client.token(bucket, "PULL")
    wrong_op = client.upload(bucket, b"hello", token=pull)
    assert wrong_op.status_code == 401 and "Not authorized" in wrong_op.json()["error"]
    late = client.token(bucket, "PUSH")
    emu.app.configure({"advance": 301})
    assert client.upload(bucket, b"hello", token=late).json()["error"] == "Invalid or expired token"


def test_a_bucket_can_grant_tokens_to_an_unregistered_key(emu: MetadiskSetup, client: Client) -> None:
    guest = KeyPair.generate()
    bucket = str(client.signed("POST", "/buckets", {"name": "shared", "pubkeys": [guest.public]}).json()["id"])
    granted = Client(emu, guest).signed("POST", f"/buckets/{bucket}/tokens", {"operation": "PULL"}, nonce=1)
    assert granted.status_code == 200 and granted.json()["operation"] == "PULL"
    other = client.bucket()
    refused = Client(emu, guest).signed("POST", f"/buckets/{other}/tokens", {"operation": "PULL"}, nonce=2)
    assert refused.status_code == 404 and refused.json()["error"] == "Bucket not found"


def test_upload_sizes_listing_pointers_and_the_data_channel(emu: MetadiskSetup, client: Client) -> None:
    bucket = client.bucket()
    assert client.upload(bucket, b"x", declared=None).status_code == 200
    missing = requests.put(f"{emu.url}/buckets/{bucket}/files", headers={"x-token": client.token(bucket, "PUSH")},
                           files={"file": ("a", b"abc")}, timeout=10)
    assert missing.status_code == 400 and "x-filesize" in missing.json()["error"]
    assert client.upload(bucket, b"abcd", declared=3).json()["error"] == "File size exceeds declared size"
    assert client.upload(bucket, b"ab", declared=3).json()["error"] == "File does not match the declared size"
    data = (bytes(range(251)) * ((9 << 20) // 251 + 1))[: 9 << 20]
    stored = client.upload(bucket, data, name="nine.bin").json()
    assert stored == {"mimetype": "application/octet-stream", "hash": "efef57a4f61df5ba3827124f623e55f4b5554317",
                      "size": 9 << 20, "bucket": bucket, "filename": "nine.bin"}
    listing = client.signed("GET", f"/buckets/{bucket}/files").json()
    assert {e["hash"] for e in listing} == {content_address(b"x"), stored["hash"]}
    pointers = requests.get(f"{emu.url}/buckets/{bucket}/files/{stored['hash']}", timeout=10,
                            headers={"x-token": client.token(bucket, "PULL")}).json()
    assert [p["hash"] for p in pointers] == ["1cb23629f17483e21b05352c2eac82d4d7e91298",
                                             "c2be5d2ce12b0727ff8ed6a17c90c48d4515f321"]
    assert all(p["channel"].startswith("ws://127.0.0.1:") and p["operation"] == "PULL" for p in pointers)
    assert _fetch(pointers[1]) == (websocket.ABNF.OPCODE_BINARY, data[8 << 20:])
    assert _fetch(pointers[1]) == (websocket.ABNF.OPCODE_TEXT, {"code": 400,
                                                                 "message": "The supplied token is not accepted"})
    assert _fetch({**pointers[0], "hash": pointers[1]["hash"]})[1] == {"code": 400,
                                                                      "message": "Token not valid for hash"}
    unknown = requests.get(f"{emu.url}/buckets/{bucket}/files/{'0' * 40}", timeout=10,
                           headers={"x-token": client.token(bucket, "PULL")})
    assert unknown.status_code == 404 and unknown.json()["error"] == "The requested file was not found"


def test_deletes_answer_as_the_spec_says(emu: MetadiskSetup, client: Client) -> None:
    bucket = client.bucket()
    address = client.upload(bucket, b"bye").json()["hash"]
    gone = client.signed("DELETE", f"/buckets/{bucket}/files/{address}")
    assert gone.status_code == 204 and gone.content == b""
    assert client.signed("DELETE", f"/buckets/{bucket}/files/{address}").json()["error"] == "File not found"
    assert client.signed("DELETE", f"/buckets/{bucket}").status_code == 204
    assert "not found" in client.signed("GET", f"/buckets/{bucket}").json()["error"]


def _fetch(pointer: dict[str, Any]) -> tuple[int, Any]:
    ws = websocket.create_connection(pointer["channel"], timeout=10)
    try:
        ws.send(json.dumps({"token": pointer["token"], "hash": pointer["hash"], "operation": "PULL"}))
        data = bytearray()
        while True:
            opcode, frame = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                return opcode, json.loads(frame)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return websocket.ABNF.OPCODE_BINARY, bytes(data)
            data += frame
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
