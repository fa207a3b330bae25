"""Overlapping roots are a usage error (exit 2), found before anything is
created: the same folder twice, one inside the other, one folder reached
through a link under two names, a state dir inside a root. Syncing a
folder into itself adds a level on every run until the disk is full.

Folders are compared after resolving links (a path that does not exist yet
is resolved as far as it exists) and, on a filesystem that ignores case,
case-insensitively.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from syncagent.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from typing import Final


class Root:
    """One folder of a pair. (Not a dataclass: it would compile its methods at every sync's start.)"""

    __slots__ = ("path", "role")

    def __init__(self, role: str, path: Path) -> None:
        self.role: Final = role    # "local folder", "remote folder", "state dir": how the message names it
        self.path: Final = path


def real(path: str | os.PathLike[str]) -> Path:
    """The folder `path` names, links resolved (non-strict: missing tails kept as written)."""
    return Path(os.path.realpath(os.path.abspath(os.path.expanduser(os.fspath(path)))))


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _same_file(a: Path, b: Path) -> bool:
    a_stat, b_stat = _stat(a), _stat(b)
    return a_stat is not None and b_stat is not None and os.path.samestat(a_stat, b_stat)


def _contains(outer: Path, inner: Path) -> bool:
    """`inner` is `outer` or lies below it (by resolved path, or by identity for an alias)."""
    if inner == outer or outer in inner.parents:
        return True
    # a bind mount or a case-insensitive filesystem: the same folder under another spelling
    # (one stat a folder: this runs at the start of every sync)
    outer_stat = _stat(outer)
    if outer_stat is None:
        return False
    return any(st is not None and os.path.samestat(outer_stat, st) for st in map(_stat, (inner, *inner.parents)))


def check(roots: Iterable[Root], state_dir: str | os.PathLike[str] | None = None) -> None:
    """Raise UsageError when two roots overlap or the state dir lies inside one."""
    resolved = [Root(r.role, real(r.path)) for r in roots]
    for i, a in enumerate(resolved):
        for b in resolved[i + 1:]:
            if _contains(a.path, b.path) or _contains(b.path, a.path):
                raise UsageError(_overlap(a, b))
    if state_dir is not None:
        state = real(state_dir)
        for r in resolved:
            if _contains(r.path, state):
                raise UsageError(f"the state dir {state} is inside the {r.role} {r.path}: the agent would sync "
                                 "its own database; use --state-dir elsewhere")


def _overlap(a: Root, b: Root) -> str:
    if a.path == b.path or _same_file(a.path, b.path):
        what = "are the same folder"
    elif _contains(a.path, b.path):
        what = f"overlap: the {b.role} is inside the {a.role}"
    else:
        what = f"overlap: the {a.role} is inside the {b.role}"
    return (f"the {a.role} {a.path} and the {b.role} {b.path} {what}; a folder synced into itself grows "
            "on every run. Choose folders apart from each other")


def check_pair(local: str | os.PathLike[str], remote_folder: str | None,
               state_dir: str | os.PathLike[str] | None) -> None:
    """One pair: its local root, the folder its remote stores into when that
    is a folder on this machine (Provider.local_folder()), and the state dir."""
    roots = [Root("local folder", Path(local))]
    if remote_folder is not None:
        roots.append(Root("remote folder", Path(remote_folder)))
    check(roots, state_dir)


def check_agent_pairs(pairs: Iterable[tuple[str | os.PathLike[str], str]], state_dir: str | os.PathLike[str],
                      config_path: str | None) -> None:
    """`run`: every pair (given on the command line or from the config file)
    checked as `sync` checks its one, before the agent starts. A remote that
    cannot be opened now (offline, expired login) is the agent's to report
    and retry; only a usage or config error stops the start."""
    from syncagent.errors import ProviderError
    from syncagent.providers.remotes import open_remote, refuse_bare_remote_name

    for local, spec in pairs:
        refuse_bare_remote_name(spec, config_path)
        try:
            provider, _ = open_remote(spec, config_path)
        except ProviderError:
            folder = None
        else:
            with provider:
                folder = provider.local_folder()
        check_pair(local, folder, state_dir)
