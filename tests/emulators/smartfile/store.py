"""The SmartFile account the emulator serves: a tree of folders and files.

Metadata lives in memory; file contents live as blobs in a temp folder, so a
20 MiB upload never sits in RAM. Every change of the tree happens under one
lock; a new content is written to a fresh blob first and swapped in under the
lock, so a reader never sees half a file (uploads and patches are atomic).
"""

from __future__ import annotations

import itertools
import mimetypes
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

MAX_NAME = 255  # emulator policy (the spec names no limit)


class ApiError(Exception):
    """An answer other than success: status plus a body the way SmartFile shapes it."""

    def __init__(self, status: int, body: dict[str, Any] | str) -> None:
        super().__init__(status, body)
        self.status, self.body = status, body


def detail(status: int, message: str) -> ApiError:
    return ApiError(status, {"detail": message})


def field_error(status: int, name: str, message: str) -> ApiError:
    """DRF serializer style: {"src": ["..."]}; the official client reads src, then path."""
    return ApiError(status, {name: [message]})


@dataclass
class Node:
    name: str
    isdir: bool
    id: int
    mtime: float
    attributes: dict[str, str] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)
    blob: Path | None = None
    size: int = 0


def split_path(path: str) -> list[str]:
    """'/a//b/' -> ['a', 'b']; trailing slashes never mean "folder" (the
    official client appends one to every URL)."""
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if p in (".", "..") or "\x00" in p or len(p.encode()) > MAX_NAME:
            raise detail(400, f"Invalid path component: {p[:40]!r}")
    return parts


def join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class Store:
    def __init__(self, blob_dir: Path, clock: Callable[[], float], tz: tzinfo = UTC) -> None:
        self.blob_dir = blob_dir
        self.clock, self.tz = clock, tz
        self.lock = threading.RLock()
        self._ids = itertools.count(7)
        self._blobs = itertools.count(1)
        self.root = self._node("", True)

    def _node(self, name: str, isdir: bool) -> Node:
        return Node(name, isdir, next(self._ids), self.clock())

    # ---- lookup -----------------------------------------------------------------
    def find(self, parts: list[str]) -> Node | None:
        node = self.root
        for name in parts:
            if not node.isdir or name not in node.children:
                return None
            node = node.children[name]
        return node

    def get(self, parts: list[str], field_name: str = "detail") -> Node:
        node = self.find(parts)
        if node is None:
            message = f"Path {join(parts)} does not exist."
            raise field_error(404, field_name, message) if field_name != "detail" else detail(404, message)
        return node

    def folder(self, parts: list[str], status: int = 409) -> Node:
        node = self.find(parts)
        if node is None or not node.isdir:
            raise detail(status, "Can only upload to an existing directory")
        return node

    # ---- blobs ------------------------------------------------------------------
    def new_blob(self) -> Path:
        return self.blob_dir / f"blob-{next(self._blobs)}"

    def blob_from(self, stream: IO[bytes]) -> tuple[Path, int]:
        path = self.new_blob()
        with open(path, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 16)
            size = out.tell()
        return path, size

    def open_blob(self, node: Node) -> IO[bytes]:
        assert node.blob is not None
        return open(node.blob, "rb")

    # ---- changes ----------------------------------------------------------------
    def mkdir(self, parts: list[str]) -> Node:
        with self.lock:
            node = self.root
            for name in parts:
                child = node.children.get(name)
                if child is None:
                    child = node.children[name] = self._node(name, True)
                    node.mtime = self.clock()
                elif not child.isdir:
                    raise detail(409, f"A file exists at {join(parts)}")
                node = child
            return node

    def put_file(self, folder: Node, name: str, blob: Path, size: int) -> Node:
        with self.lock:
            old = folder.children.get(name)
            if old is not None and old.isdir:
                os.unlink(blob)
                raise detail(409, f"{name} is a directory")
            if old is None:
                old = folder.children[name] = self._node(name, False)
                folder.mtime = self.clock()
            self._drop_blob(old)
            # attributes survive an overwrite (policy): clients must not trust them blindly
            old.blob, old.size, old.mtime = blob, size, self.clock()
            return old

    def replace_content(self, node: Node, blob: Path, size: int) -> None:
        with self.lock:
            self._drop_blob(node)
            node.blob, node.size, node.mtime = blob, size, self.clock()

    def detach(self, parts: list[str]) -> Node:
        with self.lock:
            self.get(parts)
            parent = self.get(parts[:-1])
            node = parent.children.pop(parts[-1])
            parent.mtime = self.clock()
            return node

    def attach(self, folder: Node, node: Node, name: str) -> None:
        with self.lock:
            if name in folder.children:
                raise detail(409, f"{name} already exists")
            node.name = name
            folder.children[name] = node
            folder.mtime = self.clock()

    def clone(self, node: Node) -> Node:
        copy = self._node(node.name, node.isdir)
        copy.attributes = dict(node.attributes)
        if node.isdir:
            copy.children = {k: self.clone(v) for k, v in node.children.items()}
        else:
            with self.open_blob(node) as src:
                copy.blob, copy.size = self.blob_from(src)
        return copy

    def discard(self, node: Node) -> None:
        for child in node.children.values():
            self.discard(child)
        self._drop_blob(node)

    def _drop_blob(self, node: Node) -> None:
        if node.blob is not None:
            # an open download keeps reading the unlinked blob (POSIX semantics)
            node.blob.unlink(missing_ok=True)
            node.blob = None

    # ---- presentation -----------------------------------------------------------
    def stamp(self, t: float) -> str:
        """Naive 'YYYY-MM-DDTHH:MM:SS' in the configured zone (UTC unless told)."""
        return datetime.fromtimestamp(int(t), self.tz).strftime("%Y-%m-%dT%H:%M:%S")

    def info(self, node: Node, parts: list[str], base_url: str) -> dict[str, Any]:
        path = join(parts)
        return {
            "id": node.id, "name": node.name, "path": path,
            "isdir": node.isdir, "isfile": not node.isdir,
            "size": self.total_size(node) if node.isdir else node.size,
            "items": len(node.children) if node.isdir else None,
            "mime": "application/x-directory" if node.isdir else _mime(node.name),
            "extension": "" if node.isdir else os.path.splitext(node.name)[1],
            "time": self.stamp(node.mtime),
            "acl": {"list": True, "read": True, "remove": True, "write": True},
            "attributes": dict(node.attributes), "tags": [], "owner": None,
            "url": f"{base_url}api/2/path/info{_quote_path(path)}",
        }

    def total_size(self, node: Node) -> int:
        return sum(self.total_size(c) if c.isdir else c.size for c in node.children.values())

    def walk(self, node: Node, parts: list[str]) -> Iterator[tuple[list[str], Node]]:
        yield parts, node
        for name, child in node.children.items():
            yield from self.walk(child, [*parts, name])


def _mime(name: str) -> str:
    guess = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guess


def _quote_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path) if path != "/" else "/"
