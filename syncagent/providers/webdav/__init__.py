"""WebDAV provider (RFC 4918): Nextcloud, ownCloud, a NAS, Apache mod_dav,
wsgidav, `rclone serve webdav`.

    transport.py  the session, Basic/Digest auth, retries, the one HTTP-error mapping
    propfind.py   PROPFIND bodies and the streamed parsing of multistatus answers
    provider.py   the Provider: listing, atomic streamed uploads, ranges, MOVE/COPY, mtimes
    login.py      `syncagent auth`: user and password; opening a configured remote

This file only declares the type (the registry imports it at start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from syncagent.providers.registry import LoginContext, Netrc, ProviderType, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider


class WebDavOptions(BaseModel):
    """`type: webdav`: a folder on a WebDAV server."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, description="the DAV root, e.g. https://host/remote.php/dav/files/USER")
    root: str = Field("/", description="the folder below `url` this remote starts at")
    user: str | None = Field(None, description="the account name")
    password: str | None = Field(None, description="the account's password (or an app password)")
    auth: Literal["auto", "basic", "digest"] = Field(
        "auto", description="HTTP authentication: auto follows the server's challenge")
    mtime: Literal["auto", "x-oc-mtime", "proppatch", "none"] = Field(
        "auto", description="how modification times are set: auto tries X-OC-Mtime, then PROPPATCH")
    checksum: Literal["auto", "sha1", "md5", "none"] = Field(
        "auto", description="content hash from oc:checksums (auto: sha1 on Nextcloud/ownCloud)")
    depth_infinity: bool = Field(True, description="list the tree in one PROPFIND where the server allows")
    conditional: Literal["auto", "server", "check"] = Field(
        "auto", description="If-Match/If-None-Match: auto sends them and checks the ETag first; "
                            "server trusts the server alone; check only checks first")
    transfers: int = Field(4, ge=1, le=32, description="parallel transfers")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.webdav.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.webdav.login import login

    return login(ctx)


def _whoami(provider: Provider) -> str | None:
    from syncagent.providers.webdav.login import whoami

    return whoami(provider)


PROVIDER = ProviderType(
    name="webdav",
    summary="WebDAV (Nextcloud, ownCloud, a NAS, Apache; Basic or Digest auth)",
    options=WebDavOptions,
    secrets=("password",),
    env={"user": "WEBDAV_USER", "password": "WEBDAV_PASSWORD"},
    open=_open,
    login=_login,
    emulator="webdav",
    netrc=Netrc("", login="user", password="password"),
    whoami=_whoami,
)
