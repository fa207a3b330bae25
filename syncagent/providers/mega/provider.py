"""MEGA as a syncagent provider: end-to-end encrypted, so every name and
byte is encrypted here before it leaves and decrypted here after it comes.

    MegaProvider(api, session, root="/Backups", hard_delete=False)

The tree comes from `f` and the `sc` feed (treefeed.py) and lives in
provider state; paths map to node handles through it. A file's rev is its
node handle (a new upload is a new node) with the fingerprint's mtime; its
hash is the sha256 this client keeps in the node's attributes. Deletes and overwritten versions go
to the Rubbish Bin unless `hard_delete`. Two nodes of one name in a folder
are skipped and reported, never read as a deletion.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from syncagent import errors
from syncagent.paths import is_valid_name, nfc
from syncagent.providers.base import (
    ANY,
    Capabilities,
    ChangeBatch,
    Deleted,
    Expect,
    Kind,
    PairContext,
    Provider,
    Quota,
    RemoteEntry,
)
from syncagent.providers.mega import keys
from syncagent.providers.mega.api import Api, code_of, error_for
from syncagent.providers.mega.filecrypt import FileKey
from syncagent.providers.mega.fingerprint import Fingerprint, mtime_seconds
from syncagent.providers.mega.links import PublicLink
from syncagent.providers.mega.session import Session
from syncagent.providers.mega.transfer import Uploader, open_download, seal, unseal
from syncagent.providers.mega.tree import DIGEST_ATTR, FILE, FOLDER, ROOT, RUBBISH, Ambiguous, Node
from syncagent.providers.mega.treefeed import FeedReset, TreeFeed

BATCH = 100        # commands per /cs request in batched deletes
Commands = list[dict[str, Any]]   # (`list` is a method name inside the class)


class MegaProvider(Provider):
    name = "mega"
    capabilities = Capabilities(
        # sha256 of the plaintext, in an encrypted attribute of the files this client uploads; other
        # clients' files have none (the engine compares those by content). MEGA's own fingerprint
        # (kind "mega", written as `c` on every upload) samples large files, so it cannot tell an
        # edit inside an unsampled block made within the same second: not safe as the base's hash.
        hash_kind="sha256",
        delta=False,
        server_move=True,
        server_copy=False,
        change_feed=True,          # the `sc` channel
        set_mtime=True,            # the fingerprint's mtime, rewritten with `a`
        ids=True,                  # node handles survive renames and moves
        max_name_length=255,
        mtime_precision_ns=1_000_000_000,
        links=True,
        quota=True,
        transfers=4,
    )

    def __init__(self, api: Api, session: Session, root: str = "/", *, hard_delete: bool = False,
                 label: str = "", name: str = "", on_session: Callable[[Session], None] | None = None,
                 relogin: Callable[[], Session] | None = None) -> None:
        self.api = api
        self.session = session
        self.root_path = "/".join(p for p in root.split("/") if p)
        self.hard_delete = hard_delete
        self.label = label or session.user
        self.remote_name = name
        self._on_session = on_session
        self._relogin = relogin
        api.sid = session.sid
        api.relogin = self._fresh_sid
        self._feed: TreeFeed | None = None
        self._skipped: dict[str, str] = {}
        self._origin = secrets.token_urlsafe(8)[:10]
        self._mkdir_lock = threading.Lock()

    # ---- session and tree --------------------------------------------------------------
    def _fresh_sid(self) -> str:
        if self._relogin is None:
            remote = f" {self.remote_name}" if self.remote_name else ""
            raise errors.AuthError(f"the MEGA session has expired and no password is at hand: "
                                   f"run `syncagent auth{remote}`")
        self.session = self._relogin()
        if self._on_session is not None:
            self._on_session(self.session)
        return self.session.sid

    def attach(self, pair: PairContext) -> None:
        super().attach(pair)
        self._feed = None

    @property
    def feed(self) -> TreeFeed:
        if self._feed is None:
            self._feed = TreeFeed(self.api, self.session.user, self.session.master_key, self.pair.state)
        return self._feed

    def _base(self) -> Node:
        tree = self.feed.ensure()
        try:
            node = tree.resolve(tree.roots[ROOT], self.root_path)
        except Ambiguous as exc:
            raise errors.PermanentError(f"two MEGA items are named {exc} on the way to the root folder") from None
        if node is None or not node.is_folder:
            raise errors.NotFound("the root folder does not exist on MEGA", path="/" + self.root_path)
        return node

    def _node(self, path: str) -> Node:
        try:
            node = self.feed.tree.resolve(self._base().handle, path)
        except Ambiguous as exc:
            raise errors.PermanentError(f"MEGA holds two or more items named {exc} here; rename one of them "
                                        "in MEGA", path=path) from None
        if node is None:
            raise errors.NotFound("no such file or folder on MEGA", path=path)
        return node

    def _entry(self, path: str, node: Node) -> RemoteEntry:
        spelling = node.name if node.name is not None and node.name != nfc(node.name) else None
        if node.type == FILE:
            return RemoteEntry(path, Kind.FILE, node.size, node.mtime * 1_000_000_000, f"{node.handle}@{node.mtime}",
                               node.digest, node.handle, spelling)
        return RemoteEntry(path, Kind.DIR, 0, node.ts * 1_000_000_000, node.handle, None, node.handle, spelling)

    # ---- listing ---------------------------------------------------------------------------
    def root_exists(self) -> bool:
        try:
            self._base()
        except errors.NotFound:
            return False
        return True

    def ensure_root(self) -> None:
        if self.root_path:
            self._mkdirs(self.feed.ensure().roots[ROOT], self.root_path.split("/"))

    def stat(self, path: str) -> RemoteEntry:
        return self._entry(path, self._node(path))

    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        """Below `path` as the tree knows it; a listing of everything first brings the
        tree up to date (one `sc` request), as `changes` does."""
        if not path:
            with contextlib.suppress(FeedReset):   # reloaded: current anyway
                self.feed.poll(self._base().handle)
        return self._walk(path)

    def _walk(self, path: str) -> Iterator[RemoteEntry]:
        start = self._node(path) if path else self._base()
        skipped: dict[str, str] = {}
        for rel, node, why in self.feed.tree.walk(start.handle, path):
            if node is None:
                skipped[rel] = why
            else:
                yield self._entry(rel, node)
        if not path:
            self._skipped = skipped
        else:
            self._skipped.update(skipped)

    def skipped(self) -> dict[str, str]:
        return dict(self._skipped)

    def changes(self, cursor: str | None) -> ChangeBatch:
        """From the `sc` feed: the paths touched since `cursor` (one request when nothing
        happened); a full listing for no cursor, a lost position or a skipped name."""
        feed = self.feed
        feed.ensure()
        try:
            base = self._base().handle
            feed.poll(base)
        except FeedReset:
            return self._full(reset=cursor is not None)
        except errors.NotFound:
            return ChangeBatch([], feed.position, reset=True)
        if cursor is None:
            return self._full(reset=False)
        paths = feed.since(cursor)
        if paths is None:
            return self._full(reset=True)
        found: list[RemoteEntry | Deleted] = []
        for path in sorted(paths):
            try:
                node = feed.tree.resolve(base, path)
            except Ambiguous:
                return self._full(reset=True)   # a name that became two: only a full run may skip it
            if node is not None and not all(is_valid_name(p) for p in path.split("/")):
                return self._full(reset=True)
            found.append(self._entry(path, node) if node is not None else Deleted(path))
        return ChangeBatch(found, feed.position)

    def _full(self, *, reset: bool) -> ChangeBatch:
        entries: list[RemoteEntry | Deleted] = list(self._walk(""))
        return ChangeBatch(entries, self.feed.position, reset=reset)

    # ---- content ---------------------------------------------------------------------------
    def read(self, path: str) -> IO[bytes]:
        node = self._node(path)
        if node.type != FILE:
            raise errors.PermanentError("a folder cannot be read as a file", path=path)
        if node.key is None:
            raise errors.PermanentError("this MEGA file's key cannot be decrypted", path=path)
        return open_download(self.api, {"a": "g", "n": node.handle}, FileKey.unpack(node.key), path)

    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        parent_path, _, name = path.rpartition("/")
        parent = self._folder(parent_path)
        existing = self._child(parent, name, path)
        self._check_expect(path, existing, expect)
        state_key = f"up/{path}"
        mk = self.session.master_key

        def save(record: Any) -> None:
            self.pair.state.put(state_key, seal(mk, record) if record is not None else None)

        uploaded = Uploader(self.api, save).upload(stream, size, mtime_ns, unseal(mk, self.pair.state.get(state_key)))
        save(None)
        now = self._child(parent, name, path)
        if (now.handle if now else None) != (existing.handle if existing else None):
            raise errors.Conflict("changed on MEGA during the upload", path=path)
        attrs = {"n": name, "c": uploaded.fingerprint.attr(), DIGEST_ATTR: uploaded.sha256}
        item = {"h": uploaded.token, "t": FILE, "a": keys.encrypt_attrs(attrs, uploaded.key.key),
                "k": keys.encrypt_node_key(mk, uploaded.key.pack())}
        node = self._put_node(parent, item, path)
        if existing is not None:
            self._discard(existing, path)
        self.feed.own(path)
        return self._entry(path, node)

    def _check_expect(self, path: str, existing: Node | None, expect: Expect) -> None:
        if existing is not None and existing.is_folder:
            raise errors.AlreadyExists("a folder has this name on MEGA", path=path)
        if expect is ANY:
            return
        current = self._entry(path, existing).rev if existing is not None else None
        if expect != current:
            raise errors.Conflict("the file changed on MEGA", path=path)

    def _put_node(self, parent: Node, item: dict[str, Any], path: str) -> Node:
        answer = self.api.call({"a": "p", "t": parent.handle, "n": [item], "i": self._origin}, path=path)
        created = answer.get("f") if isinstance(answer, dict) else None
        if not isinstance(created, list) or not created or not isinstance(created[0], dict):
            raise errors.PermanentError("MEGA did not return the new node", path=path)
        node = self.feed.tree.add(created[0])
        if node is None or node.name is None:
            raise errors.PermanentError("MEGA returned a node this client cannot read", path=path)
        self.feed.save(node)
        return node

    def _folder(self, path: str) -> Node:
        node = self._node(path) if path else self._base()
        if not node.is_folder:
            raise errors.NotFound("the parent is a file, not a folder", path=path)
        return node

    def _child(self, parent: Node, name: str, path: str) -> Node | None:
        try:
            return self.feed.tree.child(parent.handle, name)
        except Ambiguous:
            raise errors.Conflict("MEGA holds two or more items of this name", path=path) from None

    # ---- folders, moves, deletes ---------------------------------------------------------------
    def mkdir(self, path: str) -> RemoteEntry:
        node = self._mkdirs(self._base().handle, [p for p in path.split("/") if p])
        return self._entry(path, node)

    def _mkdirs(self, start: str, names: Sequence[str]) -> Node:
        with self._mkdir_lock:   # parallel transfers must not make twin folders
            node = self.feed.tree.nodes[start]
            done: list[str] = []
            for name in names:
                done.append(name)
                where = "/".join(done)
                child = self._child(node, name, where)
                if child is None:
                    key = secrets.token_bytes(16)
                    item = {"h": "xxxxxxxx", "t": FOLDER, "a": keys.encrypt_attrs({"n": name}, key),
                            "k": keys.encrypt_node_key(self.session.master_key, key)}
                    child = self._put_node(node, item, where)
                    self.feed.own(self._path_of(child))
                elif not child.is_folder:
                    raise errors.AlreadyExists("a file has this name on MEGA", path=where)
                node = child
            return node

    def _path_of(self, node: Node) -> str | None:
        return self.feed.tree.path_of(node.handle, self._base().handle)

    def move(self, src: str, dst: str) -> RemoteEntry:
        node = self._node(src)
        if node.handle == self._base().handle:
            raise errors.PermanentError("the root folder cannot be moved", path=src)
        parent_path, _, name = dst.rpartition("/")
        parent = self._folder(parent_path)
        if self._child(parent, name, dst) is not None:
            raise errors.AlreadyExists("the destination exists on MEGA", path=dst)
        commands: Commands = []
        if parent.handle != node.parent:
            commands.append({"a": "m", "n": node.handle, "t": parent.handle, "i": self._origin})
        if node.name != name:
            commands.append({"a": "a", "n": node.handle, "at": self._attrs_with(node, n=name), "i": self._origin})
        self._run(commands, dst)
        old = self._path_of(node)
        if parent.handle != node.parent:
            self.feed.tree.move(node.handle, parent.handle)
        if commands and commands[-1]["a"] == "a":
            self.feed.tree.set_attrs(node.handle, commands[-1]["at"])
        self.feed.save(node)
        self.feed.own(old, src, dst)
        return self._entry(dst, node)

    def _attrs_with(self, node: Node, **changes: Any) -> str:
        key = node.attr_key
        if key is None:
            raise errors.PermanentError("this MEGA node's key cannot be decrypted")
        attrs = keys.decrypt_attrs(node.a, key) or {}
        attrs.update(changes)
        return keys.encrypt_attrs(attrs, key)

    def _run(self, commands: Commands, path: str) -> None:
        if not commands:
            return
        for answer in self.api.batch(commands):
            code = code_of(answer) if not isinstance(answer, dict) else code_of(answer.get("r"))
            if code is not None:
                raise error_for(code, path=path)

    def delete(self, path: str, *, recursive: bool = False) -> None:
        failed = self.delete_many([(path, recursive)], missing_ok=False)
        if path in failed:
            raise failed[path]

    def delete_many(self, paths: Sequence[tuple[str, bool]], *, missing_ok: bool = True
                    ) -> dict[str, Exception]:
        """One `/cs` request per hundred deletes: a move to the Rubbish Bin each (or `d`)."""
        failed: dict[str, Exception] = {}
        todo: list[tuple[str, Node]] = []
        for path, recursive in paths:
            try:
                node = self._node(path)
                if not path or node.handle == self._base().handle:
                    raise errors.PermanentError("refusing to delete the root folder", path=path)
                if node.is_folder and not recursive and next(self.feed.tree.children(node.handle), None):
                    raise errors.PermanentError("the folder is not empty", path=path)
                todo.append((path, node))
            except errors.NotFound as exc:
                if not missing_ok:
                    failed[path] = exc
            except errors.ProviderError as exc:
                failed[path] = exc
        for i in range(0, len(todo), BATCH):
            group = todo[i:i + BATCH]
            answers = self.api.batch([self._discard_command(node) for _, node in group])
            for (path, node), answer in zip(group, answers, strict=True):
                code = code_of(answer) if not isinstance(answer, dict) else code_of(answer.get("r"))
                if code is not None and code != -9:
                    failed[path] = error_for(code, path=path)
                    continue
                self._discarded(node, path)
        return failed

    def _discard_command(self, node: Node) -> dict[str, Any]:
        if self.hard_delete:
            return {"a": "d", "n": node.handle, "i": self._origin}
        return {"a": "m", "n": node.handle, "t": self.feed.tree.roots[RUBBISH], "i": self._origin}

    def _discard(self, node: Node, path: str) -> None:
        self._run([self._discard_command(node)], path)
        self._discarded(node, path)

    def _discarded(self, node: Node, path: str) -> None:
        tree = self.feed.tree
        if self.hard_delete:
            self.feed.forget(tree.remove(node.handle))
        elif node.handle in tree.nodes:
            tree.move(node.handle, tree.roots[RUBBISH])
            self.feed.save(node)
        self.feed.own(path)

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        node = self._node(path)
        fp = node.fingerprint
        if node.type != FILE or fp is None:
            return self._entry(path, node)   # no fingerprint to carry an mtime (another client's upload)
        c = Fingerprint(fp.crc, mtime_seconds(mtime_ns)).attr()
        at = self._attrs_with(node, c=c)
        self._run([{"a": "a", "n": node.handle, "at": at, "i": self._origin}], path)
        self.feed.tree.set_attrs(node.handle, at)
        self.feed.save(node)
        self.feed.own(path)
        return self._entry(path, node)

    # ---- extras ----------------------------------------------------------------------------------
    def quota(self) -> Quota:
        answer = self.api.call({"a": "uq", "strg": 1, "xfer": 1})
        if not isinstance(answer, dict):
            raise errors.PermanentError("MEGA sent a malformed quota answer")
        total = answer.get("mstrg")
        return Quota(int(answer.get("cstrg") or 0), int(total) if isinstance(total, int) else None)

    def link(self, path: str) -> str:
        node = self._node(path)
        if node.key is None:
            raise errors.PermanentError("this MEGA node's key cannot be decrypted", path=path)
        handle = self.api.call({"a": "l", "n": node.handle, "i": self._origin}, path=path)
        if not isinstance(handle, str):
            raise errors.PermanentError("MEGA did not return a public handle", path=path)
        return PublicLink(handle, node.key, node.is_folder).url()

    def info(self, path: str) -> dict[str, Any]:
        node = self._node(path)
        out = super().info(path)
        out.update(handle=node.handle, created_ns=node.ts * 1_000_000_000)
        return out

    def describe(self) -> str:
        return f"mega:{self.label}/{self.root_path}"

    def close(self) -> None:
        self.api.close()
