"""The Metadisk provider over its emulator: the manifest with two writers,
equal content stored once, unreferenced content collected, verified
downloads through faults, the provider state, and the error mapping."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncagent import errors
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.metadisk.api import Bridge
from syncagent.providers.metadisk.content import content_address
from syncagent.providers.metadisk.provider import MetadiskProvider
from syncagent.providers.metadisk.signing import KeyPair, password_hash
from syncagent.providers.metadisk.transport import Api, Credentials
from tests.emulators.metadisk.fixtures import EMAIL, FAST, PASSWORD, MetadiskSetup, metadisk_setup
from tests.helpers import tree, write


@pytest.fixture
def md(tmp_path: Path) -> Iterator[MetadiskSetup]:
    with metadisk_setup(tmp_path) as setup:
        yield setup


def put(p: MetadiskProvider, path: str, data: bytes, mtime_ns: int = 1_600_000_000_000_000_000) -> None:
    parent = path.rpartition("/")[0]
    if parent:
        p.mkdir(parent)
    p.write(path, io.BytesIO(data), len(data), mtime_ns)


def read(p: MetadiskProvider, path: str) -> bytes:
    with p.read(path) as f:
        return f.read()


def files(p: MetadiskProvider) -> dict[str, bytes]:
    return {e.path: read(p, e.path) for e in p.list() if e.kind == "file"}


def uploads(md: MetadiskSetup) -> int:
    return sum(1 for r in md.emulator.requests if r.method == "PUT" and r.path.endswith("/files"))


def test_two_writers_racing_on_the_manifest_lose_nothing(md: MetadiskSetup) -> None:
    a, b = md.provider(writer="host-a"), md.provider(writer="host-b")
    a.ensure_root()
    put(a, "base.txt", b"base")
    a.batch_committed()
    put(a, "from-a.txt", b"a")
    put(b, "from-b.txt", b"b")
    a.delete("base.txt")
    original = a.store._write_round
    calls: list[int] = []

    def racing(snapshot, listing):  # type: ignore[no-untyped-def]
        if not calls:
            b.batch_committed()        # B writes its manifest after A read the heads, before A writes
        calls.append(1)
        return original(snapshot, listing)

    a.store._write_round = racing  # type: ignore[method-assign]
    a.batch_committed()
    assert a.store.races == 1 and len(calls) == 2
    fresh = md.provider(writer="host-c")
    assert files(fresh) == {"from-a.txt": b"a", "from-b.txt": b"b"}
    manifests = [e for e in Bridge(md.api()).files(fresh.bucket_id()) if e.filename.startswith(".syncagent")]
    assert len(manifests) == 1, "the merged manifest supersedes both racing ones"
    for p in (a, b, fresh):
        p.close()


def test_the_same_file_edited_on_two_machines_keeps_both(md: MetadiskSetup) -> None:
    a, b = md.provider(writer="laptop"), md.provider(writer="desktop")
    a.ensure_root()
    put(a, "doc.txt", b"v0")
    a.batch_committed()
    assert read(b, "doc.txt") == b"v0"
    put(a, "doc.txt", b"laptop edit")
    put(b, "doc.txt", b"desktop edit")
    a.batch_committed()
    b.batch_committed()
    seen = files(md.provider(writer="reader"))
    assert sorted(seen.values()) == [b"desktop edit", b"laptop edit"]
    assert any("conflict" in p for p in seen) and "doc.txt" in seen
    a.close()
    b.close()


def test_equal_files_are_stored_once_and_collected_only_when_unreferenced(md: MetadiskSetup) -> None:
    p = md.provider()
    p.ensure_root()
    data = os.urandom(5000)
    put(p, "one.bin", data)
    put(p, "two/copy.bin", data)
    assert uploads(md) == 1, "the second path reuses the content address"
    p.batch_committed()
    bucket = Bridge(md.api())
    address = content_address(data)
    p.delete("one.bin")
    p.batch_committed()
    assert address in {e.hash for e in bucket.files(p.bucket_id())}, "still referenced by two/copy.bin"
    p.delete("two", recursive=True)
    p.batch_committed()   # names it no more: unreferenced (grace 0 in tests) ...
    p.mkdir("later")
    p.batch_committed()   # ... and collected by the next write
    assert address not in {e.hash for e in bucket.files(p.bucket_id())}
    p.close()


def test_moves_copies_and_times_are_manifest_edits(md: MetadiskSetup) -> None:
    p = md.provider()
    p.ensure_root()
    put(p, "d/a.txt", b"A")
    p.batch_committed()
    before = uploads(md)
    moved = p.move("d", "e")
    p.copy("e/a.txt", "f.txt")
    p.set_mtime("f.txt", 42)
    p.batch_committed()
    assert uploads(md) - before == 1, "only the manifest was uploaded"
    other = md.provider(writer="b")
    assert {e.path for e in other.list()} == {"e", "e/a.txt", "f.txt"}
    assert other.stat("f.txt").mtime_ns == 42 and other.stat("e/a.txt").id == p.stat("e/a.txt").id
    assert moved.path == "e" and read(other, "f.txt") == b"A"
    p.close()


@pytest.mark.parametrize("kind", ["dc-drop", "dc-refuse", "dc-slow", "token-refused", "500", "reset"])
def test_downloads_survive_faults(md: MetadiskSetup, kind: str) -> None:
    md.app.configure({"shard_size": 64 * 1024})
    p = md.provider()
    p.ensure_root()
    data = os.urandom(200_000)
    put(p, "f.bin", data)
    p.batch_committed()
    if kind.startswith("dc-"):
        md.inject(kind, 1, delay=0.01)
    else:
        md.inject(kind, 1, method="GET", path="/files/")
    assert read(p, "f.bin") == data
    p.close()


def test_uploads_survive_a_refused_token_and_5xx(md: MetadiskSetup) -> None:
    p = md.provider()
    p.ensure_root()
    md.inject("token-refused", 1, method="PUT")
    md.inject("500", 1, method="PUT")
    put(p, "x.bin", b"payload")
    p.batch_committed()
    assert read(md.provider(writer="b"), "x.bin") == b"payload"
    p.close()


def test_a_corrupt_shard_is_never_handed_out(md: MetadiskSetup) -> None:
    md.app.configure({"shard_size": 64 * 1024})
    p = md.provider()
    p.ensure_root()
    data = os.urandom(150_000)
    put(p, "f.bin", data)
    p.batch_committed()
    shard = content_address(data[64 * 1024:128 * 1024])
    (md.app.store.root / "shards" / shard).write_bytes(b"x" * (64 * 1024))
    got = bytearray()
    with pytest.raises(errors.TransientError, match="failed verification"), p.read("f.bin") as f:
        while chunk := f.read(1000):
            got += chunk
    assert len(got) <= 64 * 1024, "nothing past the bad shard"
    p.close()


def test_pending_changes_survive_a_restart_in_provider_state(md: MetadiskSetup, tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    pair = store.pair_id("/l", "md:")
    p = md.provider(state=store.provider_state(pair))
    p.ensure_root()
    put(p, "kept.txt", b"k")
    store.commit_provider_state(pair)      # the engine commits it with the base batch
    p.api.close()                          # killed: no flush
    store.close()
    store = Store(tmp_path / "state")
    again = md.provider(state=store.provider_state(pair))
    assert read(again, "kept.txt") == b"k"
    again.close()                          # flushes
    assert read(md.provider(writer="b"), "kept.txt") == b"k"
    store.close()


def test_an_unchanged_bucket_costs_one_listing(md: MetadiskSetup) -> None:
    p = md.provider()
    p.ensure_root()
    put(p, "a.txt", b"a")
    p.batch_committed()
    list(p.list())
    md.emulator.clear_log()
    list(p.list())
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in md.emulator.requests] == [("GET", "files")]
    p.close()


def test_signed_requests_from_two_processes_of_one_account(md: MetadiskSetup) -> None:
    md.app.configure({"nonce_mode": "strict"})
    apis = [md.api() for _ in range(2)]
    failures: list[Exception] = []

    def work(api: Api) -> None:
        try:
            for _ in range(15):
                Bridge(api).buckets()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(api,)) for api in apis]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_basic_is_the_fallback_without_a_key(md: MetadiskSetup) -> None:
    api = Api(md.url, Credentials(EMAIL, password_hash(PASSWORD), None), tuning=FAST)
    p = MetadiskProvider(api, "sync", tuning=FAST)
    p.ensure_root()
    put(p, "b.txt", b"basic")
    p.close()
    assert read(md.provider(), "b.txt") == b"basic"
    assert all("Authorization" not in r.headers for r in md.emulator.requests)   # never logged


def test_errors_say_what_to_do(md: MetadiskSetup) -> None:
    stranger = md.provider(key=KeyPair.generate())
    with pytest.raises(errors.AuthError, match=r"Public key not registered.*syncagent auth"):
        stranger.root_exists()
    with pytest.raises(errors.NotFound):
        md.provider(bucket="missing").bucket_id()
    md.app.accounts.users[EMAIL].activated = False
    api = Api(md.url, Credentials(EMAIL, password_hash(PASSWORD), None), tuning=FAST)
    with pytest.raises(errors.AuthError, match="activation link"):
        Bridge(api).buckets()


def test_a_bucket_filled_by_another_client_is_adopted(md: MetadiskSetup) -> None:
    bucket = Bridge(md.api()).create_bucket("legacy")["id"]
    Bridge(md.api()).upload(bucket, io.BytesIO(b"cat"), 3, "san_francisco.jpg")
    p = md.provider(bucket="legacy")
    assert files(p) == {"san_francisco.jpg": b"cat"}
    p.close()


def sync(local: Path, state: Path, provider: MetadiskProvider, **opts: object) -> Summary:
    store = Store(state)
    try:
        engine = Engine(local, provider, "md:", store, SyncOptions(**opts), Reporter(quiet=True))  # type: ignore[arg-type]
        return engine.sync()
    finally:
        store.close()


def test_two_machines_syncing_one_bucket_converge(md: MetadiskSetup, tmp_path: Path) -> None:
    la, lb = tmp_path / "a", tmp_path / "b"
    write(la / "shared.txt", "from a")
    write(lb / "mine-b/notes.txt", "from b")
    pa, pb = md.provider(writer="host-a"), md.provider(writer="host-b")
    pa.ensure_root()
    for _ in range(2):
        assert sync(la, tmp_path / "sa", pa).errors == 0
        assert sync(lb, tmp_path / "sb", pb).errors == 0
    assert tree(la) == tree(lb) and set(tree(la)) == {"shared.txt", "mine-b", "mine-b/notes.txt"}
    write(la / "shared.txt", "edit a")
    write(lb / "shared.txt", "edit b")
    write(lb / "new-b.txt", "n")
    sync(la, tmp_path / "sa", pa)
    sync(lb, tmp_path / "sb", pb)
    sync(la, tmp_path / "sa", pa)
    assert tree(la) == tree(lb)
    contents = {(la / p).read_text() for p in tree(la) if p.endswith(".txt") and "/" not in p}
    assert {"edit a", "edit b", "n"} <= contents
    assert not sync(la, tmp_path / "sa", pa).changed_anything()
    pa.close()
    pb.close()
