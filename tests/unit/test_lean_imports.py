"""The modules every `syncagent sync` imports keep the standard library's
costlier modules out of their import time: typing (~4 ms), dataclasses with
inspect (~14 ms), logging with traceback (~8 ms), socket, json... They may use
them inside the function that needs them, or for the type checker only
(`if TYPE_CHECKING:`). tests/unit/cli/test_startup.py checks a whole no-op
run's imports; this checks each module, so a module stays lean while another
one on the path still imports what it removed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import syncagent

PACKAGE = Path(syncagent.__file__).parent
LEAN = ("paths", "log", "roots", "errors", "dataclass_lite", "providers/base", "engine/records", "engine/report",
        "engine/plan", "engine/merge", "engine/scan", "engine/views", "engine/feed", "engine/spill",
        "engine/safedirs", "engine/sync", "hashing", "fileio", "engine/localside", "engine/journal", "engine/state",
        "engine/identity", "engine/execute", "engine/deltapath")
COSTLY = ("typing", "dataclasses", "inspect", "logging", "traceback", "socket", "json", "tempfile", "shutil",
          "concurrent", "uuid", "platform", "ctypes", "hashlib")


def imported_at_import_time(tree: ast.Module) -> set[str]:
    """Top-level module names the module's body imports, leaving out `if TYPE_CHECKING:` blocks."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            nodes: list[ast.stmt] = node.orelse
        else:
            nodes = [node]
        for stmt in nodes:
            for sub in ast.walk(stmt):   # (function bodies are gone: nested_functions_removed)
                if isinstance(sub, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in sub.names}
                elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                    found.add(sub.module.split(".")[0])
    return found


def nested_functions_removed(tree: ast.Module) -> ast.Module:
    """The tree without the bodies of functions (an import there runs when the function does)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.body = [ast.Pass()]
    return tree


@pytest.mark.parametrize("name", LEAN)
def test_a_module_on_the_sync_path_imports_nothing_costly_when_imported(name: str) -> None:
    tree = nested_functions_removed(ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8")))
    assert sorted(imported_at_import_time(tree) & set(COSTLY)) == []


def test_the_check_sees_imports_that_run_at_import_time() -> None:
    source = ("import json\nTYPE_CHECKING = False\nif TYPE_CHECKING:\n    import typing\nelse:\n    import socket\n"
              "def f() -> None:\n    import logging\nclass C:\n    import uuid\n")
    assert imported_at_import_time(nested_functions_removed(ast.parse(source))) == {"json", "socket", "uuid"}
