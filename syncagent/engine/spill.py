"""Listings too big to hold, kept on disk for one run: an external sort.

A provider that does not list in merge order (`Capabilities.sorted_listing`:
every network provider) is sorted by the engine. Up to `MEMORY_ENTRIES`
entries that is `sorted()` in RAM, as it always was. A longer listing is cut
into runs of that many entries; each run is sorted in RAM and written to a
scratch SQLite file in the state dir's `scratch/` folder as blocks of
marshalled records; the runs are then read back a block at a time and merged,
so memory follows `MEMORY_ENTRIES` and the number of runs, never the
listing (a no-op run over 1,000,000 files: 758 MB at the peak before, 87 MB
after, for ~3 us more per remote entry; docs/benchmarks.md).

The order is that of `sorted(listing, key=remote_key)`: each record is
(merge key, sequence number, fields), so two spellings of one name (NFC and
NFD twins) come out adjacent and in listing order, as the merge needs them.
Code-point order of Python strings; SQLite only stores the blocks. The runs
are merged a batch at a time (`_merge_blocks`): what every run's current
block holds up to the smallest of their last records is sorted together,
in C, rather than one record at a time through a heap in Python.

The local walk that runs beside a network listing is kept the same way while
the listing runs (`spool`): it is already in order, so it is only written and
read back; what is left of it when the listing is in streams on.

Scratch files are named after the pair's tag and removed when the run ends,
whatever ends it; one left by a killed run is removed by the next run of the
pair (`remove_leftovers`, under the pair lock: no live run owns it then).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from types import TracebackType

from syncagent.engine.merge import sorted_listing
from syncagent.engine.records import Entry
from syncagent.engine.state import StateError
from syncagent.paths import nfc
from syncagent.providers.base import Kind, RemoteEntry

MEMORY_ENTRIES = 25_000    # entries sorted in RAM (~10 MB); a longer listing is sorted in runs on disk
BLOCK = 512                # records a stored block holds (what one run keeps in RAM while merging)
FOLDER = "scratch"         # in the state dir
SUFFIX = ".scratch"

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from typing import TypeVar

    T = TypeVar("T")

# A remote entry on disk: (merge key, sequence number, then RECORD_FIELDS). Records compare as the
# merge order and never past the sequence number (it is unique). Flat, of strings, ints and None
# only, so the garbage collector stops tracking them at once: a run holds 25,000 of them, and
# container objects that live long make CPython's full collections frequent (they cost a no-op run
# over 1,000,000 files ~10 s when records held the RemoteEntry fields as a nested tuple with the Kind).
Record = tuple[str, int, str, str, int, int, str, str | None, str | None, str | None]
RECORD_FIELDS = ("path", "kind", "size", "mtime_ns", "rev", "hash", "id", "spelling")
_KIND_NAME = {Kind.FILE: "file", Kind.DIR: "dir"}
_KIND = {"file": Kind.FILE, "dir": Kind.DIR}


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
        self.blocks = 0

    def _open(self) -> sqlite3.Connection:
        import tempfile  # (with shutil, bz2, lzma and random: only a run whose listing goes to disk pays)

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

    def append(self, blobs: list[bytes]) -> tuple[int, int]:
        """Store `blobs`; returns the first and last one's number, to read them back in this order."""
        db = self._db or self._open()
        first = self.blocks + 1
        try:
            db.executemany("INSERT INTO block (data) VALUES (?)", ((b,) for b in blobs))
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc
        self.blocks += len(blobs)
        return first, self.blocks

    def done_writing(self) -> None:
        if self._db is not None and self._db.in_transaction:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def read(self, span: tuple[int, int]) -> Iterator[bytes]:
        """The blobs numbered first..last, one at a time."""
        db = self._db
        if db is None:
            return
        for rowid in range(span[0], span[1] + 1):
            try:
                row = db.execute("SELECT data FROM block WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            yield row[0]

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
        head, rest = _head(entries, self.limit)
        if rest is None:
            return iter(sorted_listing(head))    # no more than fits: sorted in RAM, nothing on disk
        scratch = self._scratch()
        stream = chain(head, rest)
        del head
        spans = []
        seq = 0
        while True:
            records = _records(islice(stream, self.limit), seq)   # each entry let go as it is read
            records.sort()
            if len(records) < self.limit:
                break       # the last, short run stays in RAM
            seq += len(records)
            spans.append(scratch.append([marshal.dumps(records[i:i + BLOCK]) for i in range(0, len(records), BLOCK)]))
        scratch.done_writing()
        runs: list[Iterator[list[Record]]] = [map(marshal.loads, scratch.read(span)) for span in spans]
        runs.append(iter([records]))
        return map(_rebuild, chain.from_iterable(_merge_blocks(runs)))

    # ---- the local walk, held while the remote is listed ---------------------
    def spool(self, items: Iterable[tuple[str, Entry]], until: Callable[[], bool] | None = None
              ) -> Iterator[tuple[str, Entry]]:
        """Read `items` (a stream already in order) now, until it ends or
        `until()` says enough (asked every block: the remote listing it was
        held for is in), and return all of it in the same order: what was
        read, up to `limit` held in RAM and the rest on disk, then the rest
        of the stream as it comes."""
        it = iter(items)
        enough = until or (lambda: False)
        held: list[tuple[str, Entry]] = []
        while len(held) < self.limit:
            if enough():
                return chain(held, it)
            want = min(BLOCK, self.limit - len(held))
            block = list(islice(it, want))
            held += block
            if len(block) < want:
                return iter(held)           # the whole stream, in RAM
        following = next(it, None)
        if following is None:
            return iter(held)
        it = chain((following,), it)
        scratch = self._scratch()
        first = scratch.blocks + 1
        for i in range(0, len(held), BLOCK):
            scratch.append([_local_blob(held[i:i + BLOCK])])
        del held
        while not enough() and (block := list(islice(it, BLOCK))):
            scratch.append([_local_blob(block)])
        scratch.done_writing()
        return chain(chain.from_iterable(map(_local_block, scratch.read((first, scratch.blocks)))), it)


def _head(items: Iterable[T], limit: int) -> tuple[list[T], Iterator[T] | None]:
    """The first `limit` items, and an iterator over the rest (None: there is no more)."""
    it = iter(items)
    head = list(islice(it, limit + 1))
    if len(head) <= limit:
        return head, None
    return head[:limit], chain(head[limit:], it)


def _records(entries: Iterable[RemoteEntry], seq: int) -> list[Record]:
    kind = _KIND_NAME
    return [(p if (p := e.path).isascii() else nfc(p), n, p, kind[e.kind], e.size, e.mtime_ns, e.rev, e.hash,
             e.id, e.spelling) for n, e in enumerate(entries, seq)]   # the key is merge.remote_key's, inlined


def _merge_blocks(runs: list[Iterator[list[Record]]]) -> Iterator[list[Record]]:
    """Merge sorted runs, each a stream of sorted blocks, into a stream of
    sorted batches: each round takes from every run's current block what is
    no greater than the smallest of their last records (so nothing a later
    block holds can come before it), sorts that together and hands it out;
    at least one block is used up each round."""
    current: list[tuple[list[Record], int, Iterator[list[Record]]]] = []
    for run in runs:
        block = next(run, None)
        if block:
            current.append((block, 0, run))
    while current:
        bound = min(block[-1] for block, _pos, _run in current)
        batch: list[Record] = []
        still: list[tuple[list[Record], int, Iterator[list[Record]]]] = []
        for block, pos, run in current:
            cut = bisect_right(block, bound, pos)
            batch += block[pos:cut]
            if cut < len(block):
                still.append((block, cut, run))
            else:
                following = next(run, None)
                if following:
                    still.append((following, 0, run))
        batch.sort()    # a few sorted slices: timsort merges them
        yield batch
        current = still


def _rebuilder() -> Callable[[Record], RemoteEntry]:
    """RemoteEntry from a record, without the frozen dataclass's __init__
    (which sets each field through object.__setattr__ by name: 2.6 us an
    entry on the project's machine, most of reading a listing back): the
    slots' own setters do the same in half the time. test_spill checks the
    record still holds every field of the class."""
    slot = RemoteEntry.__dict__
    path, kind, size, mtime_ns, rev, hash_, id_, spelling = (slot[name].__set__ for name in RECORD_FIELDS)
    new, kinds = object.__new__, _KIND

    def rebuild(r: Record) -> RemoteEntry:
        e: RemoteEntry = new(RemoteEntry)
        path(e, r[2]), kind(e, kinds[r[3]]), size(e, r[4]), mtime_ns(e, r[5])
        rev(e, r[6]), hash_(e, r[7]), id_(e, r[8]), spelling(e, r[9])
        return e

    return rebuild


_rebuild = _rebuilder()


def _local_blob(block: list[tuple[str, Entry]]) -> bytes:
    # exact tuples of plain values: untracked by the collector, as the remote records
    return marshal.dumps(([p for p, _ in block], [tuple(e) for _, e in block]))


def _local_block(blob: bytes) -> Iterator[tuple[str, Entry]]:
    paths, fields = marshal.loads(blob)
    return zip(paths, map(Entry._make, fields), strict=True)
