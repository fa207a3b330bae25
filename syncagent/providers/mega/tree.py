"""The account's node tree, decrypted: handles, parents, names, keys and
fingerprints, with the name index that maps paths to nodes.

Nodes arrive from `f` (the whole tree) and from `sc` action packets (spec
§4.13): `t` adds or re-inserts nodes, `u` changes attributes, `d` removes a
subtree. `wire()` gives a node back in the server's form, still encrypted,
which is what provider state stores: decryption needs the master key, which
lives with the session secret, not in the state database.

Two nodes of one name in a folder are legal on MEGA; such names are
ambiguous as paths, so they (and everything below them) are skipped.

A node's content never changes (a new version is a new node), so the
sha256 this client stores in a file's attributes at upload stays true for
that node whatever later renames do to the attributes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from syncagent.paths import is_valid_name, nfc
from syncagent.providers.mega import keys
from syncagent.providers.mega.codec import BadEncoding, b64dec
from syncagent.providers.mega.filecrypt import FileKey
from syncagent.providers.mega.fingerprint import Fingerprint

FILE, FOLDER, ROOT, INBOX, RUBBISH = 0, 1, 2, 3, 4
DIGEST_ATTR = "sa:sha256"      # our attribute: MEGA clients keep attributes they do not know
_SHA256 = re.compile(r"[0-9a-f]{64}")
ROOT_TYPES = (ROOT, INBOX, RUBBISH)


@dataclass(slots=True)
class Node:
    handle: str
    parent: str
    type: int
    owner: str
    a: str                         # encrypted attributes, as stored on the server
    k: str                         # key list, as stored on the server
    size: int = 0
    ts: int = 0
    name: str | None = None        # None: the key or attributes did not decrypt
    key: bytes | None = None       # folder: 16 bytes; file: the packed 32 bytes
    fingerprint: Fingerprint | None = None
    digest: str | None = None      # the sha256 syncagent stores beside the fingerprint (its own uploads)

    @property
    def is_folder(self) -> bool:
        return self.type != FILE

    @property
    def attr_key(self) -> bytes | None:
        if self.key is None:
            return None
        return FileKey.unpack(self.key).key if self.type == FILE else self.key

    @property
    def mtime(self) -> int:
        return self.fingerprint.mtime if self.fingerprint is not None else self.ts

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"h": self.handle, "p": self.parent, "t": self.type, "u": self.owner,
                               "a": self.a, "k": self.k, "ts": self.ts}
        if self.type == FILE:
            out["s"] = self.size
        return out


class Ambiguous(Exception):
    """A path whose name (somewhere along it) two nodes share."""


class Tree:
    """Thread-safe: transfers run in parallel and each updates the tree."""

    def __init__(self, user: str, master_key: bytes) -> None:
        self.user = user
        self.keys: dict[str, bytes] = {user: master_key}     # key-list handle -> wrapping key
        self.nodes: dict[str, Node] = {}
        self.kids: dict[str, dict[str, list[str]]] = {}     # parent -> NFC name -> handles
        self.opaque: dict[str, set[str]] = {}                # parent -> handles that did not decrypt
        self.roots: dict[int, str] = {}
        self.sn = ""
        self.lock = threading.RLock()

    # ---- loading ---------------------------------------------------------------------
    def add_share_keys(self, ok: Any) -> None:
        """Share keys from `f`'s `ok` list: {h, k} with k under the master key."""
        for item in ok if isinstance(ok, list) else []:
            if isinstance(item, dict) and isinstance(item.get("h"), str) and isinstance(item.get("k"), str):
                try:
                    raw = b64dec(item["k"])
                except BadEncoding:
                    continue
                if len(raw) == 16:
                    self.keys[item["h"]] = keys.ecb_decrypt(self.keys[self.user], raw)

    def add(self, raw: dict[str, Any]) -> Node | None:
        """Insert or replace a node given in the server's form."""
        node = self._decode(raw)
        if node is None:
            return None
        with self.lock:
            old = self.nodes.get(node.handle)
            if old is not None:
                self._unindex(old)
            self.nodes[node.handle] = node
            self._index(node)
            if node.type in ROOT_TYPES:
                self.roots[node.type] = node.handle
            return node

    def _decode(self, raw: dict[str, Any]) -> Node | None:
        h, t = raw.get("h"), raw.get("t")
        if not isinstance(h, str) or not isinstance(t, int) or isinstance(t, bool):
            return None
        node = Node(h, str(raw.get("p") or ""), t, str(raw.get("u") or ""), str(raw.get("a") or ""),
                    str(raw.get("k") or ""), _int(raw.get("s")), _int(raw.get("ts")))
        if t in ROOT_TYPES:
            node.name = {ROOT: "Cloud Drive", INBOX: "Vault", RUBBISH: "Rubbish Bin"}[t]
            return node
        self.decrypt(node)
        return node

    def decrypt(self, node: Node) -> None:
        """Fill name, key and fingerprint from the encrypted fields (left None on failure)."""
        node.key = keys.decrypt_node_key(node.k, self.keys) if node.k else None
        if node.key is None or len(node.key) != (32 if node.type == FILE else 16):
            node.key = None
            return
        attrs = keys.decrypt_attrs(node.a, node.attr_key or b"")
        name = attrs.get("n") if attrs else None
        node.name = name if isinstance(name, str) else None
        c = attrs.get("c") if attrs else None
        node.fingerprint = Fingerprint.parse(c) if isinstance(c, str) else None
        digest = attrs.get(DIGEST_ATTR) if attrs else None
        node.digest = digest if isinstance(digest, str) and _SHA256.fullmatch(digest) else None

    # ---- the name index ----------------------------------------------------------------
    def _index(self, node: Node) -> None:
        if node.parent and node.name is not None:
            self.kids.setdefault(node.parent, {}).setdefault(nfc(node.name), []).append(node.handle)
        elif node.parent and node.type not in ROOT_TYPES:
            self.opaque.setdefault(node.parent, set()).add(node.handle)

    def _unindex(self, node: Node) -> None:
        self.opaque.get(node.parent, set()).discard(node.handle)
        if not node.parent or node.name is None:
            return
        names = self.kids.get(node.parent, {})
        handles = names.get(nfc(node.name), [])
        if node.handle in handles:
            handles.remove(node.handle)
        if not handles:
            names.pop(nfc(node.name), None)

    def set_attrs(self, handle: str, a: str, k: str | None = None) -> Node | None:
        with self.lock:
            node = self.nodes.get(handle)
            if node is None:
                return None
            self._unindex(node)
            node.a = a
            if k is not None:
                node.k = k
            self.decrypt(node)
            self._index(node)
            return node

    def remove(self, handle: str) -> list[Node]:
        """Take a node and its subtree out; returns them, the node first."""
        with self.lock:
            node = self.nodes.get(handle)
            if node is None:
                return []
            gone = list(self.subtree(node))
            self._unindex(node)
            for n in gone:
                self.nodes.pop(n.handle, None)
                self.kids.pop(n.handle, None)
                self.opaque.pop(n.handle, None)
            return gone

    def move(self, handle: str, parent: str) -> None:
        with self.lock:
            node = self.nodes[handle]
            self._unindex(node)
            node.parent = parent
            self._index(node)

    # ---- reading ---------------------------------------------------------------------------
    def children(self, handle: str) -> Iterator[tuple[str, list[Node]]]:
        """(NFC name, nodes of that name) below a folder, by name."""
        with self.lock:
            names = sorted(self.kids.get(handle, {}).items())
        for name, handles in names:
            yield name, [self.nodes[h] for h in handles if h in self.nodes]

    def subtree(self, node: Node) -> Iterator[Node]:
        yield node
        for _, nodes in self.children(node.handle):
            for child in nodes:
                yield from self.subtree(child)

    def child(self, parent: str, name: str) -> Node | None:
        """The node called `name` in `parent`; Ambiguous if there are several."""
        with self.lock:
            handles = self.kids.get(parent, {}).get(nfc(name), [])
            if len(handles) > 1:
                raise Ambiguous(name)
            return self.nodes.get(handles[0]) if handles else None

    def resolve(self, base: str, path: str) -> Node | None:
        node = self.nodes.get(base)
        for name in [p for p in path.split("/") if p]:
            if node is None or not node.is_folder:
                return None
            node = self.child(node.handle, name)
        return node

    def path_of(self, handle: str, base: str) -> str | None:
        """The '/'-path of a node below `base` ("" for base itself); None when it is
        elsewhere (another root, the Rubbish Bin) or its chain is broken."""
        parts: list[str] = []
        with self.lock:
            node = self.nodes.get(handle)
            for _ in range(10_000):
                if node is None:
                    return None
                if node.handle == base:
                    return "/".join(reversed(parts))
                if node.name is None or not node.parent:
                    return None
                parts.append(nfc(node.name))
                node = self.nodes.get(node.parent)
        return None

    def walk(self, base: str, prefix: str = "") -> Iterator[tuple[str, Node | None, str]]:
        """(path, node, why skipped) for everything below `base`, depth first by name.
        A skipped path comes with node None and a reason; its subtree is not walked."""
        for name, nodes in self.children(base):
            path = f"{prefix}/{name}" if prefix else name
            if len(nodes) > 1:
                yield path, None, f"{len(nodes)} items named {name!r} in one MEGA folder"
                continue
            if not is_valid_name(name):
                yield path, None, "a name that cannot be a local file name"
                continue
            node = nodes[0]
            yield path, node, ""
            if node.is_folder:
                yield from self.walk(node.handle, path)
        with self.lock:
            opaque = sorted(self.opaque.get(base, ()))
        for handle in opaque:
            yield f"{prefix}/{handle}" if prefix else handle, None, "a MEGA node this account's keys cannot decrypt"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
