"""The SmartFile provider against the emulator: auth, throttling, retries,
tasks, paging, streaming, hostile names, the sync API, the error mapping."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import smartfile

from syncagent import errors
from syncagent.http import Timeouts
from syncagent.providers.base import ANY, Kind, Provider
from syncagent.providers.smartfile import SmartFileProvider, Tuning, error_for
from tests.emulators.fixtures import (
    ACCESS_SECRET,
    ACCESS_TOKEN,
    CLIENT_SECRET,
    CLIENT_TOKEN,
    FAST,
    KEY,
    PASSWORD,
    SmartFileSetup,
    smartfile_setup,
)

HOSTILE = "hello? sausage/êé/Hello, 世界/ \" ' @ < > & + ≠/z.txt"
MiB = 1 << 20


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sf(sleeps: Sleeps) -> Iterator[SmartFileSetup]:
    with smartfile_setup(sleep=sleeps) as setup:
        yield setup


def put(p: Provider, path: str, data: bytes, mtime_ns: int = 1_600_000_000_000_000_000) -> Any:
    if "/" in path:
        p.mkdir(path.rpartition("/")[0])
    return p.write(path, io.BytesIO(data), len(data), mtime_ns)


def get(p: Provider, path: str) -> bytes:
    with p.read(path) as f:
        return f.read()


class ReadTracker(io.RawIOBase):
    """Random bytes made on the fly; remembers the largest single read."""

    def __init__(self, size: int) -> None:
        self.left, self.max_read = size, 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        chunk = os.urandom(n)
        b[:n] = chunk
        self.digest.update(chunk)
        self.left -= n
        self.max_read = max(self.max_read, n)
        return n


# ---- auth -------------------------------------------------------------------------------
def test_wrong_key_is_an_auth_error_without_the_secret(sf: SmartFileSetup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "W" * 30
    with SmartFileProvider("/", api_key=KEY, api_password=wrong, url=sf.emulator.base_url, tuning=FAST) as p, \
            pytest.raises(errors.AuthError) as err:
        p.stat("")
    assert not err.value.retryable
    shown = str(err.value) + repr(err.value) + caplog.text + p.describe()
    assert wrong not in shown and KEY not in shown


def test_oauth_plaintext(sf: SmartFileSetup) -> None:
    url = sf.emulator.base_url
    with SmartFileProvider("/sync", client_token=CLIENT_TOKEN, client_secret=CLIENT_SECRET, access_token=ACCESS_TOKEN,
                           access_secret=ACCESS_SECRET, url=url, tuning=FAST) as p:
        put(p, "o/auth.txt", b"signed")
        assert get(p, "o/auth.txt") == b"signed"
        header = next(r for r in sf.emulator.requests if "path/data" in r.path)
        assert header.method == "POST"
    with SmartFileProvider("/", client_token=CLIENT_TOKEN, client_secret=CLIENT_SECRET, access_token=ACCESS_TOKEN,
                           access_secret="x" * 30, url=url, tuning=FAST) as bad, pytest.raises(errors.AuthError):
        bad.stat("")


def test_missing_credentials_are_a_config_error() -> None:
    with pytest.raises(errors.ConfigError):
        SmartFileProvider("/", api_key=KEY, url="http://127.0.0.1:9/")


# ---- throttling and retries ---------------------------------------------------------------
@pytest.mark.parametrize("style", ["429", "503"])
def test_throttling_both_styles_is_waited_out(sf: SmartFileSetup, sleeps: Sleeps, style: str) -> None:
    sf.emulator.inject(style, 2, retry_after=0.25)
    assert sf.provider.stat("").kind is Kind.DIR
    assert sleeps == [0.25, 0.25]


def test_endless_throttling_gives_up_with_retry_after(sf: SmartFileSetup) -> None:
    sf.emulator.inject("429", 50, retry_after=7)
    with pytest.raises(errors.Throttled) as err:
        sf.provider.stat("")
    assert err.value.retry_after == 7 and err.value.retryable


def test_server_errors_and_resets_are_retried(sf: SmartFileSetup, sleeps: Sleeps) -> None:
    sf.emulator.inject("500", 2)
    put(sf.provider, "r/a.txt", b"after two 500s")
    sf.emulator.inject("reset", 1, method="GET")
    assert get(sf.provider, "r/a.txt") == b"after two 500s"
    sf.emulator.inject("reset", 1, method="POST", path="path/data")
    put(sf.provider, "r/b.txt", b"upload resent from the start")  # a BytesIO rewinds
    assert get(sf.provider, "r/b.txt") == b"upload resent from the start"
    assert len(sleeps) == 4


def test_retries_are_bounded(sf: SmartFileSetup) -> None:
    sf.emulator.inject("502", 100)
    with pytest.raises(errors.TransientError):
        sf.provider.stat("")
    assert len([r for r in sf.emulator.requests if r.status == 502]) == FAST.retry.attempts


def test_unsafe_request_is_not_repeated_after_a_reset(sf: SmartFileSetup) -> None:
    put(sf.provider, "u/a.txt", b"a")
    sf.emulator.inject("reset", 1, path="oper/rename")
    with pytest.raises(errors.TransientError):
        sf.provider.move("u/a.txt", "u/b.txt")
    assert len([r for r in sf.emulator.requests if "oper/rename" in r.path]) == 1


def test_download_resumes_after_a_mid_transfer_reset(sf: SmartFileSetup) -> None:
    data = os.urandom(3 * MiB)
    put(sf.provider, "big.bin", data)
    sf.emulator.inject("reset-mid", 1, method="GET", path="path/data")
    assert get(sf.provider, "big.bin") == data
    resumed = [r for r in sf.emulator.requests if r.headers.get("Range")]
    # a RST drops whatever was in flight, so the client resumes at or before the cut
    assert len(resumed) == 1
    assert 0 < int(resumed[0].headers["Range"].removeprefix("bytes=").rstrip("-")) <= len(data) // 2


def test_error_mapping_is_by_status() -> None:
    def answer(status: int, **headers: str) -> requests.Response:
        r = requests.Response()
        r.status_code, r._content = status, b'{"detail": "nope"}'
        r.headers.update(headers)
        return r

    cases: list[tuple[requests.Response, type[errors.ProviderError]]] = [
        (answer(401), errors.AuthError), (answer(403), errors.AuthError), (answer(404), errors.NotFound),
        (answer(409), errors.Conflict), (answer(402), errors.QuotaExceeded), (answer(400), errors.PermanentError),
        (answer(500), errors.TransientError), (answer(503), errors.TransientError),
        (answer(501), errors.Unsupported), (answer(429), errors.Throttled),
    ]
    for response, cls in cases:
        assert type(error_for(response)) is cls, response.status_code
    assert error_for(answer(429, **{"Retry-After": "3"})).retry_after == 3  # type: ignore[attr-defined]
    legacy = error_for(answer(503, **{"X-Throttle": "throttled; next=0.5 sec"}))
    assert isinstance(legacy, errors.Throttled) and legacy.retry_after == 0.5
    assert type(error_for(answer(409), on_conflict=errors.AlreadyExists)) is errors.AlreadyExists
    assert type(error_for(exc=requests.ConnectionError("reset"))) is errors.TransientError


# ---- tasks ------------------------------------------------------------------------------------
def test_task_polling_waits_for_success(sf: SmartFileSetup, sleeps: Sleeps) -> None:
    sf.emulator.app.configure({"pending_polls": 4})
    put(sf.provider, "t/a.txt", b"a")
    sf.provider.move("t/a.txt", "other/a.txt")
    assert get(sf.provider, "other/a.txt") == b"a"
    polls = [r for r in sf.emulator.requests if "/task/" in r.path]
    assert len(polls) == 5
    assert sleeps == sorted(sleeps) and sleeps[-1] <= FAST.poll_max  # backing off, capped


def test_task_failure_and_errors_inside_success(sf: SmartFileSetup) -> None:
    put(sf.provider, "t/a.txt", b"a")
    sf.emulator.inject("task-failure", path="oper/remove")
    with pytest.raises(errors.PermanentError) as err:
        sf.provider.delete("t/a.txt")
    assert err.value.path == "t/a.txt"
    sf.emulator.inject("task-error", path="oper/copy")
    with pytest.raises(errors.PermanentError):
        sf.provider.copy("t/a.txt", "u/a.txt")
    assert get(sf.provider, "t/a.txt") == b"a"


def test_move_copy_delete_semantics(sf: SmartFileSetup) -> None:
    p = sf.provider
    put(p, "m/a.txt", b"a")
    put(p, "n/a.txt", b"taken")
    moved = p.move("m/a.txt", "n/b.txt")  # folder and name change; the old name is taken there
    assert moved.path == "n/b.txt" and get(p, "n/b.txt") == b"a" and get(p, "n/a.txt") == b"taken"
    with pytest.raises(errors.AlreadyExists):
        p.move("n/b.txt", "n/a.txt")
    copied = p.copy("n/b.txt", "n/c.txt")  # same folder: goes through a staging folder
    assert copied.mtime_ns == moved.mtime_ns and copied.hash == moved.hash
    assert {e.path for e in p.list()} == {"m", "n", "n/a.txt", "n/b.txt", "n/c.txt"}
    with pytest.raises(errors.AlreadyExists):
        p.delete("n")
    with pytest.raises(errors.NotFound):
        p.delete("nothing")
    p.delete("n", recursive=True)
    assert [e.path for e in p.list()] == ["m"]


# ---- listing, streaming, names ------------------------------------------------------------------
def test_paging(sleeps: Sleeps) -> None:
    tuning = Tuning(**{**FAST.__dict__, "page_size": 3})
    with smartfile_setup(tuning=tuning, sleep=sleeps) as sf:
        for i in range(10):
            put(sf.provider, f"p/f{i:02}.txt", b"x")
        listing = [e.path for e in sf.provider.list("p")]
        assert sorted(listing) == [f"p/f{i:02}.txt" for i in range(10)]
        pages = [r.query for r in sf.emulator.requests if "children=" in r.query]
        assert sum("page=4" in q for q in pages) == 1 and not any("page=5" in q for q in pages)


def test_large_upload_streams(sf: SmartFileSetup) -> None:
    size = 20 * MiB
    source = ReadTracker(size)
    entry = sf.provider.write("big.bin", io.BufferedReader(source, 1 << 16), size, 0, expect=None)
    assert entry.size == size and entry.hash == source.digest.hexdigest()
    assert source.max_read <= MiB, "the provider read the whole file at once"
    digest = hashlib.sha256()
    with sf.provider.read("big.bin") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == entry.hash
    upload = next(r for r in sf.emulator.requests if "path/data" in r.path and r.method == "POST")
    assert int(upload.headers["Content-Length"]) > size  # streamed with a length, not chunked


def test_hostile_names(sf: SmartFileSetup) -> None:
    p = sf.provider
    names = [HOSTILE, "odd/100%41 #1?.txt", "odd/%2F and ~!*();:=$,[].txt"]
    for path in names:
        put(p, path, path.encode())
    listed = {e.path for e in p.list()}
    for path in names:
        assert path in listed and get(p, path) == path.encode()
    renamed = p.move(HOSTILE, "odd/ \" ' @ < > & + ≠.txt")
    assert get(p, renamed.path) == HOSTILE.encode()
    # a multipart upload keeps only what follows the last '\\' (Django's basename)
    with pytest.raises(errors.InvalidName):
        put(p, "odd/back\\slash.txt", b"x")


def test_revs_mtimes_and_expect(sf: SmartFileSetup) -> None:
    p = sf.provider
    first = put(p, "e.txt", b"one", 1_500_000_000_123_456_789)
    assert first.mtime_ns == 1_500_000_000_123_456_789
    second = p.write("e.txt", io.BytesIO(b"two"), 3, 1_500_000_001_000_000_000, expect=first.rev)
    assert second.rev != first.rev  # same size, same second: our hash tells them apart
    with pytest.raises(errors.Conflict):
        p.write("e.txt", io.BytesIO(b"three"), 5, 0, expect=first.rev)
    with pytest.raises(errors.Conflict):
        p.write("e.txt", io.BytesIO(b"three"), 5, 0, expect=None)
    touched = p.set_mtime("e.txt", 1_234_000_000_000_000_000)
    assert touched.mtime_ns == 1_234_000_000_000_000_000 and touched.hash == second.hash


def test_foreign_overwrite_is_not_trusted(sf: SmartFileSetup) -> None:
    p = sf.provider
    ours = put(p, "f.txt", b"ours", 1_000_000_000_000_000_000)
    official = smartfile.BasicClient(KEY, PASSWORD, url=sf.emulator.base_url)
    official.post("/path/data/", "/sync", file=("f.txt", io.BytesIO(b"someone else's")))
    theirs = p.stat("f.txt")
    assert theirs.rev != ours.rev and theirs.hash is None
    assert theirs.mtime_ns != ours.mtime_ns  # the server's time, not our stale attribute


def test_upload_answer_as_one_object(sf: SmartFileSetup) -> None:
    sf.emulator.app.configure({"upload_answer": "object"})
    assert put(sf.provider, "obj.txt", b"x").size == 1


def test_not_found_everywhere(sf: SmartFileSetup) -> None:
    p = sf.provider
    for call in (lambda: p.stat("missing"), lambda: p.read("missing"), lambda: list(p.list("missing")),
                 lambda: p.move("missing", "x"), lambda: p.signature("missing", io.BytesIO())):
        with pytest.raises(errors.NotFound):
            call()


# ---- the sync API ---------------------------------------------------------------------------------
def test_delta_upload_and_download_round_trip(sf: SmartFileSetup) -> None:
    delta = pytest.importorskip("syncagent.delta", reason="syncagent/delta.py has not landed yet")
    p = sf.provider
    basis = os.urandom(MiB)
    old = put(p, "d.bin", basis)
    changed = basis[:1000] + b"hello world" + basis[1011:]
    sig = io.BytesIO()
    p.signature("d.bin", sig)
    sig.seek(0)
    assert sig.read(4) == bytes.fromhex("72730136")  # MD4, librsync 0.9.7
    sig.seek(0)
    diff = io.BytesIO()
    delta.delta(sig, io.BytesIO(changed), diff)
    diff.seek(0)
    new = p.patch("d.bin", diff, len(changed), 1_700_000_000_000_000_000, expect=old.rev)
    assert new.rev != old.rev and new.hash is None and get(p, "d.bin") == changed
    local_sig = io.BytesIO()
    delta.signature(io.BytesIO(basis), local_sig, hash="md4")
    local_sig.seek(0)
    back = io.BytesIO()
    p.delta("d.bin", local_sig, back)
    back.seek(0)
    out = io.BytesIO()
    delta.patch(io.BytesIO(basis), back, out)
    assert out.getvalue() == changed
    with pytest.raises(errors.Conflict):
        p.patch("d.bin", io.BytesIO(b""), 0, 0, expect=old.rev)


def test_write_any_overwrites(sf: SmartFileSetup) -> None:
    put(sf.provider, "w.txt", b"1")
    sf.provider.write("w.txt", io.BytesIO(b"22"), 2, 0, expect=ANY)
    assert get(sf.provider, "w.txt") == b"22"


def test_slow_answer_times_out_and_is_retried(sleeps: Sleeps) -> None:
    tuning = Tuning(**{**FAST.__dict__, "timeouts": Timeouts(connect=1, read=0.2, total=5)})
    with smartfile_setup(tuning=tuning, sleep=sleeps) as sf:
        sf.emulator.inject("slow", 1, delay=0.5, method="GET")
        assert sf.provider.stat("").kind is Kind.DIR
        assert len(sleeps) == 1  # one backoff after the read timeout


def test_no_handler_thread_outlives_the_emulator() -> None:
    import threading

    before = threading.active_count()
    with smartfile_setup() as sf:
        put(sf.provider, "x.txt", b"x")
        official = smartfile.BasicClient(KEY, PASSWORD, url=sf.emulator.base_url)
        assert official.get("/path/data", "/sync/x.txt").read() == b"x"
    for _ in range(100):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.01)
    assert threading.active_count() <= before


# ---- time bounds: a server that never answers, or trickles --------------------------------------------
def test_a_never_answering_server_is_bounded_and_named(sleeps: Sleeps) -> None:
    tuning = Tuning(**{**FAST.__dict__, "timeouts": Timeouts(connect=1, read=0.2, total=5)})
    with smartfile_setup(tuning=tuning, sleep=sleeps) as sf:
        sf.emulator.inject("hang", 100, delay=30, method="GET")
        started = time.monotonic()
        with pytest.raises(errors.TransientError) as err:
            sf.provider.stat("")
        assert time.monotonic() - started < 1 + FAST.retry.attempts * 0.2 * 3
        host = sf.emulator.base_url.removeprefix("http://").rstrip("/")
        assert host in str(err.value) and "stopped answering" in str(err.value)
        assert len(sleeps) == FAST.retry.attempts - 1  # tried attempts times, then gave up


def test_a_trickling_answer_is_cut_and_retried(sleeps: Sleeps) -> None:
    tuning = Tuning(**{**FAST.__dict__, "timeouts": Timeouts(connect=1, read=1, total=0.5)})
    with smartfile_setup(tuning=tuning, sleep=sleeps) as sf:
        sf.emulator.inject("trickle", 1, delay=0.05, method="GET", path="path/info")
        assert sf.provider.stat("").kind is Kind.DIR
        assert len(sleeps) == 1


# ---- one retry budget per transfer -------------------------------------------------------------------
def test_download_resumes_share_one_budget_with_the_opening_request(sf: SmartFileSetup, sleeps: Sleeps) -> None:
    data = os.urandom(2 * MiB)
    put(sf.provider, "b.bin", data)
    sf.emulator.clear_log()
    sf.emulator.inject("reset-mid", 100, method="GET", path="path/data")
    with pytest.raises(errors.TransientError), sf.provider.read("b.bin") as f:
        f.read()
    gets = [r for r in sf.emulator.requests if "path/data" in r.path]
    assert len(gets) == FAST.retry.attempts  # opening + resumes, never attempts x attempts


def test_retry_after_above_the_cap_is_capped(sf: SmartFileSetup, sleeps: Sleeps) -> None:
    sf.emulator.inject("429", 1, retry_after=3600)
    assert sf.provider.stat("").kind is Kind.DIR
    assert sleeps == [FAST.retry.retry_after_cap]


# ---- delete_many: one remove task for many paths -----------------------------------------------------
def test_delete_many_removes_forty_files_in_one_task(sf: SmartFileSetup) -> None:
    p = sf.provider
    for i in range(40):
        put(p, f"del/f{i:02}.txt", b"x")
    sf.emulator.clear_log()
    assert p.delete_many([(f"del/f{i:02}.txt", False) for i in range(40)]) == {}
    removes = [r for r in sf.emulator.requests if "oper/remove" in r.path]
    listings = [r for r in sf.emulator.requests if "children=" in r.query]
    assert len(removes) == 1 and len(listings) == 1  # one task, one look at the parent folder
    assert listings[0].response_bytes > 40 * len('"name": "f00.txt"')
    assert [e.path for e in p.list()] == ["del"]


def test_delete_many_keeps_the_promise_of_non_recursive(sf: SmartFileSetup) -> None:
    p = sf.provider
    put(p, "full/keep.txt", b"k")
    put(p, "emptied/a.txt", b"a")
    put(p, "tree/sub/b.txt", b"b")
    p.mkdir("empty")
    failed = p.delete_many([("full", False), ("emptied/a.txt", False), ("emptied", False), ("empty", False),
                            ("tree", True), ("tree/sub/b.txt", False), ("never-was", False)])
    assert set(failed) == {"full"} and isinstance(failed["full"], errors.AlreadyExists)
    assert {e.path for e in p.list()} == {"full", "full/keep.txt"}


def test_delete_many_with_paths_gone_before_the_task(sf: SmartFileSetup) -> None:
    p = sf.provider
    for name in ("a", "b", "c"):
        put(p, f"g/{name}.txt", name.encode())
    # recursive paths are not looked up first: the server refuses the task for the missing one
    assert p.delete_many([("g/a.txt", True), ("g/missing.txt", True), ("g/c.txt", True)]) == {}
    assert [e.path for e in p.list("g")] == ["g/b.txt"]


def test_delete_many_reports_per_path_task_errors(sf: SmartFileSetup) -> None:
    p = sf.provider
    put(p, "e/a.txt", b"a")
    put(p, "e/b.txt", b"b")
    sf.emulator.inject("task-error", path="oper/remove")
    failed = p.delete_many([("e/a.txt", False), ("e/b.txt", False)])
    assert set(failed) == {"e/a.txt", "e/b.txt"}
    assert all(isinstance(exc, errors.PermanentError) and exc.path == path for path, exc in failed.items())
    assert p.delete_many([("e/a.txt", False), ("e/b.txt", False), ("", True)]).keys() == {""}


def test_delete_many_splits_large_batches(sleeps: Sleeps) -> None:
    tuning = Tuning(**{**FAST.__dict__, "batch": 7})
    with smartfile_setup(tuning=tuning, sleep=sleeps) as sf:
        for i in range(20):
            put(sf.provider, f"s/{i}.txt", b"x")
        sf.emulator.clear_log()
        assert sf.provider.delete_many([(f"s/{i}.txt", False) for i in range(20)]) == {}
        assert len([r for r in sf.emulator.requests if "oper/remove" in r.path]) == 3
        assert [e.path for e in sf.provider.list()] == ["s"]


def test_delete_many_on_a_transient_failure_fails_the_batch(sf: SmartFileSetup) -> None:
    put(sf.provider, "t/a.txt", b"a")
    sf.emulator.inject("reset", 1, path="oper/remove")  # not safe to repeat: the server may have acted
    failed = sf.provider.delete_many([("t/a.txt", True)])
    assert isinstance(failed["t/a.txt"], errors.TransientError)


# ---- who, where, and files of other clients ------------------------------------------------------------
def test_whoami_names_the_account(sf: SmartFileSetup) -> None:
    assert sf.provider.whoami() == "emulated <user@example.invalid> on site emulator"


def test_url_and_oauth_tokens_from_the_environment(sf: SmartFileSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    from syncagent.credentials import Resolver
    from syncagent.providers.registry import open_remote

    monkeypatch.setenv("SMARTFILE_API_URL", sf.emulator.base_url)
    for name, value in (("CLIENT_TOKEN", CLIENT_TOKEN), ("CLIENT_SECRET", CLIENT_SECRET),
                        ("ACCESS_TOKEN", ACCESS_TOKEN), ("ACCESS_SECRET", ACCESS_SECRET)):
        monkeypatch.setenv(f"SMARTFILE_{name}", value)
    for name in ("SMARTFILE_API_KEY", "SMARTFILE_API_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    resolver = Resolver(use_keyring=False, netrc_file=Path("/nonexistent"), credentials_file=Path("/nonexistent"))
    with open_remote("sf", "smartfile", {"root": "/sync"}, resolver=resolver) as p:
        assert isinstance(p, SmartFileProvider) and p.url == sf.emulator.base_url
        assert p.root_exists()  # signed with the tokens from the environment (the emulator checks them)
        assert p.whoami().startswith("emulated")


def test_files_of_plain_http_clients_have_no_hash_but_a_signature(sf: SmartFileSetup) -> None:
    data = os.urandom(5000)
    response = requests.post(f"{sf.emulator.base_url}api/2/path/data/sync", auth=(KEY, PASSWORD),
                             files=[("file", ("plain.bin", data)), ("file", ("empty.txt", b""))], timeout=10)
    assert response.status_code == 200
    entries = {e.path: e for e in sf.provider.list()}
    assert entries["plain.bin"].hash is None and entries["plain.bin"].size == len(data)
    delta = pytest.importorskip("syncagent.delta")
    for name, content in (("plain.bin", data), ("empty.txt", b"")):
        remote, local = io.BytesIO(), io.BytesIO()
        sf.provider.signature(name, remote)
        delta.signature(io.BytesIO(content), local, hash="md4", block_len=2048, strong_len=8)
        assert remote.getvalue() == local.getvalue(), name


def test_a_sync_removes_its_remote_deletions_in_one_task(tmp_path: Path) -> None:
    from syncagent.engine.report import Reporter
    from syncagent.engine.state import Store
    from syncagent.engine.sync import Engine, SyncOptions

    local = tmp_path / "local"
    for i in range(40):
        (local / "d").mkdir(parents=True, exist_ok=True)
        (local / "d" / f"f{i:02}.txt").write_text(str(i))
    (local / "keep.txt").write_text("keep")
    with smartfile_setup() as sf:
        store = Store(tmp_path / "state")
        engine = Engine(local, sf.provider, "sf:/sync", store, SyncOptions(force=True), Reporter(quiet=True))
        assert engine.sync().uploaded == 41
        for f in (local / "d").iterdir():
            f.unlink()
        sf.emulator.clear_log()
        summary = engine.sync()
        store.close()
        assert summary.deleted_remote == 40 and summary.errors == 0
        assert len([r for r in sf.emulator.requests if "oper/remove" in r.path]) == 1
        assert {e.path for e in sf.provider.list()} == {"d", "keep.txt"}
