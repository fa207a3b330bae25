"""Install the agent as a per-user service: a systemd user unit on Linux, a
launchd agent on macOS. Templates live in packaging/ (shipped as package
data too). Commands are run through an injectable runner so tests never
touch the real service manager."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

Runner = Callable[[list[str]], int]
UNIT = "syncagent.service"
PLIST = "com.syncagent.agent.plist"


def _run(cmd: list[str]) -> int:
    return subprocess.run(cmd, check=False).returncode


def _template(name: str) -> str:
    here = Path(__file__).resolve().parents[2] / "packaging" / name
    if here.exists():
        return here.read_text()
    return resources.files("syncagent").joinpath("packaging", name).read_text()


def executable() -> str:
    found = shutil.which("syncagent")
    return found or str(Path(sys.executable).with_name("syncagent"))


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def render_unit(exec_path: str, config: str | None) -> str:
    args = [exec_path, "run", "--log-format", "json"] + (["--config", config] if config else [])
    docs = Path(__file__).resolve().parents[2] / "docs" / "agent.md"
    # a URI has no spaces; its %-escapes are doubled like every `%` systemd would expand
    doc_line = f"Documentation={docs.as_uri().replace('%', '%%')}\n" if docs.exists() else ""
    return _template(UNIT).format(exec_line=" ".join(systemd_quote(a) for a in args), docs=doc_line)


def systemd_quote(arg: str) -> str:
    """One word of an ExecStart= line: double-quoted when it holds a space,
    a quote or a backslash; `%` and `$` doubled so systemd neither expands
    a specifier nor a variable in a path."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if not arg or any(c in arg for c in " \t\n\"'\\;"):
        escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        arg = f'"{escaped}"'
    return arg


def render_plist(exec_path: str, config: str | None, log: str) -> str:
    extra = f"<string>--config</string><string>{escape(config)}</string>" if config else ""
    return _template(PLIST).format(exec=escape(exec_path), config_xml=extra, log=escape(log))


def install(config: str | None = None, *, target: Path | None = None, runner: Runner = _run,
            platform: str = sys.platform) -> list[str]:
    """Write the service file and start it; returns what was done (or what to run)."""
    done: list[str] = []
    if platform == "darwin":
        folder = target or Path.home() / "Library" / "LaunchAgents"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PLIST
        path.write_text(render_plist(executable(), config, str(Path.home() / "Library/Logs/syncagent.log")))
        done.append(f"wrote {path}")
        done += _commands([["launchctl", "load", "-w", str(path)]], runner)
        return done
    folder = target or unit_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / UNIT
    path.write_text(render_unit(executable(), config))
    done.append(f"wrote {path}")
    done += _commands([["systemctl", "--user", "daemon-reload"],
                       ["systemctl", "--user", "enable", "--now", UNIT]], runner)
    return done


def uninstall(*, target: Path | None = None, runner: Runner = _run, platform: str = sys.platform) -> list[str]:
    done: list[str] = []
    if platform == "darwin":
        path = (target or Path.home() / "Library" / "LaunchAgents") / PLIST
        done += _commands([["launchctl", "unload", "-w", str(path)]], runner)
    else:
        path = (target or unit_dir()) / UNIT
        done += _commands([["systemctl", "--user", "disable", "--now", UNIT]], runner)
    if path.exists():
        path.unlink()
        done.append(f"removed {path}")
    if platform != "darwin":
        done += _commands([["systemctl", "--user", "daemon-reload"]], runner)
    return done


def status(*, runner: Runner = _run, platform: str = sys.platform) -> list[str]:
    if platform == "darwin":
        return _commands([["launchctl", "list", "com.syncagent.agent"]], runner)
    return _commands([["systemctl", "--user", "status", "--no-pager", UNIT]], runner)


def _commands(cmds: list[list[str]], runner: Runner) -> list[str]:
    """Run each command; when the service manager is not reachable, say what to run."""
    out = []
    for cmd in cmds:
        if shutil.which(cmd[0]) is None and runner is _run:
            out.append(f"{cmd[0]} is not available here; run it yourself: {' '.join(cmd)}")
            continue
        code = runner(cmd)
        out.append(f"ran {' '.join(cmd)}" + ("" if code == 0 else f" (exit {code}; run it yourself)"))
    return out
