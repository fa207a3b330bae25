"""The path tree over content addressing: a manifest of path -> item, kept
in the bucket itself, merged the same way by every machine.

Metadisk stores content by address and has no folders, names or times of
its own (spec §6). The manifest adds them. Each item is a *version*: `v`
names it (milliseconds in hex, then random, so newer sorts later), `a`
lists the versions it replaced (newest first, capped), `i` is an id kept
across moves. A deletion is an item too (kind "x", a tombstone), kept long
enough that a late concurrent writer cannot bring the path back.

Merging (pure, order-free, so two machines merging the same heads write the
same bytes): per path, a version another one lists among its ancestors is
superseded. What remains is concurrent: equal content folds into one; a
change beats a deletion; different content keeps both, the newer at the
path and the older beside it as `name (conflict HOST YYYY-MM-DD HHMMSS).ext`.
Nothing one machine wrote is lost to another's concurrent write.
"""

from __future__ import annotations

import gzip
import json
import posixpath
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FORMAT = "syncagent-metadisk-manifest/1"
PREFIX = ".syncagent-manifest-"
FILE, DIR, GONE = "f", "d", "x"
MAX_ANCESTORS = 16


@dataclass(frozen=True)
class Item:
    kind: str                       # FILE, DIR or GONE
    v: str                          # this version
    a: tuple[str, ...] = ()         # versions it replaced, newest first
    i: str = ""                     # id kept across moves
    h: str = ""                     # content address (files)
    s: int = 0                      # size
    m: int = 0                      # mtime, ns
    w: str = ""                     # who wrote it (host), for conflict names
    t: float = 0.0                  # when it was written, unix seconds

    @property
    def live(self) -> bool:
        return self.kind != GONE

    def to_json(self) -> list[Any]:
        return [self.kind, self.v, list(self.a), self.i, self.h, self.s, self.m, self.w, self.t]

    @classmethod
    def from_json(cls, obj: list[Any]) -> Item:
        kind, v, a, i, h, s, m, w, t = obj
        return cls(str(kind), str(v), tuple(str(x) for x in a), str(i), str(h), int(s), int(m), str(w), float(t))


def new_version(now: float | None = None) -> str:
    return f"{int((time.time() if now is None else now) * 1000):012x}-{secrets.token_hex(4)}"


def new_id() -> str:
    return secrets.token_hex(8)


def successor(current: Item | None, kind: str, *, now: float, writer: str, **fields: Any) -> Item:
    """A new version at a path: it supersedes whatever was there (a live item or a tombstone)."""
    chain = (current.v, *current.a)[:MAX_ANCESTORS] if current is not None else ()
    ident = fields.pop("i", None) or (current.i if current is not None and current.live else new_id())
    return Item(kind, new_version(now), chain, ident, w=writer, t=now, **fields)


@dataclass
class Manifest:
    generation: int = 0
    parents: tuple[str, ...] = ()
    items: dict[str, Item] = field(default_factory=dict)
    garbage: dict[str, float] = field(default_factory=dict)   # address -> first seen unreferenced

    def encode(self) -> bytes:
        """Deterministic bytes (sorted keys, gzip without a timestamp): equal manifests, one address."""
        doc = {"format": FORMAT, "generation": self.generation, "parents": sorted(self.parents),
               "items": {p: self.items[p].to_json() for p in sorted(self.items)},
               "garbage": {h: self.garbage[h] for h in sorted(self.garbage)}}
        return gzip.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), mtime=0)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        try:
            doc = json.loads(gzip.decompress(data))
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError("not a syncagent manifest") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"unknown manifest format {doc.get('format') if isinstance(doc, dict) else None!r}")
        return cls(int(doc["generation"]), tuple(doc["parents"]),
                   {str(p): Item.from_json(o) for p, o in doc["items"].items()},
                   {str(h): float(t) for h, t in doc.get("garbage", {}).items()})

    def live(self) -> dict[str, Item]:
        return {p: it for p, it in self.items.items() if it.live}

    def referenced(self) -> set[str]:
        return {it.h for it in self.items.values() if it.kind == FILE}


def manifest_filename(generation: int, writer: str) -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in writer)[:40] or "host"
    return f"{PREFIX}{generation:010d}-{host}.json.gz"


def is_manifest_name(filename: str) -> bool:
    return filename.startswith(PREFIX)


# ---- merging ---------------------------------------------------------------------------
def merge(manifests: Iterable[Manifest]) -> Manifest:
    """One manifest holding everything the given ones hold (see the module doc).
    Generation: the highest; parents: none (the caller sets them)."""
    docs = list(manifests)
    if len(docs) == 1:
        return replace(docs[0], items=dict(docs[0].items), garbage=dict(docs[0].garbage))
    by_path: dict[str, dict[str, Item]] = {}
    for doc in docs:
        for path, item in doc.items.items():
            by_path.setdefault(path, {})[item.v] = item
    items: dict[str, Item] = {}
    copies: list[tuple[str, Item]] = []
    for path in sorted(by_path):
        keep, aside = resolve(list(by_path[path].values()))
        items[path] = keep
        copies.extend((path, it) for it in aside)
    _place_copies(items, copies)
    _unshadow_files(items)
    garbage: dict[str, float] = {}
    for doc in docs:
        for h, t in doc.garbage.items():
            garbage[h] = min(t, garbage.get(h, t))
    referenced = {it.h for it in items.values() if it.kind == FILE}
    return Manifest(max(d.generation for d in docs), (), items,
                    {h: t for h, t in garbage.items() if h not in referenced})


def overlay(base: Mapping[str, Item], changes: Mapping[str, Item]) -> dict[str, Item]:
    """`base` with local changes on top, merged per path like concurrent heads."""
    merged = merge([Manifest(items=dict(base)), Manifest(items=dict(changes))]) if changes else None
    return merged.items if merged is not None else dict(base)


def resolve(candidates: list[Item]) -> tuple[Item, list[Item]]:
    """The item that keeps the path, and the versions that go beside it as conflict copies."""
    superseded = {v for c in candidates for v in c.a}
    heads = sorted((c for c in candidates if c.v not in superseded), key=lambda c: (c.t, c.v), reverse=True)
    if len(heads) == 1:
        return heads[0], []
    history = tuple(sorted({v for c in heads for v in (c.v, *c.a)}, reverse=True))
    live = [c for c in heads if c.live]
    if not live:
        return _absorbing(heads[0], history), []
    groups: dict[tuple[str, str], list[Item]] = {}
    for c in live:
        groups.setdefault((c.kind, c.h), []).append(c)
    ordered = sorted(groups.values(), key=lambda g: (g[0].kind == DIR, g[0].t, g[0].v), reverse=True)
    winner = _absorbing(ordered[0][0], history)
    return winner, [g[0] for g in ordered[1:]]


def _absorbing(item: Item, history: tuple[str, ...]) -> Item:
    """`item`, now also superseding every other concurrent version (so no later merge re-opens the clash)."""
    chain = tuple(v for v in history if v != item.v)[:MAX_ANCESTORS]
    return replace(item, a=chain)


def _place_copies(items: dict[str, Item], copies: list[tuple[str, Item]]) -> None:
    for path, loser in copies:
        base = conflict_name(path, loser.w, loser.t)
        target, n = base, 2
        while target in items and items[target].live:
            target = _numbered(base, n)
            n += 1
        items[target] = replace(loser, v=loser.v + ".c", a=(loser.v,))


def _unshadow_files(items: dict[str, Item]) -> None:
    """A file where another item needs a folder (`x` a file, `x/y` written concurrently) goes aside."""
    live_dirs = {posixpath.dirname(p) for p, it in items.items() if it.live}
    clashes = [p for p, it in items.items() if it.kind == FILE and _is_parent(p, live_dirs)]
    for path in sorted(clashes):
        item = items.pop(path)
        items[path] = replace(item, kind=GONE, v=item.v + ".x", a=(item.v, *item.a)[:MAX_ANCESTORS], h="", s=0)
        _place_copies(items, [(path, item)])


def _is_parent(path: str, dirs: set[str]) -> bool:
    prefix = path + "/"
    return any(d == path or d.startswith(prefix) for d in dirs)


def conflict_name(path: str, host: str, when: float) -> str:
    """`dir/name (conflict HOST YYYY-MM-DD HHMMSS).ext` (the engine's convention)."""
    folder, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if not stem:
        stem, ext = ext, ""
    stamp = time.strftime("%Y-%m-%d %H%M%S", time.gmtime(when))
    label = f"{stem} (conflict {host or 'unknown'} {stamp}){ext}"
    return posixpath.join(folder, label) if folder else label


def _numbered(path: str, n: int) -> str:
    stem, ext = posixpath.splitext(path)
    return f"{stem} {n}{ext}" if not stem.endswith(")") else f"{stem[:-1]} {n}){ext}"
