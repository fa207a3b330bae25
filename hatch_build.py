"""Build hook: compile syncagent/native/_native.c and _stage.c when the package is installed.

`pip install .` and `pip install -e .` (the Makefile's) run it. The modules
are optional speed-ups (_native: the no-op path's loops; _stage: staging a
batch of local copies): when there is no C compiler or no Python headers
the install goes on without them and says so, and the engine runs its
pure-Python loops (syncagent/native/__init__.py, engine/localcopy.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("syncagent/native/_native.c")
STAGE_SOURCE = Path("syncagent/native/_stage.c")


def compile_native(root: Path) -> Path | None:
    """Compile the module beside its source; its path, or None (with the reason on stderr)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = root / SOURCE.with_name("_native" + suffix)
    include = sysconfig.get_paths()["include"]
    if not Path(include, "Python.h").exists():
        return _skip(f"no Python headers in {include} (Debian: apt-get install python3-dev)")
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        return _skip("no C compiler (Debian: apt-get install gcc)")
    cmd = [*cc, "-O2", "-fPIC", "-shared", "-pthread", "-Wall", "-Werror=implicit-function-declaration",
           f"-I{include}", str(root / SOURCE), "-o", str(target)]
    # With SQLite's headers the module also reads the base on a thread of its own (libsqlite3-dev).
    done = subprocess.run([*cmd, "-DHAVE_SQLITE", "-lsqlite3"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print("syncagent: the native module is built without its base reader (no sqlite3.h: "
              "Debian: apt-get install libsqlite3-dev)", file=sys.stderr)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return _skip(f"the C compiler failed:\n{done.stderr.strip()}")
    return target


def compile_stage(root: Path) -> Path | None:
    """Compile the staging module beside its source (it needs nothing beyond libc); its path, or None."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = root / STAGE_SOURCE.with_name("_stage" + suffix)
    include = sysconfig.get_paths()["include"]
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not Path(include, "Python.h").exists() or not cc or shutil.which(cc[0]) is None:
        return None   # compile_native has said why
    cmd = [*cc, "-O2", "-fPIC", "-shared", "-pthread", "-Wall", "-Werror=implicit-function-declaration",
           f"-I{include}", str(root / STAGE_SOURCE), "-o", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return _skip(f"the C compiler failed on {STAGE_SOURCE.name}:\n{done.stderr.strip()}")
    return target


def _skip(why: str) -> None:
    print(f"syncagent: the native speed-up was not built ({why}); the pure-Python path is used",
          file=sys.stderr)
    return None


class NativeBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        built = [path for path in (compile_native(root), compile_stage(root)) if path is not None]
        if not built:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":   # an editable install imports them from the source tree
            for path in built:
                build_data["force_include"][str(path)] = str(path.relative_to(self.root))
