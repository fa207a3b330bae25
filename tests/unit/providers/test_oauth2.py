"""The OAuth 2 login helpers against a small local authority
(tests/emulators/oauth2.py): PKCE on a loopback redirect, the device code,
refresh with rotation, and the token keeper."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import pytest
import requests

from syncagent import errors
from syncagent.providers.oauth2 import OAuth2Client, Token, TokenKeeper, refresh
from syncagent.providers.registry import LoginContext
from tests.emulators.base import EmulatorServer
from tests.emulators.oauth2 import OAuth2Authority


@pytest.fixture
def authority() -> Iterator[tuple[OAuth2Authority, OAuth2Client]]:
    auth = OAuth2Authority(client_id="app")
    with EmulatorServer(auth).start() as server:
        auth.base_url = server.base_url
        base = server.base_url + "oauth2/"
        yield auth, OAuth2Client("app", base + "token", authorize_url=base + "authorize",
                                 device_url=base + "devicecode", scopes=("files.readwrite", "offline_access"))


def context(open_browser: object = None, echo: object = None) -> LoginContext:
    def no_prompt(text: str, secret: bool = False) -> str:
        raise AssertionError("no prompt expected")

    return LoginContext("od", {}, {}, prompt=no_prompt, echo=echo or (lambda text: None),  # type: ignore[arg-type]
                        open_browser=open_browser or (lambda url: False))  # type: ignore[arg-type]


def browser(url: str) -> bool:
    """The user's browser: follows the consent page's redirect to the loopback port."""
    requests.get(url, timeout=10)
    return True


def test_browser_login_with_pkce(authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    auth, client = authority
    token = context(open_browser=browser).oauth2_browser(client)
    assert auth.valid(token.access_token) and token.refresh_token and not token.expired()
    sent = auth.requests[-1]
    assert sent["grant_type"] == "authorization_code" and len(sent["code_verifier"]) >= 43
    assert "client_secret" not in sent, "a public client sends no secret"


def test_browser_login_refused_or_tampered(authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    auth, client = authority
    auth.deny = True
    with pytest.raises(errors.AuthError, match="access_denied"):
        context(open_browser=browser).oauth2_browser(client)

    def forged(url: str) -> bool:
        redirect = re.search(r"redirect_uri=([^&]+)", url)
        assert redirect is not None
        requests.get(urllib.parse.unquote(redirect.group(1)) + "?code=x&state=forged", timeout=10)
        return True

    with pytest.raises(errors.AuthError, match="state"):
        context(open_browser=forged).oauth2_browser(client)


def test_browser_login_prints_the_address_when_no_browser_opens(
        authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    said: list[str] = []

    def echo(text: str) -> None:
        said.append(text)
        browser(text.split()[-1])      # the user copies the address into a browser

    token = context(echo=echo).oauth2_browser(authority[1])
    assert authority[0].valid(token.access_token) and "open this address" in said[0]


def test_device_login_polls_until_approved(authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    auth, client = authority
    auth.slow_down_once = True
    said: list[str] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:            # the user approves while the agent polls
            code = said[0].rsplit(" ", 1)[-1]
            requests.get(auth.base_url + "oauth2/device", params={"user_code": code}, timeout=10)

    from syncagent.providers.oauth2 import device_login

    token = device_login(client, context(echo=said.append), sleep=sleep)
    assert auth.valid(token.access_token)
    assert waits[:2] == [1.0, 1.0 + 5], "slow_down adds five seconds to the interval"
    assert "enter the code" in said[0]


def test_device_login_expires(authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    from syncagent.providers.oauth2 import device_login

    clock = iter(range(0, 10_000, 100))
    with pytest.raises(errors.AuthError, match="expired"):
        device_login(authority[1], context(), sleep=lambda s: None, clock=lambda: float(next(clock)))


def test_refresh_rotates_and_the_keeper_saves(authority: tuple[OAuth2Authority, OAuth2Client]) -> None:
    auth, client = authority
    first = context(open_browser=browser).oauth2_browser(client)
    assert first.refresh_token
    saved: list[dict[str, str]] = []
    keeper = TokenKeeper(client, Token(first.access_token, first.refresh_token, expires_at=0.0), saved.append)
    fresh = keeper.access_token()
    assert fresh != first.access_token and auth.valid(fresh)
    assert saved and saved[-1]["refresh_token"] != first.refresh_token
    assert Token.from_secrets(saved[-1]).access_token == fresh
    with pytest.raises(errors.AuthError, match="invalid_grant"):
        refresh(client, first.refresh_token)     # spent by the rotation
    assert keeper.refresh_now("not-the-current-one") == fresh, "another thread's refresh is reused"
    assert keeper.refresh_now(fresh) != fresh


def test_plain_http_only_to_this_machine() -> None:
    client = OAuth2Client("app", "http://login.example.com/token", device_url="http://login.example.com/device")
    with pytest.raises(errors.ConfigError, match="https"):
        refresh(client, "r")
    with pytest.raises(errors.ConfigError, match="https"):
        context().oauth2_device(client)
