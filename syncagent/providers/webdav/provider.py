"""The WebDAV provider (RFC 4918).

Listing: one PROPFIND with `Depth: infinity` where the server allows it,
else a walk with `Depth: 1` (a server that refuses infinity is remembered).
Uploads are streamed to a temp name beside the target and MOVEd over it, so
no reader ever sees half a file and a broken upload leaves no damaged
target: `Overwrite: F` makes "must not exist" the server's own check; an
expected ETag is checked just before the MOVE. The ETag is the rev (opaque:
servers differ). Modification times go with the upload as `X-OC-Mtime`
(Nextcloud, ownCloud, rclone) or by `PROPPATCH` of getlastmodified
(wsgidav, Apache with a writable property); which one works is learned
and kept in the pair's provider state. Content hashes come from
`oc:checksums` where the server keeps them (Nextcloud/ownCloud).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import IO, Any

import requests

from syncagent import errors, hashing
from syncagent.http import StallCheck
from syncagent.log import get_logger
from syncagent.paths import TEMP_PREFIX, TEMP_SUFFIX, is_temp_name, is_valid_name
from syncagent.providers.base import ANY, Capabilities, Expect, Kind, PairContext, Provider, Quota, RemoteEntry
from syncagent.providers.webdav import propfind
from syncagent.providers.webdav.streams import UploadBody
from syncagent.providers.webdav.transport import DEFAULT_TUNING, Dav, Tuning
from syncagent.resuming import ResumingReader
from syncagent.retry import Attempts

Entries = list[RemoteEntry]     # (inside the class, `list` is the listing method)
STALE_TEMP_NS = 86_400 * 1_000_000_000   # another machine's temp this old is a leftover
_MISSING_PARENT = {409: errors.NotFound}
_STATE_KEY = "webdav.learned"             # provider state: what this server was seen to do
_SLASHES = re.compile("/{2,}")
# Servers known to mangle the Destination header of MOVE/COPY (by their Server header): wsgidav 4
# unquotes it before parsing it as a URL, so '?' and ';' cut the name. Such targets are written in
# place and moved by copying through this machine.
DESTINATION_UNSAFE = {"wsgidav/": "?;"}


class WebDavProvider(Provider):
    name = "webdav"

    def __init__(self, url: str, root: str = "/", *, user: str | None = None, password: str | None = None,
                 auth: str = "auto", mtime: str = "auto", checksum: str = "auto", depth_infinity: bool = True,
                 transfers: int = 4, tuning: Tuning = DEFAULT_TUNING) -> None:
        self.dav = Dav(url, user, password, auth=auth, tuning=tuning)
        self.user = user
        self.root = "/".join(p for p in root.split("/") if p)
        self.tuning = tuning
        self.mtime_mode = mtime
        self.checksum = checksum
        self.learned: dict[str, Any] = {"infinity": depth_infinity}
        self._temps: dict[str, int] = {}
        self._skipped: dict[str, str] = {}
        self._lock = threading.Lock()
        self.destination_unsafe = ""
        self._body = propfind.body()          # every property until connect() has seen the server
        self.capabilities = Capabilities(
            hash_kind=None, server_move=True, server_copy=True, set_mtime=mtime in ("auto", "proppatch"),
            mtime_precision_ns=1_000_000_000, quota=True, transfers=transfers, expensive_bytes=True)

    # ---- set-up ------------------------------------------------------------------------------
    def connect(self) -> None:
        """The first request: checks the credentials (a wrong password is an AuthError here) and
        learns whether the server keeps oc:checksums (Nextcloud/ownCloud answer oc:fileid)."""
        response = self.dav.request("PROPFIND", "", headers={"Depth": "0", "Content-Type": "application/xml"},
                                    data=propfind.body(), ok=(404,), stream=True)
        with response:
            props = list(propfind.responses(response))
        server = response.headers.get("Server", "").lower()
        self.destination_unsafe = "".join(v for k, v in DESTINATION_UNSAFE.items() if k in server)
        nextcloud = any(p.fileid for p in props)
        kind = {"sha1": "sha1", "md5": "md5", "none": None}.get(self.checksum, "sha1" if nextcloud else None)
        self.capabilities = replace(self.capabilities, hash_kind=kind)
        # listings ask for oc:checksums and oc:fileid only where they can be answered (or are wanted)
        self._body = propfind.body(oc=nextcloud or kind is not None)

    def attach(self, pair: PairContext) -> None:
        super().attach(pair)
        with contextlib.suppress(ValueError, TypeError):
            self.learned.update(json.loads(pair.state.get(_STATE_KEY) or "{}"))
        self._apply_learned()

    def _learn(self, **facts: Any) -> None:
        with self._lock:
            if all(self.learned.get(k) == v for k, v in facts.items()):
                return
            self.learned.update(facts)
            self.pair.state.put(_STATE_KEY, json.dumps(self.learned, sort_keys=True))
        self._apply_learned()

    def _apply_learned(self) -> None:
        if self.mtime_mode == "auto" and self.learned.get("proppatch") is False:
            self.capabilities = replace(self.capabilities, set_mtime=False)

    def describe(self) -> str:
        return f"webdav {self.dav.base}{self.root}"

    def close(self) -> None:
        self.dav.close()

    # ---- paths -------------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        return f"{self.root}/{path}".strip("/") if path else self.root

    def _href_prefix(self, under: str) -> str:
        """The href path of folder `under`, ending in '/' (what its children's hrefs start with)."""
        return _SLASHES.sub("/", self.dav.base_path + self._rel(under)).rstrip("/") + "/"

    def _from_href(self, href: str, under: str, prefix: str | None = None) -> str | None:
        """The provider path of an href below folder `under` (None: the folder itself or outside)."""
        clean = _SLASHES.sub("/", href) if "//" in href else href
        prefix = prefix if prefix is not None else self._href_prefix(under)
        if not clean.startswith(prefix):
            return None
        rest = clean[len(prefix):].strip("/")
        if not rest:
            return None
        return f"{under}/{rest}" if under else rest

    # ---- listing -----------------------------------------------------------------------------
    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        self._temps, self._skipped = {}, {}
        if self.learned.get("infinity", True):
            try:
                yield from self._list_infinity(path)
                return
            except (errors.PermanentError, errors.Unsupported) as exc:
                get_logger().info("webdav: Depth infinity refused, walking folders", reason=str(exc))
                self._learn(infinity=False)
        yield from self._walk(path)

    def _list_infinity(self, path: str) -> Iterator[RemoteEntry]:
        # parse the whole answer before yielding: a refusal must come before any entry
        entries = list(self._propfind(path, "infinity"))
        yield from sorted(entries, key=lambda e: e.path)

    def _walk(self, path: str) -> Iterator[RemoteEntry]:
        """Folder by folder with Depth: 1, `Tuning.walkers` PROPFINDs in flight (a round trip
        per folder, one after the other, is what makes a walk slow on a real network)."""
        entries: Entries = []
        with ThreadPoolExecutor(max_workers=self.tuning.walkers, thread_name_prefix="webdav-walk") as pool:
            pending = {pool.submit(self._children, path)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    children = future.result()
                    entries.extend(children)
                    pending.update(pool.submit(self._children, e.path) for e in children if e.kind is Kind.DIR)
        yield from sorted(entries, key=lambda e: e.path)

    def _children(self, folder: str) -> Entries:
        return [*self._propfind(folder, "1")]

    def _propfind(self, folder: str, depth: str) -> Iterator[RemoteEntry]:
        response = self.dav.request("PROPFIND", self._rel(folder), folder=True, stream=True, path=folder,
                                    headers={"Depth": depth, "Content-Type": "application/xml"},
                                    data=self._body)
        prefix = self._href_prefix(folder)
        with response:
            for prop in propfind.responses(response):
                rel = self._from_href(prop.href, folder, prefix)
                if rel is not None and prop.status < 300:
                    entry = self._entry(rel, prop)
                    if entry is not None:
                        yield entry

    def _entry(self, path: str, prop: propfind.Prop) -> RemoteEntry | None:
        name = path.rpartition("/")[2]
        if is_temp_name(name):
            self._temps[path] = prop.mtime_ns
            return None
        if not is_valid_name(name) or "\\" in name:
            self._skipped[path] = "a name this machine cannot hold"
            return None
        kind = Kind.DIR if prop.is_dir else Kind.FILE
        kind_hash = self.capabilities.hash_kind
        digest = prop.checksums.get(kind_hash) if kind_hash and kind is Kind.FILE else None
        return RemoteEntry(path, kind, prop.size if kind is Kind.FILE else 0, prop.mtime_ns,
                           prop.etag if kind is Kind.FILE else "", digest, prop.fileid)

    def skipped(self) -> dict[str, str]:
        return dict(self._skipped)

    def stat(self, path: str) -> RemoteEntry:
        response = self.dav.request("PROPFIND", self._rel(path), stream=True, path=path,
                                    headers={"Depth": "0", "Content-Type": "application/xml"}, data=self._body)
        with response:
            props = list(propfind.responses(response))
        for prop in props:
            if prop.status < 300:
                entry = self._entry(path, prop) if path else RemoteEntry("", Kind.DIR)
                if entry is not None:
                    return entry
        raise errors.NotFound("no such file or folder", path=path)

    def _stat_or_none(self, path: str) -> RemoteEntry | None:
        try:
            return self.stat(path)
        except errors.NotFound:
            return None

    def root_exists(self) -> bool:
        return self._stat_or_none("") is not None

    def ensure_root(self) -> None:
        if self.root:
            self._mkcol_all(self.root)

    # ---- content -----------------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        etag = ""

        def open_at(start: int, attempts: Attempts) -> requests.Response:
            nonlocal etag
            headers = {"Accept-Encoding": "identity"}
            if start:
                headers["Range"] = f"bytes={start}-"
                if etag:
                    headers["If-Range"] = etag
            response = self.dav.request("GET", self._rel(path), stream=True, path=path, headers=headers,
                                        attempts=attempts)
            if not start:
                etag = response.headers.get("ETag", "")
            elif response.status_code == 200 and etag:
                response.close()    # If-Range did not match: the whole of a new version
                raise errors.Conflict("the file changed during the download", path=path)
            return response

        reader = ResumingReader(open_at, path, self.dav.policy.start(f"GET {path}", sleep=self.dav.sleep),
                                lambda: StallCheck(self.dav.timeouts, self.dav.url(self._rel(path)), path=path))
        return io_buffered(reader, self.tuning.chunk)

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        if self._unsafe(path):
            return self._write_in_place(path, stream, size, mtime_ns, expect)
        temp = self._temp_path(path)
        try:
            self._put(temp, stream, size, mtime_ns, path)
            self._mtime_after_put(temp, mtime_ns)
            if expect is not ANY and expect is not None:
                current = self._stat_or_none(path)
                if current is None or current.rev != expect:
                    raise errors.Conflict("the file changed on the server since it was listed", path=path)
            # Overwrite: F makes "must not exist" (expect=None) the server's own check
            self._transfer("MOVE", temp, path, overwrite=expect is not None, file_path=path,
                           exists=errors.Conflict)
        except BaseException:
            with contextlib.suppress(errors.ProviderError):
                self.dav.request("DELETE", self._rel(temp), ok=(404,), path=temp).close()
            raise
        return self.stat(path)

    def _unsafe(self, path: str) -> bool:
        return bool(self.destination_unsafe) and any(c in self.destination_unsafe for c in path)

    def _write_in_place(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, expect: Expect) -> RemoteEntry:
        """A PUT straight to the name, for a server that cannot MOVE a temp onto it: the
        expectation is checked first and sent as If-Match / If-None-Match."""
        headers: dict[str, str] = {}
        if expect is not ANY:
            current = self._stat_or_none(path)
            if (current is None) != (expect is None) or (current is not None and current.rev != expect):
                raise errors.Conflict("the file changed on the server since it was listed", path=path)
            headers = {"If-None-Match": "*"} if expect is None else {"If-Match": f'"{expect}"'}
        self._put(path, stream, size, mtime_ns, path, headers)
        self._mtime_after_put(path, mtime_ns)
        return self.stat(path)

    def _temp_path(self, path: str) -> str:
        head, _, _ = path.rpartition("/")
        name = f"{TEMP_PREFIX}{self.pair.tag}{secrets.token_hex(6)}{TEMP_SUFFIX}"
        return f"{head}/{name}" if head else name

    def _put(self, temp: str, stream: IO[bytes], size: int, mtime_ns: int, path: str,
             conditions: dict[str, str] | None = None) -> None:
        self.dav.prime()
        headers = {"Content-Type": "application/octet-stream", **(conditions or {})}
        if self.mtime_mode in ("auto", "x-oc-mtime") and mtime_ns:
            headers["X-OC-Mtime"] = str(mtime_ns // 1_000_000_000)
        kind = self.capabilities.hash_kind
        if kind in ("sha1", "md5") and stream.seekable():
            headers["OC-Checksum"] = f"{kind.upper()}:{_prehash(stream, size, kind, self.tuning.chunk)}"
        body = UploadBody(stream, size, self.tuning.chunk)
        self.dav.request("PUT", self._rel(temp), data=body, headers=headers, overrides=_MISSING_PARENT,
                         path=path).close()

    def _mtime_after_put(self, temp: str, mtime_ns: int) -> None:
        """Make sure the temp carries `mtime_ns` before it takes the name: learn
        whether X-OC-Mtime worked; PROPPATCH where it did not."""
        if not mtime_ns or self.mtime_mode == "none":
            return
        if self.mtime_mode == "x-oc-mtime" or self.learned.get("header"):
            return
        if self.mtime_mode == "auto" and self.learned.get("header") is None:
            got = self._stat_or_none(temp)
            if got is not None and abs(got.mtime_ns - mtime_ns) < 1_000_000_000:
                self._learn(header=True)
                return
            self._learn(header=False)
        if self.learned.get("proppatch") is not False:
            self._proppatch_mtime(temp, mtime_ns)

    def _proppatch_mtime(self, rel_path: str, mtime_ns: int) -> bool:
        response = self.dav.request("PROPPATCH", self._rel(rel_path), path=rel_path, ok=(403, 405, 409, 501),
                                    headers={"Content-Type": "application/xml"},
                                    data=propfind.proppatch_mtime(mtime_ns // 1_000_000_000), stream=True)
        with response:
            props = list(propfind.responses(response))
        accepted = response.status_code in (200, 207) and bool(props) and not any(p.failed for p in props)
        self._learn(proppatch=accepted)
        return accepted

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        if self.mtime_mode in ("none", "x-oc-mtime") or self.learned.get("proppatch") is False:
            raise errors.Unsupported("this WebDAV server cannot set a modification time alone", path=path)
        if not self._proppatch_mtime(path, mtime_ns):
            get_logger().info("webdav: the server keeps its own modification times", path=path)
        return self.stat(path)

    def content_hash(self, path: str) -> str | None:
        return self.stat(path).hash if self.capabilities.hash_kind else None

    # ---- folders, moves, deletes -----------------------------------------------------------
    def mkdir(self, path: str) -> RemoteEntry:
        self._mkcol_all(self._rel(path))
        return RemoteEntry(path, Kind.DIR)

    def _mkcol_all(self, rel: str) -> None:
        """MKCOL `rel` (a path below the base URL), creating missing parents on 409."""
        response = self.dav.request("MKCOL", rel, folder=True, ok=(405, 409, 301, 302))
        response.close()
        if response.status_code in (405, 301, 302):
            self._must_be_folder(rel)
        elif response.status_code == 409:
            parent = rel.rpartition("/")[0]
            if not parent:
                raise errors.NotFound("the WebDAV root folder does not exist", path=rel)
            self._mkcol_all(parent)
            self.dav.request("MKCOL", rel, folder=True, ok=(405,)).close()

    def _must_be_folder(self, rel: str) -> None:
        response = self.dav.request("PROPFIND", rel, stream=True, headers={"Depth": "0"},
                                    data=self._body, ok=(404,))
        with response:
            props = list(propfind.responses(response))
        if not any(p.is_dir for p in props):
            raise errors.AlreadyExists("a file has that name", path=rel)

    def move(self, src: str, dst: str) -> RemoteEntry:
        if self._unsafe(dst):
            entry = self._copy_by_hand(src, dst)
            self.delete(src, recursive=True)
            return entry
        self._transfer("MOVE", src, dst, overwrite=False, file_path=src)
        return self.stat(dst)

    def copy(self, src: str, dst: str) -> RemoteEntry:
        if self._unsafe(dst):
            return self._copy_by_hand(src, dst)
        self._transfer("COPY", src, dst, overwrite=False, file_path=src)
        return self.stat(dst)

    def _copy_by_hand(self, src: str, dst: str) -> RemoteEntry:
        """COPY through this machine, for a target name the server's MOVE/COPY would mangle."""
        entry = self.stat(src)
        if self._stat_or_none(dst) is not None:
            raise errors.AlreadyExists("the target exists", path=dst)
        if entry.kind is Kind.DIR:
            self.mkdir(dst)
            for child in list(self._propfind(src, "1")):
                self._copy_by_hand(child.path, dst + child.path[len(src):])
            return self.stat(dst)
        with self.read(src) as stream:
            return self._write_in_place(dst, stream, entry.size, entry.mtime_ns, None)

    def _transfer(self, method: str, src: str, dst: str, *, overwrite: bool, file_path: str,
                  exists: type[errors.ProviderError] = errors.AlreadyExists) -> None:
        """MOVE or COPY; 412 (Overwrite: F and the target exists) raises `exists`."""
        destination = self.dav.url(self._rel(dst))
        overrides = {412: exists, 409: errors.NotFound}
        self.dav.request(method, self._rel(src), idempotent=False, path=file_path, overrides=overrides,
                         headers={"Destination": destination, "Overwrite": "T" if overwrite else "F",
                                  "Depth": "infinity"}).close()

    def delete(self, path: str, *, recursive: bool = False) -> None:
        if not recursive:
            entry = self.stat(path)
            if entry.kind is Kind.DIR and any(True for _ in self._propfind(path, "1")):
                raise errors.Conflict("the folder is not empty", path=path)
        self.dav.request("DELETE", self._rel(path), path=path).close()

    def cleanup_temps(self) -> int:
        """Our own leftovers at once; anyone's only after a day."""
        mine = TEMP_PREFIX + self.pair.tag if self.pair.tag else None
        limit = time.time_ns() - STALE_TEMP_NS
        gone = 0
        for path, mtime_ns in list(self._temps.items()):
            name = path.rpartition("/")[2]
            if (mine is not None and name.startswith(mine)) or mtime_ns < limit:
                with contextlib.suppress(errors.ProviderError):
                    self.dav.request("DELETE", self._rel(path), ok=(404,), path=path).close()
                    gone += 1
        self._temps.clear()
        return gone

    def quota(self) -> Quota:
        response = self.dav.request("PROPFIND", self._rel(""), folder=True, stream=True,
                                    headers={"Depth": "0", "Content-Type": "application/xml"},
                                    data=propfind.body(quota=True))
        with response:
            props = list(propfind.responses(response))
        used = next((p.quota_used for p in props if p.quota_used is not None), None)
        if used is None:
            raise errors.Unsupported("this WebDAV server does not report a quota")
        free = next((p.quota_available for p in props if p.quota_available is not None), None)
        return Quota(used, used + free if free is not None and free >= 0 else None)


def _prehash(stream: IO[bytes], size: int, kind: str, chunk: int) -> str:
    """The checksum of the next `size` bytes of a seekable stream, which is put back where it was."""
    start = stream.tell()
    hasher = hashing.new_hasher(kind)
    left = size
    while left > 0:
        data = stream.read(min(chunk, left))
        if not data:
            break
        hasher.update(data)
        left -= len(data)
    stream.seek(start)
    return hasher.hexdigest()


def io_buffered(raw: ResumingReader, size: int) -> IO[bytes]:
    import io

    return io.BufferedReader(raw, size)
