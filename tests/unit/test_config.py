from __future__ import annotations

from pathlib import Path

import pytest

from syncagent import config
from syncagent.errors import ConfigError

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


def test_wrong_type_never_echoes_a_secret() -> None:
    msg = error_of("remotes:\n  sf: {type: nosuch, password: hunter2}\n")
    assert "c.yaml:2:" in msg and "hunter2" not in msg


def test_add_show_remove_remote(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config.add_remote(path, "sf", {"type": "smartfile", "key": "k" * 30, "password": "p" * 30})
    cfg = config.load(path)
    assert cfg.remotes["sf"].options()["key"] == "k" * 30
    shown = config.masked(config.raw(path))
    assert shown["remotes"]["sf"]["password"] == "***" and shown["remotes"]["sf"]["type"] == "smartfile"
    assert path.stat().st_mode & 0o077 == 0
    assert config.remove_remote(path, "sf") and not config.load(path).remotes
