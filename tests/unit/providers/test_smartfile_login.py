"""SmartFile's login flows through the registry: key + password, and the
three-legged OAuth 1.0a exchange against the emulator."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from syncagent.credentials import Resolver, read_credentials_file
from syncagent.providers import registry
from syncagent.providers.registry import LoginContext
from tests.emulators.fixtures import CLIENT_SECRET, CLIENT_TOKEN, smartfile_emulator


def test_oauth_three_legged_login_stores_the_access_tokens(tmp_path: Path) -> None:
    (tmp_path / "emu").mkdir()
    said: list[str] = []

    def prompt(text: str, secret: bool = False) -> str:
        assert text == "verifier"
        url = re.search(r"https?://\S+", said[-1])
        assert url is not None, said
        page = requests.get(url.group(0), timeout=10).text     # the user presses "Allow"
        return page.rsplit(":", 1)[1].strip()

    resolver = Resolver(environ={}, netrc_file=tmp_path / "none", credentials_file=tmp_path / "creds.yaml",
                        use_keyring=False)
    with smartfile_emulator(tmp_path / "emu", oauth=f"{CLIENT_TOKEN}:{CLIENT_SECRET}") as emu:
        options = {"url": emu.base_url}
        given = {"oauth": True, "client_token": CLIENT_TOKEN, "client_secret": CLIENT_SECRET}
        ctx = LoginContext("sf", options, given, prompt=prompt, echo=said.append, open_browser=lambda url: False)
        done = registry.login("sf", "smartfile", options, ctx, resolver=resolver)
        stored = read_credentials_file(tmp_path / "creds.yaml")["sf"]
        assert set(stored) == {"client_token", "client_secret", "access_token", "access_secret"}
        assert done.who is not None
        # the stored tokens open the remote with no key or password anywhere
        with registry.open_remote("sf", "smartfile", options, resolver=resolver) as provider:
            provider.ensure_root()
            assert provider.root_exists()
