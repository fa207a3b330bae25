"""Provider types by name: what each provider package declares about itself,
and how a configured remote becomes an open provider.

A provider package declares, in its light `__init__.py` (rclone's
`fs.Register` is the model):

    PROVIDER = ProviderType(
        name="mega",                        # the config `type:`
        summary="MEGA (end-to-end encrypted)",
        options=MegaOptions,                # pydantic model (extra="forbid"): every config key, secrets too
        secrets=("password", "session"),    # masked everywhere; kept in the keyring / 0600 file
        env={"email": "MEGA_EMAIL"},        # conventional variables (SYNCAGENT_REMOTE_<NAME>_<FIELD> always works)
        open=open_provider,                 # (RemoteSettings) -> Provider; heavy imports inside it
        login=login,                        # (LoginContext) -> secrets to store; None: nothing to log in to
        emulator="mega",                    # tests.emulators name the conformance suite runs against
    )

and the registry below names it: its name in KINDS and its import in
`_load()`, which runs only when that type is used. Nothing else in
syncagent names a provider.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from syncagent import errors

if TYPE_CHECKING:
    from syncagent.credentials import Resolver
    from syncagent.providers.base import Provider


@dataclass(frozen=True)
class Netrc:
    """Where a type's secrets sit in ~/.netrc: the machine is the host of the
    remote's `url` option, else `host`; `login`/`password` name the fields."""

    host: str
    login: str | None = None
    password: str | None = None

    def field_of(self, name: str) -> str | None:
        """'login' or 'password' for option `name`, None if netrc does not hold it."""
        return "login" if name == self.login else "password" if name == self.password else None


@dataclass
class RemoteSettings:
    """What `ProviderType.open` gets: the remote's options (config values
    validated, secrets resolved), the sub-path the command named, and a
    way to save rotated secrets back to where they came from."""

    name: str
    options: dict[str, Any]
    subpath: str = ""
    saver: Callable[[dict[str, str]], None] | None = None
    env_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def save_secrets(self, values: dict[str, str]) -> None:
        """Store rotated secrets (a new refresh token) atomically where the old ones came from."""
        if self.saver is not None and values:
            self.saver(dict(values))

    def root(self, key: str = "root", default: str = "/") -> str:
        """The remote's root option joined with the command's sub-path, '/'-rooted."""
        base = str(self.options.get(key) or default)
        sub = self.subpath.strip("/")
        joined = posixpath.join(base, sub) if sub else base
        return joined if joined.startswith("/") else "/" + joined

    def missing(self, *fields: str) -> errors.AuthError:
        """The error for absent secrets: names what works for every command."""
        places = [f"`syncagent auth {self.name}`"]
        for f in fields:
            places.extend(f"${v}" for v in self.env_names.get(f, ()))
        return errors.AuthError(f"no {' or '.join(fields)} for remote {self.name!r}: run {places[0]}"
                                + (f", or set {', '.join(places[1:])}" if len(places) > 1 else ""))


@dataclass
class LoginContext:
    """What a login flow gets: the remote, values given on the command line
    (`auth NAME key=value` and flags such as browser=True), and the terminal."""

    name: str
    options: dict[str, Any]
    given: dict[str, Any]
    prompt: Callable[..., str]             # prompt(text, secret=False) -> str
    echo: Callable[[str], None]
    open_browser: Callable[[str], bool]

    def value(self, key: str, text: str, *, secret: bool = False) -> str:
        """A given value, else the remote's option, else asked for."""
        found = self.given.get(key) or self.options.get(key)
        if found:
            return str(found)
        return self.prompt(text, secret=secret)

    def email_password(self, email_key: str = "email", password_key: str = "password") -> tuple[str, str]:
        """An account's email and password: given, configured, or asked for (the password hidden);
        asked again while the answer is empty or not an address."""
        email = str(self.given.get(email_key) or self.options.get(email_key) or "")
        while "@" not in email.strip("@"):
            if email:
                self.echo(f"{email!r} is not an email address")
            email = self.prompt("Email").strip()
        password = str(self.given.get(password_key) or "")
        while not password:
            password = self.prompt("Password", secret=True)
        return email, password


Login = Callable[[LoginContext], dict[str, str]]


@dataclass
class PublicFile:
    """A file a public link names, opened with no account: its name, size,
    mtime and a stream of its content (close it)."""

    name: str
    size: int
    mtime_ns: int
    stream: IO[bytes]


def open_public(url: str) -> PublicFile | None:
    """The file behind a public link, from the first type that claims the URL."""
    for ptype in types().values():
        if ptype.public is not None:
            found = ptype.public(url)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class ProviderType:
    name: str
    summary: str
    options: type[BaseModel]
    open: Callable[[RemoteSettings], Provider]
    secrets: tuple[str, ...] = ()
    env: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    login: Login | None = None
    emulator: str | None = None
    netrc: Netrc | None = None
    whoami: Callable[[Provider], str | None] | None = None   # who a login is for, when the service says
    # a public link of this service opened with no account (`syncagent get URL`); None: not its link
    public: Callable[[str], PublicFile | None] | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.options.model_fields)

    def env_names(self, remote: str, name: str) -> tuple[str, ...]:
        """Variables that can hold option `name` of remote `remote`, strongest first."""
        conventional = self.env.get(name, ())
        return (env_name(remote, name), *((conventional,) if isinstance(conventional, str) else conventional))

    def validate(self, values: Mapping[str, Any]) -> BaseModel:
        return self.options.model_validate(dict(values))


def env_name(remote: str, option: str) -> str:
    """SYNCAGENT_REMOTE_<NAME>_<FIELD>, upper case, like rclone's RCLONE_CONFIG_<NAME>_<KEY>."""
    clean = "".join(c if c.isalnum() else "_" for c in remote)
    return f"SYNCAGENT_REMOTE_{clean}_{option}".upper()


# Every provider type, in the order `types()` lists them; each also has its import in _load().
KINDS = ("local", "smartfile", "mega", "metadisk", "onedrive", "webdav", "s3")


def _load(kind: str) -> ProviderType:
    """The declaration of type `kind`, its package imported now: a command imports only the
    types it uses (a `type: local` remote never loads MEGA's crypto or pydantic models of the
    others). Import statements, not strings, so the import graph shows every provider; here
    rather than at the top, as each package imports this module for ProviderType."""
    if kind == "local":
        from syncagent.providers.local import PROVIDER
    elif kind == "smartfile":
        from syncagent.providers.smartfile import PROVIDER
    elif kind == "mega":
        from syncagent.providers.mega import PROVIDER
    elif kind == "metadisk":
        from syncagent.providers.metadisk import PROVIDER
    elif kind == "onedrive":
        from syncagent.providers.onedrive import PROVIDER
    elif kind == "webdav":
        from syncagent.providers.webdav import PROVIDER
    elif kind == "s3":
        from syncagent.providers.s3 import PROVIDER
    else:
        raise KeyError(kind)
    return PROVIDER


def _declared() -> tuple[ProviderType, ...]:
    return tuple(get(kind) for kind in KINDS)


@functools.cache
def types() -> dict[str, ProviderType]:
    """Every registered provider type by name (imports every provider package)."""
    return {t.name: t for t in _declared()}


@functools.cache
def find_type(kind: str) -> ProviderType | None:
    """Type `kind`, importing only its package; None if no such type."""
    return _load(kind) if kind in KINDS else None


def get(kind: str) -> ProviderType:
    found = find_type(kind)
    if found is None:
        raise errors.ConfigError(f"unknown provider type {kind!r}; known: {', '.join(sorted(KINDS))}")
    return found


def open_remote(name: str, kind: str, options: Mapping[str, Any], subpath: str = "", *,
                given: Mapping[str, str] | None = None, resolver: Resolver | None = None) -> Provider:
    """The provider for remote `name`: its config options, the environment and
    the stored secrets merged (see syncagent.credentials), validated, opened."""
    from syncagent.credentials import Resolver

    ptype = get(kind)
    resolver = resolver or Resolver()
    found = resolver.resolve(name, ptype, options, given)
    settings = RemoteSettings(name, validated(ptype, name, found.values), clean_subpath(name, subpath),
                              saver=lambda new: resolver.save(name, ptype, new, found.origins),
                              env_names={f: ptype.env_names(name, f) for f in ptype.fields})
    return ptype.open(settings)


def validated(ptype: ProviderType, remote: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the type's model reads them (defaults filled in, types coerced)."""
    try:
        model = ptype.validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        raise errors.ConfigError(f"remote {remote!r} ({ptype.name}): {where}: {err['msg']}") from None
    return model.model_dump(exclude_none=True)


def clean_subpath(remote: str, subpath: str) -> str:
    """`NAME:a/b` stays inside NAME's root: no '..' and no '.' components."""
    parts = [p for p in subpath.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise errors.UsageError(f"{remote}:{subpath}: '.' and '..' are not allowed in a remote path")
    return "/".join(parts)


@dataclass(frozen=True)
class LoggedIn:
    who: str | None     # the account, when the service says
    where: str          # where the secrets were stored


def login(name: str, kind: str, options: Mapping[str, Any], ctx: LoginContext, *,
          resolver: Resolver | None = None) -> LoggedIn:
    """Run the type's login flow, check its secrets by opening the provider
    (a wrong password fails here, before anything is kept), then store them."""
    from syncagent.credentials import Resolver

    ptype = get(kind)
    if ptype.login is None:
        raise errors.UsageError(f"remote {name!r} ({kind}) needs no login")
    resolver = resolver or Resolver()
    secrets = {k: str(v) for k, v in ptype.login(ctx).items() if v not in (None, "")}
    unknown = sorted(set(secrets) - set(ptype.fields))
    if unknown:
        raise errors.PermanentError(f"the {kind} login returned fields its options do not declare: {unknown}")
    with open_remote(name, kind, options, given=secrets, resolver=resolver) as provider:
        provider.root_exists()
        who = ptype.whoami(provider) if ptype.whoami is not None else None
    return LoggedIn(who, resolver.store(name, secrets))
