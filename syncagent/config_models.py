"""The config file's schema (pydantic): remotes by name, the pairs, the
state dir and log format. Each remote's own keys are checked by its
type's model (syncagent.config._check_remotes).

Only syncagent.config imports this module, and only when a config file is
read: pydantic costs ~0.1-0.2 s to import, and a sync between two folders
never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RemoteConfig(BaseModel):
    """`type:` names a registered provider type; the other keys are that
    type's options, validated by its own model (see `_check_remotes`)."""

    model_config = ConfigDict(extra="allow")

    type: str

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        from syncagent.providers.registry import KINDS

        if value not in KINDS:
            raise ValueError(f"expected one of: {', '.join(sorted(KINDS))}")
        return value

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in (self.model_extra or {}).items()}


class PairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    local: str
    remote: str
    mode: Literal["two-way", "upload", "download"] = "two-way"
    poll_interval: float = Field(30.0, ge=0.5)
    full_rescan_interval: float = Field(3600.0, ge=10)
    exclude: list[str] = Field(default_factory=list)
    max_delete: float = Field(50.0, ge=0, le=100)
    delta: Literal["auto", "always", "never"] = "auto"

    @field_validator("local")
    @classmethod
    def _expand(cls, value: str) -> str:
        return os.path.abspath(os.path.expanduser(value))

    def display_name(self) -> str:
        return self.name or Path(self.local).name or self.local


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remotes: dict[str, RemoteConfig] = Field(default_factory=dict)
    pairs: list[PairConfig] = Field(default_factory=list)
    state_dir: str | None = None
    log_format: Literal["console", "json"] | None = None
