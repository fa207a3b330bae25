from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.credentials import Resolver, read_credentials_file, store_credentials, update_credentials
from syncagent.errors import ConfigError
from syncagent.providers.registry import get

KEY, PASSWORD = "k" * 30, "p" * 30
SMARTFILE = get("smartfile")


class FakeKeyring:
    """The keyring module's API, in memory."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.data.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.data[(service, user)] = value

    def delete_password(self, service: str, user: str) -> None:
        self.data.pop((service, user), None)


def resolver(tmp_path: Path, environ: dict[str, str] | None = None, keyring: FakeKeyring | None = None) -> Resolver:
    return Resolver(environ=environ or {}, netrc_file=tmp_path / "netrc", credentials_file=tmp_path / "creds.yaml",
                    use_keyring=keyring is not None, keyring=keyring)


def test_order_given_env_config_conventional_netrc_file(tmp_path: Path) -> None:
    (tmp_path / "netrc").write_text(f"machine app.smartfile.com\n  login netrc-key\n  password {PASSWORD}\n")
    (tmp_path / "netrc").chmod(0o600)
    store_credentials("sf", {"key": "file-key", "password": "file-pass"}, tmp_path / "creds.yaml")
    env = {"SMARTFILE_API_KEY": "conventional-key", "SYNCAGENT_REMOTE_SF_PASSWORD": "env-pass"}
    got = resolver(tmp_path, env).resolve("sf", SMARTFILE, {}, {"key": KEY})
    assert got.values["key"] == KEY and got.origins["key"] == "given"
    assert got.values["password"] == "env-pass" and got.origins["password"] == "env"
    assert resolver(tmp_path, env).resolve("sf", SMARTFILE, {"key": "cfg-key"}).values["key"] == "cfg-key"
    assert resolver(tmp_path, env).resolve("sf", SMARTFILE, {}).values["key"] == "conventional-key"
    got = resolver(tmp_path).resolve("sf", SMARTFILE, {})
    assert (got.values["key"], got.origins["key"]) == ("netrc-key", "netrc")
    (tmp_path / "netrc").unlink()
    got = resolver(tmp_path).resolve("sf", SMARTFILE, {})
    assert {k: got.values[k] for k in ("key", "password")} == {"key": "file-key", "password": "file-pass"}
    assert got.origins["password"] == "file"


def test_every_field_comes_from_the_environment_upper_case(tmp_path: Path) -> None:
    env = {"SYNCAGENT_REMOTE_MY_SF_ROOT": "/from-env", "SYNCAGENT_REMOTE_MY_SF_URL": "http://127.0.0.1:9/"}
    got = resolver(tmp_path, env).resolve("my-sf", SMARTFILE, {"root": "/from-config"})
    assert got.values["root"] == "/from-env" and got.values["url"] == "http://127.0.0.1:9/"
    assert "SMARTFILE_API_URL" in SMARTFILE.env_names("x", "url")


def test_netrc_machine_follows_the_url(tmp_path: Path) -> None:
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1:8080 login {KEY} password {PASSWORD}\n")
    (tmp_path / "netrc").chmod(0o600)
    got = resolver(tmp_path).resolve("sf", SMARTFILE, {"url": "http://127.0.0.1:8080/"})
    assert (got.values["key"], got.values["password"]) == (KEY, PASSWORD)


def test_keyring_is_used_for_secrets_and_store_prefers_it(tmp_path: Path) -> None:
    ring = FakeKeyring()
    r = resolver(tmp_path, keyring=ring)
    update_credentials("sf", {"password": "stale"}, tmp_path / "creds.yaml")
    assert r.store("sf", {"key": KEY, "password": PASSWORD}) == "the keyring"
    assert ring.data[("syncagent", "sf/password")] == PASSWORD
    assert "sf" not in read_credentials_file(tmp_path / "creds.yaml"), "a stale file copy would outlive the login"
    got = r.resolve("sf", SMARTFILE, {})
    assert got.values["password"] == PASSWORD and got.origins["password"] == "keyring"
    r.forget("sf", SMARTFILE.secrets)
    assert not ring.data


def test_without_a_keyring_store_writes_the_0600_file(tmp_path: Path) -> None:
    where = resolver(tmp_path).store("sf", {"key": KEY, "password": PASSWORD})
    assert str(tmp_path / "creds.yaml") in where
    assert (tmp_path / "creds.yaml").stat().st_mode & 0o777 == 0o600
    assert read_credentials_file(tmp_path / "creds.yaml")["sf"] == {"key": KEY, "password": PASSWORD}


def test_rotated_secrets_go_back_where_they_came_from(tmp_path: Path) -> None:
    ring = FakeKeyring()
    r = resolver(tmp_path, keyring=ring)
    update_credentials("sf", {"access_token": "old-file"}, tmp_path / "creds.yaml")
    ring.set_password("syncagent", "sf/access_secret", "old-ring")
    found = r.resolve("sf", SMARTFILE, {})
    assert (found.origins["access_token"], found.origins["access_secret"]) == ("file", "keyring")
    r.save("sf", SMARTFILE, {"access_token": "new-file", "access_secret": "new-ring", "client_token": "c" * 30},
           found.origins)
    data = read_credentials_file(tmp_path / "creds.yaml")["sf"]
    assert data["access_token"] == "new-file" and "access_secret" not in data
    assert ring.data[("syncagent", "sf/access_secret")] == "new-ring"
    assert ring.data[("syncagent", "sf/client_token")] == "c" * 30, "a new secret goes where `store` puts it"
    assert not list(tmp_path.glob("*.tmp")), "written through a temp file, renamed"


def test_credentials_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = store_credentials("sf", {"key": KEY}, tmp_path / "creds.yaml")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_credentials_file(path)


def test_credentials_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "creds.yaml"
    path.write_bytes(b"sf:\n  password: caf\xe9\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        read_credentials_file(path)
    assert info.value.exit_code == 78 and str(path) in str(info.value) and "UTF-8" in str(info.value)
