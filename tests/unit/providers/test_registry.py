"""Provider registration: the declarations, opening a configured remote,
the missing-secret hint, login verification, and packages that stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syncagent import errors
from syncagent.credentials import Resolver, read_credentials_file
from syncagent.providers import registry
from syncagent.providers.local import LocalProvider
from syncagent.providers.registry import LoginContext, RemoteSettings, env_name
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_emulator


def quiet_resolver(tmp_path: Path, environ: dict[str, str] | None = None) -> Resolver:
    return Resolver(environ=environ or {}, netrc_file=tmp_path / "no-netrc",
                    credentials_file=tmp_path / "creds.yaml", use_keyring=False)


def test_every_type_declares_a_strict_schema_and_known_secrets() -> None:
    types = registry.types()
    assert {"local", "smartfile"} <= set(types)
    for ptype in types.values():
        assert ptype.options.model_config.get("extra") == "forbid", ptype.name
        assert set(ptype.secrets) <= set(ptype.fields), ptype.name
        assert set(ptype.env) <= set(ptype.fields), ptype.name


def test_env_name_is_rclone_style_upper_case() -> None:
    assert env_name("my-sf", "access_token") == "SYNCAGENT_REMOTE_MY_SF_ACCESS_TOKEN"


def test_declaring_packages_stay_light() -> None:
    code = ("import sys; from syncagent.providers import registry; registry.types(); "
            "heavy = [m for m in ('requests', 'syncagent.providers.smartfile.provider') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_open_a_local_remote_with_a_subpath(tmp_path: Path) -> None:
    provider = registry.open_remote("nas", "local", {"root": str(tmp_path)}, "a/b", resolver=quiet_resolver(tmp_path))
    assert isinstance(provider, LocalProvider) and provider.local_folder() == str(tmp_path / "a/b")
    with pytest.raises(errors.UsageError, match=r"'\.\.' are not allowed"):
        registry.open_remote("nas", "local", {"root": str(tmp_path)}, "../etc", resolver=quiet_resolver(tmp_path))


def test_an_option_from_the_environment_is_validated_by_the_type(tmp_path: Path) -> None:
    env = {"SYNCAGENT_REMOTE_NAS_ROOT": str(tmp_path / "env-root")}
    provider = registry.open_remote("nas", "local", {"root": "/config-root"}, resolver=quiet_resolver(tmp_path, env))
    assert provider.local_folder() == str(tmp_path / "env-root")


def test_missing_secrets_name_auth_and_every_variable(tmp_path: Path) -> None:
    with pytest.raises(errors.AuthError) as info:
        registry.open_remote("sf", "smartfile", {}, resolver=quiet_resolver(tmp_path, {"SMARTFILE_API_KEY": KEY}))
    message = str(info.value)
    assert "`syncagent auth sf`" in message and "$SYNCAGENT_REMOTE_SF_PASSWORD" in message
    assert "$SMARTFILE_API_PASSWORD" in message and KEY not in message and "--password" not in message


def test_remote_settings_root_joins_the_subpath() -> None:
    assert RemoteSettings("x", {"root": "/backup"}, "docs/a").root() == "/backup/docs/a"
    assert RemoteSettings("x", {}, "").root() == "/"
    saved: list[dict[str, str]] = []
    RemoteSettings("x", {}, saver=saved.append).save_secrets({"refresh_token": "t"})
    assert saved == [{"refresh_token": "t"}]


def login_context(name: str, given: dict[str, object], answers: dict[str, str]) -> tuple[LoginContext, list[str]]:
    said: list[str] = []

    def prompt(text: str, secret: bool = False) -> str:
        return answers[text]

    return LoginContext(name, {}, dict(given), prompt=prompt, echo=said.append, open_browser=lambda url: False), said


def test_login_verifies_before_storing_and_says_who(tmp_path: Path) -> None:
    (tmp_path / "emu").mkdir()
    resolver = quiet_resolver(tmp_path)
    with smartfile_emulator(tmp_path / "emu") as emu:
        options = {"url": emu.base_url}
        ctx, _ = login_context("sf", {"key": KEY}, {"API password": "x" * 30})
        with pytest.raises(errors.AuthError):
            registry.login("sf", "smartfile", options, ctx, resolver=resolver)
        assert not (tmp_path / "creds.yaml").exists(), "a refused login stores nothing"
        ctx, _ = login_context("sf", {}, {"API key": KEY, "API password": PASSWORD})
        done = registry.login("sf", "smartfile", options, ctx, resolver=resolver)
    assert done.who == "emulated <user@example.invalid> on site emulator"
    assert read_credentials_file(tmp_path / "creds.yaml")["sf"] == {"key": KEY, "password": PASSWORD}


def test_a_type_without_login_says_so(tmp_path: Path) -> None:
    ctx, _ = login_context("nas", {}, {})
    with pytest.raises(errors.UsageError, match="needs no login"):
        registry.login("nas", "local", {"root": str(tmp_path)}, ctx, resolver=quiet_resolver(tmp_path))


def test_email_password_asks_until_the_answers_make_sense() -> None:
    answers = iter(["not-an-address", "me@example.com", "", "s3cret"])
    asked: list[tuple[str, bool]] = []

    def prompt(text: str, secret: bool = False) -> str:
        asked.append((text, secret))
        return next(answers)

    said: list[str] = []
    ctx = LoginContext("m", {}, {}, prompt=prompt, echo=said.append, open_browser=lambda url: False)
    assert ctx.email_password() == ("me@example.com", "s3cret")
    assert asked == [("Email", False), ("Email", False), ("Password", True), ("Password", True)]
    assert said == ["'not-an-address' is not an email address"]
    given = LoginContext("m", {"email": "cfg@example.com"}, {"password": "pw"}, prompt=prompt, echo=said.append,
                         open_browser=lambda url: False)
    assert given.email_password() == ("cfg@example.com", "pw")
