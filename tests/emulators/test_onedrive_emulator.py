"""The OneDrive emulator on the wire, by raw HTTP: the spec's worked examples
(§10.2 upload arithmetic, §10.3 delta sequence, §10.1 PKCE), its error
shapes (§6, §10.4) and the identity endpoints (§2, §9.1-3)."""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.emulators.base import EmulatorServer
from tests.emulators.onedrive.fixtures import CLIENT_ID, TOKEN, USER, onedrive_emulator

FRAGMENT = 327_680


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(clock: Clock) -> Iterator[EmulatorServer]:
    with onedrive_emulator(clock=clock) as server:
        yield server


@pytest.fixture
def api(emu: EmulatorServer) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def url(emu: EmulatorServer, tail: str) -> str:
    return f"{emu.base_url}v1.0/me/drive/{tail}"


def error_code(r: requests.Response) -> tuple[str, str | None]:
    err = r.json()["error"]
    return err["code"], (err.get("innerError") or {}).get("code")


def mkdir(api: requests.Session, emu: EmulatorServer, parent: str, name: str) -> dict[str, Any]:
    where = "root/children" if not parent else f"root:/{parent}:/children"
    r = api.post(url(emu, where), json={"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def put(api: requests.Session, emu: EmulatorServer, path: str, data: bytes, **params: str) -> requests.Response:
    return api.put(url(emu, f"root:/{urllib.parse.quote(path)}:/content"), data=data, params=params)


# ---- drive, items, addressing ------------------------------------------------------------------
def test_drive_quota_and_item_shapes(api: requests.Session, emu: EmulatorServer) -> None:
    drive = api.get(url(emu, "")).json()
    assert drive["driveType"] == "personal" and drive["quota"]["used"] == 0
    r = put(api, emu, "report.txt", b"Hello, World!")
    assert r.status_code == 201
    item = r.json()
    assert item["file"]["hashes"] == {"quickXorHash": "SCgDG9jwBhaA4ApvnQMbyBACAAA=",
                                      "sha1Hash": "0A0A9F2A6772942557AB5355D76AF442F8F65E01"}
    assert item["parentReference"]["path"] == "/drive/root:" and item["size"] == 13
    same = api.get(f"{emu.base_url}v1.0/drives/{drive['id']}/items/{item['id']}").json()
    assert same["eTag"] == item["eTag"] and same["cTag"] == item["cTag"]
    assert api.get(f"{emu.base_url}_api/v2.0/drive/root:/REPORT.TXT").json()["id"] == item["id"]  # case-insensitive
    assert api.get(url(emu, "")).json()["quota"]["used"] == 13


def test_percent_encoded_segments_and_relative_paths(api: requests.Session, emu: EmulatorServer) -> None:
    folder = mkdir(api, emu, "", "你好 #1%")
    r = api.put(url(emu, f"items/{folder['id']}:/{urllib.parse.quote('p q.py')}:/content"), data=b"x")
    assert r.status_code == 201
    got = api.get(url(emu, f"root:/{urllib.parse.quote('你好 #1%', safe='')}/p%20q.py")).json()
    assert got["name"] == "p q.py"
    bad = api.put(url(emu, "root:/a%3Ab.txt:/content"), data=b"x")   # ':' inside a name: refused
    assert bad.status_code == 400 and error_code(bad) == ("invalidRequest", "invalidPath")
    assert api.get(url(emu, "root:/missing.txt")).status_code == 404


@pytest.mark.parametrize("name", ["a*b", "trailing.", " lead", "CON", "desktop.ini", "~$lock.docx", "x_vti_y"])
def test_names_onedrive_refuses(api: requests.Session, emu: EmulatorServer, name: str) -> None:
    r = api.post(url(emu, "root/children"), json={"name": name, "folder": {}})
    assert r.status_code == 400 and error_code(r)[0] == "invalidRequest"


def test_children_paging_and_conflict_behaviours(api: requests.Session, emu: EmulatorServer) -> None:
    for i in range(5):
        assert put(api, emu, f"f{i}.txt", b"x").status_code == 201
    r = api.get(url(emu, "root/children"), params={"$top": "2"}).json()
    names = [v["name"] for v in r["value"]]
    while "@odata.nextLink" in r:
        r = api.get(r["@odata.nextLink"]).json()
        names += [v["name"] for v in r["value"]]
    assert names == [f"f{i}.txt" for i in range(5)]
    first = api.get(url(emu, "root:/f0.txt")).json()
    assert error_code(put(api, emu, "f0.txt", b"y", **{"@microsoft.graph.conflictBehavior": "fail"})) == \
        ("nameAlreadyExists", None)
    renamed = put(api, emu, "f0.txt", b"y", **{"@microsoft.graph.conflictBehavior": "rename"}).json()
    assert renamed["name"] == "f0 1.txt"
    replaced = put(api, emu, "f0.txt", b"zz")
    assert replaced.status_code == 200 and replaced.json()["id"] == first["id"]
    assert replaced.json()["cTag"] != first["cTag"] and replaced.json()["eTag"] != first["eTag"]


def test_if_match_and_etag_rules(api: requests.Session, emu: EmulatorServer) -> None:
    item = put(api, emu, "a.txt", b"one").json()
    body = {"name": "b.txt", "@odata.type": "#microsoft.graph.driveItem"}
    renamed = api.patch(url(emu, f"items/{item['id']}"), json=body, headers={"If-Match": item["eTag"]}).json()
    assert renamed["eTag"] != item["eTag"] and renamed["cTag"] == item["cTag"]   # metadata only: cTag stays
    stale = api.delete(url(emu, f"items/{item['id']}"), headers={"If-Match": item["eTag"]})
    assert stale.status_code == 412 and error_code(stale)[0] == "resourceModified"
    assert api.get(url(emu, f"items/{item['id']}"), headers={"If-None-Match": renamed["eTag"]}).status_code == 304
    assert api.delete(url(emu, f"items/{item['id']}"), headers={"If-Match": renamed["cTag"]}).status_code == 204


def test_move_needs_the_roots_real_id_and_checks_clashes(api: requests.Session, emu: EmulatorServer) -> None:
    a = mkdir(api, emu, "", "A")
    f = api.put(url(emu, f"items/{a['id']}:/x.txt:/content"), data=b"x").json()
    assert api.patch(url(emu, f"items/{f['id']}"), json={"parentReference": {"id": "root"}}).status_code == 400
    root = api.get(url(emu, "root")).json()
    moved = api.patch(url(emu, f"items/{f['id']}"), json={"parentReference": {"id": root["id"]}}).json()
    assert moved["parentReference"]["path"] == "/drive/root:"
    put(api, emu, "A/x.txt", b"other")
    clash = api.patch(url(emu, f"items/{f['id']}"), json={"parentReference": {"id": a["id"]}})
    assert clash.status_code == 409
    assert api.patch(url(emu, f"items/{a['id']}"), json={"parentReference": {"id": a["id"]}}).status_code == 400


# ---- downloads ----------------------------------------------------------------------------------
def test_download_redirect_and_ranges(api: requests.Session, emu: EmulatorServer) -> None:
    put(api, emu, "r.bin", bytes(range(256)))
    r = api.get(url(emu, "root:/r.bin:/content"), allow_redirects=False)
    assert r.status_code == 302
    location = r.headers["Location"]
    plain = requests.get(location)          # pre-authenticated: no token
    assert plain.content == bytes(range(256))
    part = requests.get(location, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    assert part.headers["Content-Range"] == "bytes 10-19/256"
    assert requests.get(location, headers={"Range": "bytes=-6"}).content == bytes(range(250, 256))
    assert requests.get(location, headers={"Range": "bytes=300-"}).status_code == 416
    put(api, emu, "r.bin", b"new content")
    assert requests.get(location).status_code == 404      # the URL served one content only
    folder = mkdir(api, emu, "", "F")
    assert api.get(url(emu, f"items/{folder['id']}/content")).status_code == 400


def test_download_url_expires(api: requests.Session, emu: EmulatorServer, clock: Clock) -> None:
    put(api, emu, "e.bin", b"x")
    location = api.get(url(emu, "root:/e.bin:/content"), allow_redirects=False).headers["Location"]
    clock.now += 3601
    assert requests.get(location).status_code == 401


# ---- upload sessions (§10.2) ---------------------------------------------------------------------
def session(api: requests.Session, emu: EmulatorServer, path: str, **item: Any) -> str:
    r = api.post(url(emu, f"root:/{path}:/createUploadSession"), json={"item": item})
    assert r.status_code == 200, r.text
    assert r.json()["nextExpectedRanges"] == ["0-"]
    return str(r.json()["uploadUrl"])


def fragment(upload: str, data: bytes, start: int, total: int, **headers: str) -> requests.Response:
    end = start + len(data) - 1
    return requests.put(upload, data=data, headers={"Content-Range": f"bytes {start}-{end}/{total}", **headers})


def test_upload_session_arithmetic(api: requests.Session, emu: EmulatorServer) -> None:
    data = bytes(i % 251 for i in range(1_000_000))
    upload = session(api, emu, "big.bin", fileSystemInfo={"lastModifiedDateTime": "2024-04-30T09:00:00Z"})
    for n, start in enumerate((0, 327_680, 655_360)):
        r = fragment(upload, data[start:start + FRAGMENT], start, 1_000_000)
        assert r.status_code == 202 and r.json()["nextExpectedRanges"] == [f"{start + FRAGMENT}-"], n
    again = fragment(upload, data[327_680:655_360], 327_680, 1_000_000)
    assert again.status_code == 416 and error_code(again) == ("invalidRange", "fragmentOverlap")
    wrong_total = fragment(upload, data[983_040:], 983_040, 1_000_001)
    assert wrong_total.status_code == 400 and error_code(wrong_total)[1] == "fragmentLengthMismatch"
    assert requests.get(upload).json()["nextExpectedRanges"] == ["983040-"]
    done = fragment(upload, data[983_040:], 983_040, 1_000_000)
    assert done.status_code == 201 and done.json()["size"] == 1_000_000
    assert done.json()["fileSystemInfo"]["lastModifiedDateTime"] == "2024-04-30T09:00:00Z"
    assert requests.get(api.get(url(emu, "root:/big.bin:/content"), allow_redirects=False)
                        .headers["Location"]).content == data


def test_upload_session_policies(api: requests.Session, emu: EmulatorServer, clock: Clock) -> None:
    upload = session(api, emu, "odd.bin")
    odd = fragment(upload, b"x" * 300_000, 0, 1_000_000)
    assert odd.status_code == 400                                   # not a multiple of 320 KiB
    gap = fragment(upload, b"x" * FRAGMENT, FRAGMENT, 1_000_000)
    assert gap.status_code == 416 and error_code(gap)[1] == "fragmentOutOfOrder"
    token = fragment(upload, b"x" * FRAGMENT, 0, 1_000_000, Authorization=f"Bearer {TOKEN}")
    assert token.status_code == 401                                 # never send the token there
    clock.now += 3601
    gone = fragment(upload, b"x" * FRAGMENT, 0, 1_000_000)
    assert gone.status_code == 404 and error_code(gone) == ("itemNotFound", "uploadSessionNotFound")


def test_upload_session_conflicts_at_commit(api: requests.Session, emu: EmulatorServer) -> None:
    upload = session(api, emu, "c.bin", **{"@microsoft.graph.conflictBehavior": "fail"})
    put(api, emu, "c.bin", b"someone else")
    r = fragment(upload, b"mine", 0, 4)
    assert r.status_code == 409 and error_code(r)[0] == "nameAlreadyExists"
    current = api.get(url(emu, "root:/c.bin")).json()
    stale = api.post(url(emu, "root:/c.bin:/createUploadSession"), headers={"If-Match": "bogus"},
                     json={"item": {"@microsoft.graph.conflictBehavior": "replace"}})
    assert stale.status_code == 412
    ok = api.post(url(emu, "root:/c.bin:/createUploadSession"), headers={"If-Match": current["eTag"]},
                  json={"item": {"@microsoft.graph.conflictBehavior": "replace"}}).json()["uploadUrl"]
    replaced = fragment(ok, b"mine", 0, 4)
    assert replaced.status_code == 200 and replaced.json()["id"] == current["id"]
    assert requests.delete(ok).status_code == 404   # committed sessions are gone


def test_simple_upload_limit(api: requests.Session, emu: EmulatorServer) -> None:
    emu.app.configure({"simple_upload_limit": 10})
    r = put(api, emu, "too-big.bin", b"x" * 11)
    assert r.status_code == 413
    chunked = api.put(url(emu, "root:/chunked.bin:/content"), data=iter([b"ab", b"cd"]))  # Transfer-Encoding: chunked
    assert chunked.status_code == 201 and chunked.json()["size"] == 4


# ---- delta (§10.3) ----------------------------------------------------------------------------------
def test_delta_sequence(api: requests.Session, emu: EmulatorServer, clock: Clock) -> None:
    a = mkdir(api, emu, "", "A")
    x = api.put(url(emu, f"items/{a['id']}:/x.txt:/content"), data=b"x").json()
    page1 = api.get(url(emu, "root/delta"), params={"$top": "2"}).json()
    assert [v["name"] for v in page1["value"]] == ["root", "A"] and "@odata.nextLink" in page1
    page2 = api.get(page1["@odata.nextLink"]).json()
    assert [v["name"] for v in page2["value"]] == ["x.txt"]
    d1 = page2["@odata.deltaLink"]
    for name in ("y.txt", "z.txt"):
        api.patch(url(emu, f"items/{x['id']}"), json={"name": name})
    changed = api.get(d1).json()
    files = [v for v in changed["value"] if "file" in v]
    assert [(f["id"], f["name"]) for f in files] == [(x["id"], "z.txt")]
    assert all("path" not in v.get("parentReference", {}) for v in changed["value"])
    d2 = changed["@odata.deltaLink"]
    assert api.delete(url(emu, f"items/{a['id']}")).status_code == 204
    gone = api.get(d2).json()
    deleted = {v["id"]: v for v in gone["value"] if "deleted" in v}
    assert set(deleted) == {a["id"], x["id"]}
    assert all("size" not in v and "cTag" not in v for v in deleted.values())
    d3 = gone["@odata.deltaLink"]
    assert api.get(d3).json()["value"] == []
    clock.now += 31 * 86400
    stale = api.get(d1)
    assert stale.status_code == 410 and "Location" in stale.headers
    fresh = api.get(stale.headers["Location"]).json()
    assert [v["name"] for v in fresh["value"]] == ["root"]


def test_delta_of_a_folder_sees_moves_in_and_out(api: requests.Session, emu: EmulatorServer) -> None:
    inside = mkdir(api, emu, "", "in")
    outside = mkdir(api, emu, "", "out")
    f = api.put(url(emu, f"items/{outside['id']}:/f.txt:/content"), data=b"f").json()
    start = api.get(url(emu, f"items/{inside['id']}/delta")).json()
    assert [v["name"] for v in start["value"]] == ["in"]
    api.patch(url(emu, f"items/{outside['id']}"), json={"parentReference": {"id": inside["id"]}})
    came = api.get(start["@odata.deltaLink"]).json()
    assert {v["name"] for v in came["value"]} >= {"out", "f.txt"}     # a folder moved in brings its contents
    root = api.get(url(emu, "root")).json()
    api.patch(url(emu, f"items/{f['id']}"), json={"parentReference": {"id": root["id"]}})
    left = api.get(came["@odata.deltaLink"]).json()
    assert next(v for v in left["value"] if v["id"] == f["id"]).get("deleted") == {}
    latest = api.get(url(emu, "root/delta"), params={"token": "latest"}).json()
    assert latest["value"] == [] and "token=" in latest["@odata.deltaLink"]


def test_delta_resync_fault(api: requests.Session, emu: EmulatorServer) -> None:
    link = api.get(url(emu, "root/delta")).json()["@odata.deltaLink"]
    emu.inject("resync", 1)
    r = api.get(link)
    assert r.status_code == 410 and error_code(r) == ("resyncRequired", "resyncChangesApplyDifferences")
    assert api.get(link).status_code == 200


# ---- recycle bin, copy, links, recent, faults ----------------------------------------------------------
def test_recycle_bin_quota_and_restore(api: requests.Session, emu: EmulatorServer) -> None:
    item = put(api, emu, "bin.txt", b"12345").json()
    api.delete(url(emu, f"items/{item['id']}"))
    quota = api.get(url(emu, "")).json()["quota"]
    assert quota["deleted"] == 5 and quota["used"] == 5 and quota["remaining"] == quota["total"] - 5
    assert api.get(url(emu, "root/children")).json()["value"] == []
    back = api.post(url(emu, f"items/{item['id']}/restore"))
    assert back.status_code == 200 and api.get(url(emu, "root:/bin.txt")).status_code == 200
    assert api.get(url(emu, "")).json()["quota"]["deleted"] == 0


def test_quota_exceeded(api: requests.Session, emu: EmulatorServer) -> None:
    emu.app.configure({"quota_total": 10})
    r = put(api, emu, "q.bin", b"x" * 11)
    assert r.status_code == 507 and error_code(r)[0] == "quotaLimitReached"
    too_big = api.post(url(emu, "root:/s.bin:/createUploadSession"), json={"item": {"fileSize": 11}})
    assert too_big.status_code == 507


def test_copy_with_monitor(api: requests.Session, emu: EmulatorServer) -> None:
    emu.app.configure({"copy_polls": 2})
    src = put(api, emu, "src.txt", b"copy me").json()
    dest = mkdir(api, emu, "", "D")
    r = api.post(url(emu, f"items/{src['id']}/copy"), json={"parentReference": {"id": dest["id"]}, "name": "c.txt"})
    assert r.status_code == 202 and r.content == b""
    monitor = r.headers["Location"]
    first = requests.get(monitor)
    assert first.status_code == 202 and first.json()["status"] == "inProgress"
    done = requests.get(monitor, allow_redirects=False)
    assert done.status_code == 303 and done.json()["status"] == "completed"
    copied = api.get(url(emu, f"items/{done.json()['resourceId']}")).json()
    assert copied["name"] == "c.txt" and copied["file"]["hashes"] == src["file"]["hashes"]
    clash = api.post(url(emu, f"items/{src['id']}/copy"), json={"parentReference": {"id": dest["id"]}, "name": "c.txt"})
    assert clash.status_code == 409


def test_links_and_recent(api: requests.Session, emu: EmulatorServer) -> None:
    item = put(api, emu, "l.txt", b"x").json()
    first = api.post(url(emu, f"items/{item['id']}/createLink"), json={"type": "view", "scope": "anonymous"})
    again = api.post(url(emu, f"items/{item['id']}/createLink"), json={"type": "view", "scope": "anonymous"})
    assert first.status_code == 201 and again.status_code == 200 and again.json() == first.json()
    embed = api.post(url(emu, f"items/{item['id']}/createLink"), json={"type": "embed"}).json()
    assert embed["link"]["webHtml"].startswith("<iframe")
    recent = api.get(url(emu, "recent")).json()["value"]
    assert recent[0]["id"] == item["id"] and "lastAccessedDateTime" in recent[0]["fileSystemInfo"]


def test_throttling_and_locked_faults(api: requests.Session, emu: EmulatorServer) -> None:
    emu.inject("429", 1, retry_after=7)
    r = api.get(url(emu, ""))
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert error_code(r) == ("activityLimitReached", "throttledRequest")
    emu.inject("503", 1, retry_after=2)
    assert api.get(url(emu, "")).headers["Retry-After"] == "2"
    emu.inject("423", 1)
    assert api.get(url(emu, "root")).status_code == 423


def test_tokens_on_graph_calls(emu: EmulatorServer) -> None:
    assert requests.get(url(emu, "")).status_code == 401
    r = requests.get(url(emu, ""), headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and error_code(r)[0] == "InvalidAuthenticationToken"
    emu.inject("401", 1)
    expired = requests.get(url(emu, ""), headers={"Authorization": f"Bearer {TOKEN}"})
    assert expired.status_code == 401 and "expired_token" in expired.headers["WWW-Authenticate"]
    other = requests.get(f"{emu.base_url}v1.0/drives/0123456789abcdef", headers={"Authorization": f"Bearer {TOKEN}"})
    assert other.status_code == 404


# ---- identity --------------------------------------------------------------------------------------
def token_call(emu: EmulatorServer, **form: str) -> requests.Response:
    return requests.post(f"{emu.base_url}common/oauth2/v2.0/token", data={"client_id": CLIENT_ID, **form})


def test_device_code_flow(emu: EmulatorServer, clock: Clock) -> None:
    r = requests.post(f"{emu.base_url}consumers/oauth2/v2.0/devicecode",
                      data={"client_id": CLIENT_ID, "scope": "Files.ReadWrite offline_access"}).json()
    assert set(r) >= {"device_code", "user_code", "verification_uri", "expires_in", "interval", "message"}
    assert "verification_uri_complete" not in r
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    pending = token_call(emu, grant_type=grant, device_code=r["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    assert pending.json()["error_description"].startswith("AADSTS") and pending.json()["error_codes"]
    assert requests.get(f"{emu.base_url}devicelogin", params={"code": r["user_code"], "user": USER}).ok
    tokens = token_call(emu, grant_type=grant, device_code=r["device_code"]).json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] and tokens["expires_in"] == 3600
    drive = requests.get(url(emu, ""), headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert drive.status_code == 200
    assert token_call(emu, grant_type=grant, device_code="bogus").json()["error"] == "bad_verification_code"
    late = requests.post(f"{emu.base_url}common/oauth2/v2.0/devicecode",
                         data={"client_id": CLIENT_ID, "scope": "Files.ReadWrite"}).json()
    clock.now += 901
    assert token_call(emu, grant_type=grant, device_code=late["device_code"]).json()["error"] == "expired_token"


def test_refresh_rotation_expiry_and_revocation(emu: EmulatorServer, clock: Clock) -> None:
    emu.app.configure({"auto_approve": 1})
    code = requests.post(f"{emu.base_url}common/oauth2/v2.0/devicecode",
                         data={"client_id": CLIENT_ID, "scope": "Files.ReadWrite offline_access"}).json()
    first = token_call(emu, grant_type="urn:ietf:params:oauth:grant-type:device_code",
                       device_code=code["device_code"]).json()
    clock.now += 3601
    stale = requests.get(url(emu, ""), headers={"Authorization": f"Bearer {first['access_token']}"})
    assert stale.status_code == 401 and "expired_token" in stale.headers["WWW-Authenticate"]
    second = token_call(emu, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    wider = token_call(emu, grant_type="refresh_token", refresh_token=second["refresh_token"],
                       scope="Files.ReadWrite.All offline_access")
    assert wider.json()["error"] == "invalid_scope"
    emu.app.configure({"revoke_refresh_tokens": 1})
    revoked = token_call(emu, grant_type="refresh_token", refresh_token=second["refresh_token"]).json()
    assert revoked["error"] == "invalid_grant" and "AADSTS50173" in revoked["error_description"]
    secret = token_call(emu, grant_type="refresh_token", refresh_token="x", client_secret="s")
    assert secret.status_code == 401 and secret.json()["error"] == "invalid_client"


def test_authorization_code_with_pkce(emu: EmulatorServer) -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"       # spec §10.1
    redirect = "http://localhost:5555/"
    page = requests.get(f"{emu.base_url}common/oauth2/v2.0/authorize", params={
        "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect,
        "scope": "Files.ReadWrite offline_access", "state": "s1", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert page.status_code == 200 and "Sign in as alice" in page.text
    consent = page.text.split('href="')[1].split('"')[0].replace("&amp;", "&")
    answer = requests.get(f"{emu.base_url}common/oauth2/v2.0/{consent}", allow_redirects=False)
    assert answer.status_code == 302
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["s1"]
    code = query["code"][0]
    wrong = token_call(emu, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier="x" * 43)
    assert wrong.json()["error"] == "invalid_grant"
    ok = token_call(emu, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier)
    assert ok.status_code == 200 and ok.json()["refresh_token"]
    reuse = token_call(emu, grant_type="authorization_code", code=code, redirect_uri=redirect, code_verifier=verifier)
    assert "AADSTS54005" in reuse.json()["error_description"]
    bad_redirect = requests.get(f"{emu.base_url}common/oauth2/v2.0/authorize", params={
        "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "https://evil.example/"})
    assert bad_redirect.status_code == 400


def test_standalone_server_prints_its_url() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "onedrive", "--port", "0",
                             "--user", f"{USER}:{TOKEN}", "--user", "bob:BOBS-TOKEN", "--option", "auto_approve=1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = requests.get(f"{base}v1.0/me/drive", headers={"Authorization": f"Bearer {TOKEN}"})
            if r.ok:
                break
        assert r.json()["owner"]["user"]["displayName"] == USER
        bob = requests.get(f"{base}v1.0/me/drive", headers={"Authorization": "Bearer BOBS-TOKEN"}).json()
        assert bob["owner"]["user"]["displayName"] == "bob" and bob["id"] != r.json()["id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
