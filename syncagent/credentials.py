"""Where a remote's option values come from, strongest first:

    1. the command line (`syncagent auth NAME key=value`)
    2. SYNCAGENT_REMOTE_<NAME>_<FIELD> (any field, secrets included)
    3. the config file
    4. the type's conventional variables (SMARTFILE_API_KEY, MEGA_EMAIL, ...)
    5. ~/.netrc (machine: the host of the remote's `url`, else the type's host)
    6. the keyring (service `syncagent`, user `NAME/FIELD`), when installed
    7. the credentials file (mode 0600, refused when others can read it)

`syncagent auth` stores a login's secrets in the keyring when one works,
else in the credentials file; rotated secrets are written back to where
they came from, atomically. Values are never logged, printed or put in an
error message: errors name the *field* and where it was looked for.
"""

from __future__ import annotations

import contextlib
import fcntl
import netrc
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from syncagent.errors import ConfigError

if TYPE_CHECKING:
    from syncagent.providers.registry import ProviderType

KEYRING_SERVICE = "syncagent"
STORED = ("keyring", "file")   # origins a rotated secret can be written back to


def _warn(event: str, **fields: Any) -> None:
    from syncagent.log import get_logger

    get_logger().warning(event, **fields)


def default_credentials_file() -> Path:
    env = os.environ.get("SYNCAGENT_CREDENTIALS")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("syncagent")) / "credentials.yaml"


@dataclass
class Resolved:
    values: dict[str, Any]
    origins: dict[str, str]     # field -> "given" | "env" | "config" | "netrc" | "keyring" | "file"


@dataclass
class Resolver:
    """Looks option values up; each source is injectable for tests.

    `keyring`: an object with get_password/set_password (the keyring
    module's API); None looks for the installed `keyring` package."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    netrc_file: Path | None = None
    credentials_file: Path | None = None
    use_keyring: bool = True
    keyring: Any = None

    @property
    def file(self) -> Path:
        return self.credentials_file or default_credentials_file()

    def resolve(self, remote: str, ptype: ProviderType, options: Mapping[str, Any],
                given: Mapping[str, Any] | None = None) -> Resolved:
        """Every field of the type that some source holds, with where it came from."""
        stored = read_credentials_file(self.file).get(remote)
        stored = stored if isinstance(stored, dict) else {}
        out = Resolved({}, {})
        for name in ptype.fields:
            for origin, value in self._candidates(remote, ptype, options, given or {}, stored, name):
                if value not in (None, ""):
                    out.values[name], out.origins[name] = value, origin
                    break
        return out

    def _candidates(self, remote: str, ptype: ProviderType, options: Mapping[str, Any], given: Mapping[str, Any],
                    stored: Mapping[str, Any], name: str) -> Iterator[tuple[str, Any]]:
        """(origin, value) in order of strength; lazily, so a found value stops the search."""
        variables = ptype.env_names(remote, name)
        yield "given", given.get(name)
        yield "env", self.environ.get(variables[0])
        yield "config", options.get(name)
        for var in variables[1:]:
            yield "env", self.environ.get(var)
        yield "netrc", self._from_netrc(ptype, options, name)
        if name in ptype.secrets:
            yield "keyring", self._from_keyring(remote, name)
        value = stored.get(name)
        yield "file", str(value) if value not in (None, "") else None

    def _from_netrc(self, ptype: ProviderType, options: Mapping[str, Any], name: str) -> str | None:
        spec = ptype.netrc
        which = spec.field_of(name) if spec is not None else None
        if spec is None or which is None:
            return None
        path = Path(str(options.get("netrc_file") or self.netrc_file or Path.home() / ".netrc"))
        machine = urlparse(str(options.get("url") or "")).netloc or spec.host
        try:
            entry = netrc.netrc(str(path)).authenticators(machine)
        except (FileNotFoundError, netrc.NetrcParseError, OSError, UnicodeDecodeError):
            return None
        if entry is None:
            return None
        login, _account, password = entry
        return login if which == "login" else password

    # ---- the keyring ---------------------------------------------------------------
    def _backend(self) -> Any:
        """The keyring to use, or None (not installed, or only its fail/null backend)."""
        if not self.use_keyring:
            return None
        if self.keyring is not None:
            return self.keyring
        try:
            import keyring
            from keyring.backends import fail
        except ImportError:
            return None
        try:
            backend = keyring.get_keyring()
        except Exception:
            return None
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return None
        return keyring

    def _from_keyring(self, remote: str, name: str) -> str | None:
        backend = self._backend()
        if backend is None:
            return None
        try:
            value = backend.get_password(KEYRING_SERVICE, f"{remote}/{name}")
        except Exception:   # a locked or broken keyring is a missing source, not a crash
            return None
        return str(value) if value else None

    def _to_keyring(self, remote: str, values: Mapping[str, str]) -> bool:
        backend = self._backend()
        if backend is None:
            return False
        try:
            for name, value in values.items():
                backend.set_password(KEYRING_SERVICE, f"{remote}/{name}", value)
        except Exception as exc:
            _warn("keyring refused the secrets; using the credentials file", error=type(exc).__name__)
            return False
        return True

    # ---- writing -------------------------------------------------------------------
    def store(self, remote: str, values: Mapping[str, str]) -> str:
        """Keep a login's secrets: the keyring when one works, else the 0600 file.
        Returns where they went, for the user."""
        if self._to_keyring(remote, values):
            update_credentials(remote, {}, self.file, drop=tuple(values))   # an older file copy would be stale
            return "the keyring"
        update_credentials(remote, values, self.file)
        return f"{self.file} (mode 0600)"

    def save(self, remote: str, ptype: ProviderType, values: Mapping[str, str], origins: Mapping[str, str]) -> None:
        """Write rotated secrets back where each came from (a new one: where `store` puts it)."""
        by_place: dict[str, dict[str, str]] = {}
        for name, value in values.items():
            origin = origins.get(name, "")
            if origin and origin not in STORED:
                _warn("a rotated secret came from a place syncagent does not write; saving it "
                            "in the credentials store, where it is shadowed until that value goes",
                            remote=remote, field=name, origin=origin)
            by_place.setdefault(origin if origin in STORED else "new", {})[name] = value
        if "keyring" in by_place and not self._to_keyring(remote, by_place.pop("keyring")):
            by_place.setdefault("file", {}).update(values)
        if "new" in by_place:
            self.store(remote, by_place.pop("new"))
        if "file" in by_place:
            update_credentials(remote, by_place["file"], self.file)

    def forget(self, remote: str, fields: tuple[str, ...]) -> None:
        """Drop a remote's stored secrets (config remove)."""
        backend = self._backend()
        if backend is not None:
            for name in fields:
                with contextlib.suppress(Exception):
                    backend.delete_password(KEYRING_SERVICE, f"{remote}/{name}")
        update_credentials(remote, {}, self.file, drop_remote=True)


def read_credentials_file(path: Path) -> dict[str, Any]:
    """The credentials file, refused when others can read it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"refusing to read credentials readable by others; run: chmod 600 {path}",
                          file=str(path))
    import yaml

    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError("not valid YAML", file=str(path), line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of remote name -> fields", file=str(path), line=1)
    return data


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time (the agent rotating a token while `auth` runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_credentials(remote: str, values: Mapping[str, str], path: Path | None = None, *,
                       drop: tuple[str, ...] = (), drop_remote: bool = False) -> Path:
    """Merge `values` into `remote`'s entry of the credentials file (created
    0600), written atomically: temp file, fsync, rename."""
    import yaml

    path = path or default_credentials_file()
    if not values and not path.exists():
        return path
    with _locked(path):
        data = read_credentials_file(path)
        old = data.get(remote)
        entry = {k: v for k, v in {**(old if isinstance(old, dict) else {}), **values}.items() if k not in drop}
        if drop_remote or not entry:
            data.pop(remote, None)
        else:
            data[remote] = entry
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return path


def store_credentials(remote: str, values: Mapping[str, str], path: Path | None = None) -> Path:
    """Replace `remote`'s entry of the credentials file with `values`."""
    update_credentials(remote, {}, path, drop_remote=True)
    return update_credentials(remote, values, path)
