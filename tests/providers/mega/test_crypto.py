"""The spec's §9 test vectors: password keys, user hashes, the v2
derivation, a real captured login and node tree, file encryption and MACs,
ephemeral accounts, public links and the fingerprint."""

from __future__ import annotations

import hashlib
import zlib

import pytest

from syncagent.providers.mega import codec, fingerprint, keys, links
from syncagent.providers.mega.filecrypt import ChunkCoder, FileKey, chunk_start, chunks, is_boundary, meta_mac
from tests.providers.mega import vectors as v


def signed_a32(*words: int) -> bytes:
    return codec.from_a32([w % 2**32 for w in words])


# ---- §9.1 prepare_key, §9.2 stringhash --------------------------------------------
@pytest.mark.parametrize(("password", "expected"), [
    ("password", "640339725e6ebd13a25f0052129f7cb1"),
    ("my kingdom 4 a horse", "fe8db6d715235b4ccd93c610505b57b4"),
    ("a", "6dd9f7ecb24689c435a14f7c51da434d"),
    ("a" * 16, "02bd584f7a572e957842f74f5d5c0dd5"),
    ("a" * 20, "179978af1be326e6f78b0c921a59f92c"),
])
def test_prepare_key(password: str, expected: str) -> None:
    assert keys.prepare_key(password).hex() == expected


def test_prepare_key_signed_words_and_raw_key() -> None:
    assert keys.prepare_key("my kingdom 4 a horse") == signed_a32(-24267049, 354638668, -845953520, 1348163508)
    raw = signed_a32(1684081408, -1313687523, 845282884, -1735274811)
    assert raw.hex() == "64610b00b1b2b81d3261fe449891cec5"
    assert codec.to_a32(keys.prepare_key(raw)) == (1380895471, 1656741118, 372674858, 886637722)


def test_password_words_follow_utf16_code_units() -> None:
    assert keys.password_words("ab") == [0x61620000]
    # é (U+00E9) is one byte slot; € (U+20AC) spills into the byte above its slot
    assert keys.password_words("xé") == [0x78E90000]
    assert keys.password_words("x€") == [(0x78000000 | (0x20AC << 16)) & 0xFFFFFFFF]
    # above U+FFFF: a surrogate pair, two slots
    assert len(keys.password_words("😀")) == 1 and keys.password_words("😀")[0] != 0


def test_stringhash() -> None:
    assert keys.stringhash("sjobs@apple.com", bytes.fromhex("cf8cf170d8f46bc4cdade84d3bf67d96")) == "snWuwnlz45w"
    assert keys.stringhash("user@example.org", keys.prepare_key("password")) == "kZCVurgWq0s"
    assert keys.v1_login("User@Example.org", "password")[1] == "kZCVurgWq0s"


# ---- §9.3 v2 derivation ---------------------------------------------------------------
def test_v2_derivation_real_account() -> None:
    pw_key, uh = keys.derive_v2(v.PASSWORD, codec.b64dec(v.SALT))
    assert uh == v.UH
    assert keys.decrypt_master_key(pw_key, v.K).hex() == "339a52c115c078c36b2aef3f745cabb5"


def test_v2_derivation_synthetic() -> None:
    salt = bytes(range(32))
    assert codec.b64enc(salt) == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
    pw_key, uh = keys.derive_v2("password", salt)
    assert pw_key.hex() == "9769ce288f394a218fdacad1dc63eb96"
    assert uh == "OQqu7-clgvDpObOMQZJRDQ"


# ---- §9.4 encodings -------------------------------------------------------------------
def test_base64_and_a32() -> None:
    assert codec.b64enc(bytes.fromhex("fbffbf")) == "-_-_"
    assert codec.b64enc(b"ice_lord") == "aWNlX2xvcmQ"
    assert codec.b64dec("c29ycnkgaSBhbSBidXN5") == b"sorry i am busy"
    assert codec.b64dec("aWNl,X2xvcmQ=") == b"ice_lord"
    assert codec.to_a32(b"MEGA1") == (1296385857, 822083584)
    with pytest.raises(codec.BadEncoding):
        codec.b64dec("abcde")
    assert codec.unserialize64(codec.serialize64(1705163815)) == 1705163815
    assert codec.serialize64(0) == b"\0"


# ---- §9.6 the real login and tree ---------------------------------------------------------
@pytest.fixture(scope="module")
def master_key() -> bytes:
    pw_key, _ = keys.derive_v2(v.PASSWORD, codec.b64dec(v.SALT))
    return keys.decrypt_master_key(pw_key, v.K)


def test_real_private_key_and_session(master_key: bytes) -> None:
    rsa = keys.decrypt_private_key(master_key, v.PRIVK)
    assert len(codec.b64dec(v.PRIVK)) == 656
    assert rsa.p.bit_length() == 1024 and rsa.q.bit_length() == 1024 and rsa.n.bit_length() == 2048
    (n, e), _ = codec.read_mpis(codec.b64dec(v.PUBK), 2)
    assert n == rsa.n and e == 257
    assert keys.session_from_csid(rsa, v.CSID, v.USER) == v.SID
    with pytest.raises(keys.CryptoError):
        keys.session_from_csid(rsa, v.CSID, "AAAAAAAAAAA")


def test_wrong_master_key_fails_the_private_key() -> None:
    with pytest.raises(keys.CryptoError):
        keys.decrypt_private_key(bytes(16), v.PRIVK)


def test_real_nodes_decrypt(master_key: bytes) -> None:
    own = {v.USER: master_key}
    folder, file = v.NODES[3], v.NODES[4]
    folder_key = keys.decrypt_node_key(folder["k"], own)  # type: ignore[arg-type]
    assert folder_key is not None and folder_key.hex() == "42df9ad3750c389f015913ea7ecdd416"
    assert keys.decrypt_attrs(folder["a"], folder_key) == {"n": "test-folder"}  # type: ignore[arg-type]
    packed = keys.decrypt_node_key(file["k"], own)  # type: ignore[arg-type]
    assert packed is not None
    assert packed.hex() == "1dd73677d860e111afc4aef03ff6751530a8777d0367e55de33d9ad0c2072e98"
    attrs = keys.decrypt_attrs(file["a"], FileKey.unpack(packed).key)  # type: ignore[arg-type]
    assert attrs == {"c": "dGVzdC1jb250ZW50CgAAAAQnvKJl", "n": "test-file.txt"}
    fp = fingerprint.Fingerprint.parse(attrs["c"])
    assert fp == fingerprint.Fingerprint(b"test-content\n\0\0\0", 1705163815)
    assert fp == fingerprint.fingerprint_bytes(b"test-content\n", 1705163815)
    assert fp.attr() == attrs["c"]
    assert keys.decrypt_attrs(file["a"], bytes(16)) is None  # type: ignore[arg-type]
    assert keys.decrypt_node_key(file["k"], {"someoneElse": master_key}) is None  # type: ignore[arg-type]


# ---- §9.5 file encryption ------------------------------------------------------------------
K = bytes(range(16))
N = bytes.fromhex("a0a1a2a3a4a5a6a7")
MK = bytes.fromhex("00112233445566778899aabbccddeeff")


def encrypt_all(data: bytes) -> tuple[bytes, list[bytes], FileKey]:
    coder = ChunkCoder(FileKey(K, N))
    out, macs = b"", []
    for offset, length in chunks(len(data)):
        c, mac = coder.encrypt(offset, data[offset:offset + length])
        out += c
        macs.append(mac)
    return out, macs, FileKey(K, N, meta_mac(K, macs))


def test_small_file() -> None:
    cipher, macs, key = encrypt_all(b"hello MEGA")
    assert cipher.hex() == "b34df8f0518df025204a"
    assert [m.hex() for m in macs] == ["76efe715896fe6ca55eef5670d714265"]
    assert key.meta_mac.hex() == "2febed2c93c8c581"
    assert key.pack().hex() == "a0a0a0a0a0a0a0a027e2e7279fc5cb8ea0a1a2a3a4a5a6a72febed2c93c8c581"
    assert key.link_key() == "oKCgoKCgoKAn4ucnn8XLjqChoqOkpaanL-vtLJPIxYE"
    assert keys.encrypt_node_key(MK, key.pack()) == "eUX9d0ANCvc3Eg4hq6tc-_Lm-7k49ucz47f2uD-_dCQ"
    assert FileKey.unpack(key.pack()) == key
    plain, mac = ChunkCoder(key).decrypt(0, cipher)
    assert plain == b"hello MEGA" and mac == macs[0]


def test_400k_file() -> None:
    data = bytes(i % 251 for i in range(400_000))
    assert list(chunks(len(data))) == [(0, 131072), (131072, 262144), (393216, 6784)]
    cipher, macs, key = encrypt_all(data)
    assert [m.hex() for m in macs] == ["6c733406716e0fdf245f39eb36f60da7", "a1baf77fe74e88901fb5ef4e984bca73",
                                       "66f218d83658bd35790672b4407b77b0"]
    assert key.meta_mac.hex() == "a989e11334421321"
    assert hashlib.sha256(cipher).hexdigest() == "c8591cd04cc1d65bbb259acc2e0222f91c4d928b2bca0fb4d2b0d6edc7542b6e"
    assert key.pack().hex() == "a0a0a0a0a0a0a0a0a180eb18384f1d2ea0a1a2a3a4a5a6a7a989e11334421321"


def test_empty_file() -> None:
    assert list(chunks(0)) == []
    _, macs, key = encrypt_all(b"")
    assert macs == [] and key.meta_mac == bytes(8)
    assert key.pack().hex() == "a0a0a0a0a0a0a0a008090a0b0c0d0e0fa0a1a2a3a4a5a6a70000000000000000"


def test_attributes() -> None:
    assert keys.encrypt_attrs({"n": "hello.txt"}, K) == "PXKaKROX-3KfhCRae1zd6qp8ZOUIggiCiWGYp_LR_DE"
    folder = bytes.fromhex("0f0e0d0c0b0a09080706050403020100")
    assert keys.encrypt_attrs({"n": "Docs"}, folder) == "helbg1NhSiYucRbx8yCrGg"
    assert keys.encrypt_node_key(MK, folder) == "Mj52MVNCJkFQhc6KT-sjuw"
    assert keys.decrypt_attrs(keys.encrypt_attrs({"n": "≠ é 世界"}, K), K) == {"n": "≠ é 世界"}


def test_chunk_table_10mb() -> None:
    table = list(chunks(10_000_000))
    assert table[:8] == [(0, 131072), (131072, 262144), (393216, 393216), (786432, 524288), (1310720, 655360),
                         (1966080, 786432), (2752512, 917504), (3670016, 1048576)]
    assert all(length == 1 << 20 for _, length in table[8:-1])
    assert table[-1] == (9961472, 38528)
    assert chunk_start(131071) == 0 and chunk_start(131072) == 131072 and chunk_start(4_800_000) == 4718592
    assert is_boundary(393216, 10_000_000) and not is_boundary(393217, 10_000_000)
    assert is_boundary(10_000_000, 10_000_000)


def test_chunks_decrypt_independently() -> None:
    data = bytes(i % 253 for i in range(1_500_000))
    cipher, macs, key = encrypt_all(data)
    coder = ChunkCoder(key)
    for (offset, length), mac in zip(chunks(len(data)), macs, strict=True):
        plain, got = coder.decrypt(offset, cipher[offset:offset + length])
        assert plain == data[offset:offset + length] and got == mac


# ---- §9.8 ephemeral accounts ------------------------------------------------------------------
def test_ephemeral() -> None:
    pk = bytes.fromhex("ffeeddccbbaa99887766554433221100")
    eph = keys.new_ephemeral(MK, pk, bytes(range(100, 116)))
    assert eph.k == "2koI__qSsxkSOgcTKiBlxg"
    assert eph.ts == "ZGVmZ2hpamtsbW5vcHFyc1SV528GbBtOHdvGueltqLk"
    tsid = "ZGVmZ2hpamtsbW5vcHFyc0FRSURCQVVHQndnVJXnbwZsG04d28a56W2ouQ"
    assert keys.decrypt_master_key(pk, eph.k) == MK
    assert keys.check_tsid(MK, tsid) == tsid
    with pytest.raises(keys.CryptoError):
        keys.check_tsid(bytes(16), tsid)


# ---- §9.7 public links -----------------------------------------------------------------------
def test_legacy_link() -> None:
    link = links.parse_link("https://mega.co.nz/#!2ctGgQAI!AkJMowjRiXVcSrRLn3d-e1vl47ZxZEK0CbrHGIKFY-E")
    assert link.handle == "2ctGgQAI" and not link.folder
    assert codec.b64dec(link.handle).hex() == "d9cb46810008"
    key = FileKey.unpack(link.key)
    assert key.key.hex() == "59a7af1579b5cbc155f073531df21d9a"
    assert key.nonce.hex() == "5be5e3b6716442b4" and key.meta_mac.hex() == "09bac718828563e1"
    assert link.url() == "https://mega.nz/file/2ctGgQAI#AkJMowjRiXVcSrRLn3d-e1vl47ZxZEK0CbrHGIKFY-E"


def test_new_links_and_bad_ones() -> None:
    key = "oKCgoKCgoKAn4ucnn8XLjqChoqOkpaanL-vtLJPIxYE"
    assert links.parse_link(f"https://mega.nz/file/AbCd-_12#{key}").handle == "AbCd-_12"
    folder = links.parse_link("https://mega.nz/folder/AbCd-_12#Mj52MVNCJkFQhc6KT-sjuw")
    assert folder.folder and len(folder.key) == 16
    assert links.parse_link("https://mega.nz/#F!AbCd-_12!Mj52MVNCJkFQhc6KT-sjuw").folder
    assert links.is_link(f"mega.nz/file/AbCd-_12#{key}")
    for bad in ("https://example.com/file/AbCd-_12#" + key, "https://mega.nz/file/AbCd-_12#short",
                "https://mega.nz/file/AbCd#" + key):
        assert not links.is_link(bad) or bad.endswith("short")
        with pytest.raises(ValueError):
            links.parse_link(bad)


# ---- the fingerprint --------------------------------------------------------------------------
def reference_crc(data: bytes) -> bytes:
    """The SDK's algorithm written the obvious way (random access), to check the streaming one."""
    size = len(data)
    if size <= 16:
        return data + bytes(16 - size)
    if size <= 8192:
        return b"".join(zlib.crc32(data[i * size // 4:(i + 1) * size // 4]).to_bytes(4, "big") for i in range(4))
    out = b""
    for lane in range(4):
        crc = 0
        for j in range(32):
            at = (size - 64) * (lane * 32 + j) // 127
            crc = zlib.crc32(data[at:at + 64], crc)
        out += crc.to_bytes(4, "big")
    return out


@pytest.mark.parametrize("size", [0, 1, 16, 17, 100, 8192, 8193, 8256, 100_000, 1_234_567])
@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_fingerprint_streams(size: int, step: int) -> None:
    if step == 1 and size > 10_000:
        pytest.skip("byte-by-byte only on small sizes (slow)")
    data = hashlib.shake_256(str(size).encode()).digest(size)
    sampler = fingerprint.CrcSampler(size)
    for i in range(0, size, step):
        sampler.update(data[i:i + step])
    assert sampler.digest() == reference_crc(data)


def test_the_registered_hasher_is_the_c_attribute() -> None:
    import syncagent.providers.mega  # noqa: F401 (registers the kind)
    from syncagent import hashing

    data = b"test-content\n"
    hasher = hashing.new_hasher("mega", size=len(data), mtime_ns=1705163815_999_999_999)
    hasher.update(data)
    assert hasher.hexdigest() == "dGVzdC1jb250ZW50CgAAAAQnvKJl"
    assert fingerprint.canonical("dGVzdC1jb250ZW50CgAAAAQnvKJl") == "dGVzdC1jb250ZW50CgAAAAQnvKJl"
    assert fingerprint.canonical("short") is None


def test_fingerprint_covers_samples_and_mtime() -> None:
    data = bytearray(hashlib.shake_256(b"x").digest(100_000))
    before = fingerprint.fingerprint_bytes(bytes(data), 0)
    data[0] ^= 1
    assert fingerprint.fingerprint_bytes(bytes(data), 0) != before
    data[0] ^= 1
    data[50_000] ^= 1   # not sampled: the same CRCs, which is why the mtime is part of the hash
    assert fingerprint.fingerprint_bytes(bytes(data), 0) == before
    assert fingerprint.fingerprint_bytes(bytes(data), 1) != before
    with pytest.raises(ValueError):
        fingerprint.CrcSampler(10).digest()
