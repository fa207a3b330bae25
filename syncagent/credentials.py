"""Where a remote's secrets come from, in order: the command line, the
environment, ~/.netrc, the keyring, and a credentials file of mode 0600.

Values are never logged, printed or put in an error message: errors name
the missing *field* and where it was looked for.
"""

from __future__ import annotations

import netrc
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from syncagent.errors import AuthError, ConfigError

KEYRING_SERVICE = "syncagent"


def _url_host(default: str) -> Callable[[Mapping[str, Any]], str]:
    def host(options: Mapping[str, Any]) -> str:
        url = str(options.get("url") or "")
        return urlparse(url).netloc or default

    return host


@dataclass(frozen=True)
class CredentialSpec:
    """Which secrets a provider needs and their conventional places."""

    fields: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    netrc_machine: Callable[[Mapping[str, Any]], str] | None = None
    netrc_fields: Mapping[str, str] = field(default_factory=dict)   # field -> "login" | "password"


SPECS: dict[str, CredentialSpec] = {
    "smartfile": CredentialSpec(
        fields=("key", "password"),
        env={"key": "SMARTFILE_API_KEY", "password": "SMARTFILE_API_PASSWORD"},
        netrc_machine=_url_host("app.smartfile.com"),
        netrc_fields={"key": "login", "password": "password"},
    ),
    "mega": CredentialSpec(fields=("email", "password"),
                           env={"email": "MEGA_EMAIL", "password": "MEGA_PASSWORD"},
                           netrc_machine=_url_host("mega.nz"),
                           netrc_fields={"email": "login", "password": "password"}),
    "metadisk": CredentialSpec(fields=("email", "password"),
                               env={"email": "METADISK_EMAIL", "password": "METADISK_PASSWORD"},
                               netrc_machine=_url_host("api.metadisk.org"),
                               netrc_fields={"email": "login", "password": "password"}),
    "onedrive": CredentialSpec(fields=("refresh_token",), env={"refresh_token": "ONEDRIVE_REFRESH_TOKEN"}),
    "local": CredentialSpec(fields=()),
}


def default_credentials_file() -> Path:
    env = os.environ.get("SYNCAGENT_CREDENTIALS")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("syncagent")) / "credentials.yaml"


@dataclass
class Resolver:
    """Looks secrets up; each source is injectable for tests."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    netrc_file: Path | None = None
    credentials_file: Path | None = None
    use_keyring: bool = True

    def resolve(self, remote: str, kind: str, options: Mapping[str, Any],
                given: Mapping[str, str] | None = None, *, required: bool = True) -> dict[str, str]:
        spec = SPECS.get(kind, CredentialSpec(fields=()))
        found: dict[str, str] = {}
        sources: list[Callable[[str], str | None]] = [
            lambda f: (given or {}).get(f),
            lambda f: self.environ.get(spec.env[f]) if f in spec.env else None,
            lambda f: self._from_netrc(spec, options, f),
            lambda f: self._from_keyring(remote, f),
            lambda f: self._from_file(remote, f),
        ]
        for f in spec.fields:
            for source in sources:
                value = source(f)
                if value:
                    found[f] = value
                    break
        missing = [f for f in spec.fields if f not in found]
        if missing and required:
            places = ["--" + m.replace("_", "-") for m in missing]
            envs = [spec.env[m] for m in missing if m in spec.env]
            raise AuthError(
                f"no {', '.join(missing)} for remote {remote!r}: give {' '.join(places)}"
                + (f", set {' and '.join(envs)}" if envs else "")
                + f", or run `syncagent auth {remote}`")
        return found

    def _from_netrc(self, spec: CredentialSpec, options: Mapping[str, Any], f: str) -> str | None:
        if spec.netrc_machine is None or f not in spec.netrc_fields:
            return None
        path = Path(str(options.get("netrc_file") or self.netrc_file or Path.home() / ".netrc"))
        try:
            entry = netrc.netrc(str(path)).authenticators(spec.netrc_machine(options))
        except (FileNotFoundError, netrc.NetrcParseError, OSError):
            return None
        if entry is None:
            return None
        login, _account, password = entry
        return login if spec.netrc_fields[f] == "login" else password

    def _from_keyring(self, remote: str, f: str) -> str | None:
        if not self.use_keyring:
            return None
        try:
            import keyring
        except ImportError:
            return None
        try:
            value = keyring.get_password(KEYRING_SERVICE, f"{remote}/{f}")
        except Exception:
            return None
        return str(value) if value else None

    def _from_file(self, remote: str, f: str) -> str | None:
        data = read_credentials_file(self.credentials_file or default_credentials_file())
        entry = data.get(remote)
        value = entry.get(f) if isinstance(entry, dict) else None
        return str(value) if value else None


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
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError("not valid YAML", file=str(path), line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of remote name -> fields", file=str(path), line=1)
    return data


def store_credentials(remote: str, values: Mapping[str, str], path: Path | None = None) -> Path:
    """Save secrets for `remote` into the credentials file (created 0600)."""
    import yaml

    path = path or default_credentials_file()
    data = read_credentials_file(path)
    data[remote] = dict(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
