"""Build a provider from a config entry: `type` picks the class, the rest
are its options; secrets come from syncagent.credentials."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from syncagent import errors
from syncagent.providers.base import Provider


def _join(root: str, sub: str) -> str:
    sub = sub.strip("/")
    return posixpath.join(root or "/", sub) if sub else (root or "/")


def build(name: str, kind: str, options: Mapping[str, Any], subpath: str = "",
          secrets: Mapping[str, str] | None = None) -> Provider:
    """The provider for remote `name`, rooted at its `root` option plus `subpath`."""
    if kind == "local":
        from syncagent.providers.local import LocalProvider

        root = str(options.get("root") or options.get("path") or "")
        if not root:
            raise errors.ConfigError(f"remote {name!r} (type local) needs a `root:` folder")
        return LocalProvider(_join(root, subpath))
    if kind == "smartfile":
        from syncagent.credentials import Resolver, default_credentials_file, read_credentials_file
        from syncagent.providers.smartfile import SmartFileProvider

        stored = read_credentials_file(default_credentials_file()).get(name) or {}
        oauth = {k: str(v) for k, v in {**stored, **options, **(secrets or {})}.items()
                 if k in ("client_token", "client_secret", "access_token", "access_secret") and v}
        found = {} if len(oauth) == 4 else Resolver().resolve(name, kind, options, secrets)
        merged = {**{k: str(v) for k, v in options.items()}, **oauth, **found,
                  "root": _join(str(options.get("root") or options.get("path") or "/"), subpath)}
        return SmartFileProvider.from_options(merged)
    raise errors.Unsupported(f"remote {name!r}: the {kind} provider is not available in this version yet")
