"""SmartFile REST API v2 provider (spec: /work/shared/specs/smartfile.md).

    provider.py   the Provider: listing, transfers, folders, tasks, sync API
    transport.py  URLs, retries, throttling, the one HTTP-error mapping
    entries.py    info objects -> RemoteEntry (mtime/hash kept in attributes)
    multipart.py  a streaming multipart body
    reader.py     a download stream that resumes with Range
    tasks.py      move/copy/remove tasks polled until SUCCESS/FAILURE
    oauth.py      the three-legged OAuth 1.0a exchange
    login.py      `syncagent auth`: key + password or OAuth; opening a configured remote

This file only declares the type (the registry imports it at start-up);
the provider's modules load when a remote of this type is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from syncagent.providers.registry import LoginContext, Netrc, ProviderType, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider
    from syncagent.providers.smartfile.provider import DEFAULT_URL, SmartFileProvider, make_auth
    from syncagent.providers.smartfile.transport import Tuning, error_for

__all__ = ["DEFAULT_URL", "PROVIDER", "SmartFileOptions", "SmartFileProvider", "Tuning", "error_for", "make_auth"]

_LAZY = {"DEFAULT_URL": "provider", "SmartFileProvider": "provider", "make_auth": "provider",
         "Tuning": "transport", "error_for": "transport"}


class SmartFileOptions(BaseModel):
    """`type: smartfile`: an account on app.smartfile.com (or a SmartFile-compatible server)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field("https://app.smartfile.com/", description="the site (the API is under /api/2/)")
    root: str = Field("/", description="the folder on SmartFile this remote starts at")
    timezone: str = Field("UTC", description="the zone of the server's naive timestamps")
    netrc_file: str | None = Field(None, description="a netrc file other than ~/.netrc")
    key: str | None = Field(None, description="API key (HTTP Basic user)")
    password: str | None = Field(None, description="API password")
    client_token: str | None = Field(None, description="OAuth 1.0a client (consumer) token")
    client_secret: str | None = Field(None, description="OAuth 1.0a client (consumer) secret")
    access_token: str | None = Field(None, description="OAuth 1.0a access token")
    access_secret: str | None = Field(None, description="OAuth 1.0a access secret")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.smartfile.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.smartfile.login import login

    return login(ctx)


def _whoami(provider: Provider) -> str | None:
    from syncagent.providers.smartfile.login import whoami

    return whoami(provider)


PROVIDER = ProviderType(
    name="smartfile",
    summary="SmartFile (REST API v2; API key and password, or OAuth 1.0a)",
    options=SmartFileOptions,
    secrets=("key", "password", "client_token", "client_secret", "access_token", "access_secret"),
    env={"url": "SMARTFILE_API_URL", "key": "SMARTFILE_API_KEY", "password": "SMARTFILE_API_PASSWORD",
         "client_token": "SMARTFILE_CLIENT_TOKEN", "client_secret": "SMARTFILE_CLIENT_SECRET",
         "access_token": "SMARTFILE_ACCESS_TOKEN", "access_secret": "SMARTFILE_ACCESS_SECRET"},
    open=_open,
    login=_login,
    emulator="smartfile",
    netrc=Netrc("app.smartfile.com", login="key", password="password"),
    whoami=_whoami,
)


def __getattr__(name: str) -> Any:
    """The provider's classes, loaded on first use (importing this package stays cheap)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
