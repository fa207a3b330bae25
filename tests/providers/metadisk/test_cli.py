"""The command line end to end against the Metadisk emulator: config add,
auth (register, activate, key, bucket; the password from the environment),
sync to NAME:path, the remote commands."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli.main import main
from syncagent.providers.metadisk.content import content_address
from tests.emulators.metadisk.fixtures import MetadiskSetup, metadisk_setup
from tests.helpers import tree, write


@pytest.fixture
def md(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadiskSetup]:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    for name in ("METADISK_EMAIL", "METADISK_PASSWORD", "SYNCAGENT_REMOTE_MD_KEY"):
        monkeypatch.delenv(name, raising=False)
    with metadisk_setup(tmp_path) as setup:
        yield setup


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=stdin)
    return r.exit_code, r.output


def test_register_activate_sync_and_browse(md: MetadiskSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("config", "add", "md", "metadisk", "email=fresh@example.org", "bucket=docs", f"api_url={md.url}")[0] == 0
    monkeypatch.setenv("SYNCAGENT_REMOTE_MD_PASSWORD", "correct horse")
    code, out = cli("auth", "md")                   # registers, then needs the e-mailed token
    assert code != 0 and "registered the Metadisk account fresh@example.org" in out
    token = md.app.activations[-1]
    code, out = cli("auth", "md", f"activation={md.url}/activations/{token}")
    assert code == 0, out
    assert "activated fresh@example.org" in out and "created the bucket 'docs'" in out
    assert "logged in to md as fresh@example.org" in out
    assert "correct horse" not in out and os.stat(tmp_path / "creds.yaml").st_mode & 0o077 == 0
    assert len(md.app.accounts.keys_of("fresh@example.org")) == 1
    monkeypatch.delenv("SYNCAGENT_REMOTE_MD_PASSWORD")   # from now on: signed with the stored key
    assert cli("auth", "md", "password=correct horse")[0] == 0      # again: the stored key is reused
    assert len(md.app.accounts.keys_of("fresh@example.org")) == 1

    local = tmp_path / "local"
    write(local / "a.txt", "hello")
    write(local / "Hello, 世界/z ≠.txt", "unicode")
    write(local / "copy-of-a.txt", "hello")
    code, out = cli("sync", str(local), "md:work")
    assert code == 0, out
    code, out = cli("ls", "-R", "md:work")
    assert "work/a.txt" in out and "work/Hello, 世界/z ≠.txt" in out
    assert cli("get", "md:work/a.txt", "-") == (0, "hello")
    code, out = cli("info", "md:work/a.txt")
    info = json.loads(out)
    assert info["content_address"] == content_address(b"hello") and info["size"] == 5
    assert info["shards"] and info["shards"][0]["channel"].startswith("ws://127.0.0.1:")
    assert cli("mv", "md:work/a.txt", "md:work/b.txt")[0] == 0
    assert cli("cp", "md:work/b.txt", "md:work/c.txt")[0] == 0
    assert cli("rm", "md:work/copy-of-a.txt")[0] == 0
    (tmp_path / "put.txt").write_text("put me")
    assert cli("put", str(tmp_path / "put.txt"), "md:work/")[0] == 0
    code, out = cli("sync", str(local), "md:work")
    assert code == 0, out
    assert sorted(tree(local)) == ["Hello, 世界", "Hello, 世界/z ≠.txt", "b.txt", "c.txt", "put.txt"]
    code, out = cli("tree", "md:")
    assert "work/" in out and "b.txt" in out
    code, out = cli("quota", "md:")
    assert code == 0 and "used" in out


def test_a_wrong_password_for_an_existing_account(md: MetadiskSetup) -> None:
    from tests.emulators.metadisk.fixtures import EMAIL

    assert cli("config", "add", "md", "metadisk", f"email={EMAIL}", f"api_url={md.url}")[0] == 0
    code, out = cli("auth", "md", "password=not it")
    assert code == 1 and "wrong password" in out and "not it" not in out
    code, out = cli("ls", "md:")
    assert code == 1 and "syncagent auth md" in out


def test_keys_and_buckets_of_the_account(md: MetadiskSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecdsa import SECP256k1, SigningKey

    from tests.emulators.metadisk.fixtures import EMAIL, PASSWORD

    monkeypatch.setenv("SYNCAGENT_REMOTE_MD_PASSWORD", PASSWORD)
    assert cli("config", "add", "md", "metadisk", f"email={EMAIL}", "bucket=docs", f"api_url={md.url}")[0] == 0
    assert cli("auth", "md")[0] == 0
    code, out = cli("keys", "list", "md")
    before = out.split()
    assert code == 0 and before, out
    other = SigningKey.generate(curve=SECP256k1).get_verifying_key().to_string("compressed").hex()
    assert cli("keys", "add", "md", other)[0] == 0
    assert sorted(cli("keys", "list", "md:")[1].split()) == sorted([*before, other])
    assert cli("keys", "remove", "md", other)[0] == 0
    assert other not in cli("keys", "list", "md")[1]
    assert cli("buckets", "create", "md", "photos")[0] == 0
    code, out = cli("buckets", "list", "md", "--json")
    assert code == 0 and "photos" in {b["name"] for b in json.loads(out)}
    assert cli("buckets", "remove", "md", "photos")[0] == 0
    assert "photos" not in cli("buckets", "list", "md")[1]
    code, out = cli("buckets", "remove", "md", "photos")
    assert code == 1 and "no bucket" in out
