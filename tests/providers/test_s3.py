"""The S3 provider against real servers (moto's server mode, rclone serve s3):
what the conformance suite does not reach — signatures, multipart uploads
resumed after a restart, abandoned uploads, DeleteObjects batches, folder
markers, ETags of multipart objects, several machines on one bucket, and
the command line end to end."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import botocore.awsrequest
import pytest
from click.testing import CliRunner

from syncagent import errors
from syncagent.cli.main import main
from syncagent.providers.base import Kind, MemoryState, PairContext
from syncagent.providers.s3.client import DEFAULT_TUNING, parse_timestamp
from syncagent.providers.s3.login import pooled
from syncagent.providers.s3.multipart import STATE_PREFIX, Upload, abandoned
from syncagent.providers.s3.provider import LEARNED_KEY, Settings, mtime_text, parse_mtime
from tests.helpers import tree, write
from tests.servers.multi import machines_converge
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY, S3Setup, s3_provider

SERVERS = ("moto", "rclone")


def test_a_wrong_secret_is_a_clear_auth_error() -> None:
    """rclone serve s3 checks signatures (moto's server accepts any)."""
    with pytest.raises(errors.AuthError) as info, s3_provider("rclone", secret="wrong-secret"):
        pass
    assert "refused the access key or secret (SignatureDoesNotMatch)" in str(info.value)
    assert "wrong-secret" not in str(info.value)


class Killed(Exception):
    """Stands for the process dying mid-upload."""


class DiesAfter(io.RawIOBase):
    def __init__(self, data: bytes, limit: int) -> None:
        self.inner, self.limit = io.BytesIO(data), limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.inner.tell() >= self.limit:
            raise Killed()
        chunk = self.inner.read(min(len(b), self.limit - self.inner.tell()))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("name", SERVERS)
def test_multipart_resumes_after_a_restart_and_md5_is_kept(name: str) -> None:
    data = os.urandom(12 << 20)     # three 5 MiB parts
    state = MemoryState()            # the pair's provider state, kept across the "restart"
    with s3_provider(name) as first:
        first.provider.attach(PairContext(tag="a", state=state))
        first.provider.ensure_root()
        with pytest.raises(Killed):
            first.provider.write("big.bin", io.BufferedReader(DiesAfter(data, 11 << 20)), len(data), 7_000)
        record = Upload.load("sync/big.bin", state.get(STATE_PREFIX + "sync/big.bin"))
        assert record is not None and sorted(record.parts) == [1, 2]
        sent: list[int] = []
        first.provider.client.meta.events.register(
            "before-send.s3.UploadPart", lambda request, **_: sent.append(len(request.body or b"")))
        with s3_provider(name, bucket=first.bucket) as second:      # a new process: same state, same bucket
            second.provider.attach(PairContext(tag="a", state=state))
            second.provider.client.meta.events.register(
                "before-send.s3.UploadPart", lambda request, **_: sent.append(1))
            entry = second.provider.write("big.bin", io.BytesIO(data), len(data), 7_000)
            assert sent == [1], "only the last part is sent again"
            md5 = hashlib.md5(data).hexdigest()
            assert entry.hash == md5 and (entry.rev.endswith("-3") or entry.rev == md5)
            assert state.get(STATE_PREFIX + "sync/big.bin") is None
            listed = {e.path: e for e in second.provider.list()}
            assert listed["big.bin"].hash == hashlib.md5(data).hexdigest() and listed["big.bin"].mtime_ns == 7_000
            with second.provider.read("big.bin") as f:
                assert f.read() == data
            # another machine (no state): a multipart ETag is never taken for an MD5 (rclone serve s3
            # answers a HEAD with the file's real MD5)
            second.provider.attach(PairContext(tag="b"))
            assert second.provider.stat("big.bin").hash in (None, md5)


@pytest.mark.parametrize("name", SERVERS)
def test_abandoned_uploads_are_aborted(name: str) -> None:
    with s3_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t"))
        p.ensure_root()
        made = p.client.create_multipart_upload(Bucket=setup.bucket, Key="sync/left.bin")
        uploads = p.client.list_multipart_uploads(Bucket=setup.bucket).get("Uploads", [])
        assert [u["UploadId"] for u in uploads] == [made["UploadId"]]
        far_future = (uploads[0]["Initiated"].timestamp() + 2 * 86400)
        assert abandoned([dict(u) for u in uploads], p.pair.state, far_future) == [("sync/left.bin", made["UploadId"])]
        assert abandoned([dict(u) for u in uploads], p.pair.state, uploads[0]["Initiated"].timestamp() + 60) == []


def test_cleanup_aborts_an_old_foreign_upload() -> None:
    with s3_provider("moto") as setup:     # moto dates every upload in 2010: older than a day
        p = setup.provider
        p.ensure_root()
        p.client.create_multipart_upload(Bucket=setup.bucket, Key="sync/old.bin")
        assert p.cleanup_temps() == 1
        assert not p.client.list_multipart_uploads(Bucket=setup.bucket).get("Uploads")


@pytest.mark.parametrize("name", SERVERS)
def test_delete_many_batches_and_keeps_the_emptied_folder(name: str) -> None:
    with s3_provider(name) as setup:
        p = setup.provider
        p.ensure_root()
        calls: list[int] = []
        p.client.meta.events.register("before-send.s3.DeleteObjects", lambda **_: calls.append(1))
        for i in range(5):
            p.write(f"d/f{i}.txt", io.BytesIO(b"x"), 1, 0)
        p.mkdir("gone/sub")
        p.write("gone/sub/x.txt", io.BytesIO(b"x"), 1, 0)
        failed = p.delete_many([(f"d/f{i}.txt", False) for i in range(5)] + [("gone", True), ("never", False)])
        assert failed == {} and len(calls) == 1
        assert {(e.path, e.kind) for e in p.list()} == {("d", Kind.DIR)}


@pytest.mark.parametrize("name", SERVERS)
def test_conditional_writes_are_conflicts(name: str) -> None:
    with s3_provider(name) as setup:
        p = setup.provider
        p.ensure_root()
        first = p.write("f.txt", io.BytesIO(b"one"), 3, 0, expect=None)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"two"), 3, 0, expect=None)
        p.write("f.txt", io.BytesIO(b"three"), 5, 0, expect=first.rev)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"four"), 4, 0, expect=first.rev)
        with p.read("f.txt") as f:
            assert f.read() == b"three"


def test_the_server_enforces_if_none_match_where_it_can() -> None:
    """With conditional_writes=server no check is made first: moto itself refuses the write."""
    with s3_provider("moto", conditional_writes="server") as setup:
        p = setup.provider
        p.ensure_root()
        p.write("f.txt", io.BytesIO(b"one"), 3, 0, expect=None)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"two"), 3, 0, expect=None)


def operations(setup: S3Setup) -> list[str]:
    """The S3 operations the provider's client sends from now on, in order."""
    ops: list[str] = []
    setup.provider.client.meta.events.register("before-call.s3", lambda model, **_: ops.append(model.name))
    return ops


def raw_keys(setup: S3Setup) -> list[str]:
    return [o["Key"] for o in setup.provider.client.list_objects_v2(Bucket=setup.bucket).get("Contents", [])]


@pytest.mark.parametrize(("name", "enforced"), [("moto", True), ("rclone", False)])
def test_conditional_enforcement_is_learned_once_and_trusted(name: str, enforced: bool) -> None:
    """moto refuses a failed If-None-Match / If-Match; rclone serve s3 ignores both. Learned by a
    probe on a temp key at the first conditional write, kept in provider state: where the server
    enforces them a new file is one PutObject, else a HEAD checks first."""
    state = MemoryState()
    with s3_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t", state=state))
        p.ensure_root()
        p.write("a.txt", io.BytesIO(b"a"), 1, 0, expect=None)
        assert json.loads(state.get(LEARNED_KEY) or "{}") == {"conditional": enforced}
        assert not [k for k in raw_keys(setup) if "probe" in k], "the probe's temp key is gone"
        ops = operations(setup)
        second = p.write("b.txt", io.BytesIO(b"b"), 1, 0, expect=None)
        assert ops == (["PutObject"] if enforced else ["HeadObject", "PutObject"])
        with s3_provider(name, bucket=setup.bucket) as again:    # a new process: learned, no probe
            again.provider.attach(PairContext(tag="t", state=state))
            ops = operations(again)
            again.provider.write("b.txt", io.BytesIO(b"B"), 1, 0, expect=second.rev)
            assert ops == (["PutObject"] if enforced else ["HeadObject", "PutObject"])
            with pytest.raises(errors.Conflict):
                again.provider.write("b.txt", io.BytesIO(b"C"), 1, 0, expect=second.rev)
            with pytest.raises(errors.Conflict):
                again.provider.write("a.txt", io.BytesIO(b"C"), 1, 0, expect=None)


def test_a_server_refusing_conditional_headers_is_then_checked_first() -> None:
    with s3_provider("moto", conditional_writes="server") as setup:
        p = setup.provider
        p.ensure_root()
        setup.faults.inject("501")        # NotImplemented to the conditional PutObject
        p.write("f.txt", io.BytesIO(b"one"), 3, 0, expect=None)
        assert json.loads(p.pair.state.get(LEARNED_KEY) or "{}") == {"conditional": False}
        ops = operations(setup)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"two"), 3, 0, expect=None)
        assert ops == ["HeadObject"]


@pytest.mark.parametrize("name", SERVERS)
def test_a_multipart_write_is_checked_first_even_where_the_server_is_trusted(name: str) -> None:
    data = os.urandom(6 << 20)
    with s3_provider(name) as setup:
        p = setup.provider
        p.ensure_root()
        p.write("small.txt", io.BytesIO(b"x"), 1, 0, expect=None)      # learns
        first = p.write("big.bin", io.BytesIO(data), len(data), 0, expect=None)
        ops = operations(setup)
        with pytest.raises(errors.Conflict):
            p.write("big.bin", io.BytesIO(data), len(data), 0, expect=None)
        assert ops == ["HeadObject"], "refused before any part is sent"
        p.write("big.bin", io.BytesIO(data[::-1]), len(data), 0, expect=first.rev)
        with p.read("big.bin") as f:
            assert f.read() == data[::-1]


class InFlight:
    """How many UploadPart requests are on the wire at once (at most)."""

    def __init__(self, setup: S3Setup) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()
        events = setup.provider.client.meta.events
        events.register("before-call.s3.UploadPart", self._start)
        events.register("after-call.s3.UploadPart", self._end)

    def _start(self, **_: Any) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def _end(self, **_: Any) -> None:
        with self.lock:
            self.now -= 1


@pytest.mark.parametrize("name", SERVERS)
def test_multipart_parts_go_up_in_parallel_within_the_bound(name: str) -> None:
    data = os.urandom(26 << 20)      # six parts of 5 MiB
    with s3_provider(name, upload_concurrency=3) as setup:
        p = setup.provider
        p.ensure_root()
        seen = InFlight(setup)
        entry = p.write("big.bin", io.BytesIO(data), len(data), 5_000)
        assert 1 < seen.most <= 3
        assert entry.hash == hashlib.md5(data).hexdigest()
        with p.read("big.bin") as f:
            assert hashlib.md5(f.read()).hexdigest() == entry.hash


@pytest.mark.parametrize("name", SERVERS)
def test_a_failed_part_fails_the_write_and_the_next_attempt_resumes(name: str) -> None:
    data = os.urandom(16 << 20)      # four parts
    state = MemoryState()
    with s3_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="a", state=state))
        p.ensure_root()
        sent: list[str] = []
        failing = [True]

        def part_two_fails(request: Any, **_: Any) -> Any:
            sent.append(request.url)
            if failing[0] and "partNumber=2&" in request.url + "&":     # every try of part 2
                return botocore.awsrequest.AWSResponse(request.url, 500, cast(Any, {}), _Empty())
            return None

        p.client.meta.events.register_first("before-send.s3.UploadPart", part_two_fails)
        with pytest.raises(errors.TransientError):
            p.write("big.bin", io.BytesIO(data), len(data), 1_000)
        record = Upload.load("sync/big.bin", state.get(STATE_PREFIX + "sync/big.bin"))
        assert record is not None and 2 not in record.parts, "the upload is kept for a resume"
        sent.clear()
        failing[0] = False
        entry = p.write("big.bin", io.BytesIO(data), len(data), 1_000)
        assert len(sent) < 4, "the parts the server holds are not sent again"
        assert entry.hash == hashlib.md5(data).hexdigest()
        with p.read("big.bin") as f:
            assert f.read() == data


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""

    def read(self, *_: Any, **__: Any) -> bytes:
        return b""


@pytest.mark.parametrize("name", SERVERS)
def test_a_no_op_listing_reads_no_metadata(name: str) -> None:
    """Metadata is HEADed once per ETag: a listing of unchanged objects is ListObjectsV2 alone."""
    state = MemoryState()
    with s3_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t", state=state))
        p.ensure_root()
        for i in range(3):
            p.write(f"d/f{i}.txt", io.BytesIO(b"mine"), 4, 1_000 + i)
        p.client.put_object(Bucket=setup.bucket, Key="sync/d/theirs.txt", Body=b"theirs")   # another tool's
        ops = operations(setup)
        first = list(p.list())
        assert ops.count("HeadObject") == 1, ops
        ops.clear()
        with s3_provider(name, bucket=setup.bucket) as again:      # the next run
            again.provider.attach(PairContext(tag="t", state=state))
            ops = operations(again)
            assert list(again.provider.list()) == first
            assert set(ops) == {"ListObjectsV2"}, ops


@pytest.mark.parametrize("name", SERVERS)
def test_temp_keys_are_hidden_and_ours_cleaned_up(name: str) -> None:
    with s3_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t1"))
        p.ensure_root()
        p.write("keep.txt", io.BytesIO(b"k"), 1, 0)
        for key in ("sync/.syncagent-t1probe-0a.tmp", "sync/.syncagent-zzother.tmp"):
            p.client.put_object(Bucket=setup.bucket, Key=key, Body=b"")
        assert [e.path for e in p.list()] == ["keep.txt"]
        assert p.cleanup_temps() == 1      # ours now; another machine's only after a day
        assert sorted(k for k in raw_keys(setup) if ".syncagent-" in k and "folder" not in k) == \
            ["sync/.syncagent-zzother.tmp"]


def test_the_pool_holds_every_part_in_flight() -> None:
    settings = Settings("b", transfers=8, upload_concurrency=4)
    assert pooled(DEFAULT_TUNING, settings).pool == 34
    assert pooled(DEFAULT_TUNING, Settings("b", transfers=1, upload_concurrency=1)).pool == DEFAULT_TUNING.pool


def test_mtime_text_round_trips() -> None:
    assert mtime_text(1_500_000_000_250_000_001) == "1500000000.250000001"
    assert parse_mtime("1500000000.25") == 1_500_000_000_250_000_000
    assert parse_mtime("1500000000") == 1_500_000_000_000_000_000 and parse_mtime("x") is None


@pytest.mark.parametrize("text", ["2026-12-02T01:42:53.000Z", "2026-12-02T01:42:53Z", "2026-12-02T01:42:53.5Z",
                                  "Wed, 02 Dec 2026 01:42:53 GMT", "2026-12-02T01:42:53.000+02:00", "1796175773"])
def test_timestamps_read_as_botocore_reads_them(text: str) -> None:
    """The fast path (listings' ISO form) and the fallback agree with botocore's own parser."""
    from botocore.utils import parse_timestamp as botocore_parse

    assert parse_timestamp(text) == botocore_parse(text) and parse_timestamp(text).tzinfo is not None


@pytest.mark.parametrize("name", SERVERS)
def test_listed_modification_times_are_the_servers(name: str) -> None:
    """LastModified of a listing (the fast parser) is the time HEAD reports (botocore's)."""
    with s3_provider(name) as setup:
        p = setup.provider
        p.client.put_object(Bucket=setup.bucket, Key="sync/x.txt", Body=b"x")
        (listed,) = p.client.list_objects_v2(Bucket=setup.bucket, Prefix="sync/x")["Contents"]
        head = p.client.head_object(Bucket=setup.bucket, Key="sync/x.txt")
        assert listed["LastModified"].tzinfo is not None
        assert abs(listed["LastModified"].timestamp() - head["LastModified"].timestamp()) < 1


@pytest.mark.parametrize("name", SERVERS)
def test_several_machines_on_one_bucket_converge(name: str, tmp_path: Path) -> None:
    with s3_provider(name) as a, s3_provider(name, bucket=a.bucket) as b:
        machines_converge([a.provider, b.provider], tmp_path)


# ---- the command line ------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "SYNCAGENT_REMOTE_S3_ACCESS_KEY_ID", "SYNCAGENT_REMOTE_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), env=env)
    return r.exit_code, r.output


def test_cli_config_auth_sync_end_to_end(cli_env: Path) -> None:
    with s3_provider("rclone") as setup:
        assert cli("config", "add", "s3", "s3", f"endpoint={setup.server.url}", f"bucket={setup.bucket}",
                   "region=us-east-1", "prefix=backup", "folder_markers=file")[0] == 0
        local = cli_env / "local"
        write(local / "a.txt", "hello")
        write(local / "Hello, 世界/z ≠.txt", "unicode")
        env = {"SYNCAGENT_REMOTE_S3_ACCESS_KEY_ID": ACCESS_KEY, "SYNCAGENT_REMOTE_S3_SECRET_ACCESS_KEY": "wrong"}
        code, out = cli("sync", str(local), "s3:", env=env)
        assert code == 1 and "refused the access key or secret" in out and "Traceback" not in out
        env["SYNCAGENT_REMOTE_S3_SECRET_ACCESS_KEY"] = SECRET_KEY
        code, out = cli("sync", str(local), "s3:", env=env)
        assert code == 0, out
        code, out = cli("auth", "s3", f"access_key_id={ACCESS_KEY}", "secret_access_key=wrong")
        assert code == 1 and "wrong" not in out
        code, out = cli("auth", "s3", f"access_key_id={ACCESS_KEY}", f"secret_access_key={SECRET_KEY}")
        assert code == 0, out
        code, out = cli("config", "show")
        assert SECRET_KEY not in out
        code, out = cli("ls", "-R", "s3:")
        assert code == 0 and "Hello, 世界/z ≠.txt" in out, out
        code, out = cli("get", "s3:a.txt", "-")
        assert out == "hello"
        other = cli_env / "other"
        assert cli("sync", str(other), "s3:", "--state-dir", str(cli_env / "state2"))[0] == 0
        assert tree(other) == tree(local)
