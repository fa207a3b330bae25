"""Public links (spec §4.12, §5.10), both spellings:

    https://mega.nz/file/<handle>#<key>        https://mega.nz/folder/<handle>#<key>
    https://mega.co.nz/#!<handle>!<key>        https://mega.nz/#F!<handle>!<key>

The key after '#' never reaches a server: a file link carries the packed
32-byte file key, a folder link the 16-byte folder key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from syncagent.providers.mega.codec import BadEncoding, b64dec, b64enc

LINK_HOST = "https://mega.nz"
_HOSTS = r"(?:https?://)?(?:www\.)?mega(?:\.co)?\.nz"
_NEW = re.compile(_HOSTS + r"/(file|folder)/([A-Za-z0-9_-]{8})#([A-Za-z0-9_,-]+)(?:[/?].*)?$")
_OLD = re.compile(_HOSTS + r"/?#(F?)!([A-Za-z0-9_-]{8})!([A-Za-z0-9_,-]+)$")


@dataclass(frozen=True)
class PublicLink:
    handle: str
    key: bytes
    folder: bool

    def url(self) -> str:
        return f"{LINK_HOST}/{'folder' if self.folder else 'file'}/{self.handle}#{b64enc(self.key)}"


def is_link(text: str) -> bool:
    return bool(_NEW.match(text.strip()) or _OLD.match(text.strip()))


def parse_link(text: str) -> PublicLink:
    """The handle and key of a MEGA link; ValueError when it is not one."""
    text = text.strip()
    m = _NEW.match(text)
    if m is not None:
        folder = m.group(1) == "folder"
    else:
        m = _OLD.match(text)
        if m is None:
            raise ValueError("not a MEGA link (expected https://mega.nz/file/HANDLE#KEY or the #!HANDLE!KEY form)")
        folder = m.group(1) == "F"
    try:
        key = b64dec(m.group(3))
    except BadEncoding:
        raise ValueError("the key in the MEGA link is not valid base64") from None
    if len(key) != (16 if folder else 32):
        raise ValueError(f"the key in the MEGA {'folder' if folder else 'file'} link has the wrong length")
    return PublicLink(m.group(2), key, folder)
