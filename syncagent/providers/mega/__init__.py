"""MEGA (spec: /work/shared/specs/mega.md): end-to-end encrypted storage.

    codec.py        base64, a32, MPI, compact integers
    keys.py         password keys, user hash, master key, RSA session, node keys, attributes
    filecrypt.py    file keys, chunk table, AES-CTR, chunk MACs, meta-MAC
    fingerprint.py  the `c` attribute (hash kind "mega")
    links.py        public links, both spellings
    api.py          /cs batches, the sc channel, the one error mapping
    session.py      v1/v2 login, ephemeral accounts
    tree.py         the decrypted node tree and its name index
    treefeed.py     the tree kept current from `f` and `sc`, in provider state
    transfer.py     resumable encrypted uploads, verified downloads
    provider.py     MegaProvider
    public.py       public links opened with no account
    login.py        `syncagent auth`, opening a configured remote

This file only declares the type (the registry imports it at start-up);
the rest loads when a remote of this type is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from syncagent.hashing import register_hasher
from syncagent.providers.mega.fingerprint import HASH_KIND, MegaHasher
from syncagent.providers.registry import LoginContext, Netrc, ProviderType, PublicFile, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider

DEFAULT_API = "https://g.api.mega.co.nz/"


class MegaOptions(BaseModel):
    """`type: mega`: a MEGA account, by e-mail, or an anonymous (ephemeral) one."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, description="the account's e-mail (not needed with ephemeral)")
    root: str = Field("/", description="the folder in the Cloud Drive this remote starts at")
    ephemeral: bool = Field(False, description="an anonymous account made on first use, no e-mail")
    hard_delete: bool = Field(False, description="delete for good instead of moving to the Rubbish Bin")
    api_url: str = Field(DEFAULT_API, description="the API endpoint (a test server)")
    netrc_file: str | None = Field(None, description="a netrc file other than ~/.netrc")
    password: str | None = Field(None, description="used to log in; never stored by syncagent")
    session: str | None = Field(None, description="session id and master key (stored by `syncagent auth`)")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.mega.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.mega.login import login_flow

    return login_flow(ctx)


def _whoami(provider: Provider) -> str | None:
    from syncagent.providers.mega.login import who

    return who(provider)


def _public(url: str) -> PublicFile | None:
    from syncagent.providers.mega.links import is_link

    if not is_link(url):
        return None
    from syncagent.providers.mega.public import open_public

    return open_public(url)


register_hasher(HASH_KIND, MegaHasher, needs_stat=True)

PROVIDER = ProviderType(
    name="mega",
    summary="MEGA (end-to-end encrypted; e-mail and password, or an anonymous account)",
    options=MegaOptions,
    secrets=("password", "session"),
    env={"email": "MEGA_EMAIL", "password": "MEGA_PASSWORD", "api_url": "MEGA_API_URL"},
    open=_open,
    login=_login,
    emulator="mega",
    netrc=Netrc("mega.nz", login="email", password="password"),
    whoami=_whoami,
    public=_public,
)
