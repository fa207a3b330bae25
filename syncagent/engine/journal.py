"""The journal of intents: what each transfer of a batch is about to make
the destination hold, so a run killed between a transfer and its base
record converges without a false conflict (invariant 4).

Before a batch, one transaction records each transfer with its source as
seen (size, mtime, inode, or the remote's rev) and the destination's state
before it. Once the batch is staged, one more transaction adds what each
destination will hold when committed (the rev or the local temp's inode).
Each of the two is one row holding the whole batch: a row per file cost
three SQLite row writes per transfer, the biggest part of a small file's
bookkeeping. The first (`pack`) names the batch by a random key; the second
(`pack_expected`) holds only what is expected, in the first's order, under
the same key (an older version wrote the whole batch again, `BATCH_STAGED`,
which is still read).

After a crash, `recover()` looks at each destination: if it holds what the
journal said it would (the expected rev or inode; failing that, a new
version with exactly the source's size and modification time, which the
agent itself set), that is adopted as the base, so the next run sees only
the user's later changes. Anything else is left to the planner, which
never loses a version (at worst it keeps both).
"""

from __future__ import annotations

import os

from syncagent import errors
from syncagent.engine.localside import LocalSide, entry_rev
from syncagent.engine.records import FILE, Base, Entry
from syncagent.engine.state import Store
from syncagent.providers.base import Provider, RemoteEntry

UPLOAD, DOWNLOAD = "upload", "download"
# A journal row holding a whole batch: the intents before staging; once staged, what is expected of each
# (an older version's staged row held the intents again, each with what was expected).
BATCH, BATCH_EXPECTED, BATCH_STAGED = "batch", "batch-expected", "batch-staged"


# An intent is one line of tab-separated fields (cheap: it is written for
# every transfer): the source as seen, the destination before, a content hash,
# and, once staged, what the destination will hold. "" stands for none.
#   upload:   size, mtime_ns, ino, remote rev before, hash [, expected rev]
#   download: size, mtime_ns, rev, id, hash, local rev before [, expected size, mtime_ns, ino]
_SEP = "\t"


def upload_intent(seen: Entry, before: RemoteEntry | None, content_hash: str | None) -> str:
    rev = "" if before is None else _rev(before) or ""
    return f"{seen.size}\t{seen.mtime_ns}\t{seen.ino}\t{rev}\t{content_hash or ''}"


def download_intent(r: RemoteEntry, before: Entry | None) -> str:
    pre = entry_rev(before) if before is not None and before.kind == FILE else ""
    return _SEP.join((str(r.size), str(r.mtime_ns), _clean(r.rev), _clean(r.id or ""), _clean(r.hash or ""), pre))


def with_expected(detail: str, expected: str | list[int]) -> str:
    extra = _clean(expected) if isinstance(expected, str) else _SEP.join(map(str, expected))
    return detail + _SEP + extra


def _clean(text: str) -> str:
    """Revs and ids are the service's text: keep the separator out of them."""
    return text.replace(_SEP, " ").replace("\n", " ")


def _rev(r: RemoteEntry | None) -> str | None:
    return _clean(r.rev) if r is not None and r.kind == FILE else None


def pack(entries: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """A batch's (op, path, detail) intents as one journal row (JSON keeps any
    character of a path, an undecodable byte's stand-in included), under a
    new key (the row's path) for its `pack_expected` row."""
    import json  # (only a run that transfers writes a journal)

    return BATCH, os.urandom(8).hex(), json.dumps(entries)


def pack_expected(key: str, expected: list[str | list[int] | None]) -> tuple[str, str, str]:
    """What each intent of batch `key` expects once staged, in the batch's
    order: an upload's rev, a download's (size, mtime_ns, ino), None where
    nothing was staged."""
    import json

    return BATCH_EXPECTED, key, json.dumps(expected)


def unpack(rows: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The intents of the journal's rows: a packed batch's intents with what
    its later row expects of them; rows of one intent each (an older
    version's journal) pass as they are."""
    import json  # (only a journal left by a run that stopped has rows)

    single: list[tuple[str, str, str]] = []
    first: dict[tuple[str, str], str] = {}
    later: dict[tuple[str, str], str] = {}
    batches: dict[str, list[tuple[str, str, str]]] = {}
    expected: list[tuple[str, str]] = []
    for op, path, detail in rows:
        if op in (BATCH, BATCH_STAGED):
            into = first if op == BATCH else later
            try:
                entries = [(str(e_op), str(e_path), str(e_detail)) for e_op, e_path, e_detail in json.loads(detail)]
            except (ValueError, TypeError):
                continue      # unreadable: the planner decides for those, safely
            for e_op, e_path, e_detail in entries:
                into[(e_op, e_path)] = e_detail
            if op == BATCH and path:
                batches[path] = entries
        elif op == BATCH_EXPECTED:
            expected.append((path, detail))
        else:
            single.append((op, path, detail))
    for key, detail in expected:
        try:
            values = json.loads(detail)
        except ValueError:
            continue          # unreadable: the batch's intents stand, and the planner decides, safely
        intents = batches.get(key)
        if intents is None or not isinstance(values, list) or len(values) != len(intents):
            continue          # not this batch's: the same
        for (e_op, e_path, e_detail), value in zip(intents, values, strict=True):
            if isinstance(value, str | list):
                later[(e_op, e_path)] = with_expected(e_detail, value)
    first.update(later)
    return single + [(op, path, detail) for (op, path), detail in first.items()]


def recover(store: Store, pair: int, local: LocalSide, remote: Provider, hash_kind: str) -> int:
    """Adopt what landed before a crash as the base; returns how many rows."""
    rows: list[tuple[str, Base]] = []
    for op, path, detail in unpack(store.journal(pair)):
        if not detail:
            continue
        fields = detail.split(_SEP)
        try:
            row = (_adopt_upload(path, fields, remote, hash_kind) if op == UPLOAD
                   else _adopt_download(path, fields, local, remote, hash_kind) if op == DOWNLOAD else None)
        except (errors.ProviderError, OSError, ValueError, IndexError):
            row = None      # cannot tell now (or a journal of another version): the planner decides, safely
        if row is not None:
            rows.append((path, row))
    if rows:
        store.write_base(pair, rows, [])
    store.journal_clear(pair)
    return len(rows)


def _adopt_upload(path: str, fields: list[str], remote: Provider, hash_kind: str) -> Base | None:
    size, mtime_ns, ino = int(fields[0]), int(fields[1]), int(fields[2])
    pre, ours = fields[3], fields[4] or None
    expected = fields[5] if len(fields) > 5 else None
    try:
        r = remote.stat(path)
    except errors.NotFound:
        return None
    if r.kind != FILE:
        return None
    precision = max(1, remote.capabilities.mtime_precision_ns)
    landed = (expected is not None and _clean(r.rev) == expected) or (
        _clean(r.rev) != pre and r.size == size and abs(r.mtime_ns - mtime_ns) < precision)
    if landed and ours and r.hash and remote.capabilities.hash_kind == hash_kind and r.hash != ours:
        landed = False      # same size and time, other bytes: somebody else's version
    if not landed:
        return None
    return Base(FILE, size, mtime_ns, ino, ours, r.rev, r.id, r.hash, r.size, r.mtime_ns)


def _adopt_download(path: str, fields: list[str], local: LocalSide, remote: Provider,
                    hash_kind: str) -> Base | None:
    rsize, rmtime, rrev, rid, rhash, pre = int(fields[0]), int(fields[1]), fields[2], fields[3], fields[4], fields[5]
    now = local.lstat_entry(path)
    if now is None or now.kind != FILE:
        return None
    if len(fields) > 8 and now.ino == int(fields[8]):
        # our renamed temp: what we wrote is the base even if the user has edited it in place since
        size, mtime_ns, ino = int(fields[6]), int(fields[7]), int(fields[8])
    elif now.size == rsize and now.mtime_ns == rmtime and entry_rev(now) != pre:
        size, mtime_ns, ino = now.size, now.mtime_ns, now.ino
    else:
        return None
    content = rhash if rhash and remote.capabilities.hash_kind == hash_kind else None
    return Base(FILE, size, mtime_ns, ino, content, rrev, rid or None, rhash or None, rsize, rmtime)
