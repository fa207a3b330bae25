"""SmartFile (REST API v2 + its rsync sync API) as a syncagent provider.

    SmartFileProvider(root="/folder", api_key=..., api_password=..., url=...)

(a configured remote is opened by login.py's open_provider, through the registry)

Transfers stream both ways; folder listings are paged; move/copy/remove are
server tasks (tasks.py); HTTP, retries and the error mapping live in
transport.py. SmartFile has no conditional write, so `expect` is checked with
a stat just before the upload: a writer racing us inside that window wins.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any
from zoneinfo import ZoneInfo

import requests
import requests.auth

from syncagent import errors
from syncagent.http import StallCheck, new_session
from syncagent.log import add_secret
from syncagent.providers.base import ANY, Capabilities, Expect, Kind, Provider, RemoteEntry, walk_breadth_first
from syncagent.providers.smartfile.entries import MTIME, SHA256, STAMP, Paths, stamp_of, to_entry, trusted, valid_name
from syncagent.providers.smartfile.multipart import MultipartBody, ShortStream
from syncagent.providers.smartfile.removal import Removal
from syncagent.providers.smartfile.tasks import run_task
from syncagent.providers.smartfile.transport import Api, Tuning, error_for
from syncagent.resuming import ResumingReader
from syncagent.retry import Attempts

DEFAULT_URL = "https://app.smartfile.com/"
USER_AGENT_SUFFIX = "smartfile (API v2)"


def make_auth(api_key: str | None, api_password: str | None, client_token: str | None,
              client_secret: str | None, access_token: str | None, access_secret: str | None
              ) -> requests.auth.AuthBase:
    """HTTP Basic with key:password, or OAuth 1.0a PLAINTEXT signed by requests-oauthlib."""
    for value in (api_key, api_password, client_secret, access_token, access_secret):
        add_secret(value)
    if client_token and client_secret and access_token and access_secret:
        from oauthlib.oauth1 import SIGNATURE_PLAINTEXT
        from requests_oauthlib import OAuth1

        auth: requests.auth.AuthBase = OAuth1(
            client_token, client_secret=client_secret, resource_owner_key=access_token,
            resource_owner_secret=access_secret, signature_method=SIGNATURE_PLAINTEXT)
        return auth
    if api_key and api_password:
        return requests.auth.HTTPBasicAuth(api_key, api_password)
    raise errors.ConfigError("smartfile needs an API key and password, or OAuth client and access tokens")


class SmartFileProvider(Provider):
    name = "smartfile"
    capabilities = Capabilities(
        hash_kind="sha256",        # our own attribute: only on files this agent wrote, None otherwise
        delta=True, delta_hash="md4",  # librsync 0.9.7 formats (spec §7)
        server_move=True, server_copy=True,
        change_feed=False,         # no feed: the engine diffs listings
        set_mtime=True,            # kept in a custom attribute; `time` itself cannot be set
        ids=False,                 # whether `id` survives a rename is undocumented
        forbidden_chars="\\\x00",    # an upload's file name is cut at the last '\\' (Django basename)
        max_name_length=255,       # no documented limit; a common file system's
        mtime_precision_ns=1_000_000_000,
        mtime_revs=True,           # rev includes `time`, in 1 s steps
        transfers=4,
    )

    def __init__(self, root: str = "/", *, api_key: str | None = None, api_password: str | None = None,
                 url: str = DEFAULT_URL, session: requests.Session | None = None,
                 client_token: str | None = None, client_secret: str | None = None,
                 access_token: str | None = None, access_secret: str | None = None,
                 timezone: str = "UTC", tuning: Tuning | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        auth = make_auth(api_key, api_password, client_token, client_secret, access_token, access_secret)
        self._own_session = session is None
        self.tuning = tuning or Tuning()
        if session is None:
            session = new_session(self.tuning.timeouts, user_agent_suffix=USER_AGENT_SUFFIX,
                                  pool_size=max(4, self.capabilities.transfers * 2))
        self.url = url
        self.paths = Paths(root)
        self.tz = ZoneInfo(timezone)
        self.api = Api(url, session, self.tuning, auth, sleep)

    def describe(self) -> str:
        return f"smartfile:{urllib.parse.urlsplit(self.url).netloc}{self.paths.root}"

    def close(self) -> None:
        if self._own_session:
            self.api.session.close()

    def whoami(self) -> str:
        """Who the credentials belong to, for `syncagent auth` (spec §4.2):
        "username <email> on site NAME", plus the owner of a sub-user."""
        data = self.api.json("GET", "whoami")
        user = data.get("user") if isinstance(data, dict) else None
        if not isinstance(user, dict) or not user.get("username"):
            raise errors.PermanentError("SmartFile's whoami answer names no user")
        text = str(user["username"])
        if user.get("email"):
            text += f" <{user['email']}>"
        owner = user.get("owner")
        if isinstance(owner, dict) and owner.get("username"):
            text += f", a user of {owner['username']}"
        site = data.get("site")
        if isinstance(site, dict) and site.get("name"):
            text += f" on site {site['name']}"
        return text

    # ---- listing -------------------------------------------------------------------
    def _info(self, path: str, **params: Any) -> dict[str, Any]:
        info = self.api.json("GET", "path/info", self.paths.abs(path), params=params or None, error_path=path)
        if not isinstance(info, dict):
            raise errors.PermanentError("SmartFile sent a malformed info object", path=path)
        return info

    def stat(self, path: str) -> RemoteEntry:
        return to_entry(path, self._info(path), self.tz)

    def root_exists(self) -> bool:
        try:
            return bool(self._info("").get("isdir"))
        except errors.NotFound:
            return False

    def ensure_root(self) -> None:
        if self.paths.root != "/":
            self._mkdir_abs(self.paths.root, "")

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        """Breadth first, page by page: memory holds one page and the folder queue."""
        yield from walk_breadth_first(path.strip("/"), self._children)

    def _children(self, folder: str) -> Iterator[RemoteEntry]:
        for name, info in self._child_infos(folder):
            yield to_entry(f"{folder}/{name}" if folder else name, info, self.tz)

    def _child_infos(self, folder: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(name, info object) of each child, page by page."""
        seen: set[str] = set()
        page = 1
        while True:
            data = self._info(folder, children="true", limit=self.tuning.page_size, page=page)
            for info in data.get("children") or []:
                name = info.get("name") if isinstance(info, dict) else None
                if not isinstance(name, str) or not valid_name(name) or name in seen:
                    continue  # a name no file system can hold, or a repeat across shifting pages
                seen.add(name)
                yield name, info
            if page >= int(data.get("pages") or 1):
                return
            page += 1

    # ---- content -------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        url = self.api.url("path/data", self.paths.abs(path))

        def open_at(start: int, attempts: Attempts) -> requests.Response:
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
            return self.api.call("GET", "path/data", self.paths.abs(path), stream=True, headers=headers,
                                 error_path=path, attempts=attempts)

        raw = ResumingReader(open_at, path, self.api.attempts("GET path/data"),
                             lambda: StallCheck(self.tuning.timeouts, url, path=path))
        return io.BufferedReader(raw, buffer_size=min(self.tuning.chunk, 1 << 20))

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        parent, name = Paths.parent(path), Paths.name(path)
        if any(c in name for c in self.capabilities.forbidden_chars):
            raise errors.InvalidName("SmartFile cannot store this name", path=path)
        self._check_expect(path, expect)
        body = _Resendable("file", name, stream, size, path)
        try:
            response = self.api.call("POST", "path/data", self.paths.abs(parent), body=body.next,
                                     error_path=path)
        except ShortStream as exc:
            raise errors.TransientError(str(exc), path=path) from exc
        info = _uploaded(response, name, path)
        if int(info.get("size") or 0) != size:
            raise errors.TransientError(f"SmartFile stored {info.get('size')} of {size} bytes", path=path)
        return self._remember(path, info, mtime_ns, body.sha256())

    def _remember(self, path: str, info: dict[str, Any], mtime_ns: int, sha256: str) -> RemoteEntry:
        """Store mtime and hash beside the content (see entries.py), stamped with it."""
        attrs = [f"{MTIME}={mtime_ns}", f"{SHA256}={sha256}", f"{STAMP}={stamp_of(info)}"]
        data = self.api.json("POST", "path/info", self.paths.abs(path), data={"attributes": attrs},
                             error_path=path)
        if not (isinstance(data, dict) and "attributes" in data):
            data = self._info(path)  # the answer's shape is undocumented
        return to_entry(path, data, self.tz)

    def _check_expect(self, path: str, expect: Expect) -> None:
        if expect is ANY:
            return
        try:
            current: RemoteEntry | None = self.stat(path)
        except errors.NotFound:
            current = None
        if expect is None and current is not None:
            raise errors.Conflict("appeared since it was listed", path=path)
        if expect is not None and (current is None or current.kind is Kind.DIR or current.rev != expect):
            raise errors.Conflict("changed since it was listed", path=path)

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        info = self._info(path)
        if info.get("isdir"):
            return to_entry(path, info, self.tz)
        # a hash we cannot vouch for is cleared, or the new stamp would bless it
        return self._remember(path, info, mtime_ns, trusted(info).get(SHA256, ""))

    # ---- folders and server-side operations -------------------------------------------
    def mkdir(self, path: str) -> RemoteEntry:
        return to_entry(path, self._mkdir_abs(self.paths.abs(path), path), self.tz)

    def _mkdir_abs(self, absolute: str, path: str) -> dict[str, Any]:
        info = self.api.json("POST", "path/oper/mkdir", data={"path": absolute}, error_path=path,
                             on_conflict=errors.AlreadyExists)
        if not isinstance(info, dict) or not info.get("isdir"):
            info = self.api.json("GET", "path/info", absolute, error_path=path)  # undocumented answer shape
            if not isinstance(info, dict) or not info.get("isdir"):
                raise errors.AlreadyExists("a file has that name", path=path)
        return info

    def _rename_abs(self, src: str, dst: str, path: str) -> None:
        self.api.call("POST", "path/oper/rename", data={"src": src, "dst": dst}, safe=False,
                      error_path=path, on_conflict=errors.AlreadyExists)

    def _task(self, op: str, form: dict[str, Any], path: str) -> None:
        run_task(self.api, op, form, error_path=path, relative=self._relative)

    def _relative(self, absolute: str) -> str:
        root = self.paths.root.rstrip("/")
        return absolute[len(root):].strip("/") if absolute.startswith(root + "/") else absolute

    def _refuse_existing(self, path: str) -> None:
        try:
            self._info(path)
        except errors.NotFound:
            return
        raise errors.AlreadyExists("destination exists", path=path)

    def move(self, src: str, dst: str) -> RemoteEntry:
        self._refuse_existing(dst)
        sp, dp = Paths.parent(src), Paths.parent(dst)
        if sp == dp:  # a rename is one synchronous call
            self._rename_abs(self.paths.abs(src), self.paths.abs(dst), src)
            return self.stat(dst)
        self.mkdir(dp)
        self._move_into(self.paths.abs(src), self.paths.abs(dp), Paths.name(dst), src)
        return self.stat(dst)

    def _move_into(self, src: str, folder: str, new_name: str, path: str) -> None:
        """Move task into `folder` (the name is kept), then rename there. When
        the old name is taken in the target folder, travel under a temp name."""
        old_name = src.rpartition("/")[2]
        if old_name != new_name and self._exists_abs(f"{folder.rstrip('/')}/{old_name}"):
            temp = f"{src.rpartition('/')[0]}/.syncagent-move-{secrets.token_hex(6)}"
            self._rename_abs(src, temp, path)
            src, old_name = temp, temp.rpartition("/")[2]
        self._task("move", {"src": src, "dst": folder}, path)
        if old_name != new_name:
            self._rename_abs(f"{folder.rstrip('/')}/{old_name}", f"{folder.rstrip('/')}/{new_name}", path)

    def _exists_abs(self, absolute: str) -> bool:
        try:
            self.api.call("GET", "path/info", absolute)
        except errors.NotFound:
            return False
        return True

    def copy(self, src: str, dst: str) -> RemoteEntry:
        self._refuse_existing(dst)
        original = self.stat(src)
        self._copy(src, dst)
        if original.kind is Kind.DIR:
            return self.stat(dst)
        # the copy is a new file with a new `time`: carry mtime and hash over
        return self._remember(dst, self._info(dst), original.mtime_ns, original.hash or "")

    def _copy(self, src: str, dst: str) -> None:
        dp = Paths.parent(dst)
        self.mkdir(dp)
        if Paths.parent(src) != dp and Paths.name(src) == Paths.name(dst):
            self._task("copy", {"src": self.paths.abs(src), "dst": self.paths.abs(dp)}, src)
            return
        # copy keeps the name, so a copy under a new name goes through a staging folder
        stage = f"/.syncagent-copy-{secrets.token_hex(6)}"
        self._mkdir_abs(stage, src)
        try:
            self._task("copy", {"src": self.paths.abs(src), "dst": stage}, src)
            self._move_into(f"{stage}/{Paths.name(src)}", self.paths.abs(dp), Paths.name(dst), src)
        except BaseException:
            with contextlib.suppress(errors.ProviderError):  # the first error is the one to report
                self._task("remove", {"path": stage}, src)
            raise
        self._task("remove", {"path": stage}, src)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        if not path.strip("/"):
            raise errors.PermanentError("refusing to delete the root folder", path=self.paths.root)
        if not recursive:
            info = self._info(path)
            if info.get("isdir") and int(info.get("items") or 0) > 0:
                raise errors.AlreadyExists("the folder is not empty", path=path)
        # SmartFile removes folders recursively: the check above keeps the promise
        self._task("remove", {"path": self.paths.abs(path)}, path)

    def delete_many(self, paths: Sequence[tuple[str, bool]]) -> dict[str, Exception]:
        """Many paths per remove task (`path=` repeated, spec §4.10): one task's
        latency for a whole batch instead of one per path. See removal.py."""
        return Removal(self.api, self.paths, self.tuning.batch, self._child_infos).run(paths)

    # ---- the sync (rsync) API -----------------------------------------------------------
    def signature(self, path: str, out: IO[bytes]) -> None:
        response = self.api.call("GET", "path/sync/signature", self.paths.abs(path), stream=True, error_path=path)
        self._drain(response, out, path)

    def delta(self, path: str, signature: IO[bytes], out: IO[bytes]) -> None:
        with _sized(signature) as (sig, size):
            body = _Resendable("signature", "signature", sig, size, path)
            response = self.api.call("POST", "path/sync/delta", self.paths.abs(path), body=body.next,
                                     stream=True, error_path=path)
        self._drain(response, out, path)

    def _drain(self, response: requests.Response, out: IO[bytes], path: str) -> None:
        """A streamed answer (signature, delta) into `out`, failing a stalled body."""
        stall = StallCheck(self.tuning.timeouts, response.url or self.url, path=path)
        try:
            with response:
                for chunk in response.iter_content(1 << 16):
                    stall.progress(len(chunk))
                    out.write(chunk)
        except requests.RequestException as exc:
            raise error_for(exc=exc, path=path, url=response.url or self.url) from exc

    def patch(self, path: str, delta: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        self._check_expect(path, expect)
        with _sized(delta) as (stream, length):
            body = _Resendable("delta", "delta", stream, length, path)
            # not safe to repeat blindly: a second patch would apply to the patched file
            info = self.api.json("POST", "path/sync/patch", self.paths.abs(path), body=body.next, safe=False,
                                 error_path=path)
        if not (isinstance(info, dict) and "size" in info):
            info = self._info(path)
        if int(info.get("size") or 0) != size:
            raise errors.TransientError(f"the patched file has {info.get('size')} bytes, not {size}", path=path)
        return self._remember(path, info, mtime_ns, "")


class _Resendable:
    """Builds a fresh multipart body per attempt, rewinding the source."""

    def __init__(self, field: str, filename: str, stream: IO[bytes], size: int, path: str) -> None:
        self.field, self.filename, self.stream, self.size, self.path = field, filename, stream, size, path
        self.start = _position(stream)
        self.body: MultipartBody | None = None

    def next(self) -> dict[str, Any]:
        if self.body is not None:
            if self.start is None:
                raise errors.TransientError("cannot resend a stream that cannot rewind", path=self.path)
            self.stream.seek(self.start)
        self.body = MultipartBody(self.field, self.filename, self.stream, self.size)
        return {"data": self.body, "headers": {"Content-Type": self.body.content_type}}

    def sha256(self) -> str:
        return self.body.sha256.hexdigest() if self.body is not None else ""


class _sized:
    """(stream, size) for a stream of unknown length: measured when seekable,
    else spooled to a temp file first."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.spool: IO[bytes] | None = None

    def __enter__(self) -> tuple[IO[bytes], int]:
        here = _position(self.stream)
        if here is not None:
            size = self.stream.seek(0, io.SEEK_END) - here
            self.stream.seek(here)
            return self.stream, size
        self.spool = tempfile.TemporaryFile()
        while chunk := self.stream.read(1 << 20):
            self.spool.write(chunk)
        size = self.spool.tell()
        self.spool.seek(0)
        return self.spool, size

    def __exit__(self, *exc: object) -> None:
        if self.spool is not None:
            self.spool.close()


def _position(stream: IO[bytes]) -> int | None:
    """Where a rewindable stream stands; None for a pipe or a read-only wrapper."""
    seekable = getattr(stream, "seekable", None)
    try:
        return stream.tell() if seekable is not None and seekable() else None
    except (OSError, ValueError):
        return None


def _uploaded(response: requests.Response, name: str, path: str) -> dict[str, Any]:
    """The stored file's info: the answer is a list (older docs) or one object (newer clients)."""
    try:
        body: Any = response.json()
    except ValueError as exc:
        raise errors.PermanentError("SmartFile sent a non-JSON answer to an upload", path=path) from exc
    items = body if isinstance(body, list) else [body]
    for info in items:
        if isinstance(info, dict) and info.get("name") == name:
            return info
    if len(items) == 1 and isinstance(items[0], dict):
        return items[0]
    raise errors.PermanentError("SmartFile's upload answer does not name the file", path=path)
