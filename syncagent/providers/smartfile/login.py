"""SmartFile's side of `syncagent auth` and of opening a configured remote.

Two ways in (spec §3): an API key and password (HTTP Basic), or OAuth 1.0a
(the three-legged exchange of oauth.py, PLAINTEXT signatures). A login
returns the secrets to store; the registry verifies them by opening the
provider before anything is kept.
"""

from __future__ import annotations

from typing import Any

from syncagent import errors
from syncagent.providers.base import Provider
from syncagent.providers.registry import LoginContext, RemoteSettings
from syncagent.providers.smartfile.provider import SmartFileProvider

OAUTH_FIELDS = ("client_token", "client_secret", "access_token", "access_secret")


def open_provider(settings: RemoteSettings) -> SmartFileProvider:
    o = settings.options
    oauth = all(o.get(f) for f in OAUTH_FIELDS)
    if not oauth and not (o.get("key") and o.get("password")):
        raise settings.missing(*[f for f in ("key", "password") if not o.get(f)])
    creds: dict[str, Any] = ({f: o[f] for f in OAUTH_FIELDS} if oauth
                             else {"api_key": o["key"], "api_password": o["password"]})
    return SmartFileProvider(settings.root(), url=str(o["url"]), timezone=str(o["timezone"]), **creds)


def login(ctx: LoginContext) -> dict[str, str]:
    """Key and password (asked for when not given), or the OAuth flow with oauth=True."""
    if _truthy(ctx.given.get("oauth")):
        return _oauth(ctx)
    return {"key": ctx.value("key", "API key"), "password": ctx.value("password", "API password", secret=True)}


def _oauth(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.smartfile.oauth import three_legged

    token = ctx.value("client_token", "OAuth client token")
    secret = ctx.value("client_secret", "OAuth client secret", secret=True)

    def ask(authorize_url: str) -> str:
        if not ctx.open_browser(authorize_url):
            ctx.echo(f"open this address, allow access, and paste the verifier:\n  {authorize_url}")
        else:
            ctx.echo("allow access in the browser window, then paste the verifier shown there")
        return ctx.prompt("verifier")

    url = str(ctx.options.get("url") or "https://app.smartfile.com/")
    access, access_secret = three_legged(url, token, secret, ask)
    return {"client_token": token, "client_secret": secret, "access_token": access, "access_secret": access_secret}


def whoami(provider: Provider) -> str | None:
    """The account a login is for (SmartFileProvider.whoami: user, email, site)."""
    if not isinstance(provider, SmartFileProvider):
        return None
    try:
        return provider.whoami()
    except errors.ProviderError:
        return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")
