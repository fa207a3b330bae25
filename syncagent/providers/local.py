"""`type: local`: a folder on this machine as a named remote. The provider
itself is providers/folder.py (a plain folder path needs no registration)."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from syncagent.engine.localside import entry_rev, to_remote
from syncagent.providers.folder import STALE_TEMP_SECONDS, LocalProvider
from syncagent.providers.registry import ProviderType, RemoteSettings

__all__ = ["PROVIDER", "STALE_TEMP_SECONDS", "LocalOptions", "LocalProvider", "entry_rev", "to_remote"]


class LocalOptions(BaseModel):
    """`type: local`: a folder on this machine (a NAS mount, a second disk)."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(min_length=1, description="the folder (~ expands)")


def open_local(settings: RemoteSettings) -> LocalProvider:
    base = os.path.abspath(os.path.expanduser(str(settings.options["root"])))
    sub = settings.subpath.strip("/")
    return LocalProvider(os.path.join(base, sub) if sub else base)


PROVIDER = ProviderType(
    name="local",
    summary="a folder on this machine (a NAS mount, another disk)",
    options=LocalOptions,
    open=open_local,
)
