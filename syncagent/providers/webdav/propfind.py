"""PROPFIND request bodies and the parsing of `207 Multi-Status` answers.

The answer is parsed as it streams in (`iterparse`, each <response> dropped
once read), so a Depth: infinity listing of a big tree does not sit in
memory as one XML document.
"""

from __future__ import annotations

import email.utils
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, cast

import requests

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"

PROPS = ("resourcetype", "getcontentlength", "getlastmodified", "getetag")
OC_PROPS = ("checksums", "fileid")
QUOTA_PROPS = ("quota-used-bytes", "quota-available-bytes")


def body(*, quota: bool = False) -> bytes:
    """The <propfind> naming the properties a listing needs (oc: ones are
    answered by Nextcloud/ownCloud and reported missing by others)."""
    names = [f"<d:{p}/>" for p in (QUOTA_PROPS if quota else PROPS)]
    if not quota:
        names += [f"<oc:{p}/>" for p in OC_PROPS]
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>'
            + "".join(names) + "</d:prop></d:propfind>").encode()


def proppatch_mtime(mtime_s: int) -> bytes:
    date = email.utils.formatdate(mtime_s, usegmt=True)
    return ('<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
            f"<d:getlastmodified>{date}</d:getlastmodified>"
            "</d:prop></d:set></d:propertyupdate>").encode()


@dataclass
class Prop:
    """One <response>: the decoded href path and the properties the server answered with 200."""

    href: str
    is_dir: bool = False
    size: int = 0
    mtime_ns: int = 0
    etag: str = ""
    checksums: dict[str, str] = field(default_factory=dict)
    fileid: str | None = None
    quota_used: int | None = None
    quota_available: int | None = None
    status: int = 200
    failed: set[str] = field(default_factory=set)   # properties answered with an error status


def clean_etag(value: str | None) -> str:
    """An ETag without W/ and quotes: headers and PROPFIND spell it differently."""
    tag = (value or "").strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag.strip('"')


def href_path(href: str) -> str:
    """The decoded path of an href (absolute URL or absolute path)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(href.strip()).path)


def responses(response: requests.Response) -> Iterator[Prop]:
    """The <response> elements of a streamed 207 answer (nothing for any other status)."""
    if response.status_code != 207:
        return iter(())
    raw = cast(IO[bytes], response.raw)
    response.raw.decode_content = True
    return parse(raw)


def parse(stream: IO[bytes]) -> Iterator[Prop]:
    """The <response> elements of a multistatus body, as they arrive."""
    for _event, elem in ET.iterparse(stream, events=("end",)):
        if elem.tag == DAV + "response":
            prop = _response(elem)
            elem.clear()
            if prop is not None:
                yield prop


def _status_code(text: str | None) -> int:
    parts = (text or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200


def _response(elem: ET.Element) -> Prop | None:
    href = elem.findtext(DAV + "href")
    if href is None:
        return None
    prop = Prop(href_path(href), status=_status_code(elem.findtext(DAV + "status")))
    for propstat in elem.findall(DAV + "propstat"):
        ok = _status_code(propstat.findtext(DAV + "status")) < 300
        for p in propstat.findall(DAV + "prop"):
            for child in p:
                if ok:
                    _read(prop, child)
                else:
                    prop.failed.add(child.tag)
    return prop


def _read(prop: Prop, child: ET.Element) -> None:
    tag, text = child.tag, (child.text or "").strip()
    if tag == DAV + "resourcetype":
        prop.is_dir = child.find(DAV + "collection") is not None
    elif tag == DAV + "getcontentlength" and text.isdigit():
        prop.size = int(text)
    elif tag == DAV + "getlastmodified" and text:
        prop.mtime_ns = _http_date_ns(text)
    elif tag == DAV + "getetag":
        prop.etag = clean_etag(text)
    elif tag == OC + "checksums":
        prop.checksums = parse_checksums(" ".join((c.text or "") for c in child.iter(OC + "checksum")))
    elif tag == OC + "fileid" and text:
        prop.fileid = text
    elif tag == DAV + "quota-used-bytes" and text.lstrip("-").isdigit():
        prop.quota_used = int(text)
    elif tag == DAV + "quota-available-bytes" and text.lstrip("-").isdigit():
        prop.quota_available = int(text)


def parse_checksums(text: str) -> dict[str, str]:
    """'SHA1:ab12 MD5:cd34 ADLER32:..' -> {'sha1': 'ab12', 'md5': 'cd34', ...}."""
    out: dict[str, str] = {}
    for token in text.split():
        kind, sep, value = token.partition(":")
        if sep and value:
            out[kind.strip().lower().replace("-", "")] = value.strip().lower()
    return out


def _http_date_ns(text: str) -> int:
    try:
        return int(email.utils.parsedate_to_datetime(text).timestamp()) * 1_000_000_000
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0
