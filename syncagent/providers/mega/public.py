"""Public links opened with no account (spec §5.10): `g` with the public
handle, the name from the attributes decrypted with the key in the link,
then the usual verified download."""

from __future__ import annotations

import io
import os

from syncagent import errors
from syncagent.paths import is_valid_name
from syncagent.providers.mega.api import DEFAULT_API, Api
from syncagent.providers.mega.filecrypt import FileKey
from syncagent.providers.mega.fingerprint import Fingerprint
from syncagent.providers.mega.keys import decrypt_attrs
from syncagent.providers.mega.links import parse_link
from syncagent.providers.mega.transfer import DownloadStream, download_url
from syncagent.providers.registry import PublicFile

API_ENV = "MEGA_API_URL"   # another API endpoint (a test server, a mirror)


def open_public(url: str, api: Api | None = None) -> PublicFile:
    """The file a public link names, ready to stream."""
    try:
        link = parse_link(url)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from None
    if link.folder:
        raise errors.Unsupported("MEGA folder links cannot be downloaded yet; give a file link")
    api = api or Api(os.environ.get(API_ENV) or DEFAULT_API)
    key = FileKey.unpack(link.key)
    dl, size, at = download_url(api, {"a": "g", "p": link.handle})
    attrs = decrypt_attrs(at, key.key)
    if attrs is None:
        raise errors.AuthError("the key in this MEGA link does not open the file (a wrong or cut key)")
    name = attrs.get("n")
    if not isinstance(name, str) or not is_valid_name(name):
        name = link.handle   # never a path from the link's owner: a name only
    c = attrs.get("c")
    fp = Fingerprint.parse(c) if isinstance(c, str) else None
    stream = io.BufferedReader(DownloadStream(api, dl, size, key, str(name)), 1 << 20)
    return PublicFile(str(name), size, fp.mtime * 1_000_000_000 if fp else 0, stream)
