from __future__ import annotations

from pathlib import Path

import pytest

from syncagent.credentials import Resolver, read_credentials_file, store_credentials
from syncagent.errors import AuthError, ConfigError

KEY, PASSWORD = "k" * 30, "p" * 30


def resolver(tmp_path: Path, environ: dict[str, str] | None = None) -> Resolver:
    return Resolver(environ=environ or {}, netrc_file=tmp_path / "netrc",
                    credentials_file=tmp_path / "credentials.yaml", use_keyring=False)


def test_order_cli_then_env_then_netrc_then_file(tmp_path: Path) -> None:
    (tmp_path / "netrc").write_text(f"machine app.smartfile.com\n  login netrc-key\n  password {PASSWORD}\n")
    (tmp_path / "netrc").chmod(0o600)
    store_credentials("sf", {"key": "file-key", "password": "file-pass"}, tmp_path / "credentials.yaml")
    r = resolver(tmp_path, {"SMARTFILE_API_KEY": "env-key"})
    assert r.resolve("sf", "smartfile", {}, {"key": KEY}) == {"key": KEY, "password": PASSWORD}
    assert r.resolve("sf", "smartfile", {})["key"] == "env-key"
    assert resolver(tmp_path).resolve("sf", "smartfile", {})["key"] == "netrc-key"
    (tmp_path / "netrc").unlink()
    assert resolver(tmp_path).resolve("sf", "smartfile", {}) == {"key": "file-key", "password": "file-pass"}


def test_netrc_machine_follows_the_url(tmp_path: Path) -> None:
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1:8080 login {KEY} password {PASSWORD}\n")
    (tmp_path / "netrc").chmod(0o600)
    got = resolver(tmp_path).resolve("sf", "smartfile", {"url": "http://127.0.0.1:8080/"})
    assert got == {"key": KEY, "password": PASSWORD}


def test_missing_names_fields_not_values(tmp_path: Path) -> None:
    with pytest.raises(AuthError) as info:
        resolver(tmp_path, {"SMARTFILE_API_KEY": "secret-value-here"}).resolve("sf", "smartfile", {})
    message = str(info.value)
    assert "password" in message and "SMARTFILE_API_PASSWORD" in message
    assert "secret-value-here" not in message


def test_credentials_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = store_credentials("sf", {"key": KEY}, tmp_path / "credentials.yaml")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_credentials_file(path)
