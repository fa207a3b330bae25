"""PROPFIND request bodies and the parsing of `207 Multi-Status` answers.

The answer is parsed as it streams in (`iterparse`, each <response> dropped
once read), so a Depth: infinity listing of a big tree does not sit in
memory as one XML document.
"""

from __future__ import annotations

import calendar
import email.utils
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, cast

import requests

DAV = "{DAV:}"
OC = "{http://owncloud.org/ns}"

PROPS = ("resourcetype", "getcontentlength", "getlastmodified", "getetag")
OC_PROPS = ("checksums", "fileid")
QUOTA_PROPS = ("quota-used-bytes", "quota-available-bytes")


def body(*, quota: bool = False, oc: bool = True) -> bytes:
    """The <propfind> naming the properties a listing needs. The oc: ones (`oc`) are answered
    by Nextcloud/ownCloud; other servers report them missing for every entry, which costs them
    (wsgidav: a quarter of a 10,000-entry listing) and us (a failed propstat per entry) both."""
    names = [f"<d:{p}/>" for p in (QUOTA_PROPS if quota else PROPS)]
    if oc and not quota:
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
    href = href.strip()
    # the usual form, an absolute path, without urlsplit's cost (10,000 hrefs in a listing)
    path = href.partition("?")[0].partition("#")[0] if href.startswith("/") else urllib.parse.urlsplit(href).path
    return urllib.parse.unquote(path) if "%" in path else path


def responses(response: requests.Response) -> Iterator[Prop]:
    """The <response> elements of a streamed 207 answer (nothing for any other status)."""
    if response.status_code != 207:
        return iter(())
    raw = cast(IO[bytes], response.raw)
    response.raw.decode_content = True
    return parse(raw)


_RESPONSE, _HREF, _STATUS, _PROPSTAT, _PROP = (DAV + t for t in ("response", "href", "status", "propstat", "prop"))


def parse(stream: IO[bytes]) -> Iterator[Prop]:
    """The <response> elements of a multistatus body, as they arrive."""
    for _event, elem in ET.iterparse(stream, events=("end",)):
        if elem.tag == _RESPONSE:
            prop = _response(elem)
            elem.clear()
            if prop is not None:
                yield prop


_statuses: dict[str | None, int] = {}


def _status_code(text: str | None) -> int:
    """'HTTP/1.1 404 Not Found' -> 404 (200 when absent or unreadable); a handful of distinct lines."""
    code = _statuses.get(text)
    if code is None:
        parts = (text or "").split()
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200
        if len(_statuses) < 64:
            _statuses[text] = code
    return code


def _response(elem: ET.Element) -> Prop | None:
    """One <response>, its children read in one pass (a listing has one per entry)."""
    prop = Prop("")
    href: str | None = None
    for child in elem:
        tag = child.tag
        if tag == _PROPSTAT:
            _propstat(prop, child)
        elif tag == _HREF:
            href = child.text
        elif tag == _STATUS:
            prop.status = _status_code(child.text)
    if href is None:
        return None
    prop.href = href_path(href)
    return prop


def _propstat(prop: Prop, propstat: ET.Element) -> None:
    status = propstat.find(_STATUS)
    ok = status is None or _status_code(status.text) < 300
    for props in propstat.iterfind(_PROP):
        for item in props:
            if not ok:
                prop.failed.add(item.tag)
                continue
            reader = _READERS.get(item.tag)
            if reader is not None:
                reader(prop, item, (item.text or "").strip())


def _resourcetype(prop: Prop, item: ET.Element, _text: str) -> None:
    prop.is_dir = item.find(_COLLECTION) is not None


def _length(prop: Prop, _item: ET.Element, text: str) -> None:
    if text.isdigit():
        prop.size = int(text)


def _modified(prop: Prop, _item: ET.Element, text: str) -> None:
    if text:
        prop.mtime_ns = http_date_ns(text)


def _etag(prop: Prop, _item: ET.Element, text: str) -> None:
    prop.etag = clean_etag(text)


def _checksums(prop: Prop, item: ET.Element, _text: str) -> None:
    prop.checksums = parse_checksums(" ".join((c.text or "") for c in item.iter(OC + "checksum")))


def _fileid(prop: Prop, _item: ET.Element, text: str) -> None:
    if text:
        prop.fileid = text


def _quota_used(prop: Prop, _item: ET.Element, text: str) -> None:
    if text.lstrip("-").isdigit():
        prop.quota_used = int(text)


def _quota_available(prop: Prop, _item: ET.Element, text: str) -> None:
    if text.lstrip("-").isdigit():
        prop.quota_available = int(text)


_COLLECTION = DAV + "collection"
_READERS: dict[str, Callable[[Prop, ET.Element, str], None]] = {
    DAV + "resourcetype": _resourcetype, DAV + "getcontentlength": _length,
    DAV + "getlastmodified": _modified, DAV + "getetag": _etag, OC + "checksums": _checksums,
    OC + "fileid": _fileid, DAV + "quota-used-bytes": _quota_used,
    DAV + "quota-available-bytes": _quota_available,
}


def parse_checksums(text: str) -> dict[str, str]:
    """'SHA1:ab12 MD5:cd34 ADLER32:..' -> {'sha1': 'ab12', 'md5': 'cd34', ...}."""
    out: dict[str, str] = {}
    for token in text.split():
        kind, sep, value = token.partition(":")
        if sep and value:
            out[kind.strip().lower().replace("-", "")] = value.strip().lower()
    return out


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}


def http_date_ns(text: str) -> int:
    """An HTTP date in ns since the epoch (0 if unreadable). The form servers send
    (RFC 9110's IMF-fixdate, 'Sun, 06 Nov 1994 08:49:37 GMT') is read directly; anything
    else (RFC 850, asctime, other zones) through email.utils."""
    parts = text.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:
        hms = parts[4].split(":")
        if len(hms) == 3 and parts[1].isdigit() and parts[3].isdigit() and all(x.isdigit() for x in hms) \
                and 1 <= int(parts[1]) <= 31 and int(hms[0]) < 24 and int(hms[1]) < 60 and int(hms[2]) <= 60:
            try:
                stamp = calendar.timegm((int(parts[3]), _MONTHS[parts[2]], int(parts[1]),
                                         int(hms[0]), int(hms[1]), int(hms[2]), 0, 0, 0))
            except (ValueError, OverflowError):
                return 0
            return stamp * 1_000_000_000
    try:
        return int(email.utils.parsedate_to_datetime(text).timestamp()) * 1_000_000_000
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0
