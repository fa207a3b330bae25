"""MEGA's side of `syncagent auth` and of opening a configured remote.

What is stored is the session (sid + master key; for an ephemeral account
also its handle and password key), never the password. A remote opens with
its stored session; without one it logs in by itself when the password is
at hand (SYNCAGENT_REMOTE_<NAME>_PASSWORD, MEGA_PASSWORD, ~/.netrc) and
stores the new session, or, with `ephemeral: true`, makes an anonymous
account. An expired session (`-15`) logs in again the same ways, else the
error says to run `syncagent auth NAME`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from syncagent import errors
from syncagent.providers.base import Provider
from syncagent.providers.mega.api import Api
from syncagent.providers.mega.provider import MegaProvider
from syncagent.providers.mega.session import Session, create_ephemeral, login, resume_ephemeral, whoami
from syncagent.providers.registry import LoginContext, RemoteSettings


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


def _stored(settings: RemoteSettings) -> Session | None:
    """The stored session, unless it belongs to another account than the config names."""
    text = settings.options.get("session")
    if not text:
        return None
    session = Session.from_secret(str(text))
    email = str(settings.options.get("email") or "").lower()
    if email and session.email and session.email != email:
        return None
    return session


def open_provider(settings: RemoteSettings) -> MegaProvider:
    o = settings.options
    url = str(o["api_url"])
    session = _stored(settings)
    email = str(o.get("email") or (session.email if session is not None else "") or "")
    password = str(o.get("password") or "")
    relogin: Callable[[], Session] | None = None
    if email and password:
        def relogin() -> Session:
            return login(Api(url), email, password)
    if session is None:
        if _truthy(o.get("ephemeral")):
            session = create_ephemeral(Api(url))
        elif relogin is not None:
            session = relogin()
        else:
            raise settings.missing("password")
        settings.save_secrets({"session": session.to_secret()})
    if session.ephemeral_key is not None:
        user, key = session.user, session.ephemeral_key

        def relogin() -> Session:
            return resume_ephemeral(Api(url), user, key)

    def saved(new: Session) -> None:
        settings.save_secrets({"session": new.to_secret()})

    return MegaProvider(Api(url), session, settings.root(), hard_delete=_truthy(o.get("hard_delete")),
                        label=email or f"anonymous-{session.user}", name=settings.name, on_session=saved,
                        relogin=relogin)


def login_flow(ctx: LoginContext) -> dict[str, str]:
    """An e-mail and password (asked for when not given or in the environment), or
    with `ephemeral: true` a new anonymous account. Returns the session to store."""
    from syncagent.credentials import Resolver
    from syncagent.providers.mega import PROVIDER

    url = str(ctx.options.get("api_url") or PROVIDER.options.model_fields["api_url"].default)
    if _truthy(ctx.given.get("ephemeral", ctx.options.get("ephemeral"))):
        return {"session": create_ephemeral(Api(url)).to_secret()}
    found = Resolver().resolve(ctx.name, PROVIDER, ctx.options, ctx.given).values
    known = {k: found[k] for k in ("email", "password") if found.get(k)}   # the environment too
    email, password = dataclasses.replace(ctx, given={**known, **ctx.given}).email_password()
    session = login(Api(url), email, password)
    return {"session": session.to_secret()}


def who(provider: Provider) -> str | None:
    """The account a login is for: its e-mail, or that it is anonymous."""
    if not isinstance(provider, MegaProvider):
        return None
    if provider.session.ephemeral_key is not None:
        return f"an anonymous account ({provider.session.user})"
    try:
        answer = provider.api.call({"a": "ug"})
    except errors.ProviderError:
        return None
    email = answer.get("email") if isinstance(answer, dict) else None
    return str(email) if email else whoami(provider.api)
