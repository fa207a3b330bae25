"""The spec's §9 vectors: signatures, passwords, content addresses, and the signing recipe."""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest

from syncagent import hashing
from syncagent.providers.metadisk.content import SHARD_SIZE, ContentHasher, content_address
from syncagent.providers.metadisk.signing import (
    KeyPair,
    NonceClock,
    basic_header,
    contract,
    password_hash,
    sign_request,
    verify,
)

DOC_PUB = ("043874de22536decc5508257cc806a9e5af5e8be6a80056843d5c0c2b112903430f9a46c128ca17e30e2fb54f541416185dda2df8"
           "78adbb90d66811452f4162125")
DOC_SIG = ("3046022100e5b534eba11f19d4e3e92398e4ffdf8195041a7de13a1ffe8eb3baf66eb694b8022100982837e3b449fc9e4524009acd"
           "03800abf6447cf225a83d6f21bfa67a8326465")
DOC_CONTRACT = 'POST\n/buckets\n{"storage":10,"transfer":30,"name":"MyBucket","__nonce":1453222669376}'
PUB_C = "02505f234a81fe3af88625ebda259dbaec44c72b181e2f64735f8b8ec8d7cf7377"
PUB_U = ("04505f234a81fe3af88625ebda259dbaec44c72b181e2f64735f8b8ec8d7cf737766f224ea0c54423fd914028e8fd81502133f9aef"
         "9f794e5be600355fc5f3a150")
POST_CONTRACT = ('POST\n/buckets\n{"name":"My cat pictures","storage":10,"transfer":10,"pubkeys":'
                 '["02505f234a81fe3af88625ebda259dbaec44c72b181e2f64735f8b8ec8d7cf7377"],"__nonce":1458493993}')
POST_SIG = ("30450220503259ca11833b0df0b53689bdce1e21720f5179178de55b77e10b2c2cca93a7022100f20d8dd355b189f6627e1067e2de"
            "4b808a2484bebe6cb581a4dbb11138270556")
GET_SIG = ("3045022100b2373a6612d687993700e651240f6f930fbcabc9700226eadca01d980ac7fa12022054e282cfea1789d087a4d1af"
           "1266d39d88f81f151cf2beb24e0bd75d3825ffc0")


def test_public_doc_vector_verifies_and_any_changed_byte_fails() -> None:
    data = DOC_CONTRACT.encode()
    assert hashlib.sha256(data).hexdigest() == "606208b7b469ee5a3b039f6b8140ad965c09c99fad7124b61ac4a4ad9f948987"
    assert verify(DOC_PUB, DOC_SIG, data)   # high S accepted
    for i in (0, 5, len(data) // 2, len(data) - 1):
        changed = bytearray(data)
        changed[i] ^= 0x01
        assert not verify(DOC_PUB, DOC_SIG, bytes(changed))


def test_derived_vectors_both_key_forms_and_deterministic_signatures() -> None:
    key = KeyPair.from_hex("1f" * 32)
    assert key.public == PUB_C
    assert KeyPair.from_hex("1f" * 32, compressed=False).public == PUB_U
    assert hashlib.sha256(POST_CONTRACT.encode()).hexdigest() == \
        "7a9603b286fee0f1fc5daacb36bb160733cf63ec282ab6a15555138350bc986e"
    assert key.sign(POST_CONTRACT.encode()) == POST_SIG
    get = contract("GET", "/buckets/56eeda4656bf7b950faace4a/files", "__nonce=1458493994")
    assert key.sign(get) == GET_SIG
    for pub in (PUB_C, PUB_U):
        assert verify(pub, POST_SIG, POST_CONTRACT.encode()) and verify(pub, GET_SIG, get)


def test_a_random_key_round_trips_and_garbage_never_verifies() -> None:
    key = KeyPair.generate()
    again = KeyPair.from_hex(key.private_hex)
    assert again.public == key.public and len(key.public) == 66 and key.public[:2] in ("02", "03")
    sig = key.sign(b"x")
    assert verify(key.public, sig, b"x") and not verify(key.public, sig, b"y")
    assert not verify("zz", sig, b"x") and not verify(key.public, "00", b"x") and not verify(PUB_C[:-2], sig, b"x")
    with pytest.raises(ValueError):
        KeyPair.from_hex("not hex")


def test_passwords_and_basic_header() -> None:
    pw = password_hash("password")
    assert pw == "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
    assert hashlib.sha256(pw.encode()).hexdigest() == \
        "113459eb7bb31bddee85ade5230d6ad5d8b2fb52879e00a84ff6ae1067a210d3"
    assert basic_header("new_user@coinbend.com", pw) == (
        "Basic bmV3X3VzZXJAY29pbmJlbmQuY29tOjVlODg0ODk4ZGEyODA0NzE1MWQwZTU2ZjhkYzYyOTI3NzM2MDNkMGQ2YWFiYmRkNjJhMTFl"
        "ZjcyMWQxNTQyZDg=")


@pytest.mark.parametrize(("data", "address"), [
    (b"Hello MetaDisk API!", "d72d91d8ec94f89f5b6b84be2a03ba661a34c1e2"),
    (b"", "ba084d3f143f2896809d3f1d7dffed472b39d8de"),
    (b"hello world", "81ac71d673080916224ca67d0cb24dd2b63f17e4"),
    (b"test-content\n", "79d9610ac829a141866d83a9d380ec35e6635dd4"),
])
def test_content_addresses(data: bytes, address: str) -> None:
    assert content_address(data) == address
    assert address != "9c1185a5c5e9fc54612808977ee8f548b2258d31"   # the Swagger trap: plain rmd160("")
    hasher = hashing.new_hasher("metadisk")                        # the registered kind, streaming
    for i in range(0, len(data), 3):
        hasher.update(data[i:i + 3])
    assert hasher.hexdigest() == address


def test_nine_mib_file_and_its_two_shards() -> None:
    data = (bytes(range(251)) * ((9 << 20) // 251 + 1))[: 9 << 20]
    assert content_address(data) == "efef57a4f61df5ba3827124f623e55f4b5554317"
    assert content_address(data[:SHARD_SIZE]) == "1cb23629f17483e21b05352c2eac82d4d7e91298"
    assert content_address(data[SHARD_SIZE:]) == "c2be5d2ce12b0727ff8ed6a17c90c48d4515f321"
    streaming = ContentHasher()
    streaming.update(data[:1000])
    streaming.update(data[1000:])
    assert streaming.hexdigest() == "efef57a4f61df5ba3827124f623e55f4b5554317" and streaming.size == len(data)


def test_the_recipe_signs_exactly_what_it_sends() -> None:
    key = KeyPair.from_hex("1f" * 32)
    post = sign_request(key, "post", "/buckets", {"name": "My cat pictures", "storage": 10, "transfer": 10,
                                                 "pubkeys": [PUB_C]}, 1458493993)
    assert post.body is not None and post.target == "/buckets"
    assert post.body.decode() == POST_CONTRACT.split("\n", 2)[2]          # compact JSON, nonce last
    assert post.headers["x-signature"] == POST_SIG and post.headers["x-pubkey"] == PUB_C
    get = sign_request(key, "GET", "/buckets/56eeda4656bf7b950faace4a/files", {}, 1458493994)
    assert get.body is None and get.target == "/buckets/56eeda4656bf7b950faace4a/files?__nonce=1458493994"
    assert get.headers["x-signature"] == GET_SIG
    weird = sign_request(key, "DELETE", "/keys/x", {"a": "b c&d"}, 7)
    qs = weird.target.split("?", 1)[1]
    assert urllib.parse.parse_qs(qs) == {"a": ["b c&d"], "__nonce": ["7"]}
    assert verify(key.public, weird.headers["x-signature"], contract("DELETE", "/keys/x", qs))
    assert json.loads(post.body)["__nonce"] == 1458493993


def test_nonces_strictly_increase_even_within_one_millisecond() -> None:
    clock = NonceClock(now=lambda: 1458493993.5)
    values = [clock.next() for _ in range(5)]
    assert values == [1458493993500 + i for i in range(5)]
