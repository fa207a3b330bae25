"""What the emulated MEGA server keeps (spec §7 "State"): accounts and
sessions, nodes with their opaque `a`/`k` blobs, file ciphertext on disk,
upload sessions, download tokens, public handles, and per-user event logs
with their `sn` values. One lock guards it all; a condition wakes long polls.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulators.mega.accounts import Account, b64, new_handle
from tests.emulators.mega.chunks import fits_chunks


class ApiError(Exception):
    """A MEGA error code for one command (or, at request level, the whole batch)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


@dataclass
class Node:
    h: str
    p: str
    u: str
    t: int
    a: str = ""
    k: str = ""
    s: int = 0
    ts: int = 0
    blob: Path | None = None      # ciphertext of a file
    ph: str | None = None         # public handle, once `l` made one

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"h": self.h, "p": self.p, "u": self.u, "t": self.t, "a": self.a, "k": self.k,
                               "ts": self.ts}
        if self.t == 0:
            out["s"] = self.s
        return out


@dataclass
class Upload:
    owner: str
    size: int
    path: Path
    received: list[tuple[int, int]] = field(default_factory=list)   # (offset, length), disjoint
    raw_token: bool = False       # `u` had v >= 2: the last chunk answers 36 raw bytes
    token: bytes | None = None    # set when the last byte arrived
    created: float = field(default_factory=time.time)

    @property
    def done(self) -> int:
        return sum(length for _, length in self.received)


@dataclass
class EventLog:
    """Packets in order; `marks[sn]` is how many packets precede position `sn`."""

    packets: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    latest: str = ""

    def __post_init__(self) -> None:
        self.advance()

    def advance(self) -> str:
        sn = b64(secrets.token_bytes(8))
        while sn in self.marks:
            sn = b64(secrets.token_bytes(8))
        self.marks[sn] = len(self.packets)
        self.latest = sn
        return sn


class Store:
    def __init__(self, folder: Path, clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.accounts: dict[str, Account] = {}          # handle -> account
        self.by_email: dict[str, Account] = {}
        self.sessions: dict[str, str] = {}              # sid -> user handle
        self.nodes: dict[str, Node] = {}
        self.uploads: dict[str, Upload] = {}            # url token -> upload
        self.completed: dict[str, Upload] = {}          # completion token (b64) -> upload, until `p`
        self.downloads: dict[str, str] = {}             # url token -> node handle
        self.public: dict[str, str] = {}                # public handle -> node handle
        self.logs: dict[str, EventLog] = {}
        self.quota = 20 << 30

    # ---- accounts -----------------------------------------------------------------
    def add_account(self, account: Account) -> Account:
        with self.lock:
            self.accounts[account.handle] = account
            if account.email:
                self.by_email[account.email] = account
            self.logs[account.handle] = EventLog()
            for t in (2, 3, 4):
                node = Node(self.new_node_handle(), "", account.handle, t, ts=int(self.clock()))
                self.nodes[node.h] = node
                account.roots[t] = node.h
            return account

    def user_of(self, sid: str | None) -> Account | None:
        with self.lock:
            handle = self.sessions.get(sid or "")
            return self.accounts.get(handle) if handle else None

    def new_node_handle(self) -> str:
        h = new_handle(6)
        while h in self.nodes or h in self.public:
            h = new_handle(6)
        return h

    # ---- nodes ----------------------------------------------------------------------
    def node(self, handle: Any, owner: str) -> Node:
        node = self.nodes.get(handle) if isinstance(handle, str) else None
        if node is None or node.u != owner:
            raise ApiError(-9)
        return node

    def children(self, handle: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.p == handle]

    def subtree(self, node: Node) -> Iterator[Node]:
        """`node` first, then its descendants, parents before children."""
        yield node
        for child in self.children(node.h):
            yield from self.subtree(child)

    def is_inside(self, node: Node, folder: Node) -> bool:
        at: Node | None = folder
        while at is not None:
            if at.h == node.h:
                return True
            at = self.nodes.get(at.p) if at.p else None
        return False

    def remove(self, node: Node) -> None:
        for n in list(self.subtree(node)):
            del self.nodes[n.h]
            if n.ph:
                self.public.pop(n.ph, None)
            if n.blob is not None:
                n.blob.unlink(missing_ok=True)

    def used(self, owner: str) -> int:
        return sum(n.s for n in self.nodes.values() if n.u == owner and n.t == 0)

    # ---- events ---------------------------------------------------------------------
    def emit(self, owner: str, packets: list[dict[str, Any]]) -> None:
        with self.lock:
            log = self.logs[owner]
            log.packets.extend(packets)
            log.advance()
            self.changed.notify_all()

    # ---- transfers -------------------------------------------------------------------
    def new_upload(self, owner: str, size: int, raw_token: bool) -> str:
        token = b64(secrets.token_bytes(24))
        fd, name = _tempfile(self.folder, "ul-")
        os.close(fd)
        with self.lock:
            self.uploads[token] = Upload(owner, size, Path(name), raw_token=raw_token)
        return token

    def receive(self, token: str, offset: int, data_size: int, write: Callable[[Path], None]) -> Upload:
        """Record a chunk POST; ERANGE (-7) unless it starts and ends on chunk boundaries and
        overlaps nothing received before (an exact repeat is accepted: a client retrying a
        chunk whose answer it lost)."""
        with self.lock:
            upload = self.uploads.get(token)
            if upload is None:
                raise ApiError(-8)
            end = offset + data_size
            if (offset, data_size) in upload.received:
                return upload
            if end > upload.size or not fits_chunks(offset, end, upload.size) or \
                    any(offset < o + n and o < end for o, n in upload.received) or (data_size == 0 and upload.size):
                raise ApiError(-7)
        write(upload.path)
        with self.lock:
            upload.received.append((offset, data_size))
            if upload.done == upload.size and upload.token is None:
                upload.token = secrets.token_bytes(36)
                self.completed[b64(upload.token)] = upload
            return upload

    def take_completed(self, token: Any, owner: str) -> Upload:
        with self.lock:
            try:
                raw = b64(_unb64_any(token)) if isinstance(token, str) else ""
            except ValueError:
                raw = ""
            upload = self.completed.get(raw)
            if upload is None or upload.owner != owner:
                raise ApiError(-9)
            del self.completed[raw]
            for key, value in list(self.uploads.items()):
                if value is upload:
                    del self.uploads[key]
            return upload

    def new_download(self, node: Node) -> str:
        token = b64(secrets.token_bytes(24))
        with self.lock:
            self.downloads[token] = node.h
        return token

    def close(self) -> None:
        with self.lock:
            self.changed.notify_all()


def _unb64_any(text: str) -> bytes:
    """A token in either base64 alphabet, padded or not."""
    clean = text.replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(clean + "=" * (-len(clean) % 4))


def _tempfile(folder: Path, prefix: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=prefix, dir=folder)
