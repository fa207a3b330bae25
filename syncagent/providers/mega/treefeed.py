"""Keeping the node tree current: `f` once, then the `sc` feed (spec §4.6,
§4.13), with the tree and its `sn` kept in provider state so a restart does
not fetch the whole tree again, and a quiet poll is one `sc` request.

The engine's cursor can lag behind the tree: a run that failed keeps its old
cursor while the tree has already moved on. Each poll that moved the tree
is therefore journaled (from position, to position, the paths it touched)
and committed at once, before its position is handed out: the engine's
cursor is never ahead of the stored tree, and a lagging cursor still gets
exactly the paths since it; a cursor older than the journal gets a full
listing (`reset`). The tree running ahead of the base is harmless: it only
mirrors what the server holds.

State keys: `tree/sn`, `tree/user`, `n/<handle>` (a node in the server's
encrypted form), `journal`, `own` (paths this provider changed itself since
the last poll: its own deletes vanish from the tree before their packets
arrive, so their paths are remembered here).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from syncagent import errors
from syncagent.providers.base import MemoryState, ProviderState
from syncagent.providers.mega.api import Api, EventsLost
from syncagent.providers.mega.tree import Node, Tree

JOURNAL_ENTRIES = 200
JOURNAL_PATHS = 20_000


class FeedReset(Exception):
    """The server no longer has our position (-6): the tree was reloaded."""


class TreeFeed:
    def __init__(self, api: Api, user: str, master_key: bytes, state: ProviderState) -> None:
        self.api = api
        self.state = state
        self.tree = Tree(user, master_key)
        self.persist = not isinstance(state, MemoryState)   # one-off commands keep no copy
        self.loaded = False
        self._own_lock = threading.Lock()

    # ---- loading ---------------------------------------------------------------------
    def ensure(self) -> Tree:
        if not self.loaded:
            if not self._load_state():
                self.reload()
            self.loaded = True
        return self.tree

    def _load_state(self) -> bool:
        if not self.persist or self.state.get("tree/user") != self.tree.user:
            return False
        sn = self.state.get("tree/sn")
        if not sn:
            return False
        for _key, value in self.state.items("n/"):
            try:
                self.tree.add(json.loads(value))
            except ValueError:
                return False
        self.tree.sn = sn
        return bool(self.tree.roots.get(2))

    def reload(self) -> None:
        """The whole tree from `f`."""
        answer = self.api.call({"a": "f", "c": 1, "r": 1})
        if not isinstance(answer, dict) or not isinstance(answer.get("f"), list) or \
                not isinstance(answer.get("sn"), str):
            raise errors.PermanentError("MEGA sent a malformed node list")
        fresh = Tree(self.tree.user, self.tree.keys[self.tree.user])
        fresh.add_share_keys(answer.get("ok"))
        for raw in answer["f"]:
            if isinstance(raw, dict):
                fresh.add(raw)
        if 2 not in fresh.roots:
            raise errors.PermanentError("MEGA listed no Cloud Drive root")
        fresh.sn = answer["sn"]
        self.state.put("tree/step", None)
        with self.tree.lock:
            old = list(self.tree.nodes)
            self.tree.nodes, self.tree.kids, self.tree.opaque = fresh.nodes, fresh.kids, fresh.opaque
            self.tree.roots, self.tree.keys, self.tree.sn = fresh.roots, fresh.keys, fresh.sn
        if self.persist:
            for handle in old:
                if handle not in fresh.nodes:
                    self.state.put(f"n/{handle}", None)
            for node in fresh.nodes.values():
                self.save(node)
            self.state.put("tree/user", self.tree.user)
            self.state.put("tree/sn", fresh.sn)
            self.state.commit()
        self.loaded = True

    def save(self, node: Node) -> None:
        if self.persist:
            self.state.put(f"n/{node.handle}", json.dumps(node.wire(), separators=(",", ":")))

    def forget(self, nodes: Iterable[Node]) -> None:
        if self.persist:
            for node in nodes:
                self.state.put(f"n/{node.handle}", None)

    # ---- own changes ------------------------------------------------------------------------
    def own(self, *paths: str | None) -> None:
        """Paths this provider just changed (their packets come with the next poll)."""
        with self._own_lock:   # parallel transfers report at once
            found = set(json.loads(self.state.get("own") or "[]"))
            found.update(p for p in paths if p is not None)
            self.state.put("own", json.dumps(sorted(found)))

    # ---- polling --------------------------------------------------------------------------
    @property
    def position(self) -> str:
        """The feed position handed to the engine as its cursor: the tree's `sn` and how
        many journaled polls happened at that sn (own changes move it without a new sn)."""
        return f"{self.tree.sn}.{self.state.get('tree/step') or 0}"

    def poll(self, base: str) -> set[str]:
        """Apply what `sc` has after our `sn`; the paths (below `base`) it touched, our
        own changes included. Raises FeedReset after reloading on a lost position."""
        tree = self.ensure()
        start, before = tree.sn, self.position
        try:
            answer = self.api.poll_events(start)
        except EventsLost:
            self.reload()
            raise FeedReset() from None
        packets = answer.get("a") if isinstance(answer.get("a"), list) else []
        paths = self._apply(packets, base) if packets else set()
        with self._own_lock:
            paths |= set(json.loads(self.state.get("own") or "[]"))
            self.state.put("own", None)
        sn = answer.get("sn")
        new_sn = sn if packets and isinstance(sn, str) else start
        if new_sn == start and not paths:
            return paths
        tree.sn = new_sn
        step = int(self.state.get("tree/step") or 0) + 1 if new_sn == start else 0
        self.state.put("tree/step", str(step))
        if self.persist:
            self.state.put("tree/sn", new_sn)
        self._journal(before, self.position, paths)
        self.state.commit()   # durable before the position is handed out (see the module doc)
        return paths

    def _apply(self, packets: list[Any], base: str) -> set[str]:
        tree = self.tree
        changed: set[str | None] = set()
        moving: dict[str, str | None] = {}
        for packet in packets:
            if not isinstance(packet, dict):
                continue
            kind = packet.get("a")
            if kind == "t":
                nodes = packet.get("t", {}).get("f") if isinstance(packet.get("t"), dict) else None
                for raw in nodes if isinstance(nodes, list) else []:
                    if isinstance(raw, dict) and isinstance(raw.get("h"), str):
                        changed.add(moving.pop(raw["h"], None) or tree.path_of(raw["h"], base))
                        node = tree.add(raw)
                        if node is not None:
                            self.save(node)
                            changed.add(tree.path_of(node.handle, base))
            elif kind == "u" and isinstance(packet.get("n"), str) and isinstance(packet.get("at"), str):
                changed.add(tree.path_of(packet["n"], base))
                k = packet.get("k") if isinstance(packet.get("k"), str) else None
                node = tree.set_attrs(packet["n"], packet["at"], k)
                if node is not None:
                    self.save(node)
                    changed.add(tree.path_of(node.handle, base))
            elif kind == "d" and isinstance(packet.get("n"), str):
                if packet.get("m") == 1:   # the first half of a move: a `t` re-inserts it
                    moving[packet["n"]] = tree.path_of(packet["n"], base)
                    continue
                changed.add(tree.path_of(packet["n"], base))
                self.forget(tree.remove(packet["n"]))
        for handle, path in moving.items():   # a move whose second half never came: gone
            changed.add(path)
            self.forget(tree.remove(handle))
        return {p for p in changed if p}

    # ---- the journal ---------------------------------------------------------------------------
    def _journal(self, start: str, end: str, paths: set[str]) -> None:
        entries = self.journal()
        entries.append([start, end, sorted(paths)])
        while len(entries) > JOURNAL_ENTRIES or sum(len(e[2]) for e in entries) > JOURNAL_PATHS:
            entries.pop(0)
        self.state.put("journal", json.dumps(entries))

    def journal(self) -> list[list[Any]]:
        try:
            value = json.loads(self.state.get("journal") or "[]")
        except ValueError:
            return []
        return value if isinstance(value, list) else []

    def since(self, cursor: str) -> set[str] | None:
        """Paths changed between `cursor` and the current position; None when the
        journal does not reach back that far."""
        if cursor == self.position:
            return set()
        entries = self.journal()
        for i, (start, _end, _paths) in enumerate(entries):
            if start == cursor:
                return {p for e in entries[i:] for p in e[2]}
        return None
