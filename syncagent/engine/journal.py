"""The journal of intents: what each transfer of a batch is about to make
the destination hold, so a run killed between a transfer and its base
record converges without a false conflict (invariant 4).

Before a batch, one transaction records each transfer with its source as
seen (size, mtime, inode, or the remote's rev) and the destination's state
before it. Once the batch is staged, one more transaction adds what each
destination will hold when committed (the rev or the local temp's inode).

After a crash, `recover()` looks at each destination: if it holds what the
journal said it would (the expected rev or inode; failing that, a new
version with exactly the source's size and modification time, which the
agent itself set), that is adopted as the base, so the next run sees only
the user's later changes. Anything else is left to the planner, which
never loses a version (at worst it keeps both).
"""

from __future__ import annotations

import json
from typing import Any

from syncagent import errors
from syncagent.engine.localside import LocalSide, entry_rev
from syncagent.engine.records import FILE, Base, Entry
from syncagent.engine.state import Store
from syncagent.providers.base import Provider, RemoteEntry

UPLOAD, DOWNLOAD = "upload", "download"


def upload_intent(seen: Entry, before: RemoteEntry | None, content_hash: str | None) -> str:
    return json.dumps({"l": [seen.size, seen.mtime_ns, seen.ino], "pre": _rev(before), "h": content_hash})


def download_intent(r: RemoteEntry, before: Entry | None) -> str:
    return json.dumps({"r": [r.size, r.mtime_ns, r.rev, r.id, r.hash],
                       "pre": entry_rev(before) if before is not None and before.kind == FILE else None})


def with_expected(detail: str, expected: Any) -> str:
    data = json.loads(detail)
    data["exp"] = expected
    return json.dumps(data)


def _rev(r: RemoteEntry | None) -> str | None:
    return r.rev if r is not None and r.kind == FILE else None


def recover(store: Store, pair: int, local: LocalSide, remote: Provider, hash_kind: str) -> int:
    """Adopt what landed before a crash as the base; returns how many rows."""
    rows: list[tuple[str, Base]] = []
    for op, path, detail in store.journal(pair):
        if not detail:
            continue
        data = json.loads(detail)
        try:
            row = (_adopt_upload(path, data, remote, hash_kind) if op == UPLOAD
                   else _adopt_download(path, data, local, remote, hash_kind) if op == DOWNLOAD else None)
        except (errors.ProviderError, OSError):
            row = None      # cannot tell now: the planner decides, safely
        if row is not None:
            rows.append((path, row))
    if rows:
        store.write_base(pair, rows, [])
    store.journal_clear(pair)
    return len(rows)


def _adopt_upload(path: str, data: dict[str, Any], remote: Provider, hash_kind: str) -> Base | None:
    size, mtime_ns, ino = data["l"]
    try:
        r = remote.stat(path)
    except errors.NotFound:
        return None
    if r.kind != FILE:
        return None
    expected = data.get("exp")
    precision = max(1, remote.capabilities.mtime_precision_ns)
    landed = (expected is not None and r.rev == expected) or (
        r.rev != data.get("pre") and r.size == size and abs(r.mtime_ns - mtime_ns) < precision)
    ours = data.get("h")
    if landed and ours and r.hash and remote.capabilities.hash_kind == hash_kind and r.hash != ours:
        landed = False      # same size and time, other bytes: somebody else's version
    if not landed:
        return None
    return Base(FILE, size, mtime_ns, ino, ours, r.rev, r.id, r.hash, r.size, r.mtime_ns)


def _adopt_download(path: str, data: dict[str, Any], local: LocalSide, remote: Provider,
                    hash_kind: str) -> Base | None:
    rsize, rmtime, rrev, rid, rhash = data["r"]
    now = local.lstat_entry(path)
    if now is None or now.kind != FILE:
        return None
    expected = data.get("exp")
    if expected is not None and now.ino == expected[2]:
        # our renamed temp: what we wrote is the base even if the user has edited it in place since
        size, mtime_ns, ino = expected
    elif now.size == rsize and now.mtime_ns == rmtime and entry_rev(now) != data.get("pre"):
        size, mtime_ns, ino = now.size, now.mtime_ns, now.ino
    else:
        return None
    content = rhash if remote.capabilities.hash_kind == hash_kind else None
    return Base(FILE, size, mtime_ns, ino, content, rrev, rid, rhash, rsize, rmtime)
