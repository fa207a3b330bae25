"""WebDAV's side of `syncagent auth` and of opening a configured remote.

A user name and a password (on Nextcloud, better an app password). The
registry verifies them by opening the provider, whose first request is an
authenticated PROPFIND: a wrong password fails there, before it is kept.
"""

from __future__ import annotations

from syncagent.providers.base import Provider
from syncagent.providers.registry import LoginContext, RemoteSettings
from syncagent.providers.webdav.provider import WebDavProvider


def open_provider(settings: RemoteSettings) -> WebDavProvider:
    o = settings.options
    if not o.get("user") or not o.get("password"):
        raise settings.missing(*[f for f in ("user", "password") if not o.get(f)])
    provider = WebDavProvider(str(o["url"]), settings.root(), user=str(o["user"]), password=str(o["password"]),
                              auth=str(o["auth"]), mtime=str(o["mtime"]), checksum=str(o["checksum"]),
                              depth_infinity=bool(o["depth_infinity"]), transfers=int(o["transfers"]))
    try:
        provider.connect()
    except BaseException:
        provider.close()
        raise
    return provider


def login(ctx: LoginContext) -> dict[str, str]:
    """The user (given, configured, or asked) and the password (given or asked, hidden)."""
    user = ctx.value("user", "User")
    password = str(ctx.given.get("password") or "") or ctx.prompt("Password", secret=True)
    # a user name from the config stays there; one given here is kept with the password
    return {"password": password} if ctx.options.get("user") else {"user": user, "password": password}


def whoami(provider: Provider) -> str | None:
    if not isinstance(provider, WebDavProvider) or provider.user is None:
        return None
    return f"{provider.user} at {provider.dav.host}"
