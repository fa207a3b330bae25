from __future__ import annotations

from pathlib import Path

import pytest

from syncagent import config
from syncagent.errors import ConfigError, UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncagent.example.yaml"


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.yaml")
    assert info.value.exit_code == 78
    return str(info.value)


def test_example_config_is_valid() -> None:
    cfg = config.load(EXAMPLE)
    assert cfg.pairs and cfg.remotes


def test_bad_mode_names_line_column_and_choices() -> None:
    msg = error_of("pairs:\n  - local: /a\n    remote: /b\n    mode: sideways\n")
    assert msg.startswith("c.yaml:4:11: pairs[0].mode: expected")
    assert "two-way" in msg and "sideways" in msg


def test_unknown_key_points_at_the_key() -> None:
    msg = error_of("remotes: {}\npairs:\n  - local: /a\n    remote: /b\n    colour: blue\n")
    assert msg.startswith("c.yaml:5:5: pairs[0].colour: unknown key")


def test_missing_key_and_yaml_syntax() -> None:
    assert "pairs[0].remote: is required" in error_of("pairs:\n  - local: /a\n")
    assert error_of("pairs: [\n").startswith("c.yaml:2:1: not valid YAML")


def test_type_must_be_registered_and_never_echoes_a_secret() -> None:
    msg = error_of("remotes:\n  sf: {type: nosuch, password: hunter2}\n")
    assert msg.startswith("c.yaml:2:")
    assert "remotes.sf.type" in msg and "local" in msg and "smartfile" in msg and "hunter2" not in msg


def test_remote_keys_are_checked_by_the_types_own_model() -> None:
    msg = error_of("remotes:\n  nas:\n    type: local\n    root: /x\n    colour: blue\n")
    assert msg.startswith("c.yaml:5:5: remotes.nas.colour: unknown key")
    msg = error_of("remotes:\n  nas:\n    type: local\n")
    assert msg.startswith("c.yaml:2:3: remotes.nas.root: is required")  # the mapping that lacks it
    msg = error_of("remotes:\n  sf:\n    type: smartfile\n    password: [hunter2]\n")
    assert msg.startswith("c.yaml:4:5: remotes.sf.password: expected a valid string") and "hunter2" not in msg


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"remotes:\n  nas: {type: local, root: /caf\xe9}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.exit_code == 78
    assert str(info.value).startswith(f"{path}:2: not UTF-8")
    with pytest.raises(ConfigError):
        config.raw(path)


def test_add_validates_against_the_type_and_keeps_secrets_out(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config.add_remote(path, "sf", {"type": "smartfile", "url": "http://127.0.0.1:1/", "root": "/backup"})
    assert config.load(path).remotes["sf"].options() == {"url": "http://127.0.0.1:1/", "root": "/backup"}
    assert path.stat().st_mode & 0o077 == 0
    with pytest.raises(UsageError, match=r"`password` is a secret.*syncagent auth sf"):
        config.add_remote(path, "sf", {"type": "smartfile", "password": "p" * 30})
    with pytest.raises(UsageError, match=r"unknown key 'colour' for type smartfile; its keys: url, root"):
        config.add_remote(path, "sf", {"type": "smartfile", "colour": "blue"})
    with pytest.raises(UsageError, match="unknown type 'ftp'"):
        config.add_remote(path, "x", {"type": "ftp"})
    with pytest.raises(UsageError, match="root: is required"):
        config.add_remote(path, "nas", {"type": "local"})
    with pytest.raises(UsageError, match="bad remote name"):
        config.add_remote(path, "a/b", {"type": "local", "root": "/x"})
    assert "p" * 30 not in path.read_text()
    assert config.remove_remote(path, "sf") and not config.load(path).remotes


def test_masked_hides_declared_secrets_and_passwords_inside_urls() -> None:
    data = {"remotes": {
        "sf": {"type": "smartfile", "url": "https://user:hunter2@files.example.com/?x=1&token=abc",
               "key": "k" * 30, "root": "/a"},
        "dav": {"type": "webdav-someday", "endpoint": "https://me:pw%40x@dav.example.com/"}}}
    shown = config.masked(data)
    assert shown["remotes"]["sf"]["url"] == "https://user:***@files.example.com/?x=1&token=***"
    assert shown["remotes"]["sf"]["key"] == "***" and shown["remotes"]["sf"]["root"] == "/a"
    assert shown["remotes"]["dav"]["endpoint"] == "https://me:***@dav.example.com/"
    assert config.mask_url("http://127.0.0.1:8080/path") == "http://127.0.0.1:8080/path"
