"""The config file: named remotes and the pairs the agent keeps in sync.

YAML is composed into nodes first so every value keeps its line and column;
pydantic validates (the schema: syncagent/config_models.py); each validation
error becomes a ConfigError naming file:line:column and what was expected
(exit code 78).

PyYAML and pydantic are imported only when a config file is read (together
~0.15-0.3 s of a start): a sync between two folders never pays for them,
and `remote_names()` answers "is this a configured remote?" without pydantic.

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
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncagent.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from syncagent.config_models import Config

SECRET_WORDS = ("password", "secret", "token", "key")
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<secret>[^/@\s]+)(?=@)")
_URL_SECRET_PARAM = re.compile(r"(?P<head>[?&][^=&#\s]*(?:pass|secret|token|key|sig)[^=&#\s]*=)(?P<secret>[^&#\s]+)",
                               re.IGNORECASE)


def default_path() -> Path:
    env = os.environ.get("SYNCAGENT_CONFIG")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("syncagent")) / "config.yaml"


def load(path: str | os.PathLike[str] | None = None, *, missing_ok: bool = True) -> Config:
    """Read and validate the config file; an absent file is an empty config
    (with missing_ok=False: a ConfigError, for a file the user insists on)."""
    file = Path(path) if path is not None else default_path()
    try:
        text = _read_text(file)
    except FileNotFoundError:
        if missing_ok:
            from syncagent.config_models import Config

            return Config()
        raise ConfigError("no such config file", file=str(file)) from None
    return parse(text, str(file))


def _read_text(file: Path) -> str:
    """The file as UTF-8 text; FileNotFoundError passes, anything else is a ConfigError naming it."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ConfigError("is a folder, not a config file", file=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(file)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}); save it as UTF-8",
                          file=str(file), line=line) from None


def parse(text: str, filename: str = "<config>") -> Config:
    from pydantic import ValidationError

    from syncagent.config_models import Config

    node, data = _compose(text, filename)
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with `remotes:` and `pairs:`", file=filename, line=1, column=1)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise _located(exc, node, filename) from None
    _check_remotes(cfg, node, filename)
    return cfg


def _compose(text: str, filename: str) -> tuple[Any, Any]:
    """The YAML's node tree (lines and columns, for errors) and its data, from one parse."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"not valid YAML: {exc.problem}", file=filename,
                          line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    finally:
        loader.dispose()


def remote_names(path: str | os.PathLike[str] | None = None) -> set[str]:
    """The names under `remotes:` of the config file, read without validating it
    (no pydantic): empty when there is no file, or it is not YAML, or not a mapping."""
    file = Path(path) if path is not None else default_path()
    try:
        text = _read_text(file)
    except (FileNotFoundError, ConfigError):
        return set()
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return set()
    remotes = data.get("remotes") if isinstance(data, dict) else None
    return {str(name) for name in remotes} if isinstance(remotes, dict) else set()


def _check_remotes(cfg: Config, node: Any, filename: str) -> None:
    """Each remote's keys against its type's own model, positions as for the rest."""
    from pydantic import ValidationError

    from syncagent.providers.registry import get

    for name, remote in cfg.remotes.items():
        ptype = get(remote.type)
        try:
            ptype.validate(remote.options())
        except ValidationError as exc:
            raise _located(exc, node, filename, ("remotes", name), ptype.secrets) from None


def _located(exc: ValidationError, node: Any, filename: str, prefix: tuple[Any, ...] = (),
             secrets: tuple[str, ...] = ()) -> ConfigError:
    """The first validation error as file:line:column: where: what was expected."""
    err = exc.errors()[0]
    loc = (*prefix, *err["loc"])
    line, column = _position(node, loc, prefer_key=err["type"] == "extra_forbidden")
    where = _dotted(loc)
    got = err.get("input")
    hidden = _is_secret(where) or str(loc[-1]) in secrets or err["type"] == "extra_forbidden"
    shown = "" if isinstance(got, dict | list) or hidden else f", got {got!r}"
    return ConfigError(f"{where}: {_expected(err)}{shown}", file=filename, line=line, column=column)


def _expected(err: Any) -> str:
    kind, msg = str(err["type"]), str(err["msg"])
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "value_error" and err.get("ctx", {}).get("error") is not None:
        return str(err["ctx"]["error"])
    if kind == "literal_error":
        return "expected " + msg.replace("Input should be ", "").replace("'", "")
    msg = msg.removeprefix("Input should be ")
    return "expected " + msg[0].lower() + msg[1:]


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _position(node: Any, loc: tuple[Any, ...], prefer_key: bool = False) -> tuple[int | None, int | None]:
    """Line and column of the deepest node `loc` reaches (the key for an unknown key)."""
    import yaml

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


def masked(data: Any, key: str = "", secrets: tuple[str, ...] = ()) -> Any:
    """A copy for display: secret values (a type's declared secrets, any
    secret-looking key, a password or token inside a URL) replaced by ***."""
    if isinstance(data, dict):
        inner = secrets + _declared_secrets(data.get("type"))
        return {k: masked(v, str(k), inner) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key, secrets) for v in data]
    if data in (None, ""):
        return data
    if _is_secret(key) or key in secrets:
        return "***"
    return mask_url(data) if isinstance(data, str) else data


def mask_url(text: str) -> str:
    """`https://user:pw@host/?token=t` -> `https://user:***@host/?token=***`."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)
    return _URL_SECRET_PARAM.sub(lambda m: m.group("head") + "***", text)


def _declared_secrets(kind: Any) -> tuple[str, ...]:
    from syncagent.providers.registry import find_type

    found = find_type(kind) if isinstance(kind, str) else None
    return found.secrets if found is not None else ()


def raw(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(_read_text(path)) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError:
        raise ConfigError("not valid YAML (run `syncagent config show` for where)", file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=str(path), line=1, column=1)
    return data


def save(path: Path, data: dict[str, Any]) -> None:
    """Validate, then write atomically (comments in the file are not kept)."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    parse(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def add_remote(path: Path, name: str, options: dict[str, Any]) -> None:
    """Add or replace remote `name` ({"type": ..., option: value}); validated first."""
    check_new_remote(name, options)
    data = raw(path)
    remotes = data.get("remotes")
    if not isinstance(remotes, dict):
        remotes = data["remotes"] = {}
    remotes[name] = options
    save(path, data)


def check_new_remote(name: str, options: dict[str, Any]) -> None:
    """What `config add` refuses (exit 2): a bad name, an unknown type or key,
    a secret (it goes to `syncagent auth`), a value the type's model rejects."""
    from pydantic import ValidationError

    from syncagent.errors import UsageError
    from syncagent.providers.registry import KINDS, find_type

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name == "local":
        raise UsageError(f"bad remote name {name!r}: letters, digits, '_', '.', '-'; not `local`")
    kind = str(options.get("type") or "")
    ptype = find_type(kind)
    if ptype is None:
        raise UsageError(f"unknown type {kind!r}; known: {', '.join(sorted(KINDS))}")
    keys = [k for k in options if k != "type"]
    plain = [f for f in ptype.fields if f not in ptype.secrets]
    for key in keys:
        if key in ptype.secrets:
            raise UsageError(f"`{key}` is a secret and is not kept in the config file: run "
                             f"`syncagent auth {name}` (it asks), or `syncagent auth {name} {key}=...`")
        if key not in ptype.fields:
            raise UsageError(f"unknown key {key!r} for type {kind}; its keys: {', '.join(plain) or 'none'}"
                             + (f" (secrets, through `syncagent auth {name}`: {', '.join(ptype.secrets)})"
                                if ptype.secrets else ""))
    try:
        ptype.validate({k: options[k] for k in keys})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UsageError(f"{kind} remote {name!r}: {where}: {_expected(err)}") from None


def remove_remote(path: Path, name: str) -> bool:
    data = raw(path)
    remotes = data.get("remotes") or {}
    if name not in remotes:
        return False
    del remotes[name]
    data["remotes"] = remotes
    save(path, data)
    return True
