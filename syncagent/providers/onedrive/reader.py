"""A OneDrive download (spec §5.7): the shared resuming reader
(syncagent/resuming.py) over the item's pre-authenticated
`@microsoft.graph.downloadUrl` (fetched without the bearer token). If the
URL has expired when a break is resumed, the item is asked for again and
must still have the same cTag and size (the same content), else the
download fails with Conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from syncagent import errors
from syncagent.http import StallCheck
from syncagent.providers.onedrive.transport import Graph
from syncagent.resuming import ResumingReader
from syncagent.retry import Attempts

_STALE_URL = (errors.AuthError, errors.NotFound, errors.PermanentError)


def download_reader(graph: Graph, meta: Callable[[], dict[str, Any]], path: str) -> ResumingReader:
    """A raw reader of the file at `path`; `meta()` fetches its item."""
    item = meta()
    if "file" not in item:
        raise errors.NotFound("not a file", path=path)
    size, ctag = int(item.get("size") or 0), item.get("cTag")
    url = _url_of(item, path)

    def open_at(start: int, attempts: Attempts) -> requests.Response:
        nonlocal url
        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            return graph.call("GET", url, auth=False, stream=True, path=path, headers=headers, attempts=attempts)
        except _STALE_URL:
            fresh = meta()          # the URL expired: a fresh one, for the same content only
            if fresh.get("cTag") != ctag or int(fresh.get("size") or 0) != size:
                raise errors.Conflict("the file changed during the download", path=path) from None
            url = _url_of(fresh, path)
            return graph.call("GET", url, auth=False, stream=True, path=path, headers=headers, attempts=attempts)

    return ResumingReader(open_at, path, graph.attempts(f"download {path[-60:]}"),
                          lambda: StallCheck(graph.tuning.timeouts, url, path=path), size=size)


def _url_of(item: dict[str, Any], path: str) -> str:
    url = item.get("@microsoft.graph.downloadUrl")
    if not isinstance(url, str) or not url:
        raise errors.PermanentError("OneDrive gave no download URL", path=path)
    return url
