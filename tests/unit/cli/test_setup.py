"""`config add|show|types|remove` and `auth` through the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli.main import main
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNCAGENT_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("SYNCAGENT_CREDENTIALS", str(tmp_path / "creds.yaml"))
    monkeypatch.setenv("SYNCAGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOME", str(tmp_path))     # no ~/.netrc of the machine's user
    for var in ("SMARTFILE_API_KEY", "SMARTFILE_API_PASSWORD", "SMARTFILE_API_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def emulator(home: Path) -> Iterator[str]:
    (home / "emu").mkdir()
    with smartfile_emulator(home / "emu") as emu:
        yield emu.base_url


def cli(*args: str, input: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=input)
    assert "Traceback" not in r.output
    return r.exit_code, r.output


def test_config_add_refuses_secrets_and_unknown_keys(home: Path) -> None:
    code, out = cli("config", "add", "sf", "smartfile", "password=hunter2hunter2")
    assert code == 2 and "syncagent auth sf" in out and "hunter2" not in out
    code, out = cli("config", "add", "sf", "smartfile", "colour=blue")
    assert code == 2 and "unknown key 'colour'" in out and "url" in out
    code, out = cli("config", "add", "sf", "ftp")
    assert code == 2 and "unknown type 'ftp'" in out and "smartfile" in out
    assert not (home / "config.yaml").exists()
    code, out = cli("config", "add", "sf", "smartfile", "root=/backup")
    assert code == 0 and "syncagent auth sf" in out


def test_config_types_lists_keys_and_secrets(home: Path) -> None:
    code, out = cli("config", "types")
    assert code == 0 and "smartfile:" in out and "password (secret" in out and "root (required)" in out


def test_config_show_masks_a_password_inside_a_url(home: Path) -> None:
    (home / "config.yaml").write_text("remotes:\n  sf:\n    type: smartfile\n"
                                      "    url: https://me:hunter2@files.example.com/\n")
    code, out = cli("config", "show")
    assert code == 0 and "hunter2" not in out and "https://me:***@files.example.com/" in out


def test_a_config_file_that_is_not_utf8_exits_78_naming_it(home: Path) -> None:
    (home / "config.yaml").write_bytes(b"remotes:\n  nas: {type: local, root: /caf\xe9}\n")
    for args in (("config", "show"), ("sync", str(home / "a"), "nas:"), ("ls", "nas:")):
        code, out = cli(*args)
        assert code == 78 and str(home / "config.yaml") in out and "UTF-8" in out, (args, out)


def test_a_credentials_file_that_is_not_utf8_exits_78_naming_it(emulator: str, home: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={emulator}")[0] == 0
    (home / "creds.yaml").write_bytes(b"sf:\n  password: caf\xe9\n")
    (home / "creds.yaml").chmod(0o600)
    code, out = cli("ls", "sf:")
    assert code == 78 and str(home / "creds.yaml") in out and "UTF-8" in out


def test_auth_with_key_value_pairs_says_who_and_sync_hint_names_what_works(emulator: str, home: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={emulator}")[0] == 0
    code, out = cli("sync", str(home / "local"), "sf:docs")
    assert code == 1 and "syncagent auth sf" in out and "SMARTFILE_API_KEY" in out and "--key" not in out
    code, out = cli("auth", "sf", f"key={KEY}", f"password={PASSWORD}")
    assert code == 0 and "as emulated" in out, out
    assert (home / "creds.yaml").stat().st_mode & 0o077 == 0
    assert PASSWORD not in (home / "config.yaml").read_text()
    (home / "local").mkdir()
    assert cli("sync", str(home / "local"), "sf:docs")[0] == 0


def test_auth_asks_for_what_is_missing_and_a_wrong_password_stores_nothing(emulator: str, home: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={emulator}")[0] == 0
    code, out = cli("auth", "sf", "--key", KEY, input="x" * 30 + "\n")
    assert code == 1 and "401" in out and "x" * 30 not in out
    assert not (home / "creds.yaml").exists()
    code, out = cli("auth", "sf", input=f"{KEY}\n{PASSWORD}\n")
    assert code == 0 and "logged in to sf" in out


def test_auth_without_a_terminal_says_what_to_give(emulator: str, home: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={emulator}")[0] == 0
    code, out = cli("auth", "sf", "--key", KEY, input="")
    assert code == 2 and "KEY=VALUE" in out


def test_auth_of_an_unknown_remote_or_a_local_one(home: Path) -> None:
    assert cli("auth", "nosuch")[0] == 2
    assert cli("config", "add", "nas", "local", f"root={home}")[0] == 0
    code, out = cli("auth", "nas")
    assert code == 2 and "needs no login" in out


def test_config_remove_forgets_stored_secrets(emulator: str, home: Path) -> None:
    assert cli("config", "add", "sf", "smartfile", f"url={emulator}")[0] == 0
    assert cli("auth", "sf", f"key={KEY}", f"password={PASSWORD}")[0] == 0
    assert cli("config", "remove", "sf")[0] == 0
    assert "sf" not in (home / "creds.yaml").read_text()
    assert cli("config", "remove", "sf")[0] == 2
