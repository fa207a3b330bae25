"""Path rules: normalization, validation of names from the other side,
the agent's temporary names, conflict names and ignore patterns."""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from collections.abc import Callable, Iterable

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing and pathlib are not imported at run time: every command imports this module)
    from pathlib import Path

TEMP_PREFIX = ".syncagent-"
TEMP_SUFFIX = ".tmp"
IGNORE_FILE = ".syncignore"


# Patterns compiled at their first use (~0.25 ms each), not at import: a no-op sync never uses them.
@functools.cache
def _conflict_re() -> re.Pattern[str]:
    return re.compile(r" \(conflict [^)]*\)")


@functools.cache
def _bad_path() -> re.Pattern[str]:
    return re.compile(r"(?:^|/)\.{1,2}(?:/|$)|[\\\x00]|^/|//|/$")


_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {127: "\\x7f", 10: "\\n", 13: "\\r", 9: "\\t"}


def printable(path: str) -> str:
    """A path as one safe line of text: bytes that are not UTF-8 (kept by
    the OS layer as surrogates) as \\xNN, control characters escaped, so a
    name can neither break the terminal's encoding nor split a log line."""
    if path.isascii() and path.isprintable():
        return path
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.translate(_CONTROL)


def is_utf8(name: str) -> bool:
    """False for a name the OS gave with bytes that are not UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def nfc(name: str) -> str:
    """NFC form of a name; ASCII is already NFC and skips the table lookup."""
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def temp_name(final_name: str, token: str) -> str:
    """The name of the temp file written beside `final_name` while it transfers."""
    return f"{TEMP_PREFIX}{token}{TEMP_SUFFIX}"


def is_valid_name(name: str) -> bool:
    """Whether one path component from a remote may touch the disk."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and "\x00" not in name


def validate_relpath(path: str) -> bool:
    """Whether a relative '/'-path from a remote stays inside the root."""
    return bool(path) and _bad_path().search(path) is None


def parent(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i >= 0 else ""


def basename(path: str) -> str:
    return path[path.rfind("/") + 1:]


def join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def is_under(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def hostname() -> str:
    import socket  # (~4 ms with selectors and array: only a conflict needs the host name)

    return socket.gethostname().split(".")[0] or "host"


def conflict_name(path: str, taken: Callable[[str], bool], *, now: float | None = None,
                  host: str | None = None) -> str:
    """`dir/name (conflict HOST YYYY-MM-DD HHMMSS).ext`, with ` 2`, ` 3`... if taken.

    The extension is kept so the copy still opens with the same program; a
    leading-dot name (".bashrc") has no extension.
    """
    folder, name = parent(path), basename(path)
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.localtime(now))
    tag = f"conflict {host or hostname()} {stamp}"
    candidate = join(folder, f"{stem} ({tag}){ext}")
    n = 2
    while taken(candidate):
        candidate = join(folder, f"{stem} ({tag} {n}){ext}")
        n += 1
    return candidate


def is_conflict_copy(path: str) -> bool:
    return bool(_conflict_re().search(basename(path)))


class IgnoreRules:
    """gitignore-style patterns from `.syncignore` plus `--exclude`.

    pathspec is imported only when there is a pattern: a sync with none must
    not pay for it.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        lines = [p for p in patterns if p.strip() and not p.lstrip().startswith("#")]
        self.patterns = lines
        self._spec = None
        if lines:
            import pathspec

            # GitIgnoreSpec: git's own reading (a file re-included under an
            # excluded folder stays excluded); the "gitwildmatch" factory is deprecated
            self._spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def __bool__(self) -> bool:
        return self._spec is not None

    def matches(self, path: str, is_dir: bool) -> bool:
        if self._spec is None:
            return False
        return bool(self._spec.match_file(path + "/" if is_dir else path))

    @classmethod
    def load(cls, root: Path, extra: Iterable[str] = ()) -> IgnoreRules:
        lines = list(extra)
        try:
            text = (root / IGNORE_FILE).read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            text = ""
        return cls([*lines, *text.splitlines()])
