"""The OneDrive provider against the emulator: sign-in flows, token rotation
and expiry, the delta feed, resumable uploads, resuming downloads, faults,
names, and the seed's extras (links, copy, info, recent)."""

from __future__ import annotations

import io
import os
import re
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from syncagent import errors
from syncagent.providers.base import ANY, Deleted, Kind, MemoryState, PairContext, RemoteEntry
from syncagent.providers.onedrive.flows import Terminal, browser, device_code
from syncagent.providers.onedrive.provider import OneDriveProvider
from syncagent.providers.onedrive.quickxor import QuickXorHash
from syncagent.providers.onedrive.tokens import Endpoints, TokenSet, TokenSource
from tests.emulators.base import EmulatorServer
from tests.emulators.onedrive.fixtures import (
    CLIENT_ID,
    FAST,
    USER,
    OneDriveSetup,
    graph_for,
    onedrive_emulator,
    onedrive_setup,
)

MTIME = 1_600_000_000_000_000_000
SCOPE = "Files.ReadWrite offline_access"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[OneDriveSetup]:
    with onedrive_setup(tmp_path) as s:
        yield s


def put(p: OneDriveProvider, path: str, data: bytes, **kw: Any) -> RemoteEntry:
    return p.write(path, io.BytesIO(data), len(data), MTIME, **kw)


def get(p: OneDriveProvider, path: str) -> bytes:
    with p.read(path) as f:
        return f.read()


def logged(emu: EmulatorServer, pattern: str, method: str | None = None) -> list[Any]:
    return [r for r in emu.requests if re.search(pattern, r.path) and (method is None or r.method == method)]


# ---- sign-in -------------------------------------------------------------------------------------
def endpoints(emu: EmulatorServer) -> Endpoints:
    return Endpoints(emu.base_url.rstrip("/"), "consumers")


def test_device_code_login_waits_for_the_person(tmp_path: Path) -> None:
    with onedrive_emulator(tmp_path, device_interval=0.01) as emu:
        shown: list[str] = []
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 3:   # the person types the code after two polls
                code = re.search(r"enter the code (\w+)", shown[0])
                assert code is not None
                requests.get(f"{emu.base_url}devicelogin", params={"code": code.group(1), "user": USER})

        tokens = device_code(requests.Session(), endpoints(emu), CLIENT_ID, SCOPE, Terminal(shown.append, sleep=sleep))
        assert "devicelogin" in shown[0] and tokens.refresh_token and tokens.access_token
        assert len(sleeps) == 3 and len(logged(emu, "/token$")) == 3
        drive = requests.get(f"{emu.base_url}v1.0/me/drive", headers={"Authorization": f"Bearer {tokens.access_token}"})
        assert drive.json()["owner"]["user"]["displayName"] == USER


def test_device_code_declined_is_an_auth_error(tmp_path: Path) -> None:
    with onedrive_emulator(tmp_path) as emu:
        shown: list[str] = []

        def decline(seconds: float) -> None:
            code = re.search(r"enter the code (\w+)", shown[0])
            assert code is not None
            requests.get(f"{emu.base_url}devicelogin", params={"code": code.group(1), "decline": "1"})

        with pytest.raises(errors.AuthError, match="authorization_declined"):
            device_code(requests.Session(), endpoints(emu), CLIENT_ID, SCOPE, Terminal(shown.append, sleep=decline))


def test_browser_login_with_pkce_on_a_loopback_redirect(tmp_path: Path) -> None:
    with onedrive_emulator(tmp_path, auto_approve=1) as emu:
        opened: list[str] = []

        def open_browser(url: str) -> bool:
            opened.append(url)
            requests.get(url, timeout=10)  # the emulator signs in at once and redirects to our loopback server
            return True

        tokens = browser(requests.Session(), endpoints(emu), CLIENT_ID, SCOPE, Terminal(lambda _: None, open_browser))
        assert tokens.refresh_token
        assert "code_challenge_method=S256" in opened[0] and "redirect_uri=http%3A%2F%2Flocalhost%3A" in opened[0]
        exchange = logged(emu, "/token$")
        assert len(exchange) == 1


def test_refresh_rotates_and_saves_back(tmp_path: Path) -> None:
    with onedrive_emulator(tmp_path, auto_approve=1) as emu:
        session = requests.Session()
        first = device_code(session, endpoints(emu), CLIENT_ID, SCOPE, Terminal(lambda _: None, sleep=lambda _: None))
        saved: list[dict[str, str]] = []
        stale = TokenSet(first.access_token, first.refresh_token, time.time() + 60)   # within the early window
        source = TokenSource(endpoints(emu), CLIENT_ID, stale, session=session, save=saved.append, remote="od")
        token = source.bearer()
        assert token != first.access_token and len(saved) == 1
        assert saved[0]["refresh_token"] != first.refresh_token and saved[0]["access_token"] == token
        assert int(saved[0]["access_expires"]) > time.time() + 3000
        assert source.bearer() == token and len(saved) == 1          # a fresh token is kept


def test_a_401_refreshes_once_then_says_auth(tmp_path: Path) -> None:
    with onedrive_emulator(tmp_path, auto_approve=1) as emu:
        session = requests.Session()
        tokens = device_code(session, endpoints(emu), CLIENT_ID, SCOPE, Terminal(lambda _: None, sleep=lambda _: None))
        saved: list[dict[str, str]] = []
        graph = graph_for(emu, tokens, save=saved.append)
        with OneDriveProvider(graph) as p:
            assert p.root_exists()
            emu.app.configure({"expire_access_tokens": 1})
            assert p.root_exists() and len(saved) == 1                 # 401 -> refresh -> the same request again
            emu.inject("401", 2)
            with pytest.raises(errors.AuthError, match="syncagent auth od"):
                p.root_exists()
            emu.app.configure({"expire_access_tokens": 1, "revoke_refresh_tokens": 1})
            with pytest.raises(errors.AuthError, match=r"invalid_grant.*syncagent auth od"):
                p.stat("")


# ---- the delta feed ----------------------------------------------------------------------------
def test_feed_start_changes_and_quiet_poll(setup: OneDriveSetup) -> None:
    p = setup.provider
    p.mkdir("a/b")
    put(p, "a/b/x.txt", b"x")
    put(p, "a/y.txt", b"y")
    start = p.changes(None)
    assert start.reset and [e.path for e in start.changes] == ["a", "a/b", "a/b/x.txt", "a/y.txt"]
    setup.emulator.clear_log()
    quiet = p.changes(start.cursor)
    assert quiet.changes == [] and quiet.cursor == start.cursor
    assert len(setup.emulator.requests) == 1                            # a quiet poll is one request
    p.move("a/b", "a/c")
    p.delete("a/y.txt")
    put(p, "a/c/z.txt", b"z")
    batch = p.changes(start.cursor)
    got = {(type(c).__name__, c.path) for c in batch.changes}
    assert got == {("Deleted", "a/b"), ("RemoteEntry", "a/c"), ("Deleted", "a/y.txt"), ("RemoteEntry", "a/c/z.txt")}
    assert not batch.reset and batch.cursor != start.cursor
    moved = next(c for c in batch.changes if isinstance(c, RemoteEntry) and c.path == "a/c")
    before = start.changes[1]
    assert isinstance(before, RemoteEntry) and moved.kind is Kind.DIR and moved.id == before.id


def test_feed_replays_a_round_the_engine_did_not_keep(setup: OneDriveSetup) -> None:
    p = setup.provider
    start = p.changes(None)
    put(p, "one.txt", b"1")
    first = p.changes(start.cursor)
    put(p, "two.txt", b"2")
    again = p.changes(start.cursor)     # the engine's run failed: it asks from the old cursor
    assert {c.path for c in again.changes} == {"one.txt", "two.txt"}
    assert again.cursor != first.cursor
    assert p.changes(again.cursor).changes == []


def test_feed_resyncs_on_410_and_on_a_foreign_cursor(setup: OneDriveSetup) -> None:
    p = setup.provider
    put(p, "f.txt", b"f")
    start = p.changes(None)
    setup.inject("resync", 1)
    reset = p.changes(start.cursor)
    assert reset.reset and [e.path for e in reset.changes] == ["f.txt"]
    assert p.changes("unknown.7").reset


def test_feed_falls_back_to_the_drive_root_where_folders_have_no_delta(tmp_path: Path) -> None:
    with onedrive_setup(tmp_path, root="work/sync", delta_root_only=1) as s:
        p = s.provider
        p.mkdir("in")
        put(p, "in/a.txt", b"a")
        p.graph.json("PUT", p.graph.action("elsewhere.txt", "content"), data=b"outside the root")
        start = p.changes(None)
        assert [e.path for e in start.changes] == ["in", "in/a.txt"] and p.skipped() == {}
        p.move("in/a.txt", "b.txt")
        p.graph.json("PATCH", p.graph.item("work/sync/b.txt"), json={"name": "gone-out.txt",
                                                                     "parentReference": {"path": "/drive/root:/work"}})
        batch = p.changes(start.cursor)
        assert {(type(c).__name__, c.path) for c in batch.changes} == {("Deleted", "in/a.txt")}


def test_feed_state_survives_a_new_provider(setup: OneDriveSetup, tmp_path: Path) -> None:
    state = MemoryState()
    p = setup.provider
    p.attach(PairContext("t1", state))
    p.mkdir("d")
    put(p, "d/f.txt", b"f")
    start = p.changes(None)
    with OneDriveProvider(graph_for(setup.emulator), "sync") as again:
        again.attach(PairContext("t1", state))
        p.delete("d", recursive=True)
        batch = again.changes(start.cursor)
        assert {c.path for c in batch.changes if isinstance(c, Deleted)} >= {"d"}


def test_non_nfc_names_are_listed_in_nfc_and_addressed_as_spelled(setup: OneDriveSetup) -> None:
    nfd = unicodedata.normalize("NFD", "café")
    raw = requests.Session()
    raw.headers["Authorization"] = f"Bearer {setup.provider.graph.tokens.bearer()}"
    r = raw.put(f"{setup.emulator.base_url}v1.0/me/drive/root:/sync/{nfd}.txt:/content", data=b"nfd")
    assert r.status_code == 201
    p = setup.provider
    listed = [e.path for e in p.list()]
    assert listed == ["café.txt"]
    assert get(p, "café.txt") == b"nfd"
    start = p.changes(None)
    assert [e.path for e in start.changes] == ["café.txt"]


def test_notebooks_and_shared_folders_are_left_out_quietly(setup: OneDriveSetup) -> None:
    p = setup.provider
    p.mkdir("Notebook")
    p.mkdir("Shared")
    put(p, "plain.txt", b"p")
    drive = setup.app.drive_of(USER)
    for name, facet in (("Notebook", {"package": {"type": "oneNote"}}), ("Shared", {"remoteItem": {"id": "X!1"}})):
        item = drive.walk(drive.root, ["sync", name])
        item.facets = facet
        drive.changed(item)
    assert [e.path for e in p.list()] == ["plain.txt"]
    assert set(p.skipped()) == {"Notebook", "Shared"} and p.unfit_names() == {}
    assert [e.path for e in p.changes(None).changes] == ["plain.txt"]
    assert set(p.skipped()) == {"Notebook", "Shared"}


# ---- transfers ------------------------------------------------------------------------------------
def test_simple_and_session_uploads_keep_mtime_and_hash(setup: OneDriveSetup) -> None:
    p = setup.provider
    small = put(p, "small.txt", b"Hello, World!")
    assert small.hash == "4828031bd8f0061680e00a6f9d031bc810020000" and small.mtime_ns == MTIME
    big = os.urandom(3 * (1 << 20) + 7)
    e = put(p, "big.bin", big)
    assert e.size == len(big) and e.mtime_ns == MTIME and e.hash == QuickXorHash(big).hexdigest()
    fragments = logged(setup.emulator, "^/_upload/", "PUT")
    assert len(fragments) == 5 and all("authorization" not in {k.lower() for k in f.headers} for f in fragments)
    assert get(p, "big.bin") == big


def test_expectations_map_to_if_match_and_conflict_behaviour(setup: OneDriveSetup) -> None:
    p = setup.provider
    first = put(p, "e.txt", b"one")
    with pytest.raises(errors.Conflict):
        put(p, "e.txt", b"two", expect=None)
    second = put(p, "e.txt", b"two", expect=first.rev)
    with pytest.raises(errors.Conflict):
        put(p, "e.txt", b"three", expect=first.rev)
    big = os.urandom(2 << 20)
    with pytest.raises(errors.Conflict):
        put(p, "e.txt", big, expect=first.rev)
    with pytest.raises(errors.Conflict):
        put(p, "e.txt", big, expect=None)
    put(p, "e.txt", big, expect=second.rev)
    assert get(p, "e.txt") == big
    put(p, "e.txt", b"anything", expect=ANY)


class Crash(Exception):
    pass


class CrashAfter(io.RawIOBase):
    """A file that the process dies reading after `limit` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.pos = data, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.pos >= self.limit:
            raise Crash
        n = min(len(b), self.limit - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def test_upload_resumes_after_a_restart(setup: OneDriveSetup) -> None:
    state = MemoryState()
    setup.provider.attach(PairContext("t", state))
    data = os.urandom(4 * 655_360 + 100)
    with pytest.raises(Crash):
        setup.provider.write("r.bin", io.BufferedReader(CrashAfter(data, 2 * 655_360 + 10)), len(data), MTIME)
    assert [k for k, _ in state.items("upload:")] == ["upload:r.bin"]
    setup.emulator.clear_log()
    again = OneDriveProvider(graph_for(setup.emulator), "sync")
    with again:
        again.attach(PairContext("t", state))
        e = put(again, "r.bin", data)
    sent = [r.headers.get("Content-Range") for r in logged(setup.emulator, "^/_upload/", "PUT")]
    assert sent[0] == f"bytes {2 * 655_360}-{3 * 655_360 - 1}/{len(data)}"   # the first two fragments not again
    assert e.hash == QuickXorHash(data).hexdigest() and get(again, "r.bin") == data
    assert list(state.items("upload:")) == []


def test_an_expired_session_starts_over(setup: OneDriveSetup) -> None:
    state = MemoryState()
    setup.provider.attach(PairContext("t", state))
    setup.app.configure({"session_lifetime": 0.3})
    data = os.urandom(3 * 655_360)
    with pytest.raises(Crash):
        setup.provider.write("x.bin", io.BufferedReader(CrashAfter(data, 700_000)), len(data), MTIME)
    time.sleep(0.4)
    assert put(setup.provider, "x.bin", data).size == len(data)
    assert get(setup.provider, "x.bin") == data


def test_a_fragment_whose_answer_was_lost_is_not_sent_twice(setup: OneDriveSetup) -> None:
    data = os.urandom(3 * 655_360 + 5)
    setup.inject("reset-mid", 1, method="PUT", path="^/_upload/", after=1)
    e = put(setup.provider, "lost.bin", data)
    assert e.size == len(data) and get(setup.provider, "lost.bin") == data
    assert logged(setup.emulator, "^/_upload/", "GET")       # the session was asked where it stood


def test_download_resumes_with_range(setup: OneDriveSetup) -> None:
    data = os.urandom(3 << 20)
    put(setup.provider, "d.bin", data)
    setup.emulator.clear_log()
    setup.inject("reset-mid", 1, method="GET", path="^/_download/")
    assert get(setup.provider, "d.bin") == data
    downloads = logged(setup.emulator, "^/_download/")
    assert len(downloads) == 2 and downloads[1].headers.get("Range", "").startswith("bytes=")


def test_a_download_whose_content_changes_fails_as_conflict(setup: OneDriveSetup) -> None:
    data = os.urandom(2 << 20)
    put(setup.provider, "c.bin", data)
    setup.inject("reset-mid", 1, method="GET", path="^/_download/")   # the body breaks after 1 MiB
    with setup.provider.read("c.bin") as f:
        assert f.read(1000) == data[:1000]
        put(setup.provider, "c.bin", os.urandom(2 << 20))
        with pytest.raises(errors.Conflict):
            f.read()


# ---- faults -------------------------------------------------------------------------------------
def test_throttling_waits_what_the_server_asks(setup: OneDriveSetup) -> None:
    setup.inject("429", 1, retry_after=0.25)
    setup.inject("503", 1, retry_after=0.15)
    put(setup.provider, "t.txt", b"t")
    assert 0.25 in setup.sleeps and 0.15 in setup.sleeps


def test_locked_is_reported_not_retried(setup: OneDriveSetup) -> None:
    put(setup.provider, "l.txt", b"l")
    setup.inject("423", 1)
    with pytest.raises(errors.ProviderError, match="locked"):
        setup.provider.stat("l.txt")
    assert setup.sleeps == []


def test_server_errors_and_resets_are_retried(setup: OneDriveSetup) -> None:
    for kind in ("500", "502", "503", "reset"):
        setup.inject(kind, 2)
        put(setup.provider, f"{kind}.txt", kind.encode())
        assert get(setup.provider, f"{kind}.txt") == kind.encode()


def test_a_first_sync_onto_identical_files_moves_nothing(setup: OneDriveSetup, tmp_path: Path) -> None:
    from syncagent.engine.report import Reporter
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine, SyncOptions

    local = tmp_path / "local"
    (local / "d").mkdir(parents=True)
    files = {"a.txt": b"same bytes", "d/big.bin": os.urandom(3 << 20)}
    setup.provider.mkdir("d")
    for name, data in files.items():
        (local / name).write_bytes(data)
        put(setup.provider, name, data)
    store = Store(tmp_path / "state")
    try:
        summary = Engine(local, setup.provider, "od:sync", store, SyncOptions(), Reporter(quiet=True)).sync()
    finally:
        store.close()
    assert summary.errors == 0 and summary.uploaded == 0 and summary.downloaded == 0   # QuickXorHash says equal


# ---- names, deletes, extras ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a:b.txt", "trailing.", " lead.txt", "CON", "desktop.ini", "~$x.docx", "a_vti_b"])
def test_names_onedrive_cannot_hold(setup: OneDriveSetup, name: str) -> None:
    p = setup.provider
    assert p.name_problem(f"dir/{name}") is not None
    setup.emulator.clear_log()
    with pytest.raises(errors.InvalidName):
        put(p, name, b"x")
    assert setup.emulator.requests == []                      # refused before any request
    assert p.name_problem("dir/fine name.txt") is None
    assert p.capabilities.case_insensitive and p.capabilities.max_path_length == 400 - len("sync/")


def test_deletes_go_to_the_recycle_bin(setup: OneDriveSetup) -> None:
    p = setup.provider
    p.mkdir("full")
    put(p, "full/a.txt", b"12345")
    with pytest.raises(errors.ProviderError):
        p.delete("full")
    assert p.delete_many([("full", True), ("never-there.txt", False)]) == {}
    assert p.drive_info()["quota"]["deleted"] == 5
    with pytest.raises(errors.NotFound):
        p.stat("full/a.txt")


def test_move_copy_link_info_recent(setup: OneDriveSetup) -> None:
    p = setup.provider
    put(p, "m.txt", b"move me")
    p.mkdir("sub")
    moved = p.move("m.txt", "sub/moved.txt")
    assert moved.path == "sub/moved.txt" and get(p, "sub/moved.txt") == b"move me"
    with pytest.raises(errors.AlreadyExists):
        put(p, "other.txt", b"o") and p.move("other.txt", "sub/moved.txt")
    setup.app.configure({"copy_polls": 3})
    copied = p.copy("sub/moved.txt", "copy.txt")
    assert copied.hash == moved.hash and get(p, "copy.txt") == b"move me"
    assert p.link("copy.txt").startswith(setup.emulator.base_url + "s/")
    assert p.share_link("copy.txt", "embed").startswith("<iframe")
    info = p.info("copy.txt")
    assert info["path"] == "copy.txt" and info["file"]["hashes"]["quickXorHash"]
    renamed = p.set_info("copy.txt", name="renamed.txt", description="from the seed's info_set")
    assert renamed.path == "renamed.txt" and renamed.id == copied.id
    assert p.info("renamed.txt")["description"] == "from the seed's info_set"
    recent = [e.path for e in p.recent()]
    assert recent[0] == "renamed.txt" and "sub/moved.txt" in recent
    with pytest.raises(errors.Unsupported, match="no comments"):
        p.comments("renamed.txt")
    q = p.quota()
    assert q.total == 5 << 30 and q.used > 0


def test_a_subfolder_root_and_chinese_names(tmp_path: Path) -> None:
    with onedrive_setup(tmp_path, root="python/你好") as s:
        p: OneDriveProvider = s.provider
        put(p, "p.py", "print('你好')".encode())
        p.set_info("p.py", name="你好.py")
        assert [e.path for e in p.list()] == ["你好.py"]
        assert [e.path for e in p.changes(None).changes] == ["你好.py"]
        assert get(p, "你好.py") == "print('你好')".encode()


def test_streams_are_read_in_small_pieces(setup: OneDriveSetup) -> None:
    reads: list[int] = []

    class Spy(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            chunk = self.inner.read(len(b))
            reads.append(len(chunk))
            b[:len(chunk)] = chunk
            return len(chunk)

    data = os.urandom(3 << 20)
    stream: IO[bytes] = io.BufferedReader(Spy(data), 1 << 16)
    setup.provider.write("s.bin", stream, len(data), MTIME)
    assert max(reads) <= FAST.chunk
