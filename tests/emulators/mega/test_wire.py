"""The MEGA emulator on the wire, with a plain HTTP client: what real
clients rely on (spec §7), checked without the provider in between."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from syncagent.providers.mega import keys
from syncagent.providers.mega.api import Api
from syncagent.providers.mega.codec import b64dec
from syncagent.providers.mega.session import Session, login
from tests.emulators.base import EmulatorServer
from tests.emulators.mega.fixtures import EMAIL, FAST, PASSWORD, V1_EMAIL, mega_emulator


class Wire:
    """A raw client: request ids, the sid, JSON in and out."""

    def __init__(self, emu: EmulatorServer) -> None:
        self.base = emu.base_url
        self.http = requests.Session()
        self.seq = 100
        self.sid: str | None = None
        self.session: Session | None = None

    def cs(self, *commands: dict[str, Any], request_id: int | None = None, sid: str | None = None,
           **headers: str) -> Any:
        if request_id is None:
            self.seq += 1
            request_id = self.seq
        params: dict[str, Any] = {"id": request_id, "lang": "en", "ak": "whatever"}
        if sid or self.sid:
            params["sid"] = sid or self.sid
        r = self.http.post(self.base + "cs", params=params, data=json.dumps(list(commands)), headers=headers)
        assert r.status_code == 200
        return r.json()

    def one(self, command: dict[str, Any]) -> Any:
        return self.cs(command)[0]

    def login(self) -> Wire:
        self.session = login(Api(self.base, tuning=FAST), EMAIL, PASSWORD)
        self.sid = self.session.sid
        return self

    def root(self, t: int = 2) -> str:
        nodes = self.one({"a": "f", "c": 1})["f"]
        return str(next(n["h"] for n in nodes if n["t"] == t))

    def folder(self, parent: str, name: str) -> str:
        assert self.session is not None
        key = bytes(range(16))
        item = {"h": "xxxxxxxx", "t": 1, "a": keys.encrypt_attrs({"n": name}, key),
                "k": keys.encrypt_node_key(self.session.master_key, key)}
        return str(self.one({"a": "p", "t": parent, "n": [item]})["f"][0]["h"])


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorServer]:
    with mega_emulator(tmp_path) as server:
        yield server


@pytest.fixture
def wire(emu: EmulatorServer) -> Wire:
    return Wire(emu).login()


def test_prelogin_and_login_answers(emu: EmulatorServer) -> None:
    w = Wire(emu)
    v2 = w.one({"a": "us0", "user": EMAIL.upper()})
    assert v2["v"] == 2 and len(base64.urlsafe_b64decode(v2["s"] + "=")) == 32
    assert w.one({"a": "us0", "user": V1_EMAIL}) == {"v": 1}
    assert w.one({"a": "us0", "user": "nobody@example.org"}) == {"v": 1}
    assert w.one({"a": "us", "user": EMAIL, "uh": "AAAAAAAAAAAAAAAAAAAAAA"}) == -9
    _, uh = keys.derive_v2(PASSWORD, b64dec(v2["s"]))
    answer = w.one({"a": "us", "user": EMAIL, "uh": uh, "sek": "AAAAAAAAAAAAAAAAAAAAAA"})
    assert {"k", "csid", "privk", "u"} <= set(answer) and answer["sek"] == "AAAAAAAAAAAAAAAAAAAAAA"


def test_sessions_are_checked_and_strays_ignored(wire: Wire, emu: EmulatorServer) -> None:
    anonymous = Wire(emu)
    assert anonymous.cs({"a": "f", "c": 1}) == -15
    assert anonymous.cs({"a": "f", "c": 1}, sid="not-a-session") == -15
    assert wire.cs({"a": "ug"}, Authorization="Bearer stray")[0]["u"] == wire.session.user  # type: ignore[union-attr]
    r = requests.post(emu.base_url + "cs", params={"id": 1}, data=b'{"not": "a list"}')
    assert r.json() == -2


def test_tree_layout_owner_handles_and_key_prefixes(wire: Wire) -> None:
    answer = wire.one({"a": "f", "c": 1, "r": 1, "ca": 1})
    assert answer["ok"] == [] and answer["s"] == [] and isinstance(answer["sn"], str)
    assert sorted(n["t"] for n in answer["f"]) == [2, 3, 4]
    assert all(n["p"] == "" and n["a"] == "" and n["k"] == "" for n in answer["f"])
    user = wire.one({"a": "ug"})["u"]
    folder = wire.folder(wire.root(), "Docs")
    node = next(n for n in wire.one({"a": "f", "c": 1})["f"] if n["h"] == folder)
    assert node["u"] == user and node["k"].startswith(user + ":")


def test_a_repeated_request_id_is_answered_from_the_cache(wire: Wire) -> None:
    root = wire.root()
    key = bytes(16)
    assert wire.session is not None
    item = {"h": "xxxxxxxx", "t": 1, "a": keys.encrypt_attrs({"n": "once"}, key),
            "k": keys.encrypt_node_key(wire.session.master_key, key)}
    first = wire.cs({"a": "p", "t": root, "n": [item]}, request_id=7)
    again = wire.cs({"a": "p", "t": root, "n": [item]}, request_id=7)
    assert first == again
    assert sum(1 for n in wire.one({"a": "f", "c": 1})["f"] if n["p"] == root) == 1


def test_node_rules(wire: Wire) -> None:
    root, rubbish = wire.root(2), wire.root(4)
    a = wire.folder(root, "a")
    b = wire.folder(a, "b")
    assert wire.cs({"a": "m", "n": a, "t": b}, {"a": "m", "n": "nothere!", "t": root},
                   {"a": "d", "n": root}, {"a": "a", "n": root, "at": "x"}) == [-10, -9, -11, -11]
    assert wire.one({"a": "a", "n": b, "attr": "QUJD", "key": "S0VZ"}) == 0
    assert next(n for n in wire.one({"a": "f", "c": 1})["f"] if n["h"] == b)["k"].endswith(":S0VZ")
    assert wire.one({"a": "a", "n": b, "at": "REVG"}) == 0
    assert wire.one({"a": "m", "n": a, "t": rubbish}) == 0
    assert wire.one({"a": "d", "n": a}) == 0
    assert {n["h"] for n in wire.one({"a": "f", "c": 1})["f"]}.isdisjoint({a, b})


def upload(wire: Wire, data: bytes, raw: bool = False) -> tuple[str, bytes]:
    """POST `data` in the spec's chunks; (upload URL, the last answer)."""
    from syncagent.providers.mega.filecrypt import chunks

    cmd: dict[str, Any] = {"a": "u", "s": len(data)}
    if raw:
        cmd["v"] = 2
    url = wire.one(cmd)["p"]
    last = b""
    for offset, length in chunks(len(data)) if data else [(0, 0)]:
        last = requests.post(f"{url}/{offset}", data=data[offset:offset + length]).content
    return url, last


def test_upload_tokens_ranges_and_p(wire: Wire) -> None:
    root = wire.root()
    url, token = upload(wire, b"x" * 200_000)
    assert len(token) == 48 and token.isascii()
    _, raw = upload(wire, b"y" * 10, raw=True)
    assert len(raw) == 36
    assert requests.post(f"{url}/0", data=b"x" * 131072).content == token   # complete: the token again
    url3 = wire.one({"a": "u", "s": 300_000})["p"]
    assert requests.post(f"{url3}/0", data=b"z" * 131072).content == b""
    assert requests.post(f"{url3}/0", data=b"z" * 131072).content == b""      # a repeated chunk: fine
    assert requests.post(f"{url3}/5", data=b"z" * 10).content == b"-7"          # not a boundary
    assert requests.post(f"{url3}/0", data=b"z" * 1000).content == b"-7"        # ends inside a chunk
    assert requests.post(f"{wire.base}ul/unknown/0", data=b"").content == b"-8"
    _, empty_token = upload(wire, b"")
    assert len(empty_token) == 48
    tokens = [token.decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="), empty_token.decode()]
    items = [{"h": t, "t": 0, "a": "QUJD", "k": "S0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0U"} for t in tokens]
    created = wire.one({"a": "p", "t": root, "n": items})["f"]
    assert [n["s"] for n in created] == [200_000, 10, 0]
    assert wire.one({"a": "p", "t": root, "n": items[:1]}) == -9, "a token is good for one node"
    got = wire.one({"a": "g", "g": 1, "n": created[0]["h"]})
    assert got["s"] == 200_000 and got["at"] == "QUJD"
    whole = requests.get(got["g"]).content
    assert whole == b"x" * 200_000
    parts: dict[int, bytes] = {}

    def fetch(i: int) -> None:
        parts[i] = requests.get(f"{got['g']}/{i * 50_000}-{i * 50_000 + 49_999}").content

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"".join(parts[i] for i in range(4)) == whole
    assert requests.get(f"{got['g']}/0-0").content == b"x"


def test_public_handles_need_no_session(wire: Wire, emu: EmulatorServer) -> None:
    _, token = upload(wire, b"public bytes")
    node = wire.one({"a": "p", "t": wire.root(), "n": [{"h": token.decode(), "t": 0, "a": "QUJD", "k": "S0VZ"}]})
    handle = node["f"][0]["h"]
    ph = wire.one({"a": "l", "n": handle})
    assert ph == wire.one({"a": "l", "n": handle}) and len(ph) == 8
    anonymous = Wire(emu)
    got = anonymous.one({"a": "g", "g": 1, "p": ph})
    assert requests.get(got["g"]).content == b"public bytes"
    assert "g" not in anonymous.one({"a": "g", "p": ph})
    assert wire.one({"a": "l", "n": handle, "d": 1}) == 0
    assert anonymous.one({"a": "g", "g": 1, "p": ph}) == -9


def test_quota(wire: Wire, emu: EmulatorServer) -> None:
    _, token = upload(wire, b"q" * 1000)
    wire.one({"a": "p", "t": wire.root(), "n": [{"h": token.decode(), "t": 0, "a": "QUJD", "k": "S0VZ"}]})
    q = wire.one({"a": "uq", "strg": 1, "xfer": 1})
    assert q["cstrg"] == 1000 and q["cstrgn"][wire.root()][:2] == [1000, 1]
    emu.app.configure({"quota": 1500})
    assert wire.one({"a": "u", "s": 1000}) == -17


def test_events_wait_and_lost_positions(wire: Wire) -> None:
    sn = wire.one({"a": "f", "c": 1})["sn"]

    def sc(position: str) -> Any:
        return wire.http.post(wire.base + "sc", params={"sn": position, "sid": wire.sid, "ssl": 1}).json()

    waiting = sc(sn)
    assert set(waiting) == {"w"}
    started = time.monotonic()
    threading.Timer(0.3, lambda: wire.folder(wire.root(), "late")).start()
    wire.http.post(waiting["w"])   # returns once something happened
    assert 0.2 < time.monotonic() - started < 5
    news = sc(sn)
    assert news["sn"] != sn and [p["a"] for p in news["a"]] == ["t"]
    assert sc("AAAAAAAAAAA") == -6
    assert wire.http.post(wire.base + "sc", params={"sn": sn, "sid": "bad"}).json() == -15


def test_injected_codes(wire: Wire, emu: EmulatorServer) -> None:
    emu.inject("-3", 1, path="^/cs")
    emu.inject("-18", 1, path="^/cs")
    assert wire.cs({"a": "ug"}) == -3 and wire.cs({"a": "ug"}) == -18
    assert isinstance(wire.cs({"a": "ug"}), list)
    emu.inject("esid", 1, path="^/cs")
    assert wire.cs({"a": "ug"}) == -15 and wire.cs({"a": "ug"}) == -15


def test_standalone_server_prints_its_url(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "mega", "--port", "0", "--user",
                             f"{EMAIL}:{PASSWORD}", "--v1-user", f"{V1_EMAIL}:password"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3])
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = requests.post(url + "cs", params={"id": 1}, data=json.dumps([{"a": "us0", "user": V1_EMAIL}]))
        assert r.json() == [{"v": 1}]
    finally:
        proc.terminate()
        proc.wait(10)
