"""Listings too big to hold, kept on disk for one run: an external sort.

A provider that does not list in merge order (`Capabilities.sorted_listing`:
every network provider) is sorted by the engine. Up to `MEMORY_ENTRIES`
entries that is `sorted()` in RAM, as it always was. A longer listing is cut
into runs of that many entries; each run is sorted in RAM and written to a
scratch SQLite file in the state dir's `scratch/` folder as blocks of
marshalled tuples; the runs are then read back a block at a time and merged
(heapq.merge), so memory follows `MEMORY_ENTRIES` and the number of runs,
never the listing (1,000,000 entries: ~400 MB held before, docs/benchmarks.md).

The order is that of `sorted(listing, key=remote_key)`: each record carries
(merge key, sequence number), so two spellings of one name (NFC and NFD
twins) come out adjacent and in listing order, as the merge needs them.
Code-point order of Python strings; SQLite only stores the blocks.

The same scratch holds the local walk while a network listing runs beside it
(`spool`): the walk is already in order, so it is only written and read back.

Scratch files are named after the pair's tag and removed when the run ends,
whatever ends it; one left by a killed run is removed by the next run of the
pair (`remove_leftovers`, under the pair lock: no live run owns it then).
"""

from __future__ import annotations

import contextlib
import heapq
import marshal
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from syncagent.engine.merge import remote_key, sorted_listing
from syncagent.engine.records import Entry
from syncagent.engine.state import StateError
from syncagent.providers.base import Kind, RemoteEntry

MEMORY_ENTRIES = 25_000    # entries sorted in RAM (~10 MB); a longer listing is sorted in runs on disk
BLOCK = 256                # records a stored block holds (what one run keeps in RAM while merging)
FOLDER = "scratch"         # in the state dir
SUFFIX = ".scratch"

T = TypeVar("T")
_KINDS = {str(Kind.FILE): Kind.FILE, str(Kind.DIR): Kind.DIR}

# A remote entry on disk: (merge key, sequence, path, kind, size, mtime_ns, rev, hash, id, spelling).
# The key and the sequence lead, so tuples compare as the merge order and never past the sequence.
Record = tuple[str, int, str, str, int, int, str, str | None, str | None, str | None]


def remove_leftovers(state_dir: Path, tag: str) -> int:
    """Remove the scratch files of the pair tagged `tag` (a killed run's);
    the caller holds the pair's lock. Returns how many went."""
    try:
        names = os.listdir(state_dir / FOLDER)
    except OSError:
        return 0
    gone = 0
    for name in names:
        if name.startswith(tag):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(state_dir / FOLDER / name)
                gone += 1
    return gone


class Scratch:
    """One scratch SQLite file of blocks: written in one transaction, then
    read back block by block. No journal, no syncs: nothing in it outlives
    the run. Created on first use, so a short listing touches no disk."""

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder, self.tag = folder, tag
        self.path: Path | None = None
        self._db: sqlite3.Connection | None = None
        self._blocks = 0

    def _open(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=self.tag, suffix=SUFFIX, dir=self.folder)
            os.close(fd)
            self.path = Path(name)
            # check_same_thread off: a listing is written by the thread that fetched it and read by the merge
            db = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "cache_size=-1024"):
                db.execute(f"PRAGMA {pragma}")
            db.execute("CREATE TABLE block (data BLOB NOT NULL)")
            db.execute("BEGIN")
        except (OSError, sqlite3.Error) as exc:
            self.close()
            raise self._failed(exc) from exc
        self._db = db
        return db

    def _failed(self, exc: BaseException) -> StateError:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return StateError(f"cannot keep a listing on disk in {self.folder}: {why}")

    def write(self, records: list[Any]) -> tuple[int, int]:
        """Store `records` (marshallable tuples) in blocks; returns the first
        and last block's number, to read them back in this order."""
        db = self._db or self._open()
        first = self._blocks + 1
        blobs = [(marshal.dumps(records[i:i + BLOCK]),) for i in range(0, len(records), BLOCK)]
        try:
            db.executemany("INSERT INTO block (data) VALUES (?)", blobs)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        self._blocks += len(blobs)
        return first, self._blocks

    def done_writing(self) -> None:
        if self._db is not None and self._db.in_transaction:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def read(self, blocks: tuple[int, int]) -> Iterator[Any]:
        """The records of blocks first..last, in the order written."""
        db = self._db
        if db is None:
            return
        for rowid in range(blocks[0], blocks[1] + 1):
            try:
                row = db.execute("SELECT data FROM block WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            yield from marshal.loads(row[0])

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.path = None


class Spill:
    """The scratch of one run (a context manager): every file it made is
    removed on exit, whether the run ended, failed or was interrupted."""

    def __init__(self, state_dir: Path, tag: str, limit: int | None = None) -> None:
        self.folder = state_dir / FOLDER
        self.tag = tag
        self.limit = max(1, MEMORY_ENTRIES if limit is None else limit)
        self._scratches: list[Scratch] = []
        self._lock = threading.Lock()    # a listing thread and the walk each open their own scratch

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            scratches, self._scratches = self._scratches, []
        for scratch in scratches:
            scratch.close()

    def _scratch(self) -> Scratch:
        scratch = Scratch(self.folder, self.tag)
        with self._lock:
            self._scratches.append(scratch)
        return scratch

    # ---- a remote listing, put in merge order ---------------------------------
    def sort_listing(self, entries: Iterable[RemoteEntry]) -> Iterator[RemoteEntry]:
        """Read all of `entries` now and return them in merge order (that of
        `sorted(entries, key=remote_key)`), to be read while this Spill is open."""
        head, it = _head(entries, self.limit)
        if it is None:
            return iter(sorted_listing(head))    # no more than fits: sorted in RAM, nothing on disk
        scratch = self._scratch()
        runs = []
        seq = 0
        chunk = _records(head, seq)
        del head
        while len(chunk) == self.limit:
            chunk.sort()
            runs.append(scratch.write(chunk))
            seq += len(chunk)
            chunk = _records(islice(it, self.limit), seq)
        scratch.done_writing()
        chunk.sort()   # the last, short run stays in RAM
        merged: Iterator[Record] = heapq.merge(*(scratch.read(r) for r in runs), chunk)
        return _entries(merged)

    # ---- the local walk, held while the remote is listed ---------------------
    def spool(self, items: Iterable[tuple[str, Entry]]) -> Iterator[tuple[str, Entry]]:
        """Read all of `items` now (a stream already in order) and return
        them in the same order: up to `limit` held in RAM, the rest on disk."""
        head, it = _head(items, self.limit)
        if it is None:
            return iter(head)
        scratch = self._scratch()
        first = last = 0
        chunk = head
        while chunk:
            span = scratch.write([(path, tuple(e)) for path, e in chunk])
            first, last = first or span[0], span[1]
            chunk = list(islice(it, self.limit))
        scratch.done_writing()
        return _local_entries(scratch.read((first, last)))


def _head(items: Iterable[T], limit: int) -> tuple[list[T], Iterator[T] | None]:
    """The first `limit` items, and an iterator over the rest (None: there is no more)."""
    it = iter(items)
    head = list(islice(it, limit + 1))
    if len(head) <= limit:
        return head, None
    return head[:limit], chain(head[limit:], it)


def _records(entries: Iterable[RemoteEntry], seq: int) -> list[Record]:
    out: list[Record] = []
    add = out.append
    for e in entries:
        add((remote_key(e), seq, e.path, str(e.kind), e.size, e.mtime_ns, e.rev, e.hash, e.id, e.spelling))
        seq += 1
    return out


def _entries(records: Iterable[Record]) -> Iterator[RemoteEntry]:
    kinds = _KINDS
    for _key, _seq, path, kind, size, mtime_ns, rev, hash_, id_, spelling in records:
        yield RemoteEntry(path, kinds[kind], size, mtime_ns, rev, hash_, id_, spelling)


def _local_entries(records: Iterable[tuple[str, tuple[str, int, int, int]]]) -> Iterator[tuple[str, Entry]]:
    make = Entry._make
    for path, fields in records:
        yield path, make(fields)
