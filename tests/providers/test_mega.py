"""The MEGA provider against the emulator: logins and sessions, ephemeral
accounts, the error mapping and retries, the `sc` feed, duplicate names,
resumable uploads, verified downloads, the Rubbish Bin, links and quota."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from syncagent import errors
from syncagent.providers.base import ANY, Deleted, Kind, MemoryState, PairContext, ProviderState, RemoteEntry
from syncagent.providers.mega.api import Api, SessionExpired, code_of, error_for
from syncagent.providers.mega.filecrypt import chunks
from syncagent.providers.mega.provider import MegaProvider
from syncagent.providers.mega.public import open_public
from syncagent.providers.mega.session import Session, create_ephemeral, login, resume_ephemeral
from tests.emulators.mega.app import MegaApp
from tests.emulators.mega.fixtures import (
    EMAIL,
    FAST,
    PASSWORD,
    V1_EMAIL,
    V1_PASSWORD,
    MegaSetup,
    mega_setup,
)
from tests.emulators.mega.store import Node

MiB = 1 << 20


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mega(sleeps: Sleeps, tmp_path: Path) -> Iterator[MegaSetup]:
    with mega_setup(tmp_path, sleep=sleeps) as setup:
        yield setup


def put(p: MegaProvider, path: str, data: bytes, mtime_ns: int = 1_600_000_000_000_000_000) -> RemoteEntry:
    if "/" in path:
        p.mkdir(path.rpartition("/")[0])
    return p.write(path, io.BytesIO(data), len(data), mtime_ns)


def get(p: MegaProvider, path: str) -> bytes:
    with p.read(path) as f:
        return f.read()


def app(setup: MegaSetup) -> MegaApp:
    found = setup.emulator.app
    assert isinstance(found, MegaApp)
    return found


def requests_to(setup: MegaSetup, prefix: str) -> int:
    return sum(1 for r in setup.emulator.requests if r.path.startswith(prefix))


class DbLikeState(ProviderState):
    """A ProviderState that is not MemoryState (the provider persists its tree into it)."""

    def __init__(self) -> None:
        self.inner = MemoryState()

    def get(self, key: str) -> str | None:
        return self.inner.get(key)

    def put(self, key: str, value: str | None) -> None:
        self.inner.put(key, value)

    def items(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        return self.inner.items(prefix)

    def commit(self) -> None:
        """In memory: nothing to make durable."""


# ---- logins ---------------------------------------------------------------------------------
def test_v1_v2_and_wrong_password(mega: MegaSetup) -> None:
    api = Api(mega.emulator.base_url, tuning=FAST)
    v2 = login(api, EMAIL.upper(), PASSWORD)
    v1 = login(api, V1_EMAIL, V1_PASSWORD)
    assert v1.user != v2.user and len(v1.sid) == len(v2.sid) == 58
    with pytest.raises(errors.AuthError, match="wrong e-mail or password"):
        login(api, EMAIL, "not it")
    with pytest.raises(errors.AuthError):
        login(api, "nobody@example.org", PASSWORD)


def test_session_secret_round_trip() -> None:
    s = Session("sid", bytes(range(16)), "AAAAAAAAAAA", bytes(16))
    assert Session.from_secret(s.to_secret()) == s
    with pytest.raises(errors.AuthError, match="unreadable"):
        Session.from_secret("garbage")


def test_ephemeral_account_lives_on(mega: MegaSetup) -> None:
    api = Api(mega.emulator.base_url, tuning=FAST)
    session = create_ephemeral(api)
    assert session.ephemeral_key is not None
    p = MegaProvider(api, session, "/anon")
    with p:
        p.ensure_root()
        put(p, "hello.txt", b"anonymous")
    again = Api(mega.emulator.base_url, tuning=FAST)
    resumed = resume_ephemeral(again, session.user, session.ephemeral_key)
    assert resumed.master_key == session.master_key
    p = MegaProvider(again, resumed, "/anon")
    with p:
        assert get(p, "hello.txt") == b"anonymous"
    with pytest.raises(errors.AuthError):
        resume_ephemeral(Api(mega.emulator.base_url, tuning=FAST), session.user, bytes(16))


def test_expired_session_logs_in_again_and_saves_it(tmp_path: Path) -> None:
    saved: list[Session] = []
    with mega_setup(tmp_path) as mega:
        mega.provider._on_session = saved.append
        put(mega.provider, "a.txt", b"a")
        app(mega).expire_sessions()
        assert get(mega.provider, "a.txt") == b"a"
        assert len(saved) == 1 and saved[0].sid == mega.provider.session.sid


def test_expired_session_without_password_says_what_to_do(tmp_path: Path) -> None:
    with mega_setup(tmp_path, relogin=False) as mega:
        app(mega).expire_sessions()
        with pytest.raises(errors.AuthError, match="syncagent auth"):
            mega.provider.quota()


# ---- errors and retries ----------------------------------------------------------------------
def test_error_codes_map_once() -> None:
    assert isinstance(error_for(-9), errors.NotFound)
    assert isinstance(error_for(-3), errors.TransientError) and error_for(-3).retryable
    assert isinstance(error_for(-18), errors.TransientError)
    assert isinstance(error_for(-4), errors.Throttled)
    assert isinstance(error_for(-15), SessionExpired) and isinstance(error_for(-15), errors.AuthError)
    quota = error_for(-17)
    assert isinstance(quota, errors.QuotaExceeded) and "Rubbish Bin" in str(quota)
    assert isinstance(error_for(-11), errors.PermanentError) and "EACCESS" in str(error_for(-11))
    assert isinstance(error_for(-12), errors.AlreadyExists)
    assert code_of(-9) == code_of([-9]) == -9 and code_of(0) is None and code_of([1, 2]) is None


@pytest.mark.parametrize("kind", ["-3", "-18", "500", "503", "reset", "slow"])
def test_api_faults_are_retried(mega: MegaSetup, sleeps: Sleeps, kind: str) -> None:
    put(mega.provider, "x.txt", b"before")
    mega.inject(kind, 2, path="^/cs", delay=0.05)
    assert mega.provider.quota().used == 6
    if kind != "slow":
        assert len(sleeps) >= 2


def test_request_level_retry_reuses_the_id_so_nothing_runs_twice(mega: MegaSetup) -> None:
    mega.inject("reset-mid", 1, path="^/cs$")   # the server acts, the answer is lost
    mega.provider.mkdir("once")
    names = [e.path for e in mega.new_provider().list()]
    assert names.count("once") == 1


def test_transfer_faults(mega: MegaSetup, sleeps: Sleeps) -> None:
    data = os.urandom(3 * MiB)
    mega.inject("-3", 2, path="^/ul/")
    mega.inject("reset", 1, path="^/ul/")
    put(mega.provider, "big.bin", data)
    mega.inject("reset-mid", 1, path="^/dl/")
    mega.inject("500", 1, path="^/dl/")
    assert get(mega.provider, "big.bin") == data


def test_bandwidth_quota_509_waits_and_says_so(mega: MegaSetup, sleeps: Sleeps) -> None:
    put(mega.provider, "f.bin", b"z" * 1000)
    mega.emulator.inject("509", 2, path="^/dl/", retry_after=7)
    with structlog.testing.capture_logs() as logs:
        assert get(mega.provider, "f.bin") == b"z" * 1000
    assert sleeps.count(7) == 2
    assert [e for e in logs if "transfer quota" in e["event"] and e["seconds"] == 7]
    mega.emulator.inject("509", 10, path="^/dl/", retry_after=1)
    with pytest.raises(errors.Throttled, match="509"):
        get(mega.provider, "f.bin")


def test_quota_exceeded_is_clear(mega: MegaSetup) -> None:
    app(mega).configure({"quota": 100})
    with pytest.raises(errors.QuotaExceeded, match="storage quota"):
        put(mega.provider, "big.bin", b"x" * 101)


# ---- the change feed ---------------------------------------------------------------------------
def test_a_quiet_poll_is_one_request(mega: MegaSetup) -> None:
    p = mega.provider
    put(p, "a.txt", b"a")
    cursor = p.changes(None).cursor
    cursor = p.changes(cursor).cursor   # our own write's packets
    mega.emulator.clear_log()
    batch = p.changes(cursor)
    assert batch.changes == [] and batch.cursor == cursor and not batch.reset
    assert [r.path for r in mega.emulator.requests] == ["/sc"]


def test_another_clients_changes_arrive_through_the_feed(mega: MegaSetup) -> None:
    p = mega.provider
    put(p, "keep.txt", b"k")
    put(p, "dir/old.txt", b"o")
    cursor = p.changes(None).cursor
    other = mega.new_provider()
    put(other, "new/file.txt", b"from elsewhere")
    other.move("dir/old.txt", "dir/renamed.txt")
    other.move("keep.txt", "new/keep.txt")
    other.delete("dir", recursive=True)
    batch = p.changes(cursor)
    got = {c.path: c for c in batch.changes}
    assert isinstance(got["dir"], Deleted) and isinstance(got["keep.txt"], Deleted)
    assert isinstance(got["new/file.txt"], RemoteEntry) and isinstance(got["new/keep.txt"], RemoteEntry)
    assert get(p, "new/file.txt") == b"from elsewhere"
    assert sorted(e.path for e in p.list()) == ["new", "new/file.txt", "new/keep.txt"]


def test_a_lagging_cursor_gets_everything_since_it(mega: MegaSetup) -> None:
    p = mega.provider
    first = p.changes(None).cursor
    other = mega.new_provider()
    put(other, "one.txt", b"1")
    p.changes(first)                      # the engine's run failed: it keeps `first`
    put(other, "two.txt", b"2")
    got = {c.path for c in p.changes(first).changes}
    assert got == {"one.txt", "two.txt"}
    assert p.changes("unknown.0").reset


def test_a_lost_position_reloads_and_resets(mega: MegaSetup) -> None:
    p = mega.provider
    cursor = p.changes(None).cursor
    p.feed.tree.sn = "AAAAAAAAAAA"   # a position the server never gave: it answers -6
    batch = p.changes(cursor)
    assert batch.reset and p.feed.tree.sn != "AAAAAAAAAAA"
    assert not p.changes(batch.cursor).reset


def test_the_tree_lives_in_provider_state(mega: MegaSetup) -> None:
    state: ProviderState = DbLikeState()
    p = mega.provider
    p.attach(PairContext("t-", state))
    put(p, "a/b.txt", b"b")
    cursor = p.changes(None).cursor
    assert state.get("tree/sn") and any(k.startswith("n/") for k, _ in state.items("n/"))
    second = mega.new_provider()
    second.attach(PairContext("t-", state))
    mega.emulator.clear_log()
    assert second.changes(cursor).cursor
    assert "/cs" not in {r.path for r in mega.emulator.requests}, "a restart must not fetch the whole tree"
    assert get(second, "a/b.txt") == b"b"


# ---- names -----------------------------------------------------------------------------------
def duplicate(mega: MegaSetup, path: str) -> None:
    """A second node of the same name beside `path`, as another MEGA client may make."""
    p = mega.provider
    original = p._node(path)
    store = app(mega).store
    with store.lock:
        source = store.nodes[original.handle]
        twin = Node(store.new_node_handle(), source.p, source.u, source.t, source.a, source.k, source.s,
                    source.ts, source.blob)
        store.nodes[twin.h] = twin
        store.emit(source.u, [{"a": "t", "t": {"f": [twin.wire()]}}])


def test_two_items_of_one_name_are_skipped_never_deleted(mega: MegaSetup) -> None:
    p = mega.provider
    put(p, "twin.txt", b"t")
    put(p, "dir/inner.txt", b"i")
    cursor = p.changes(None).cursor
    duplicate(mega, "twin.txt")
    duplicate(mega, "dir")
    assert p.changes(cursor).reset, "a name that became two needs a full run"
    assert {e.path for e in p.list()} == set()
    assert set(p.skipped()) == {"twin.txt", "dir"}
    with pytest.raises(errors.PermanentError, match="two or more"):
        p.stat("twin.txt")
    with pytest.raises(errors.Conflict):
        put(p, "twin.txt", b"x")


# ---- content -----------------------------------------------------------------------------------
def test_upload_resumes_after_a_failure(mega: MegaSetup) -> None:
    data = os.urandom(3 * MiB)
    state = MemoryState()
    mega.provider.attach(PairContext("t-", state))
    mega.inject("500", 50, path="^/ul/", after=3)   # the fourth chunk onwards fails
    with pytest.raises(errors.TransientError):
        put(mega.provider, "big.bin", data)
    sealed = state.get("up/big.bin")
    assert sealed and "ul/" not in sealed, "the upload record is kept, sealed under the master key"
    # Chunks go up several at a time: which three the server took first depends on their arrival.
    taken = {int(r.path.rsplit("/", 1)[1]) for r in mega.emulator.requests
             if r.path.startswith("/ul/") and r.status == 200}
    assert len(taken) == 3
    mega.emulator.faults.clear()
    mega.emulator.clear_log()
    mega.provider.write("big.bin", io.BytesIO(data), len(data), 1_600_000_000_000_000_000)
    offsets = [int(r.path.rsplit("/", 1)[1]) for r in mega.emulator.requests if r.path.startswith("/ul/")]
    # The upload record advances in file order: the chunks taken from the start on are not sent again.
    order = [offset for offset, _ in chunks(len(data))]
    kept = list(itertools.takewhile(lambda offset: offset in taken, order))
    assert offsets and min(offsets) == order[len(kept)] and not set(kept) & set(offsets), \
        "the upload resumes after the chunks the server took"
    assert state.get("up/big.bin") is None
    assert get(mega.provider, "big.bin") == data


def test_a_tampered_file_fails_its_check(mega: MegaSetup) -> None:
    put(mega.provider, "f.bin", b"precious" * 1000)
    node = app(mega).store.nodes[mega.provider._node("f.bin").handle]
    assert node.blob is not None
    raw = bytearray(node.blob.read_bytes())
    raw[100] ^= 1
    node.blob.write_bytes(bytes(raw))
    with pytest.raises(errors.PermanentError, match="meta-MAC"), mega.provider.read("f.bin") as f:
        f.read()


def test_the_server_sees_no_plaintext(mega: MegaSetup) -> None:
    secret = b"the plaintext nobody else may read " * 100
    put(mega.provider, "secret folder/secret name.txt", secret)
    store = app(mega).store
    blobs = b"".join(n.blob.read_bytes() for n in store.nodes.values() if n.blob is not None)
    metadata = repr([n.wire() for n in store.nodes.values()]).encode()
    assert secret[:30] not in blobs and b"secret" not in metadata


def test_overwrite_and_delete_go_to_the_rubbish_bin(mega: MegaSetup) -> None:
    p = mega.provider
    first = put(p, "doc.txt", b"one")
    second = put(p, "doc.txt", b"two")
    assert first.rev != second.rev and get(p, "doc.txt") == b"two"
    p.delete("doc.txt")
    store = app(mega).store
    account = store.accounts[p.session.user]
    binned = {n.h for n in store.nodes.values() if n.p == account.roots[4]}
    assert {first.id, second.id} <= binned
    with pytest.raises(errors.Conflict):
        p.write("doc.txt", io.BytesIO(b"x"), 1, 0, expect=first.rev)


def test_hard_delete(tmp_path: Path) -> None:
    with mega_setup(tmp_path, hard_delete=True) as mega:
        e = put(mega.provider, "gone.txt", b"g")
        put(mega.provider, "dir/a.txt", b"a")
        failed = mega.provider.delete_many([("gone.txt", False), ("dir", True), ("missing", False)])
        assert failed == {}
        assert e.id not in app(mega).store.nodes
        assert [x.path for x in mega.provider.list()] == []


def test_set_mtime_rewrites_the_fingerprint(mega: MegaSetup) -> None:
    e = put(mega.provider, "m.txt", b"m", mtime_ns=1_500_000_000_000_000_000)
    after = mega.provider.set_mtime("m.txt", 1_234_567_890_000_000_000)
    assert after.mtime_ns == 1_234_567_890_000_000_000 and after.id == e.id and after.rev != e.rev
    assert mega.new_provider().stat("m.txt").mtime_ns == 1_234_567_890_000_000_000


def test_quota_link_and_public_download(mega: MegaSetup) -> None:
    data = os.urandom(300_000)
    put(mega.provider, "share/pic.jpg", data, mtime_ns=1_700_000_000_123_000_000)
    assert mega.provider.quota().used == len(data)
    url = mega.provider.link("share/pic.jpg")
    assert url.startswith("https://mega.nz/file/") and "#" in url
    anonymous = Api(mega.emulator.base_url, tuning=FAST)
    public = open_public(url, anonymous)
    with public.stream as f:
        assert f.read() == data
    assert public.name == "pic.jpg" and public.mtime_ns == 1_700_000_000_000_000_000
    handle, key = url.split("/file/")[1].split("#")
    legacy = open_public(f"https://mega.co.nz/#!{handle}!{key}", anonymous)
    with legacy.stream as f:
        assert f.read() == data
    assert mega.provider.link("share").startswith("https://mega.nz/folder/")
    with pytest.raises(errors.AuthError, match="key"):
        open_public(f"https://mega.nz/file/{handle}#{'A' * 43}", anonymous)
    with pytest.raises(errors.Unsupported):
        open_public(mega.provider.link("share"), anonymous)


def test_stat_info_and_kinds(mega: MegaSetup) -> None:
    put(mega.provider, "d/f.txt", b"hello")
    assert mega.provider.stat("d").kind is Kind.DIR
    e = mega.provider.stat("d/f.txt")
    assert e.size == 5 and e.hash is not None and len(e.hash) == 64
    info = mega.provider.info("d/f.txt")
    assert info["handle"] == e.id
    with pytest.raises(errors.AlreadyExists):
        mega.provider.mkdir("d/f.txt")
    with pytest.raises(errors.NotFound):
        mega.provider.write("nope/x.txt", io.BytesIO(b""), 0, 0, expect=ANY)
