"""The WebDAV provider against real servers (wsgidav, rclone serve webdav):
what the conformance suite does not reach — credentials, Digest, the
Depth: infinity fallback, atomic uploads, resumed downloads, learned mtime
modes, several machines on one folder, and the command line end to end."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from syncagent import errors
from syncagent.cli.main import main
from syncagent.providers.base import Kind, PairContext
from syncagent.providers.webdav.propfind import href_path, http_date_ns, parse, parse_checksums
from tests.helpers import tree, write
from tests.servers import PASSWORD, USER
from tests.servers.multi import machines_converge
from tests.servers.webdav import webdav_provider

SERVERS = ("wsgidav", "rclone")


@pytest.mark.parametrize("name", SERVERS)
def test_wrong_password_is_a_clear_auth_error(name: str) -> None:
    with pytest.raises(errors.AuthError) as info, webdav_provider(name, password="wrong"):
        pass
    assert "refused the user name or password" in str(info.value) and "wrong" not in str(info.value)


def test_auto_auth_follows_a_digest_challenge() -> None:
    with webdav_provider("wsgidav", auth="auto") as setup:   # this wsgidav takes Digest only
        setup.provider.ensure_root()
        setup.provider.write("a.txt", io.BytesIO(b"digest"), 6, 0)
        assert setup.provider.dav.auth is not None and setup.provider.dav.auth.use_digest
        with setup.provider.read("a.txt") as f:
            assert f.read() == b"digest"


class RefuseInfinity(requests.adapters.HTTPAdapter):
    """Answers a Depth: infinity PROPFIND the way Apache's default (DavDepthInfinity Off) does."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.method == "PROPFIND" and request.headers.get("Depth") == "infinity":
            response = requests.Response()
            response.status_code, response.reason, response.request = 403, "Forbidden", request
            response.raw = io.BytesIO(b"<D:error xmlns:D='DAV:'><D:propfind-finite-depth/></D:error>")
            return response
        return super().send(request, *args, **kwargs)


@pytest.mark.parametrize("name", SERVERS)
def test_listing_falls_back_to_depth_1_and_remembers(name: str) -> None:
    with webdav_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t1"))
        p.ensure_root()
        for path in ("a/b/c.txt", "a/d.txt", "e.txt"):
            p.mkdir(path.rpartition("/")[0]) if "/" in path else None
            p.write(path, io.BytesIO(b"x"), 1, 0)
        full = [(e.path, e.kind) for e in p.list()]
        assert p.learned["infinity"] is True
        p.dav.session.mount("http://", RefuseInfinity())
        walked = [(e.path, e.kind) for e in p.list()]
        assert sorted(walked) == sorted(full) == sorted([("a", Kind.DIR), ("a/b", Kind.DIR), ("a/b/c.txt", Kind.FILE),
                                                         ("a/d.txt", Kind.FILE), ("e.txt", Kind.FILE)])
        assert p.learned["infinity"] is False and '"infinity": false' in (p.pair.state.get("webdav.learned") or "")


class CountsInFlight(requests.adapters.HTTPAdapter):
    """Counts the PROPFINDs on the wire at once (each held a moment so overlaps show)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.most = self.total = 0
        self.lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.method != "PROPFIND":
            return super().send(request, *args, **kwargs)
        with self.lock:
            self.now += 1
            self.total += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.05)
            return super().send(request, *args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("name", SERVERS)
def test_a_folder_walk_keeps_several_propfinds_in_flight(name: str) -> None:
    with webdav_provider(name) as setup, webdav_provider(name, root=setup.root, depth_infinity=False) as walker:
        p = setup.provider
        p.ensure_root()
        for i in range(6):
            p.mkdir(f"d{i}/sub")
            p.write(f"d{i}/sub/f.txt", io.BytesIO(b"x"), 1, 0)
            p.write(f"d{i}/g.txt", io.BytesIO(b"yy"), 2, 0)
        full = list(p.list())
        counter = CountsInFlight()
        walker.provider.dav.session.mount("http://", counter)
        walked = list(walker.provider.list())
        assert walked == full and len(full) == 24      # the same entries, in the same (path) order
        # 13 folders (and, with Digest, one challenge per walking thread)
        assert 13 <= counter.total <= 13 + walker.provider.tuning.walkers
        assert 1 < counter.most <= walker.provider.tuning.walkers


def test_http_dates_and_hrefs_are_read_in_every_form() -> None:
    imf = http_date_ns("Sun, 06 Nov 1994 08:49:37 GMT")
    assert imf == 784_111_777 * 1_000_000_000
    assert http_date_ns("Sunday, 06-Nov-94 08:49:37 GMT") == imf         # RFC 850
    assert http_date_ns("Sun Nov  6 08:49:37 1994") == imf               # asctime
    assert http_date_ns("Sun, 06 Nov 1994 09:49:37 +0100") == imf        # a zone other than GMT
    assert http_date_ns("Sun, 06 Nov 1994 25:49:37 GMT") == 0 and http_date_ns("soon") == 0
    assert href_path("/dav/a%20b/c%25d.txt") == "/dav/a b/c%d.txt"
    assert href_path("https://host:8080/dav/x?y.txt") == "/dav/x" and href_path(" /dav/plain ") == "/dav/plain"


@pytest.mark.parametrize("name", SERVERS)
def test_a_broken_upload_leaves_neither_a_damaged_file_nor_a_temp(name: str) -> None:
    with webdav_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="mytag"))
        p.ensure_root()
        p.write("f.bin", io.BytesIO(b"old content"), 11, 1_500_000_000_000_000_000)
        old = p.stat("f.bin")

        class Breaks(io.RawIOBase):          # a source that fails half way (and cannot seek: no retry)
            sent = 0

            def readable(self) -> bool:
                return True

            def readinto(self, b: Any) -> int:
                if self.sent > 300_000:
                    raise OSError("disk gone")
                b[: len(b)] = b"n" * len(b)
                self.sent += len(b)
                return len(b)

        with pytest.raises((errors.ProviderError, OSError)):
            p.write("f.bin", io.BufferedReader(Breaks()), 1_000_000, 0, expect=old.rev)
        with p.read("f.bin") as f:
            assert f.read() == b"old content"
        # a server may still be writing the cut body when the temp's DELETE comes: the listing
        # hides it, and the next run's clean-up (after its listing) removes this pair's leftovers
        assert [e.path for e in p.list()] == ["f.bin"]
        p.cleanup_temps()
        names = os.listdir(setup.data / setup.root)
        assert names == ["f.bin"], names


@pytest.mark.parametrize("name", SERVERS)
def test_stale_revs_and_existing_names_are_conflicts(name: str) -> None:
    with webdav_provider(name) as setup:
        p = setup.provider
        p.ensure_root()
        first = p.write("f.txt", io.BytesIO(b"one"), 3, 1_500_000_000_000_000_000, expect=None)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"two"), 3, 0, expect=None)
        p.write("f.txt", io.BytesIO(b"three"), 5, 1_600_000_000_000_000_000, expect=first.rev)
        with pytest.raises(errors.Conflict):
            p.write("f.txt", io.BytesIO(b"four"), 4, 0, expect=first.rev)
        p.write("g.txt", io.BytesIO(b"g"), 1, 0)
        with pytest.raises(errors.AlreadyExists):
            p.copy("f.txt", "g.txt")
        with pytest.raises(errors.AlreadyExists):
            p.move("f.txt", "g.txt")
        assert (setup.data / setup.root / "f.txt").read_bytes() == b"three"


@pytest.mark.parametrize("name", SERVERS)
def test_download_resumes_with_a_range_of_the_same_version(name: str) -> None:
    data = os.urandom(3 << 20)
    with webdav_provider(name) as setup:
        p = setup.provider
        p.ensure_root()
        p.write("big.bin", io.BytesIO(data), len(data), 0)
        seen: list[str] = []

        class CutOnce(requests.adapters.HTTPAdapter):
            def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
                response = super().send(request, *args, **kwargs)
                if request.method == "GET":
                    seen.append(request.headers.get("Range", "") + "|" + request.headers.get("If-Range", ""))
                    if len(seen) == 1:
                        response.raw = _Truncated(response.raw, 1 << 20)
                return response

        p.dav.session.mount("http://", CutOnce())
        with p.read("big.bin") as f:
            assert f.read() == data
        assert seen[0] == "|" and seen[1].startswith(f"bytes={1 << 20}-|")


class _Truncated:
    """A response body that breaks after `limit` bytes."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw, self.left = raw, limit

    def read(self, n: int = -1, **kw: Any) -> bytes:
        if self.left <= 0:
            raise requests.exceptions.ChunkedEncodingError("injected: connection broken")
        data: bytes = self.raw.read(min(n, self.left) if n and n > 0 else self.left, **kw)
        self.left -= len(data)
        return data

    read1 = read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@pytest.mark.parametrize(("name", "learned"), [("wsgidav", {"header": False, "proppatch": True}),
                                               ("rclone", {})])
def test_mtime_kept_and_the_way_learned(name: str, learned: dict[str, bool]) -> None:
    with webdav_provider(name) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t"))
        p.ensure_root()
        e = p.write("m.txt", io.BytesIO(b"m"), 1, 1_234_567_890_000_000_000)
        assert e.mtime_ns == 1_234_567_890_000_000_000
        assert os.stat(setup.data / setup.root / "m.txt").st_mtime == 1_234_567_890
        assert {k: p.learned[k] for k in learned} == learned
        assert p.capabilities.set_mtime is (name == "wsgidav")


@pytest.mark.parametrize("name", SERVERS)
def test_several_machines_on_one_folder_converge(name: str, tmp_path: Path) -> None:
    with webdav_provider(name) as a, webdav_provider(name, root=a.root) as b:
        machines_converge([a.provider, b.provider], tmp_path)


def test_nextcloud_checksums_are_parsed() -> None:
    body = (b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:response>'
            b"<d:href>/remote.php/dav/files/u/A%20b.txt</d:href><d:propstat><d:prop><d:getetag>&quot;5f1&quot;"
            b"</d:getetag><d:getcontentlength>3</d:getcontentlength><d:resourcetype/><oc:fileid>42</oc:fileid>"
            b"<oc:checksums><oc:checksum>SHA1:A9993E364706816ABA3E25717850C26C9CD0D89D MD5:900150983cd24fb0d6963f7d"
            b"28e17f72</oc:checksum></oc:checksums></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
            b"</d:response></d:multistatus>")
    (prop,) = list(parse(io.BytesIO(body)))
    assert prop.href == "/remote.php/dav/files/u/A b.txt" and prop.etag == "5f1" and prop.fileid == "42"
    assert prop.checksums["sha1"] == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert parse_checksums("SHA1:ab MD5:cd ADLER32:ef") == {"sha1": "ab", "md5": "cd", "adler32": "ef"}


class RecordsPropfinds(requests.adapters.HTTPAdapter):
    """Keeps the body of every PROPFIND sent."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.method == "PROPFIND":
            self.bodies.append(request.body if isinstance(request.body, bytes) else b"")
        return super().send(request, *args, **kwargs)


@pytest.mark.parametrize("name", SERVERS)
@pytest.mark.parametrize("checksum", ["auto", "sha1"])
def test_listings_ask_for_oc_properties_only_where_they_count(name: str, checksum: str) -> None:
    """Neither server answers oc:fileid: their listings leave the oc: properties out, unless the
    config asks for the server's checksums (then they are asked for, and a missing one is None)."""
    with webdav_provider(name, checksum=checksum) as setup:
        p = setup.provider
        p.attach(PairContext(tag="t1"))
        p.ensure_root()
        p.mkdir("a")
        p.write("a/f.txt", io.BytesIO(b"x"), 1, 0)
        recorder = RecordsPropfinds()
        p.dav.session.mount("http://", recorder)
        listed = {e.path: e for e in p.list()}
        assert set(listed) == {"a", "a/f.txt"} and listed["a/f.txt"].hash is None
        assert p.stat("a/f.txt").rev == listed["a/f.txt"].rev
        assert len(recorder.bodies) >= 2
        assert all((b"oc:checksums" in body) == (checksum == "sha1") for body in recorder.bodies)
        assert all(b"getetag" in body for body in recorder.bodies)


# ---- the command line ------------------------------------------------------------------------
@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    for var in ("SYNCAGENT_REMOTE_DAV_PASSWORD", "WEBDAV_PASSWORD", "WEBDAV_USER"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), env=env)
    return r.exit_code, r.output


def test_cli_config_auth_sync_end_to_end(cli_env: Path) -> None:
    with webdav_provider("rclone") as setup:
        url = setup.server.url + "/"
        assert cli("config", "add", "dav", "webdav", f"url={url}", f"user={USER}", f"root={setup.root}")[0] == 0
        local = cli_env / "local"
        write(local / "a.txt", "hello")
        write(local / "Hello, 世界/z ≠.txt", "unicode")
        code, out = cli("sync", str(local), "dav:")
        assert code != 0 and "SYNCAGENT_REMOTE_DAV_PASSWORD" in out and "Traceback" not in out
        code, out = cli("sync", str(local), "dav:", env={"SYNCAGENT_REMOTE_DAV_PASSWORD": "wrong"})
        assert code == 1 and "refused the user name or password" in out and "Traceback" not in out
        code, out = cli("sync", str(local), "dav:", env={"SYNCAGENT_REMOTE_DAV_PASSWORD": PASSWORD})
        assert code == 0, out
        assert tree(local) == tree(setup.data / setup.root)
        code, out = cli("auth", "dav", "password=wrong")
        assert code == 1 and "wrong" not in out
        code, out = cli("auth", "dav", f"password={PASSWORD}")
        assert code == 0, out
        code, out = cli("config", "show")
        assert PASSWORD not in out
        code, out = cli("ls", "-R", "dav:")
        assert code == 0 and "Hello, 世界/z ≠.txt" in out
        code, out = cli("get", "dav:a.txt", "-")
        assert out == "hello"
