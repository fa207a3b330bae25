"""SmartFile REST API v2 provider (spec: /work/shared/specs/smartfile.md).

    provider.py   the Provider: listing, transfers, folders, tasks, sync API
    transport.py  URLs, retries, throttling, the one HTTP-error mapping
    entries.py    info objects -> RemoteEntry (mtime/hash kept in attributes)
    multipart.py  a streaming multipart body
    reader.py     a download stream that resumes with Range
    tasks.py      move/copy/remove tasks polled until SUCCESS/FAILURE
"""

from syncagent.providers.smartfile.provider import DEFAULT_URL, SmartFileProvider, make_auth
from syncagent.providers.smartfile.transport import Tuning, error_for

__all__ = ["DEFAULT_URL", "SmartFileProvider", "Tuning", "error_for", "make_auth"]
