"""The `/cs` commands (spec §4, checks of §7). Each handler takes the store,
the caller's account (None before login) and the command object, and
returns the command's answer or raises ApiError(code).

Node blobs (`a`, `k`) are stored and returned unchanged: the server never
decrypts them. Every change appends action packets to the owner's log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.emulators.mega.accounts import Account, b64, ephemeral_account
from tests.emulators.mega.store import ApiError, Node, Store

Handler = Callable[["Commands", "Account | None", dict[str, Any]], Any]
NO_SESSION = frozenset({"us0", "us", "up"})
ROOTS = (2, 3, 4)
FOLDERS = (1, 2, 3, 4)


def _int(value: Any, default: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if default is not None and value is None:
            return default
        raise ApiError(-2)
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ApiError(-2)
    return value


def _origin(cmd: dict[str, Any]) -> dict[str, Any]:
    return {"i": cmd["i"]} if isinstance(cmd.get("i"), str) else {}


class Commands:
    def __init__(self, store: Store, base_url: Callable[[], str]) -> None:
        self.store = store
        self.base_url = base_url
        self.handlers: dict[str, Handler] = {
            "us0": Commands.prelogin, "us": Commands.login, "up": Commands.signup_ephemeral,
            "ug": Commands.user, "f": Commands.fetch, "p": Commands.put_nodes, "a": Commands.set_attr,
            "m": Commands.move, "d": Commands.delete, "l": Commands.link, "uq": Commands.quota,
            "u": Commands.upload_url, "g": Commands.download_url,
        }

    def needs_session(self, cmd: Any) -> bool:
        if not isinstance(cmd, dict):
            return False
        name = cmd.get("a")
        return name not in NO_SESSION and not (name == "g" and "p" in cmd)

    def run(self, account: Account | None, cmd: Any) -> Any:
        if not isinstance(cmd, dict) or not isinstance(cmd.get("a"), str):
            return -2
        handler = self.handlers.get(cmd["a"])
        if handler is None:
            return -2
        try:
            with self.store.lock:
                return handler(self, account, cmd)
        except ApiError as exc:
            return exc.code

    def _me(self, account: Account | None) -> Account:
        if account is None:
            raise ApiError(-15)
        return account

    # ---- login ----------------------------------------------------------------------
    def prelogin(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        found = self.store.by_email.get(_str(cmd.get("user")).lower())
        if found is not None and found.version == 2:
            return {"v": 2, "s": b64(found.salt)}
        return {"v": 1}

    def login(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        user = _str(cmd.get("user"))
        if "uh" not in cmd:
            found = self.store.accounts.get(user)
            if found is None or found.email is not None:
                raise ApiError(-9)
            tsid = found.ephemeral_tsid()
            self.store.sessions[tsid] = found.handle
            return {"k": found.k, "tsid": tsid}
        found = self.store.by_email.get(user.lower())
        if found is None or not found.check_uh(_str(cmd.get("uh"))):
            raise ApiError(-9)
        sid, extra = found.new_sid()
        self.store.sessions[sid] = found.handle
        answer: dict[str, Any] = {"k": found.k, "u": found.handle, "ach": 1, **extra}
        if isinstance(cmd.get("sek"), str):
            answer["sek"] = cmd["sek"]
        return answer

    def signup_ephemeral(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        made = ephemeral_account(_str(cmd.get("k")), _str(cmd.get("ts")))
        if made is None:
            raise ApiError(-2)
        return self.store.add_account(made).handle

    def user(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        out: dict[str, Any] = {"u": me.handle, "k": me.k, "c": 2 if me.email else 0, "s": 0, "ts": "",
                               "since": 0}
        if me.email:
            out.update(email=me.email, name=me.email.split("@")[0], pubk=me.pubk, privk=me.privk)
        return out

    # ---- the tree ---------------------------------------------------------------------
    def fetch(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        nodes = [n.wire() for n in self.store.nodes.values() if n.u == me.handle]
        users = [{"u": me.handle, "c": 2, "m": me.email or "", "pubk": me.pubk}]
        return {"f": nodes, "ok": [], "s": [], "u": users, "sn": self.store.logs[me.handle].latest}

    def put_nodes(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        target = self.store.node(cmd.get("t"), me.handle)
        if target.t not in FOLDERS:
            raise ApiError(-2)
        items = cmd.get("n")
        if not isinstance(items, list) or not items:
            raise ApiError(-2)
        created: list[Node] = []
        for item in items:
            if not isinstance(item, dict):
                raise ApiError(-2)
            created.append(self._new_node(me, target, item))
        for node in created:
            self.store.nodes[node.h] = node
        wire = [n.wire() for n in created]
        self.store.emit(me.handle, [{"a": "t", "t": {"f": wire}, "ou": me.handle, **_origin(cmd)}])
        return {"f": wire}

    def _new_node(self, me: Account, parent: Node, item: dict[str, Any]) -> Node:
        t = _int(item.get("t"))
        node = Node(self.store.new_node_handle(), parent.h, me.handle, t, a=_str(item.get("a")),
                    k=f"{me.handle}:{_str(item.get('k'))}", ts=int(self.store.clock()))
        if t == 0:
            upload = self.store.take_completed(item.get("h"), me.handle)
            if self.store.used(me.handle) + upload.size > self.store.quota:
                upload.path.unlink(missing_ok=True)
                raise ApiError(-17)
            node.s, node.blob = upload.size, upload.path
        elif t != 1:
            raise ApiError(-2)
        return node

    def set_attr(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        node = self.store.node(cmd.get("n"), me.handle)
        if node.t in ROOTS:
            raise ApiError(-11)
        node.a = _str(cmd["at"] if "at" in cmd else cmd.get("attr"))
        packet: dict[str, Any] = {"a": "u", "n": node.h, "u": node.u, "at": node.a, "ts": int(self.store.clock())}
        if "key" in cmd:
            node.k = f"{me.handle}:{_str(cmd['key'])}"
            packet["k"] = node.k
        self.store.emit(me.handle, [{**packet, **_origin(cmd)}])
        return 0

    def move(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        node = self.store.node(cmd.get("n"), me.handle)
        target = self.store.node(cmd.get("t"), me.handle)
        if node.t in ROOTS:
            raise ApiError(-11)
        if target.t not in FOLDERS:
            raise ApiError(-2)
        if self.store.is_inside(node, target):
            raise ApiError(-10)
        node.p = target.h
        moved = [n.wire() for n in self.store.subtree(node)]
        self.store.emit(me.handle, [{"a": "d", "n": node.h, "m": 1, **_origin(cmd)},
                                    {"a": "t", "t": {"f": moved}, "ou": me.handle, **_origin(cmd)}])
        return 0

    def delete(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        node = self.store.node(cmd.get("n"), me.handle)
        if node.t in ROOTS:
            raise ApiError(-11)
        self.store.remove(node)
        self.store.emit(me.handle, [{"a": "d", "n": node.h, **_origin(cmd)}])
        return 0

    def link(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        node = self.store.node(cmd.get("n"), me.handle)
        if node.t in ROOTS:
            raise ApiError(-11)
        if cmd.get("d") == 1:
            if node.ph:
                self.store.public.pop(node.ph, None)
                node.ph = None
            return 0
        if node.ph is None:
            node.ph = self.store.new_node_handle()
            self.store.public[node.ph] = node.h
        return node.ph

    def quota(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        per_root: dict[str, list[int]] = {}
        for handle in me.roots.values():
            inside = [n for n in self.store.subtree(self.store.nodes[handle]) if n.h != handle]
            files = [n for n in inside if n.t == 0]
            per_root[handle] = [sum(n.s for n in files), len(files), len(inside) - len(files), 0, 0]
        return {"cstrg": self.store.used(me.handle), "mstrg": self.store.quota, "cstrgn": per_root,
                "caxfer": 0, "mxfer": 0, "srvratio": 0}

    # ---- transfers ----------------------------------------------------------------------
    def upload_url(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        me = self._me(account)
        size = _int(cmd.get("s"))
        if size < 0:
            raise ApiError(-2)
        if self.store.used(me.handle) + size > self.store.quota:
            raise ApiError(-17)
        version = cmd.get("v")
        raw = isinstance(version, int) and not isinstance(version, bool) and version >= 2
        token = self.store.new_upload(me.handle, size, raw)
        return {"p": f"{self.base_url()}ul/{token}"}

    def download_url(self, account: Account | None, cmd: dict[str, Any]) -> Any:
        if "p" in cmd:
            handle = self.store.public.get(_str(cmd["p"]))
            node = self.store.nodes.get(handle or "")
            if node is None:
                raise ApiError(-9)
        else:
            node = self.store.node(cmd.get("n"), self._me(account).handle)
        if node.t != 0:
            raise ApiError(-2)
        answer: dict[str, Any] = {"s": node.s, "at": node.a, "msd": 1, "tl": 0, "pfa": 1}
        if cmd.get("g") == 1:
            answer["g"] = f"{self.base_url()}dl/{self.store.new_download(node)}"
        return answer
