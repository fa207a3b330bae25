"""The emulator against the official `smartfile==2.19` client, unchanged, and
against the raw wire rules of spec §8 that the client does not exercise."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import smartfile
from smartfile.errors import RequestError, ResponseError

from tests.emulators import start_emulator
from tests.emulators.base import EmulatorServer
from tests.emulators.fixtures import (
    ACCESS_SECRET,
    ACCESS_TOKEN,
    CLIENT_SECRET,
    CLIENT_TOKEN,
    KEY,
    OAUTH,
    PASSWORD,
    smartfile_emulator,
)

AUTH = (KEY, PASSWORD)


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    with smartfile_emulator() as server:
        yield server


@pytest.fixture
def api(emu: EmulatorServer) -> Any:
    return smartfile.BasicClient(KEY, PASSWORD, url=emu.base_url)


def wait_task(api: Any, started: dict[str, Any]) -> dict[str, Any]:
    for _ in range(20):
        state: dict[str, Any] = api.get("/task", started["uuid"])
        if state["result"]["status"] in ("SUCCESS", "FAILURE"):
            return state
    raise AssertionError("task never finished")


def test_official_client_file_round_trip(api: Any) -> None:
    assert api.get("/ping") == {"ping": "pong"}
    made = api.post("/path/oper/mkdir", path="/new dir")
    assert made["isdir"] is True and made["path"] == "/new dir"
    stored = api.post("/path/data/", "/new dir", file=("a b.txt", io.BytesIO(b"hello")))
    assert stored[0]["name"] == "a b.txt" and stored[0]["size"] == 5
    api.upload("root.json", io.BytesIO(b'{"not": "parsed"}'))
    listing = api.get("/path/info", "/new dir", children="on")
    assert [c["name"] for c in listing["children"]] == ["a b.txt"]
    assert listing["items"] == 1 and listing["children"][0]["items"] is None
    assert api.get("/path/data", "/new dir/a b.txt").read() == b"hello"
    # a .json file is content, not an API answer: never exactly application/json
    assert api.get("/path/data", "/root.json").read() == b'{"not": "parsed"}'


def test_official_client_move_and_remove_tasks(api: Any) -> None:
    api.post("/path/oper/mkdir", path="/newFolder")
    api.upload("file.txt", io.BytesIO(b"x"))
    state = wait_task(api, api.move("/file.txt", "/newFolder"))  # sends src=/file.txt/ (trailing slash)
    assert state["result"]["status"] == "SUCCESS"
    assert api.get("/path/info", "/newFolder/file.txt")["size"] == 1
    assert wait_task(api, api.remove("/newFolder"))["result"]["status"] == "SUCCESS"
    with pytest.raises(ResponseError) as err:
        api.remove("/newFolder")  # a second remove fails (spec §4.10)
    assert err.value.status_code == 404


def test_official_client_errors_and_throttle(emu: EmulatorServer, api: Any) -> None:
    with pytest.raises(ResponseError) as err:
        api.get("/no/such/endpoint")
    assert err.value.status_code == 404 and "Invalid URL" in str(err.value)
    with pytest.raises(ResponseError) as err:
        api.post("/path/oper/move", src="/missing", dst="/")
    assert err.value.status_code == 404 and "does not exist" in str(err.value)  # the {"src": [...]} shape
    with pytest.raises(ResponseError) as err:
        smartfile.BasicClient(KEY, PASSWORD[::-1], url=emu.base_url).get("/whoami")
    assert err.value.status_code == 401
    emu.inject("503", 5, retry_after=0.01)
    with pytest.raises(RequestError):
        api.get("/whoami")  # spec §9.4: exactly three tries, then it gives up
    assert [r.status for r in emu.requests[-3:]] == [503, 503, 503]
    emu.faults.clear()
    emu.inject("503", 1, retry_after=0.01)
    assert "user" in api.get("/whoami")  # the legacy X-Throttle header makes it wait and retry


def test_official_oauth_client_three_legs(emu: EmulatorServer) -> None:
    client = smartfile.OAuthClient(CLIENT_TOKEN, CLIENT_SECRET, url=emu.base_url)
    request = client.get_request_token()
    page = requests.get(f"{emu.base_url}oauth/authorize/", params={"oauth_token": request.token}, timeout=5)
    verifier = page.text.rpartition(" ")[2]
    client.get_access_token(None, verifier)
    assert "user" in client.get("/whoami")
    # a request token is good for one exchange only
    with pytest.raises(TypeError):  # the client cannot parse the 403 text, as with the real service
        client.get_access_token(request, verifier)
    preissued = smartfile.OAuthClient(CLIENT_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, ACCESS_SECRET, url=emu.base_url)
    assert preissued.get("/ping") == {"ping": "pong"}
    wrong = smartfile.OAuthClient(CLIENT_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, ACCESS_SECRET[::-1], url=emu.base_url)
    with pytest.raises(ResponseError) as err:
        wrong.get("/whoami")
    assert err.value.status_code == 401


def test_oauth_token_endpoint_refuses_bad_signature(emu: EmulatorServer) -> None:
    from oauthlib.oauth1 import SIGNATURE_PLAINTEXT
    from requests_oauthlib import OAuth1

    bad = OAuth1(CLIENT_TOKEN, client_secret="wrong" * 6, signature_method=SIGNATURE_PLAINTEXT)
    answer = requests.post(f"{emu.base_url}oauth/request_token/", auth=bad, timeout=5)
    assert answer.status_code == 403 and answer.text == "Could not verify OAuth request."


def test_oauth_params_in_query_string(emu: EmulatorServer) -> None:
    params = {"oauth_consumer_key": CLIENT_TOKEN, "oauth_token": ACCESS_TOKEN, "oauth_nonce": "abc123",
              "oauth_timestamp": str(int(time.time())), "oauth_signature_method": "PLAINTEXT",
              "oauth_signature": f"{CLIENT_SECRET}&{ACCESS_SECRET}"}
    answer = requests.get(f"{emu.base_url}api/2/whoami/", params=params, timeout=5)
    assert answer.status_code == 200
    again = requests.get(f"{emu.base_url}api/2/whoami/", params=params, timeout=5)
    assert again.status_code == 401  # a replayed nonce


@pytest.mark.parametrize("path", ["/api/2/ping/", "/api/2/ping", "/api/2.1/ping/", "/api/2.9/ping"])
def test_routing_versions_and_slashes(emu: EmulatorServer, path: str) -> None:
    answer = requests.get(emu.base_url.rstrip("/") + path, timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"


def test_auth_required_everywhere_but_ping(emu: EmulatorServer) -> None:
    answer = requests.get(f"{emu.base_url}api/2/path/info/", timeout=5)
    assert answer.status_code == 401 and answer.json() == {"detail": "Invalid username/password."}
    assert requests.get(f"{emu.base_url}api/2/path/info/", auth=AUTH, timeout=5).json()["path"] == "/"


def test_node_style_paging(emu: EmulatorServer) -> None:
    base = f"{emu.base_url}api/2/path/"
    requests.post(f"{base}oper/mkdir/", data={"path": "/foobar"}, auth=AUTH, timeout=5)
    for name in ("foo", "bar", "baz", "quux"):
        requests.post(f"{base}data/foobar", files={"file": (name, b"x")}, auth=AUTH, timeout=5)
    names, page = [], 1
    while True:
        query: dict[str, str | int] = {"children": "true", "limit": 2, "page": page}
        body = requests.get(f"{base}info/foobar", params=query,
                            auth=AUTH, timeout=5).json()
        names += [c["name"] for c in body["children"]]
        assert body["pages"] == 2 and body["total"] == 4 and body["per_page"] == 2
        if body["page"] == body["pages"]:
            break
        page += 1
    assert sorted(names) == ["bar", "baz", "foo", "quux"]
    empty = requests.post(f"{base}oper/mkdir/", json={"path": "/empty"}, auth=AUTH, timeout=5)  # JSON bodies too
    assert empty.status_code == 200
    query = {"children": "True", "limit": 5}
    body = requests.get(f"{base}info/empty/", params=query, auth=AUTH, timeout=5).json()
    assert body["pages"] == 1 and body["children"] == []


def test_upload_and_download_rules(emu: EmulatorServer) -> None:
    base = f"{emu.base_url}api/2/path/"
    missing = requests.post(f"{base}data/nowhere/", files={"f": ("a.txt", b"x")}, auth=AUTH, timeout=5)
    assert missing.status_code == 409
    requests.post(f"{base}data/", files={"whatever": ("dir/../a.txt", b"0123456789")}, auth=AUTH, timeout=5)
    ranged = requests.get(f"{base}data/a.txt", headers={"Range": "bytes=4-"}, auth=AUTH, timeout=5)
    assert ranged.status_code == 206 and ranged.content == b"456789"
    assert ranged.headers["Content-Range"] == "bytes 4-9/10"
    requests.post(f"{base}oper/mkdir/", data={"path": "/d"}, auth=AUTH, timeout=5)
    assert requests.get(f"{base}data/d", auth=AUTH, timeout=5).status_code == 415
    assert requests.post(f"{base}oper/mkdir/", data={"path": "/a.txt"}, auth=AUTH, timeout=5).status_code == 409


def test_sync_endpoints_reject_foreign_formats(emu: EmulatorServer) -> None:
    base = f"{emu.base_url}api/2/path/"
    requests.post(f"{base}data/", files={"file": ("f.bin", b"abc")}, auth=AUTH, timeout=5)
    blake2_sig = bytes.fromhex("72730137000008000000000820")
    answer = requests.post(f"{base}sync/delta/f.bin", files={"signature": blake2_sig}, auth=AUTH, timeout=5)
    assert answer.status_code == 400 and "detail" in answer.json()
    answer = requests.post(f"{base}sync/patch/f.bin", files={"delta": b"junk"}, auth=AUTH, timeout=5)
    assert answer.status_code == 400
    answer = requests.get(f"{base}sync/signature/missing.bin", auth=AUTH, timeout=5)
    assert answer.status_code == 404


def test_control_api_over_http(emu: EmulatorServer) -> None:
    control = f"{emu.base_url}__emulator__/"
    requests.post(f"{control}faults", json={"kind": "500", "count": 1, "path": "whoami"}, timeout=5)
    assert requests.get(f"{emu.base_url}api/2/ping/", timeout=5).status_code == 200  # does not match
    assert requests.get(f"{emu.base_url}api/2/whoami/", auth=AUTH, timeout=5).status_code == 500
    assert requests.get(f"{emu.base_url}api/2/whoami/", auth=AUTH, timeout=5).status_code == 200
    log = requests.get(f"{control}requests", timeout=5).json()
    assert [e["status"] for e in log] == [200, 500, 200]
    assert all("Authorization" not in e["headers"] for e in log)


def test_command_line_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "smartfile", "--port", "0",
                             "--user", f"{KEY}:{PASSWORD}", "--option", f"oauth={OAUTH}"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert smartfile.BasicClient(KEY, PASSWORD, url=url).get("/ping") == {"ping": "pong"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_start_emulator_helper_frees_the_port() -> None:
    with start_emulator("smartfile", user=f"{KEY}:{PASSWORD}") as server:
        url = server.base_url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}api/2/ping/", timeout=2)
