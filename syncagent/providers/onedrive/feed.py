"""The delta feed of the provider's root folder (spec §5.4), and the map from
item ids to (parent id, name) it needs: delta answers carry no paths, and a
deleted item carries no name.

Provider state (text values, committed with the engine's base):

    delta.gen     a random tag of the current enumeration
    delta.n       how many change rounds the map has absorbed since it
    delta.link    the deltaLink to ask next
    delta.root    the root folder's item id
    delta.undo    the last round's changes, as it returned them
    item:<id>     [parent id, name, is_folder] of every item below the root

The cursor the engine keeps is "<gen>.<n>". A quiet poll is one request and
does not touch the map. If the engine's cursor is one round behind the map
(a run failed after the map was committed with some of its batches), the
last round's changes are returned again with the new ones; anything else
unexpected (another generation, a 410 Gone) starts a full enumeration,
which the engine treats as a full listing (`reset=True`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from syncagent import errors
from syncagent.providers.base import ChangeBatch, Deleted, Kind, ProviderState, RemoteEntry
from syncagent.providers.onedrive.items import engine_name, is_folder, not_followed, to_entry, valid_listed_name
from syncagent.providers.onedrive.transport import Graph, ResyncRequired

Record = tuple[str, str, bool]   # parent id, name (as the service spells it), is a folder
# what the feed reads of an item: a smaller answer, and no download URL to sign for each file
SELECT = ("id,name,eTag,cTag,size,fileSystemInfo,lastModifiedDateTime,file,folder,root,deleted,parentReference,"
          "package,remoteItem")


@dataclass(slots=True)
class Slim:
    """What the feed keeps of one delta item (a page's JSON is dropped at once)."""

    id: str
    parent: str | None        # None: the answer did not say
    name: str | None
    folder: bool
    deleted: bool
    entry: RemoteEntry        # its path is "": `at(path)` gives the entry where it is
    ignored: str | None       # why it is not listed (items.not_followed)

    @classmethod
    def of(cls, item: dict[str, Any]) -> Slim:
        ref = item.get("parentReference")
        parent = ref.get("id") if isinstance(ref, dict) else None
        name = item.get("name")
        return cls(str(item.get("id") or ""), str(parent) if parent else None,
                   name if isinstance(name, str) else None, is_folder(item), item.get("deleted") is not None,
                   to_entry("", item), not_followed(item))

    def at(self, path: str) -> RemoteEntry:
        e = self.entry
        return RemoteEntry(path, e.kind, e.size, e.mtime_ns, e.rev, e.hash, e.id)

    def record(self, previous: Record | None) -> Record:
        return (self.parent or (previous[0] if previous else ""),
                self.name if self.name is not None else (previous[1] if previous else ""), self.folder)


@dataclass
class Resolved:
    """Where an item sits: the engine's path (NFC) and the service's spelling."""

    path: str
    remote: str


class DeltaFeed:
    def __init__(self, graph: Graph, state: Callable[[], ProviderState], root: Callable[[], dict[str, Any]],
                 on_names: Callable[[str, str], None], on_skip: Callable[[str, str], None]) -> None:
        self.graph, self._state, self._root = graph, state, root
        self.on_names, self.on_skip = on_names, on_skip
        self._map: dict[str, Record] | None = None
        self.requests = 0

    @property
    def state(self) -> ProviderState:
        return self._state()

    def forget(self) -> None:
        """The provider state was replaced (a new pair context): reload the map when needed."""
        self._map = None

    # ---- entry points --------------------------------------------------------------------
    def changes(self, cursor: str | None) -> ChangeBatch:
        st = self.state
        gen, n = st.get("delta.gen"), int(st.get("delta.n") or 0)
        link = st.get("delta.link")
        if cursor is None or link is None or gen is None:
            return self.enumerate()
        cgen, _, cn = cursor.partition(".")
        replay = cgen == gen and cn == str(n - 1)
        if cgen != gen or not (cn == str(n) or replay):
            return self.enumerate()
        try:
            items, new_link = self._pages(link)
        except ResyncRequired:
            return self.enumerate()
        st.put("delta.link", new_link)
        round_changes = self._absorb(items) if items else []
        if replay:
            round_changes = self._undo() + round_changes
        if not round_changes and not replay:
            return ChangeBatch([], f"{gen}.{n}")
        st.put("delta.n", str(n + 1 if items else n))
        st.put("delta.undo", json.dumps([_dump(c) for c in round_changes]))
        return ChangeBatch(round_changes, f"{gen}.{n + 1 if items else n}")

    def enumerate(self) -> ChangeBatch:
        """A fresh start: every item below the root, a new generation."""
        root = self._root()
        root_id = str(root["id"])
        items, link = self._start(root_id, "root" in root)
        st = self.state
        old = self._load()
        fresh: dict[str, Record] = {}
        by_id: dict[str, Slim] = {}
        for item in items:
            if not item.deleted and item.id and item.id != root_id:
                fresh[item.id] = item.record(fresh.get(item.id))
                by_id[item.id] = item
        del items
        for item_id in old.keys() - fresh.keys():
            st.put(f"item:{item_id}", None)
        for item_id, rec in fresh.items():
            if old.get(item_id) != rec:
                st.put(f"item:{item_id}", json.dumps(list(rec)))
        self._map = fresh
        gen = secrets.token_hex(6)
        for key, value in (("delta.gen", gen), ("delta.n", "0"), ("delta.link", link), ("delta.root", root_id),
                           ("delta.undo", "[]")):
            st.put(key, value)
        entries: list[RemoteEntry | Deleted] = []
        for item_id, where in self._paths(fresh, root_id).items():
            item = by_id[item_id]
            if item.ignored:
                self.on_skip(where.path, item.ignored)
            else:
                entries.append(item.at(where.path))
        entries.sort(key=lambda e: e.path)
        return ChangeBatch(entries, f"{gen}.0", reset=True)

    # ---- the delta requests ----------------------------------------------------------------
    def _start(self, root_id: str, drive_root: bool) -> tuple[list[Slim], str]:
        """The first round: the root folder's own feed; where the service has
        delta on the drive root only (OneDrive for Business), the drive's feed,
        of which the map resolves only what lies below the root."""
        top = f"?$top={self.graph.tuning.delta_page}&$select={SELECT}"
        if not drive_root and self.state.get("delta.scope") != "drive":
            try:
                return self._pages(self.graph.by_id(root_id, "delta") + top)
            except (errors.PermanentError, errors.Unsupported) as exc:
                if isinstance(exc, ResyncRequired):
                    raise
                self.state.put("delta.scope", "drive")
        return self._pages(f"{self.graph.drive}/root/delta{top}")

    def _pages(self, url: str) -> tuple[list[Slim], str]:
        """Every page of one delta round: (items, the deltaLink)."""
        items: list[Slim] = []
        while True:
            page = self.graph.json("GET", url)
            self.requests += 1
            value = page.get("value")
            if isinstance(value, list):
                items.extend(Slim.of(v) for v in value if isinstance(v, dict) and v.get("id"))
            if page.get("@odata.nextLink"):
                url = str(page["@odata.nextLink"])
                continue
            if page.get("@odata.deltaLink"):
                return items, str(page["@odata.deltaLink"])
            raise ResyncRequired("a delta page without a next or delta link")

    # ---- the id map -------------------------------------------------------------------------
    def _load(self) -> dict[str, Record]:
        if self._map is None:
            loaded: dict[str, Record] = {}
            for key, value in self.state.items("item:"):
                parent, name, folder = json.loads(value)
                loaded[key[5:]] = (str(parent), str(name), bool(folder))
            self._map = loaded
        return self._map

    def _absorb(self, items: list[Slim]) -> list[RemoteEntry | Deleted]:
        """Apply one round to the map; the changes as the engine sees them."""
        root_id = self.state.get("delta.root") or ""
        latest = {i.id: i for i in items if i.id != root_id}
        current = self._load()
        before = self._paths(current, root_id, only=set(latest) | _subtrees(current, latest))
        after_map = dict(current)
        st = self.state
        for item_id, item in latest.items():
            if item.deleted:
                for gone in {item_id} | _descendants(after_map, item_id):
                    if after_map.pop(gone, None) is not None:
                        st.put(f"item:{gone}", None)
                continue
            rec = item.record(after_map.get(item_id))
            if after_map.get(item_id) != rec:
                after_map[item_id] = rec
                st.put(f"item:{item_id}", json.dumps(list(rec)))
        self._map = after_map
        after = self._paths(after_map, root_id, only=set(latest))
        out: list[RemoteEntry | Deleted] = []
        for item_id, item in latest.items():
            old, new = before.get(item_id), after.get(item_id)
            if old is not None and (new is None or old.path != new.path):
                out.append(Deleted(old.path))
            if new is None or (old is not None and old.path == new.path and after_map[item_id][2]):
                continue   # gone, or a folder whose only change is below it
            if item.ignored:
                self.on_skip(new.path, item.ignored)
                continue
            out.append(item.at(new.path))
        return out

    def _paths(self, records: dict[str, Record], root_id: str, only: set[str] | None = None) -> dict[str, Resolved]:
        """Paths of the items (all, or `only` those) that resolve up to the root;
        names the engine cannot take are reported as skipped with their subtrees."""
        memo: dict[str, Resolved | None] = {root_id: Resolved("", "")}

        def resolve(item_id: str) -> Resolved | None:
            chain: list[str] = []
            at: str | None = item_id
            while at is not None and at not in memo:
                chain.append(at)
                rec = records.get(at)
                at = rec[0] if rec is not None else None
            base = memo.get(at) if at is not None else None
            for step in reversed(chain):
                rec = records.get(step)
                if base is None or rec is None or not valid_listed_name(rec[1]):
                    if base is not None and rec is not None:
                        self.on_skip(_join(base.path, str(rec[1])), "a name this agent cannot hold")
                    memo[step] = base = None
                    continue
                where = Resolved(_join(base.path, engine_name(rec[1])), _join(base.remote, rec[1]))
                if where.path != where.remote:
                    self.on_names(where.path, where.remote)
                memo[step] = base = where
            return memo.get(item_id)

        out: dict[str, Resolved] = {}
        seen: dict[str, str] = {}
        for item_id in (records if only is None else only):
            where = resolve(item_id)
            if where is None:
                continue
            other = seen.setdefault(where.path.casefold(), item_id)
            if other != item_id and only is None:
                self.on_skip(where.path, "two items of one name (they differ only in Unicode form)")
                continue
            out[item_id] = where
        return out

    def _undo(self) -> list[RemoteEntry | Deleted]:
        raw = self.state.get("delta.undo") or "[]"
        return [_load_change(c) for c in json.loads(raw)]


def _descendants(records: dict[str, Record], folder: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for item_id, (parent, _, _) in records.items():
        children.setdefault(parent, []).append(item_id)
    out: set[str] = set()
    todo = [folder]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.add(child)
            todo.append(child)
    return out


def _subtrees(records: dict[str, Record], latest: dict[str, Slim]) -> set[str]:
    """Descendants of the folders a round deletes (their old paths are wanted)."""
    out: set[str] = set()
    for item_id, item in latest.items():
        rec = records.get(item_id)
        if item.deleted and rec is not None and rec[2]:
            out |= _descendants(records, item_id)
    return out


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _dump(change: RemoteEntry | Deleted) -> list[Any]:
    if isinstance(change, Deleted):
        return ["d", change.path]
    return ["e", change.path, str(change.kind), change.size, change.mtime_ns, change.rev, change.hash, change.id]


def _load_change(raw: list[Any]) -> RemoteEntry | Deleted:
    if raw[0] == "d":
        return Deleted(str(raw[1]))
    return RemoteEntry(str(raw[1]), Kind(raw[2]), int(raw[3]), int(raw[4]), str(raw[5]), raw[6], raw[7])


def iter_records(state: ProviderState) -> Iterator[tuple[str, Record]]:
    for key, value in state.items("item:"):
        parent, name, folder = json.loads(value)
        yield key[5:], (str(parent), str(name), bool(folder))
