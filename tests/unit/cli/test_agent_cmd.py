"""`run` takes sync's safety and transfer options; `service install` wants a
config with a pair before it writes anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from syncagent.cli.agent_cmd import Overrides, _agent_pairs
from syncagent.cli.main import main
from syncagent.engine.plan import Mode

CONFIG = """\
remotes:
  box: {type: local, root: /srv/box}
pairs:
  - {name: docs, local: /home/u/Documents, remote: "box:docs", max_delete: 20, delta: never,
     poll_interval: 60, exclude: ["*.tmp"]}
  - {local: /home/u/Music, remote: "box:music", mode: upload}
"""


def _overrides(**kw: object) -> Overrides:
    values: dict[str, object] = {"poll_interval": None, "mode": None, "excludes": (), "force": False,
                                 "max_delete": None, "delta": None, "trash": True}
    return Overrides(**{**values, **kw})  # type: ignore[arg-type]


def test_run_lists_the_options_of_sync() -> None:
    out = CliRunner().invoke(main, ["run", "--help"]).output
    for option in ("--force", "--max-delete", "--delta", "--no-trash", "--verbose", "--quiet", "--exclude"):
        assert option in out


def test_config_pairs_keep_their_values_unless_the_command_line_sets_them(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG)
    pairs, _ = _agent_pairs(None, None, _overrides(), str(cfg))
    docs, music = pairs
    assert (docs.max_delete, docs.delta, docs.poll_interval, docs.excludes) == (20, "never", 60, ["*.tmp"])
    assert music.mode is Mode.UPLOAD and music.max_delete == 50 and docs.trash and not docs.force
    pairs, _ = _agent_pairs(None, None, _overrides(max_delete=90.0, delta="always", force=True, trash=False,
                                                   excludes=("*.iso",)), str(cfg))
    for p in pairs:
        assert (p.max_delete, p.delta, p.force, p.trash) == (90.0, "always", True, False)
    assert pairs[0].excludes == ["*.tmp", "*.iso"]


def test_one_pair_from_the_command_line(tmp_path: Path) -> None:
    (p,), state = _agent_pairs(tmp_path / "docs", "box:docs", _overrides(mode="download", max_delete=10.0), None)
    assert state is None and p.name == "docs" and p.mode is Mode.DOWNLOAD and p.max_delete == 10.0
    assert p.local.is_absolute() and p.poll_interval == 30.0


@pytest.mark.parametrize("text", ["remotes:\n  box: {type: local, root: /srv/box}\n", ""])
def test_service_install_needs_a_pair(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    r = CliRunner().invoke(main, ["service", "install", "--config", str(cfg)])
    assert r.exit_code == 78, r.output
    assert "no pairs" in r.output and str(cfg) in r.output
    assert not (tmp_path / "xdg").exists(), "nothing was written"


def test_service_install_with_a_missing_config_is_a_config_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    r = CliRunner().invoke(main, ["service", "install", "--config", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 78 and "Traceback" not in r.output
    assert not (tmp_path / "xdg").exists()
