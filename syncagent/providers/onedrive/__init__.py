"""OneDrive through Microsoft Graph v1.0 (spec: /work/shared/specs/onedrive.md),
the successor of the seed's SkyDrive client.

    provider.py   the Provider: paths, listing, transfers, folders, extras
    feed.py       the delta feed and the id -> (parent, name) map in provider state
    upload.py     simple uploads and resumable upload sessions
    reader.py     a download that resumes with Range
    transport.py  Graph URLs, the bearer token, retries, the one error mapping
    items.py      driveItem -> RemoteEntry, times, OneDrive's name rules
    tokens.py     access and refresh tokens (oauthlib), rotation saved back
    flows.py      sign-in: device code (default) and authorization code + PKCE
    login.py      `syncagent auth` and opening a configured remote
    quickxor.py   QuickXorHash, the content hash Graph reports for files

This file only declares the type and the `quickxor` hash kind (the registry
imports it at start-up); the provider's modules load when a remote is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from syncagent.hashing import register_hasher
from syncagent.providers.onedrive.quickxor import QuickXorHash
from syncagent.providers.registry import LoginContext, ProviderType, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider

register_hasher("quickxor", QuickXorHash)


class OneDriveOptions(BaseModel):
    """`type: onedrive`: a OneDrive (personal or work/school) through Microsoft Graph."""

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(None, description="the application (client) id of your app registration "
                                                    "(else the one in ~/.lcrc)")
    tenant: str = Field("common", description="common, consumers, organizations or a tenant id")
    drive_id: str | None = Field(None, description="a drive other than your own OneDrive")
    root: str = Field("/", description="the folder of the drive this remote starts at")
    graph_url: str = Field("https://graph.microsoft.com/v1.0", description="the Graph API root")
    auth_url: str = Field("https://login.microsoftonline.com", description="the identity platform")
    scope: str = Field("Files.ReadWrite offline_access", description="the permissions asked for")
    refresh_token: str | None = Field(None, description="OAuth 2 refresh token (rotates)")
    access_token: str | None = Field(None, description="OAuth 2 access token (short-lived)")
    access_expires: str | None = Field(None, description="when the access token expires (epoch seconds)")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.onedrive.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.onedrive.login import login

    return login(ctx)


def _whoami(provider: Provider) -> str | None:
    from syncagent.providers.onedrive.login import whoami

    return whoami(provider)


PROVIDER = ProviderType(
    name="onedrive",
    summary="OneDrive (Microsoft Graph; sign in with a device code, or --browser)",
    options=OneDriveOptions,
    secrets=("refresh_token", "access_token", "access_expires"),
    env={"client_id": "ONEDRIVE_CLIENT_ID", "refresh_token": "ONEDRIVE_REFRESH_TOKEN"},
    open=_open,
    login=_login,
    emulator="onedrive",
    whoami=_whoami,
)
