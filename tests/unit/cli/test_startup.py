"""A no-op `sync` pays at start-up only for what it uses: the modules its
process imports (start-up is most of a no-op sync of a small tree), and
the lazy command table that keeps the other commands' modules out. A
plain `sync` does not even import click (the fast entry); anything it
does not read goes to click, whose messages and exit codes stay the user's."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest

from syncagent.cli import main as cli_main
from syncagent.providers import registry
from tests.helpers import age_files, write

# Never needed by a sync between two folders with nothing to do.
NOT_FOR_A_FOLDER_PAIR = (
    "pydantic", "yaml", "syncagent.config", "syncagent.config_models", "syncagent.credentials",
    "syncagent.providers.registry", "syncagent.cli.agent_cmd", "syncagent.cli.setup_cmd", "syncagent.cli.remote",
    "syncagent.cli.remote_extras", "syncagent.cli.transfer", "syncagent.cli.account_cmd", "syncagent.agent",
    "syncagent.delta", "webbrowser", "structlog", "rich", "requests", "urllib3", "keyring", "boto3", "botocore",
    "Crypto", "ecdsa", "watchdog", "apscheduler", "pathspec",
    # only a listing that goes to disk, a network listing or a compare across the network uses these
    "tempfile", "concurrent", "syncagent.engine.execute", "syncagent.engine.deltapath", "syncagent.engine.trash",
    "secrets", "random", "shutil", "bz2", "lzma",
    # the C library is loaded only to flush a batch (fileio.syncfs)
    "ctypes",
    # a plain `sync` is read from the declarative table (cli/entry.py), not by click
    "click", "syncagent.cli.main", "syncagent.cli.sync_cmd",
    # the schema's models create or migrate a state database; an up-to-date one is opened with sqlite3 alone
    "peewee", "syncagent.engine.state_schema",
    # a quiet run logs nothing: log.py routes logging when a library imports it; only a conflict asks the host name
    "logging", "traceback", "socket",
    # records and types for the type checker only; hashes and journal rows only where a run makes them
    "typing", "dataclasses", "inspect", "hashlib", "json",
)
OTHER_PROVIDERS = tuple(f"syncagent.providers.{kind}" for kind in registry.KINDS if kind != "local")

# the function the installed `syncagent` command runs, as its package metadata names it
(CONSOLE_SCRIPT,) = entry_points(group="console_scripts", name="syncagent")
CONSOLE_ENTRY = CONSOLE_SCRIPT.value
RUN_AND_LIST = """
import importlib, os, sys
sys.argv = ["syncagent", *sys.argv[1:]]
module, _, function = ENTRY.partition(":")

def listed():
    with open(OUT, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))

leave = os._exit

def list_then_leave(code):   # a finished run leaves by os._exit, past any finally
    listed()
    leave(code)

os._exit = list_then_leave
try:
    sys.exit(getattr(importlib.import_module(module), function)())
finally:
    listed()
"""   # (the probe itself imports nothing the run might not: no json)


def imported_by(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Exit code of `syncagent ARGS` run in its own interpreter through the console script's entry
    point, and every module it imported."""
    out = cwd / "modules.txt"
    code = RUN_AND_LIST.replace("OUT", repr(str(out))).replace("ENTRY", repr(CONSOLE_ENTRY))
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, set(out.read_text().splitlines())


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The modules of `names` (packages included with their submodules) found in `modules`."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    write(tmp_path / "src/a/one.txt", "1")
    write(tmp_path / "src/two.txt", "2")
    age_files(tmp_path / "src")   # a file younger than the racy window is hashed by the next run: no no-op
    env = {"SYNCAGENT_CONFIG": str(tmp_path / "no-config.yaml"), "SYNCAGENT_STATE_DIR": str(tmp_path / "state")}
    return tmp_path, env


def test_a_noop_folder_sync_imports_nothing_it_does_not_use(pair: tuple[Path, dict[str, str]]) -> None:
    home, env = pair
    args = ["sync", str(home / "src"), str(home / "dst"), "-q", "--mode", "upload"]
    assert imported_by(args, home, env)[0] == 0      # the first run copies
    code, modules = imported_by(args, home, env)     # the no-op
    assert code == 0
    assert "syncagent.engine.sync" in modules, "the probe saw the sync run"
    assert loaded(modules, NOT_FOR_A_FOLDER_PAIR) == []
    # other spellings the table reads: options first, attached values, a cluster, positionals among
    # options, the config file from its environment variable
    spelled = ["sync", "-qv", "--mode=upload", str(home / "src"), "--max-delete", "100", str(home / "dst"),
               "--delta", "never", "-q"]
    code, modules = imported_by(spelled, home, {**env, "SYNCAGENT_CONFIG": str(home / "other.yaml")})
    assert code == 0 and "syncagent.engine.sync" in modules
    assert loaded(modules, NOT_FOR_A_FOLDER_PAIR) == []


def test_an_argv_the_table_does_not_read_runs_through_click(pair: tuple[Path, dict[str, str]]) -> None:
    home, env = pair
    code, modules = imported_by(["sync", str(home / "src"), str(home / "dst"), "-q", "--"], home, env)
    assert code == 0
    assert "click" in modules and "syncagent.engine.sync" in modules
    assert (home / "dst/a/one.txt").read_text() == "1"


@pytest.mark.parametrize("args", [["sync", "src", "dst", "--mode", "bogus"], ["sync", "--help"], ["sync", "-h"],
                                  ["sync", "src"], ["sync", "src", "dst", "extra"], ["sync", "src", "dst", "-qx"],
                                  ["sync", "src", "dst", "--max-delete", "150"], ["sync", "src/a/one.txt", "dst"],
                                  ["sync", "src", "dst", "--quiet=yes"], ["sync", "src", "dst", "--config"]])
def test_the_installed_command_says_what_click_says(pair: tuple[Path, dict[str, str]], args: list[str]) -> None:
    home, env = pair

    def run(command: list[str]) -> tuple[int, str, str]:
        proc = subprocess.run([*command, *args], cwd=home, capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr

    code, out, err = run([str(Path(sysconfig.get_path("scripts")) / "syncagent")])
    clicks_main = "import sys; sys.argv[0] = 'syncagent'; from syncagent.cli.main import main; main()"
    assert (code, out, err) == run([sys.executable, "-c", clicks_main])
    if "--help" in args or "-h" in args:
        assert code == 0 and out.startswith("Usage: syncagent sync [OPTIONS] LOCAL REMOTE")
    else:
        assert code == 2 and out == "" and "Error: " in err
    if "bogus" in args:
        assert "Invalid value for '--mode': 'bogus' is not one of 'two-way', 'upload', 'download'." in err
    assert not (home / "dst").exists()


def test_a_bare_folder_name_is_checked_against_the_config_without_pydantic(pair: tuple[Path, dict[str, str]]) -> None:
    home, env = pair
    config = home / "config.yaml"
    config.write_text(f"remotes:\n  nas: {{type: local, root: {home / 'nas'}}}\n")
    for env_config in (env, {**env, "SYNCAGENT_CONFIG": str(config)}):   # no config file, then one without `dst`
        code, modules = imported_by(["sync", "src", "dst", "-q"], home, env_config)
        assert code == 0
        assert loaded(modules, ("pydantic", "syncagent.config_models", "syncagent.providers.registry")) == []


def test_a_named_local_remote_loads_only_its_own_provider(pair: tuple[Path, dict[str, str]]) -> None:
    home, env = pair
    config = home / "config.yaml"
    config.write_text(f"remotes:\n  nas: {{type: local, root: {home / 'nas'}}}\n")
    (home / "nas").mkdir()
    code, modules = imported_by(["sync", "src", "nas:", "-q"], home, {**env, "SYNCAGENT_CONFIG": str(config)})
    assert code == 0
    assert "syncagent.providers.local" in modules
    assert loaded(modules, (*OTHER_PROVIDERS, "requests", "keyring", "boto3", "Crypto", "webbrowser")) == []


def test_the_command_table_is_what_the_modules_register() -> None:
    for module in set(cli_main.COMMANDS.values()):
        group = click.Group()
        cli_main.registrar(module)(group)
        assert set(group.commands) == {n for n, m in cli_main.COMMANDS.items() if m == module}, module


def test_help_lists_every_command_and_a_typo_gets_a_suggestion() -> None:
    from click.testing import CliRunner

    out = CliRunner().invoke(cli_main.main, ["--help"]).output
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(cli_main.COMMANDS)
    typo = CliRunner().invoke(cli_main.main, ["synk"])
    assert typo.exit_code == 2 and "Did you mean 'sync'?" in typo.output


def test_every_registered_kind_is_its_packages_declaration() -> None:
    for kind in registry.KINDS:
        found = registry.find_type(kind)
        assert found is not None and found.name == kind
    assert registry.find_type("nosuch") is None
    assert list(registry.types()) == list(registry.KINDS)
