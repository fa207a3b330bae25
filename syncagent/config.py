"""The config file: named remotes and the pairs the agent keeps in sync.

YAML is composed into nodes first so every value keeps its line and column;
pydantic validates; each validation error becomes a ConfigError naming
file:line:column and what was expected (exit code 78).

    remotes:
      sf: {type: smartfile, url: https://app.smartfile.com/, root: /backup}
    pairs:
      - local: ~/Documents
        remote: sf:Documents
        mode: two-way          # two-way | upload | download
        poll_interval: 30      # seconds between remote checks
        exclude: ["*.tmp"]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from syncagent.errors import ConfigError

SECRET_WORDS = ("password", "secret", "token", "key")
PROVIDER_TYPES = ("local", "smartfile", "mega", "metadisk", "onedrive")


class RemoteConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["local", "smartfile", "mega", "metadisk", "onedrive"]

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


def default_path() -> Path:
    env = os.environ.get("SYNCAGENT_CONFIG")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("syncagent")) / "config.yaml"


def load(path: str | os.PathLike[str] | None = None, *, missing_ok: bool = True) -> Config:
    """Read and validate the config file; an absent file is an empty config."""
    file = Path(path) if path is not None else default_path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok and path is None:
            return Config()
        raise ConfigError("no such config file", file=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(file)) from None
    return parse(text, str(file))


def parse(text: str, filename: str = "<config>") -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"not valid YAML: {exc.problem}", file=filename,
                          line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with `remotes:` and `pairs:`", file=filename, line=1, column=1)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line, column = _position(node, loc, prefer_key=err["type"] == "extra_forbidden")
        where = _dotted(loc)
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or _is_secret(where) or err["type"] == "extra_forbidden" \
            else f", got {got!r}"
        raise ConfigError(f"{where}: {_expected(err)}{shown}", file=filename, line=line, column=column) from None


def _expected(err: Any) -> str:
    kind, msg = str(err["type"]), str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        return "expected " + msg.replace("Input should be ", "").replace("'", "")
    return "expected " + msg[0].lower() + msg[1:]


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _position(node: Any, loc: tuple[Any, ...], prefer_key: bool = False) -> tuple[int | None, int | None]:
    """Line and column of the deepest node `loc` reaches (the key for an unknown key)."""
    best = node
    key_node = None
    for part in loc:
        if isinstance(best, yaml.MappingNode):
            match = next(((k, v) for k, v in best.value if k.value == str(part)), None)
            if match is None:
                break
            key_node, best = match
        elif isinstance(best, yaml.SequenceNode) and isinstance(part, int) and part < len(best.value):
            key_node, best = None, best.value[part]
        else:
            break
    use_key = key_node is not None and (prefer_key or not isinstance(best, yaml.ScalarNode))
    target = key_node if use_key else best
    if target is None or target.start_mark is None:
        return None, None
    return target.start_mark.line + 1, target.start_mark.column + 1


def _is_secret(name: str) -> bool:
    last = name.rsplit(".", 1)[-1].lower()
    return any(word in last for word in SECRET_WORDS)


def masked(data: Any, key: str = "") -> Any:
    """A copy for display: every secret-looking value replaced by ***."""
    if isinstance(data, dict):
        return {k: masked(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key) for v in data]
    return "***" if data not in (None, "") and _is_secret(key) else data


def raw(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=str(path), line=1, column=1)
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write atomically (comments in the file are not kept)."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    parse(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def add_remote(path: Path, name: str, options: dict[str, Any]) -> None:
    data = raw(path)
    data.setdefault("remotes", {})[name] = options
    save(path, data)


def remove_remote(path: Path, name: str) -> bool:
    data = raw(path)
    remotes = data.get("remotes") or {}
    if name not in remotes:
        return False
    del remotes[name]
    data["remotes"] = remotes
    save(path, data)
    return True
