"""SmartFile's three-legged OAuth 1.0a flow (PLAINTEXT), for `syncagent auth`.

The endpoints live at the site root, not under /api/2/ (spec §3.2).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from syncagent import errors


def _session(url: str, client_token: str, client_secret: str, **tokens: str):  # type: ignore[no-untyped-def]
    from oauthlib.oauth1 import SIGNATURE_PLAINTEXT
    from requests_oauthlib import OAuth1Session

    return OAuth1Session(client_token, client_secret=client_secret, signature_method=SIGNATURE_PLAINTEXT,
                         **tokens)


def three_legged(url: str, client_token: str, client_secret: str,
                 ask_verifier: Callable[[str], str]) -> tuple[str, str]:
    """Run the flow: request token, the user authorizes at the URL given to
    `ask_verifier` (which returns the verifier), access token. Returns
    (access token, access secret)."""
    base = url if url.endswith("/") else url + "/"
    try:
        session = _session(base, client_token, client_secret, callback_uri="oob")
        request = session.fetch_request_token(urllib.parse.urljoin(base, "oauth/request_token/"))
        authorize = session.authorization_url(urllib.parse.urljoin(base, "oauth/authorize/"))
        verifier = ask_verifier(authorize).strip()
        session = _session(base, client_token, client_secret, resource_owner_key=request["oauth_token"],
                           resource_owner_secret=request["oauth_token_secret"], verifier=verifier)
        access = session.fetch_access_token(urllib.parse.urljoin(base, "oauth/access_token/"))
    except errors.SyncAgentError:
        raise
    except Exception as exc:
        raise errors.AuthError(f"SmartFile refused the OAuth exchange ({type(exc).__name__})") from None
    return str(access["oauth_token"]), str(access["oauth_token_secret"])
