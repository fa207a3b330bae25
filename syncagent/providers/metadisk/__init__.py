"""Metadisk (spec: /work/shared/specs/metadisk.md): the early Storj bridge,
content-addressed buckets with ECDSA-signed requests.

    content.py      the content address rmd160(sha256hex) (hash kind "metadisk")
    signing.py      secp256k1 keys, the signed contract, nonces, password hash
    transport.py    signed / Basic / token requests, retries, the one error mapping
    api.py          the Bridge routes: users, keys, buckets, tokens, files
    datachannel.py  downloads: pointers, shards over WebSocket, verification
    manifest.py     the path tree: items, versions, the order-free merge
    store.py        the manifest in the bucket: heads, read-merge-write, cache
    provider.py     MetadiskProvider
    login.py        `syncagent auth`: register/activate/keys/bucket; opening a remote

This file only declares the type (and registers the light hash kind); the
rest loads when a remote of this type is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from syncagent.hashing import register_hasher
from syncagent.providers.metadisk.content import HASH_KIND, ContentHasher
from syncagent.providers.registry import LoginContext, ProviderType, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider

DEFAULT_API = "https://api.metadisk.org"


class MetadiskOptions(BaseModel):
    """`type: metadisk`: one bucket of a Metadisk account, as a folder tree."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, description="the account's e-mail")
    bucket: str = Field("syncagent", description="the bucket (its name or 24-hex id); made by `auth` if missing")
    root: str = Field("/", description="the folder inside the bucket this remote starts at")
    api_url: str = Field(DEFAULT_API, description="the bridge (a test server)")
    password: str | None = Field(None, description="used by `auth`, and for HTTP Basic when there is no key; "
                                                   "never stored")
    key: str | None = Field(None, description="the secp256k1 private key requests are signed with "
                                              "(made and stored by `syncagent auth`)")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.metadisk.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.metadisk.login import login

    return login(ctx)


def _whoami(provider: Provider) -> str | None:
    from syncagent.providers.metadisk.login import whoami

    return whoami(provider)


register_hasher(HASH_KIND, ContentHasher)

PROVIDER = ProviderType(
    name="metadisk",
    summary="Metadisk (content-addressed buckets, ECDSA-signed requests; a folder tree kept in a manifest)",
    options=MetadiskOptions,
    secrets=("password", "key"),
    env={"email": "METADISK_EMAIL", "password": "METADISK_PASSWORD", "api_url": "METADISK_API_URL"},
    open=_open,
    login=_login,
    emulator="metadisk",
    whoami=_whoami,
)
