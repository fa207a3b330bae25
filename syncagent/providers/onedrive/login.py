"""OneDrive's side of `syncagent auth` and of opening a configured remote.

`auth NAME` signs in with a device code (print an address and a code, wait
for the person to sign in anywhere), or with `--browser` through the
authorization code flow with PKCE on a loopback redirect. The tokens it
returns are stored by the registry; afterwards every refresh saves the
rotated refresh token back (RemoteSettings.save_secrets).

The application (client) id comes from the remote's `client_id`, else from
python-skydrive's `~/.lcrc` (`client: {id: ...}`), the seed's config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncagent import errors
from syncagent.providers.base import Provider
from syncagent.providers.registry import LoginContext, RemoteSettings

LCRC = ".lcrc"


def lcrc_client_id(home: Path | None = None) -> str | None:
    """`client.id` of python-skydrive's ~/.lcrc, if there is one."""
    import yaml

    path = (home or Path.home()) / LCRC
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    client = data.get("client") if isinstance(data, dict) else None
    found = client.get("id") if isinstance(client, dict) else None
    return str(found) if found else None


def client_id_of(options: dict[str, Any], name: str) -> str:
    found = options.get("client_id") or lcrc_client_id()
    if not found:
        raise errors.ConfigError(
            f"remote {name!r} needs the application (client) id of an app registration: "
            f"`syncagent config add {name} onedrive client_id=...` (see docs/providers.md, OneDrive)")
    return str(found)


def _session() -> Any:
    from syncagent.http import Timeouts, new_session

    return new_session(Timeouts(read=120, total=3600), user_agent_suffix="onedrive")


def open_provider(settings: RemoteSettings) -> Provider:
    from syncagent.providers.onedrive.provider import OneDriveProvider
    from syncagent.providers.onedrive.tokens import Endpoints, TokenSet, TokenSource
    from syncagent.providers.onedrive.transport import Graph

    o = settings.options
    if not o.get("refresh_token") and not o.get("access_token"):
        raise settings.missing("refresh_token")
    session = _session()
    expires = str(o.get("access_expires") or "0")
    tokens = TokenSet(str(o.get("access_token") or ""), str(o.get("refresh_token") or ""),
                      float(expires) if expires.replace(".", "", 1).isdigit() else 0.0)
    source = TokenSource(Endpoints(str(o["auth_url"]), str(o["tenant"])), client_id_of(o, settings.name), tokens,
                         scope=str(o["scope"]), session=session, save=settings.save_secrets, remote=settings.name)
    graph = Graph(source, session, graph_url=str(o["graph_url"]), drive_id=o.get("drive_id"))
    return OneDriveProvider(graph, settings.root().strip("/"))


def login(ctx: LoginContext) -> dict[str, str]:
    """Device code by default; the browser (PKCE) flow with `--browser`."""
    from syncagent.providers.onedrive import flows
    from syncagent.providers.onedrive.tokens import Endpoints

    options = {**ctx.options, **{k: v for k, v in ctx.given.items() if isinstance(v, str)}}
    if not options.get("client_id") and lcrc_client_id():
        ctx.echo(f"using the application (client) id from ~/{LCRC} (python-skydrive's config)")
    client_id = client_id_of(options, ctx.name)
    endpoints = Endpoints(str(options.get("auth_url") or "https://login.microsoftonline.com"),
                          str(options.get("tenant") or "common"))
    scope = str(options.get("scope") or "Files.ReadWrite offline_access")
    term = flows.Terminal(ctx.echo, ctx.open_browser)
    session = _session()
    try:
        if _truthy(ctx.given.get("browser")):
            tokens = flows.browser(session, endpoints, client_id, scope, term)
        else:
            tokens = flows.device_code(session, endpoints, client_id, scope, term)
    finally:
        session.close()
    if not tokens.refresh_token:
        raise errors.AuthError("the sign-in gave no refresh token: the scope must include offline_access")
    return tokens.as_secrets()


def whoami(provider: Provider) -> str | None:
    """The drive owner's display name, as Graph has it."""
    from syncagent.providers.onedrive.provider import OneDriveProvider

    if not isinstance(provider, OneDriveProvider):
        return None
    try:
        owner = provider.drive_info().get("owner") or {}
    except errors.ProviderError:
        return None
    user = owner.get("user") if isinstance(owner, dict) else None
    name = user.get("displayName") if isinstance(user, dict) else None
    return str(name) if name else None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")



