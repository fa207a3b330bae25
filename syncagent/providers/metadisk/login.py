"""Metadisk's side of `syncagent auth` and of opening a configured remote.

`auth` logs in with the e-mail and password (HTTP Basic, the spec's way
before a key exists), registers the account first when there is none
(asking for the activation link or token the service e-mails), generates
a secp256k1 key pair, registers its public key, and makes the bucket. Only
the private key is stored (keyring or the 0600 file); every later request
is signed with it. Without a key, a password in the environment
(SYNCAGENT_REMOTE_<NAME>_PASSWORD) works through Basic: the fallback.
"""

from __future__ import annotations

import dataclasses
import re

from syncagent import errors
from syncagent.providers.base import Provider
from syncagent.providers.metadisk.api import Bridge
from syncagent.providers.metadisk.provider import MetadiskProvider
from syncagent.providers.metadisk.signing import KeyPair, password_hash
from syncagent.providers.metadisk.transport import Api, BadLogin, Credentials, NotActivated, Tuning
from syncagent.providers.registry import LoginContext, RemoteSettings

_ACTIVATION = re.compile(r"([0-9a-fA-F]{64})\s*(?:\?.*)?$")


def credentials(options: dict[str, object]) -> Credentials:
    email = str(options.get("email") or "")
    password = str(options.get("password") or "")
    key_hex = str(options.get("key") or "")
    try:
        key = KeyPair.from_hex(key_hex) if key_hex else None
    except ValueError:
        raise errors.AuthError("the stored Metadisk key is not a secp256k1 private key") from None
    return Credentials(email, password_hash(password) if password else None, key)


def open_provider(settings: RemoteSettings, tuning: Tuning | None = None) -> MetadiskProvider:
    o = settings.options
    if not o.get("email"):
        raise errors.ConfigError(f"remote {settings.name!r} (metadisk) needs `email`")
    creds = credentials(o)
    if creds.key is None and creds.password_sha256 is None:
        raise settings.missing("key", "password")
    api = Api(str(o["api_url"]), creds, tuning=tuning, remote=settings.name)
    return MetadiskProvider(api, str(o["bucket"]), settings.root(), tuning=tuning)


def login(ctx: LoginContext) -> dict[str, str]:
    """Log in (registering and activating when needed), set up a key, make the bucket;
    returns the private key to store."""
    from syncagent.credentials import Resolver
    from syncagent.providers.metadisk import PROVIDER

    found = Resolver().resolve(ctx.name, PROVIDER, ctx.options, ctx.given).values
    known = {k: found[k] for k in ("email", "password") if found.get(k)}
    email, password = dataclasses.replace(ctx, given={**known, **ctx.given}).email_password()
    url = str(found.get("api_url") or PROVIDER.options.model_fields["api_url"].default)
    api = Api(url, Credentials(email, password_hash(password)), remote=ctx.name)
    try:
        bridge = Bridge(api)
        listed = _account_keys(ctx, bridge, email, password)
        key = _key(ctx, bridge, listed, str(found.get("key") or ""))
        api.creds.key = key
        _bucket(ctx, bridge, str(found.get("bucket") or PROVIDER.options.model_fields["bucket"].default))
        return {"key": key.private_hex}
    finally:
        api.close()


def _account_keys(ctx: LoginContext, bridge: Bridge, email: str, password: str) -> set[str]:
    """The account's registered keys, after registering or activating it if it needs that."""
    try:
        return _keys(bridge)
    except NotActivated:
        _activate(ctx, bridge, email)
    except BadLogin:
        try:
            bridge.register(email, password_hash(password))
        except errors.AlreadyExists:
            raise errors.AuthError(f"wrong password for the Metadisk account {email}") from None
        ctx.echo(f"registered the Metadisk account {email}; the service e-mailed an activation link")
        _activate(ctx, bridge, email)
    return _keys(bridge)


def _keys(bridge: Bridge) -> set[str]:
    return {str(k.get("key")) for k in bridge.keys(basic=True)}


def _activate(ctx: LoginContext, bridge: Bridge, email: str) -> None:
    text = str(ctx.given.get("activation") or "") or ctx.prompt(f"Activation link or token e-mailed to {email}")
    m = _ACTIVATION.search(text.strip())
    if m is None:
        raise errors.UsageError("an activation token is 64 hex characters (the end of the e-mailed link)")
    bridge.activate(m.group(1).lower())
    ctx.echo(f"activated {email}")


def _key(ctx: LoginContext, bridge: Bridge, registered: set[str], stored_hex: str) -> KeyPair:
    """The stored key when the account still has it registered, else a new one, registered."""
    if stored_hex:
        try:
            stored = KeyPair.from_hex(stored_hex)
        except ValueError:
            stored = None
        if stored is not None and stored.public in registered:
            return stored
    key = KeyPair.generate()
    bridge.add_key(key.public, basic=True)
    ctx.echo(f"registered a new signing key {key.public[:16]}…")
    return key


def _bucket(ctx: LoginContext, bridge: Bridge, name: str) -> None:
    buckets = bridge.buckets()   # signed: proves the new key works
    if not any(b.get("name") == name or b.get("id") == name for b in buckets):
        bridge.create_bucket(name)
        ctx.echo(f"created the bucket {name!r}")


def whoami(provider: Provider) -> str | None:
    return provider.whoami() if isinstance(provider, MetadiskProvider) else None
