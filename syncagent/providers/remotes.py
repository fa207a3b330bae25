"""Turn a REMOTE argument into a provider: a folder path, `local:/path`, or
`NAME:path` for a remote defined in the config file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from syncagent import errors
from syncagent.providers.base import Provider

_NAMED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$")


def parse_remote(spec: str) -> tuple[str | None, str]:
    """(remote name or None for a plain folder, path)."""
    if spec.startswith(("/", ".", "~")):
        return None, spec
    m = _NAMED.match(spec)
    if m is None:
        return None, spec
    name, path = m.group(1), m.group(2)
    if name == "local":
        return None, path
    return name, path


def open_remote(spec: str, config_path: str | None = None) -> tuple[Provider, str]:
    """The provider for `spec` and the canonical spelling that keys its state."""
    name, path = parse_remote(spec)
    if name is None:
        from syncagent.providers.folder import LocalProvider

        folder = Path(os.path.abspath(os.path.expanduser(path)))
        return LocalProvider(folder), f"local:{folder}"
    return open_named(name, path, config_path)


def open_named(name: str, path: str, config_path: str | None) -> tuple[Provider, str]:
    """A remote defined in the config file (`NAME:path`)."""
    from syncagent import config
    from syncagent.providers import registry

    cfg = config.load(config_path)
    remote = cfg.remotes.get(name)
    if remote is None:
        known = ", ".join(sorted(cfg.remotes)) or "none defined"
        raise errors.UsageError(
            f"unknown remote {name!r} (configured: {known}); add it with `syncagent config add {name} TYPE ...`")
    sub = registry.clean_subpath(name, path)
    return registry.open_remote(name, remote.type, remote.options(), sub), f"{name}:{sub}"


def refuse_bare_remote_name(spec: str, config_path: str | None) -> None:
    """`sync docs sf` where `sf` is a configured remote: the colon was
    forgotten (a folder ./sf would be made and filled). Refuse, suggest `sf:`."""
    if parse_remote(spec)[0] is not None or "/" in spec or spec.startswith(("~", ".")):
        return
    from syncagent import config

    if spec not in config.remote_names(config_path):   # no config file, or no remote of that name: no pydantic
        return
    try:
        names = config.load(config_path).remotes
    except errors.ConfigError:
        return   # a broken config file is reported where a named remote is opened
    if spec in names:
        raise errors.UsageError(f"{spec!r} is a configured remote: write `{spec}:` for its root "
                                f"(or `./{spec}` for a folder of that name here)")
