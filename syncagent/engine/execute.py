"""Runs a plan: moves, deletes, folders, transfers, then base-only records.

Transfers are staged (bytes written under a temp name) in batches; one
flush makes a whole batch durable; then each file is checked and renamed
into place, and the batch's base rows are committed in one transaction.
A crash at any point leaves temp files (removed by the next run) and a base
that is behind, never ahead, of the disk: the next run converges.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from syncagent import errors, hashing
from syncagent.engine import crashpoint, journal
from syncagent.engine.deltapath import DeltaPath
from syncagent.engine.localside import LocalSide, entry_rev
from syncagent.engine.plan import Action, Op, Plan
from syncagent.engine.records import DIR, FILE, Base, Entry
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.trash import Trash
from syncagent.paths import is_under
from syncagent.providers.base import (
    CopyBatch,
    DoneWrite,
    Expect,
    LocalSource,
    Provider,
    RemoteEntry,
    StagedWrite,
)

TYPE_CHECKING = False
if TYPE_CHECKING:   # (names for the type checker only: no typing import at run time)
    from typing import IO, Any

    from syncagent.engine.localside import OwnWrites

# A file written again within one tick of the filesystem clock can keep its
# mtime and size; a base recorded that close to the mtime is marked "racy"
# (as git does) so the next run compares content instead of trusting metadata.
RACY_NS = 50_000_000
_SMALL = 1 << 20     # a file read in one piece (fileio.copy_into): no progress wrapper around it


def _batch_files() -> int:
    """Files per transfer batch: SYNCAGENT_BATCH_FILES where set (the kill
    tests cut a small run into many batches), else 2000: small enough that
    the pipeline's first copy starts early and its last flush is short, big
    enough that a flush and a commit serve many files (W1 on a fresh ext4:
    0.343 s at 4096, 0.329 s at 2000; the W6 set-up 1.99 s against 1.89 s)."""
    try:
        return max(1, int(os.environ.get("SYNCAGENT_BATCH_FILES", "")))
    except ValueError:
        return 2000


BATCH_FILES = _batch_files()
BATCH_BYTES = 512 << 20


class Context:
    """Everything the executor needs for one pair. (A plain class: a dataclass
    imports dataclasses and inspect, ~14 ms of a small run.)"""

    __slots__ = ("deltas", "hash_kind", "hashes", "local", "own_writes", "pair", "remote", "reporter", "stop",
                 "store", "summary", "trash")

    def __init__(self, local: LocalSide, remote: Provider, store: Store, pair: int, trash: Trash | None,
                 reporter: Reporter, summary: Summary, hashes: dict[str, str] | None = None,
                 own_writes: OwnWrites | None = None, deltas: DeltaPath | None = None,
                 stop: threading.Event | None = None, hash_kind: str = "sha256") -> None:
        self.local, self.remote, self.store, self.pair, self.trash = local, remote, store, pair, trash
        self.reporter, self.summary = reporter, summary
        self.hashes: dict[str, str] = {} if hashes is None else hashes
        self.own_writes, self.deltas, self.stop = own_writes, deltas, stop
        self.hash_kind = hash_kind      # the pair's content hash kind (engine/identity.py)


class _SentWhileChanging(Exception):
    """An upload that landed although its source changed while it was read.
    `digest`: the hash of the bytes read and sent, where one was taken on the
    way (the source's mtime was within the racy window when the send began)."""

    def __init__(self, entry: RemoteEntry, digest: str | None) -> None:
        super().__init__(entry.path)
        self.entry, self.digest = entry, digest


class Cancelled(Exception):
    """The run was asked to stop; what was committed is consistent."""


# A staged transfer: the write, the local entry it came from (uploads), and the
# bytes that crossed to and from the remote (a delta's size, not the file's).
Staged = tuple[StagedWrite, Entry | None, int, int]


class _Counter:
    """Counts bytes read through a stream (for the progress bar). `fileno`
    passes through, so a kernel-side copy still works; `settle` then
    accounts for the bytes that never came through `read`. `digest` hashes
    the first `size` bytes only: what a transfer of `size` bytes sends, even
    where a reader's last block runs past it into bytes a writer appended."""

    def __init__(self, inner: IO[bytes], tick: Callable[[int], None], digest: Any = None, size: int = -1) -> None:
        self.inner, self.tick, self.count, self.digest, self.size = inner, tick, 0, digest, size

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        before = self.count
        self.count += len(data)
        self.tick(len(data))
        if self.digest is not None:
            self.digest.update(data if self.size < 0 or self.count <= self.size else data[:max(0, self.size - before)])
        return data

    def seekable(self) -> bool:
        return self.digest is None and self.inner.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        """A provider retrying an upload rewinds the stream; the count follows."""
        pos = self.inner.seek(offset, whence)
        self.count = min(self.count, pos)
        return pos

    def tell(self) -> int:
        return self.inner.tell()

    def fileno(self) -> int:
        if self.digest is not None:
            raise OSError("hashing: the bytes must come through read()")
        return self.inner.fileno()

    def close(self) -> None:
        self.inner.close()

    def settle(self, size: int) -> None:
        if size > self.count:
            self.tick(size - self.count)
            self.count = size

    def as_io(self) -> IO[bytes]:
        return self  # type: ignore[return-value]


class _Copies:
    """A batch's small uploads handed to the remote as files on this machine
    (Provider.prepare_copies): their indexes in the batch, and whether the
    remote took them once run."""

    __slots__ = ("batch", "picks", "ran")

    def __init__(self, picks: list[int], batch: CopyBatch) -> None:
        self.picks, self.batch, self.ran = picks, batch, False

    def run(self) -> None:
        self.ran = self.batch.run()


class _Ahead:
    """A batch staged and then flushed on a thread of its own (the copies run
    in C with the GIL released, the flush is the kernel's) while the batches
    before it are committed and recorded in Python: `copied` is set once its
    temps are written, so the next batch's copy can start while this one is
    flushed; took() then makes its copies' results on the engine's thread
    (the Python of a copy is not the staging thread's: the copying never
    waits for it); result() waits for the flush and passes on an error."""

    def __init__(self, key: str, row: int, size: int, stage: Callable[[list[Staged | None]], None],
                 flush: Callable[[list[Staged | None]], None], took: Callable[[list[Staged | None]], None]) -> None:
        self.key, self.row = key, row
        self.staged: list[Staged | None] = [None] * size   # filled by stage and took; thrown away on a failure
        self._stage, self._flush, self._took = stage, flush, took
        self._taken = False
        self._error: BaseException | None = None
        self.copied = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._next: _Ahead | None = None    # started by this one's thread as soon as its copy is done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stage-ahead", daemon=True)
        self._thread.start()

    def then(self, following: _Ahead) -> None:
        """Start `following` once this batch is copied (at once if it is)."""
        with self._lock:
            if not self.copied.is_set():
                self._next = following
                return
        following.start()

    def _copy_done(self) -> None:
        with self._lock:
            self.copied.set()
            following, self._next = self._next, None
        if following is not None:
            following.start()

    def _run(self) -> None:
        try:
            self._stage(self.staged)
            self._copy_done()
            self._flush(self.staged)
        except BaseException as exc:   # handed to the caller's thread by result()
            self._error = exc
        finally:
            self._copy_done()

    def took(self) -> None:
        """The copies' results into `staged` (once; after `copied`)."""
        if not self._taken:
            self._taken = True
            self._took(self.staged)

    def result(self) -> list[Staged | None]:
        """The staged batch, once flushed (one never started: nothing staged)."""
        if self._thread is not None:
            self._thread.join()
        self.took()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.staged


class Executor:
    def __init__(self, ctx: Context, plan: Plan) -> None:
        self.ctx = ctx
        self.plan = plan
        self.local_view = plan.local
        self.remote_view = plan.remote
        self.base = plan.base
        self.upserts: list[tuple[str, Base]] = []
        self.deletes: list[str] = []
        self._shared = threading.Lock()   # the summary and the base rows, written by staging threads too
        self._mtime_revs = ctx.remote.capabilities.mtime_revs

    # ---- helpers -------------------------------------------------------------
    def _remote_target(self, path: str) -> str:
        """Where a new remote item goes: its local name's byte form kept (NFD stays NFD)."""
        if path.isascii() or path in self.remote_view:
            return path
        name = self.ctx.local.disk_rel(path).rpartition("/")[2]
        return _spelled(path, name)

    def _local_target(self, path: str) -> str:
        """Where a new local item goes: the remote name's byte form kept."""
        r = self.remote_view.get(path)
        if r is None or r.spelling is None or path in self.local_view:
            return path
        return _spelled(path, r.spelling)

    def _before_local(self, *paths: str) -> None:
        if self.ctx.own_writes is not None:
            for p in paths:
                self.ctx.own_writes.suppress(p)

    def _after_local(self, *paths: str) -> None:
        if self.ctx.own_writes is not None:
            for p in paths:
                self.ctx.own_writes.wrote(p)

    def _fail(self, action: Action, exc: BaseException) -> None:
        with self._shared:     # staging threads and the committing one count into one summary
            self._count_failure(action, exc)

    def _count_failure(self, action: Action, exc: BaseException) -> None:
        s = self.ctx.summary
        if isinstance(exc, errors.Conflict | errors.NotFound) and action.op in (Op.UPLOAD, Op.DOWNLOAD):
            s.changed_during_run += 1
            self.ctx.reporter.info(f"changed during the run, left for the next run: {action.path}")
            return
        s.errors += 1
        s.error_list.append({"path": action.path, "op": str(action.op), "error": str(exc)})
        self.ctx.reporter.error(f"{action.op} failed: {exc}", action.path)

    def _flush_base(self) -> None:
        if self.upserts or self.deletes:
            with self._shared:     # a staging thread may record a row meanwhile: it goes with the next write
                upserts, deletes, self.upserts, self.deletes = self.upserts, self.deletes, [], []
            self.ctx.store.write_base(self.ctx.pair, upserts, deletes)
            self.ctx.remote.batch_committed()
            crashpoint.point("base-written")

    def _record(self, path: str, l: Entry, r: RemoteEntry, content_hash: str | None = None,
                trust_hash: bool = True) -> None:
        h = content_hash or (self.ctx.hashes.get(path) if trust_hash else None)
        old = self.base.get(path)
        if trust_hash and h is None and old is not None and old.size == l.size and old.mtime_ns == l.mtime_ns \
                and old.ino == l.ino:
            h = old.hash
        size, rrev = l.size, r.rev
        racy_after = _racy_after()   # (one clock read for both sides)
        racy_local = l.kind == FILE and l.mtime_ns > racy_after
        racy_remote = r.kind == FILE and self._mtime_revs and r.mtime_ns > racy_after
        if (racy_local or racy_remote) and h is None and trust_hash:
            try:
                h = self.ctx.local.hash_of(path, self.ctx.hash_kind)
            except OSError:
                racy_local = racy_remote = False
        if racy_local:
            size = -1
        if racy_remote:
            rrev = ""
        row = Base(l.kind, size, l.mtime_ns, l.ino, h, rrev, r.id, r.hash, r.size, r.mtime_ns)
        self.base[path] = row
        self.upserts.append((path, row))

    def _forget(self, path: str, recursive: bool = False) -> None:
        self.base.pop(path, None)
        self.deletes.append(path)
        if recursive:
            for p in [p for p in self.base if is_under(p, path)]:
                del self.base[p]
                self.deletes.append(p)

    # ---- run -----------------------------------------------------------------
    def _stopping(self) -> bool:
        return self.ctx.stop is not None and self.ctx.stop.is_set()

    def run(self) -> None:
        for phase in (self._moves, self._deletes, self._mkdirs, self._transfers, self._records):
            phase()
            self._flush_base()
            if self._stopping():
                raise Cancelled()

    def _moves(self) -> None:
        for a in self.plan.moves:
            side = self.ctx.remote if a.op is Op.MOVE_REMOTE else self.ctx.local
            try:
                if a.op is Op.MOVE_LOCAL:
                    self._before_local(a.path, a.dst)
                side.move(a.path, a.dst)
                if a.op is Op.MOVE_LOCAL:
                    self._after_local(a.path, a.dst)
            except errors.ProviderError as exc:
                self._fail(a, exc)
                continue
            self.ctx.reporter.action("move", f"{a.path} -> {a.dst}", "remote" if a.op is Op.MOVE_REMOTE
                                     else "local")
            self.ctx.summary.moved += 1
            crashpoint.point("moved")
            # The database follows the move at once (a kill before the next move leaves it true);
            # the rows as the plan's rekeyed view has them, new revs included, go with the phase.
            self.ctx.store.move_base_prefix(self.ctx.pair, a.path, a.dst)
            crashpoint.point("move-recorded")
            for p, b in self.base.items():
                if p == a.dst or is_under(p, a.dst):
                    self.upserts.append((p, b))

    def _deletes(self) -> None:
        deletes = self.plan.of(Op.DELETE_LOCAL, Op.DELETE_REMOTE)
        deletes.sort(key=lambda a: (a.kind == DIR, -a.path.count("/")))
        remote = [a for a in deletes if a.op is Op.DELETE_REMOTE]
        if remote:
            # one call: a service with a batch delete (one SmartFile task) pays its latency once
            failed = self.ctx.remote.delete_many([(a.path, a.recursive) for a in remote])
            for a in remote:
                self._deleted_remote(a, failed.get(a.path))
        for a in deletes:
            if a.op is Op.DELETE_REMOTE:
                continue
            try:
                self._delete_local(a)
            except errors.ProviderError as exc:
                self._fail(a, exc)
            except OSError as exc:
                self._fail(a, exc)

    def _deleted_remote(self, a: Action, exc: Exception | None) -> None:
        if isinstance(exc, errors.AlreadyExists):
            self.ctx.reporter.warn("folder not removed: it holds ignored or skipped items", a.path)
            self._forget(a.path)
            return
        if exc is not None:
            self._fail(a, exc)
            return
        crashpoint.point("deleted")
        self.ctx.reporter.action("delete remote", a.path + ("/" if a.kind == DIR else ""))
        self.ctx.summary.deleted_remote += self.plan.files_taken(a)
        self._forget(a.path, a.recursive)

    def _delete_local(self, a: Action) -> None:
        local = self.ctx.local
        seen = self.local_view.get(a.path)
        now = local.lstat_entry(a.path)
        if now is None:
            self._forget(a.path, a.recursive)
            return
        if a.kind == FILE and seen is not None and now != seen:
            self.ctx.summary.changed_during_run += 1
            return
        self._before_local(a.path)
        if a.kind == DIR and not a.recursive:
            try:
                local.delete(a.path)
            except errors.AlreadyExists:
                self.ctx.reporter.warn("folder not removed: it holds ignored or skipped items", a.path)
                self._forget(a.path)
                return
        elif self.ctx.trash is not None:
            local.move_out(a.path, self.ctx.trash.place_for(a.path))
        else:
            local.delete(a.path, recursive=a.kind == DIR)
        self._after_local(a.path)
        crashpoint.point("deleted")
        self.ctx.reporter.action("delete local", a.path + ("/" if a.kind == DIR else ""))
        self.ctx.summary.deleted_local += self.plan.files_taken(a)
        self._forget(a.path, a.recursive)

    def _mkdirs(self) -> None:
        mkdirs = self.plan.of(Op.MKDIR_LOCAL, Op.MKDIR_REMOTE)
        mkdirs.sort(key=lambda a: a.path.count("/"))
        for a in mkdirs:
            try:
                if a.op is Op.MKDIR_REMOTE:
                    r = self.ctx.remote.mkdir(self._remote_target(a.path))
                    l = self.local_view.get(a.path) or self.ctx.local.lstat_entry(a.path)
                    self.ctx.reporter.action("mkdir remote", a.path + "/")
                else:
                    self._before_local(a.path)
                    self.ctx.local.mkdir(self._local_target(a.path))
                    self._after_local(a.path)
                    l = self.ctx.local.lstat_entry(a.path)
                    r = self.remote_view.get(a.path) or self.ctx.remote.stat(a.path)
                    self.ctx.reporter.action("mkdir local", a.path + "/")
            except errors.ProviderError as exc:
                self._fail(a, exc)
                continue
            if l is not None:
                self._record(a.path, l, r)
            self.ctx.summary.mkdirs += 1

    # ---- transfers -----------------------------------------------------------
    def _transfers(self) -> None:
        todo = self.plan.of(Op.UPLOAD, Op.DOWNLOAD)
        if not todo:
            return
        total = sum(self._size(a) for a in todo)
        self.ctx.reporter.start_transfers(total)
        batches = list(self._batches(todo))
        if self.ctx.remote.capabilities.stage_ahead:
            self._pipelined(batches)
            return
        for batch in batches:
            key, row = self._journal_intents(batch)
            staged = self._stage_batch(batch)
            try:
                rows = [row, *self._finish_batch(batch, staged, key)]
            except BaseException:
                _abort(staged)      # what is not committed yet (a committed temp is gone already)
                raise
            self._after_batch(rows)

    def _pipelined(self, batches: list[list[Action]]) -> None:
        """Each batch is copied and then flushed on a staging thread of its own;
        the next batch's copy starts as soon as this one's temps are written (its
        flush and the copy overlap), and this one is committed and recorded here
        once flushed. Batches are prepared here (their intents journaled, their
        copies made ready) while the ones before them copy or flush, up to two
        ahead of the one being finished, so the copying never waits for Python;
        nothing of a batch is visible before its own flush and commit."""
        ahead: collections.deque[_Ahead] = collections.deque()   # started or chained, in batch order
        prepared = 0

        def prepare(*, even_stopping: bool = False) -> None:
            nonlocal prepared
            if prepared == len(batches) or (self._stopping() and not even_stopping):
                return
            following = self._stage_ahead(batches[prepared])
            prepared += 1
            if ahead:
                ahead[-1].then(following)
            else:
                following.start()
            ahead.append(following)

        try:
            for batch in batches:
                if not ahead:
                    prepare(even_stopping=True)
                if len(ahead) < 2:
                    prepare()                  # while this one copies
                done = ahead[0]
                done.copied.wait()
                ahead.popleft()   # (only now: a run stopped while it copied throws it away below)
                try:
                    done.took()
                    if len(ahead) < 2:
                        prepare()              # while this one flushes: ready when the next one's copy ends
                    staged = done.result()
                    rows = [done.row, *self._finish_batch(batch, staged, done.key, flushed=True)]
                except BaseException:
                    _abort(done.staged)   # what is not committed yet (a committed temp is gone already)
                    raise
                self._after_batch(rows)
        finally:
            for pending in ahead:   # an error on the way: the later batches' temps are thrown away
                with contextlib.suppress(BaseException):   # the error already on its way is the one to report
                    pending.result()     # (its copies' results taken into `staged` too)
                _abort(pending.staged)

    def _after_batch(self, rows: list[int]) -> None:
        self._flush_base()
        self.ctx.store.journal_clear(self.ctx.pair, rows)

    def _stage_ahead(self, batch: list[Action]) -> _Ahead:
        key, row = self._journal_intents(batch)
        copies = self._local_copies(batch)
        return _Ahead(key, row, len(batch), lambda staged: self._stage_rest(batch, copies, staged),
                      lambda staged: self._flush(batch, staged, copies),
                      lambda staged: self._took(batch, copies, staged))

    def _size(self, a: Action) -> int:
        if a.op is Op.UPLOAD:
            return self.local_view[a.path].size
        return self.remote_view[a.path].size

    def _batches(self, todo: list[Action]) -> Iterator[list[Action]]:
        batch: list[Action] = []
        size = 0
        for a in todo:
            batch.append(a)
            size += self._size(a)
            if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _expected(self, batch: list[Action], staged: list[Staged | None], key: str) -> list[int]:
        """What each staged destination will hold once committed (see journal.py),
        as one row beside the batch's intents (row `key`)."""
        expected: list[str | list[int] | None] = []
        for a, s in zip(batch, staged, strict=True):
            if s is None:
                expected.append(None)
                continue
            entry = s[0].entry
            expected.append(entry.rev if a.op is Op.UPLOAD else [entry.size, entry.mtime_ns, int(entry.id or 0)])
        if any(e is not None for e in expected):
            return [self.ctx.store.journal_add(self.ctx.pair, journal.pack_expected(key, expected))]
        return []

    def _journal_intents(self, batch: list[Action]) -> tuple[str, int]:
        """The batch's intents as one journal row (before any of it is staged): its key and row id."""
        intents: list[tuple[str, str, str]] = []
        local_view, remote_get, base_get, hash_get = (self.local_view, self.remote_view.get, self.base.get,
                                                      self.ctx.hashes.get)
        upload_intent, upload = journal.upload_intent, str(Op.UPLOAD)
        for a in batch:
            path = a.path
            if a.op is not Op.UPLOAD:
                intents.append((str(a.op), path, journal.download_intent(self.remote_view[path], local_view.get(path))))
                continue
            seen = local_view[path]
            old = base_get(path)   # (a hash known for what the scan saw goes with the intent)
            known = hash_get(path) or (
                old.hash if old is not None and (old.size, old.mtime_ns, old.ino) == seen[1:] else None)
            intents.append((upload, path, upload_intent(seen, remote_get(path), known)))
        entry = journal.pack(intents)
        return entry[1], self.ctx.store.journal_add(self.ctx.pair, entry)

    def _finish_batch(self, batch: list[Action], staged: list[Staged | None], key: str, *,
                      flushed: bool = False) -> list[int]:
        """Flush (unless done already), commit and record a staged batch; the journal rows it added."""
        rows = self._expected(batch, staged, key)
        crashpoint.point("staged")
        if not flushed:
            self._flush(batch, staged)
        self._commit_all(batch, staged)
        return rows

    def _flush(self, batch: list[Action], staged: list[Staged | None], copies: _Copies | None = None) -> None:
        """Make a staged batch durable before any of it is renamed into place
        (`copies`: uploads the remote took, not in `staged` yet)."""
        if any(s is not None and a.op is Op.DOWNLOAD for a, s in zip(batch, staged, strict=True)):
            self.ctx.local.flush()
        if (copies is not None and copies.ran) or any(
                s is not None and a.op is Op.UPLOAD for a, s in zip(batch, staged, strict=True)):
            self.ctx.remote.flush()
        crashpoint.point("flushed")

    def _commit_all(self, batch: list[Action], staged: list[Staged | None]) -> None:
        """Each side renames its staged writes as one batch (a folder on this
        machine: one native call), then each outcome is recorded."""
        self._commit_side(self.ctx.remote.commit_staged, Op.UPLOAD, batch, staged)
        self._commit_side(self.ctx.local.commit_staged, Op.DOWNLOAD, batch, staged)

    def _commit_side(self, commit: Callable[[Sequence[StagedWrite]], Sequence[RemoteEntry | Exception]], op: Op,
                     batch: list[Action], staged: list[Staged | None]) -> None:
        done = [(a, s) for a, s in zip(batch, staged, strict=True) if s is not None and a.op is op]
        if not done:
            return
        outcomes = commit([s[0] for _, s in done])
        if op is Op.UPLOAD:
            self._uploaded(done, outcomes)
            return
        for (a, s), outcome in zip(done, outcomes, strict=True):
            self._committed(a, s, outcome)
            crashpoint.point("committed")

    def _uploaded(self, done: list[tuple[Action, Staged]], outcomes: Sequence[RemoteEntry | Exception]) -> None:
        """_committed for a batch's uploads, in one loop (it runs for every file)."""
        record, action, point = self._record, self.ctx.reporter.action, crashpoint.point
        files = size = sent = received = 0
        try:
            for (a, staged), outcome in zip(done, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    self._fail(a, outcome)
                else:
                    seen = staged[1]
                    assert seen is not None
                    record(a.path, seen, outcome)
                    files += 1
                    size += seen.size
                    sent += staged[2]
                    received += staged[3]
                    action("upload", a.path)
                point("committed")
        finally:
            summary = self.ctx.summary
            summary.uploaded += files
            summary.bytes_uploaded += size
            summary.bytes_sent += sent
            summary.bytes_received += received

    def _stage_batch(self, batch: list[Action]) -> list[Staged | None]:
        staged: list[Staged | None] = [None] * len(batch)
        copies = self._local_copies(batch)
        self._stage_rest(batch, copies, staged)
        self._took(batch, copies, staged)
        return staged

    def _stage_rest(self, batch: list[Action], copies: _Copies | None, staged: list[Staged | None]) -> None:
        """Run the copies the remote was offered, then stage the rest one by
        one (a few at once), into `staged`."""
        if copies is not None and not self._stopping():
            copies.run()
        taken = set(copies.picks) if copies is not None and copies.ran else ()
        rest = [i for i in range(len(batch)) if i not in taken]
        todo = [batch[i] for i in rest]
        workers = max(1, min(self.ctx.remote.capabilities.transfers, len(todo)))
        if workers == 1:
            done = [None if self._stopping() else self._stage(a) for a in todo]
        else:
            from concurrent.futures import ThreadPoolExecutor  # (with logging: only a pool's run)

            with ThreadPoolExecutor(workers, thread_name_prefix="transfer") as pool:
                done = list(pool.map(lambda a: None if self._stopping() else self._stage(a), todo))
        for i, s in zip(rest, done, strict=True):
            staged[i] = s

    def _local_copies(self, batch: list[Action]) -> _Copies | None:
        """Small uploads offered to the remote as files on this machine (a
        remote that can copy them itself stages them in one call: the bytes
        never pass through Python). A file whose mtime is too fresh to trust
        (its hash is taken on the way) stays per file."""
        picks: list[int] = []
        sources: list[LocalSource] = []
        local_view, remote_get, fspath = self.local_view, self.remote_view.get, self.ctx.local.fspath
        racy_after = _racy_after()
        for i, a in enumerate(batch):
            if a.op is not Op.UPLOAD:
                continue
            path = a.path
            seen = local_view[path]
            if seen.size >= _SMALL or seen.mtime_ns > racy_after:
                continue
            r = remote_get(path)
            expect: Expect = None
            if r is not None:
                if self._delta_wanted(path, seen, r):
                    continue
                if r.kind == FILE:
                    expect = r.rev
            sources.append(LocalSource(path if path.isascii() else self._remote_target(path), fspath(path),
                                       seen.size, seen.mtime_ns, seen.ino, expect))
            picks.append(i)
        if not sources or self._stopping():
            return None
        return _Copies(picks, self.ctx.remote.prepare_copies(sources))

    def _took(self, batch: list[Action], copies: _Copies | None, staged: list[Staged | None]) -> None:
        """The copies' results into `staged` (their errors counted)."""
        if copies is None:
            return
        if not copies.ran:
            copies.batch.close()     # never run (stopped, or an error before): what it holds goes
            return
        sent = 0
        for i, result in zip(copies.picks, copies.batch.results(), strict=True):
            a = batch[i]
            if isinstance(result, Exception):   # (not the ABC StagedWrite: its check costs ten times more)
                self._fail(a, result)
            else:
                seen = self.local_view[a.path]
                staged[i] = (result, seen, seen.size, 0)
                sent += seen.size
        self.ctx.reporter.advance(sent)

    def _delta_wanted(self, path: str, seen: Entry, r: RemoteEntry | None) -> bool:
        deltas = self.ctx.deltas
        return deltas is not None and r is not None and r.kind == FILE and path in self.base \
            and deltas.wanted(seen.size)

    def _stage(self, a: Action) -> Staged | None:
        try:
            if a.op is Op.UPLOAD:
                return self._stage_upload(a)
            return self._stage_download(a)
        except _SentWhileChanging as sent:
            # The service already holds what we read (a file being written to while it was sent):
            # record that as the base, so the next run uploads the newer version instead of
            # taking both sides for changed (a conflict copy on every run of a growing file).
            # A row recorded within the racy window is confirmed by content next run: its hash is
            # that of the bytes sent (what the service holds), never one taken of the file before.
            with self._shared:
                self._record(a.path, self.local_view[a.path], sent.entry, content_hash=sent.digest, trust_hash=False)
                self.ctx.summary.changed_during_run += 1
            self.ctx.reporter.info(f"changed while it was sent, the newer version goes next run: {a.path}")
            return None
        except (errors.ProviderError, OSError) as exc:
            self._fail(a, exc)
            return None

    def _stage_upload(self, a: Action) -> Staged | None:
        seen = self.local_view[a.path]
        r = self.remote_view.get(a.path)
        expect: Expect = r.rev if r is not None and r.kind == FILE else None
        deltas = self.ctx.deltas
        if deltas is not None and r is not None and self._delta_wanted(a.path, seen, r):
            try:
                entry, sent, received, digest = deltas.upload(a.path, seen, r)
                self.ctx.hashes[a.path] = digest
                self.ctx.reporter.advance(seen.size)
                return DoneWrite(entry), seen, sent, received
            except errors.Conflict:
                raise
            except (errors.SyncAgentError, OSError) as exc:
                self.ctx.reporter.warn(f"delta upload failed ({exc}); sending the whole file", a.path)
                current = self.ctx.remote.stat(a.path)
                expect = current.rev
        if seen.size < _SMALL:
            return self._upload_small(a.path, seen, expect)
        with self.ctx.local.open_scanned(a.path) as f:
            fd = f.fileno()
            if not _still(fd, seen):     # also what keeps a read from going through a swapped folder
                raise errors.Conflict("changed since the scan", path=a.path)
            size = seen.size
            stream = _Counter(f, self.ctx.reporter.advance, _digest_if_racy(self.ctx.hash_kind, size, seen.mtime_ns),
                              size)
            try:
                staged = self.ctx.remote.stage_write(self._remote_target(a.path), stream.as_io(), size,
                                                     seen.mtime_ns, expect=expect)
            except errors.ProviderError as exc:
                if not _still(fd, seen):  # a short or long read: the user is writing it
                    raise errors.Conflict("changed while it was read", path=a.path) from exc
                raise
            sent_hash = self._settle(a.path, stream, size)
            # The open descriptor still names the bytes we read: a write during the
            # copy shows in its size or mtime (a rename over the path leaves our
            # snapshot whole, and the next run sees the new file).
            if not _still(fd, seen):
                if staged.visible:
                    raise _SentWhileChanging(staged.entry, sent_hash)
                staged.abort()
                raise errors.Conflict("changed while it was read", path=a.path)
        return staged, seen, size, 0

    def _upload_small(self, path: str, seen: Entry, expect: Expect) -> Staged:
        """A small file is read whole before anything is sent: one read, then one
        fstat of the same descriptor proves the bytes are the file the scan saw,
        unchanged (its identity, size and mtime after the read), so no check
        around the provider's write is needed and the provider gets a seekable
        in-memory stream (a retry rewinds it)."""
        size = seen.size
        data, st = self.ctx.local.read_whole(path, size)
        if len(data) != size or st.st_size != size or st.st_mtime_ns != seen.mtime_ns or st.st_ino != seen.ino:
            raise errors.Conflict("changed since the scan", path=path)
        if _racy(seen.mtime_ns):
            digest = hashing.new_hasher(self.ctx.hash_kind, size=size, mtime_ns=seen.mtime_ns)
            digest.update(data)
            self.ctx.hashes[path] = digest.hexdigest()
        staged = self.ctx.remote.stage_write(self._remote_target(path), io.BytesIO(data), size, seen.mtime_ns,
                                             expect=expect)
        self.ctx.reporter.advance(size)
        return staged, seen, size, 0

    def _stage_download(self, a: Action) -> Staged | None:
        r = self.remote_view[a.path]
        seen = self.local_view.get(a.path)
        expect: Expect = entry_rev(seen) if seen is not None and seen.kind == FILE else None
        self._before_local(a.path)
        deltas = self.ctx.deltas
        if deltas is not None and seen is not None and seen.kind == FILE and a.path in self.base \
                and deltas.wanted(r.size):
            try:
                staged, sent, received = deltas.download(a.path, r, seen)
                self.ctx.reporter.advance(r.size)
                return staged, None, sent, received
            except errors.Conflict:
                raise
            except (errors.SyncAgentError, OSError) as exc:
                self.ctx.reporter.warn(f"delta download failed ({exc}); fetching the whole file", a.path)

        size = r.size
        with self.ctx.remote.read(a.path) as stream:
            digest = _digest_if_racy(self.ctx.hash_kind, size, r.mtime_ns)
            # A small file is one read: the progress bar advances once, after it, with no counting wrapper.
            counted = _Counter(stream, self.ctx.reporter.advance, digest) if digest is not None or size >= _SMALL \
                else None
            try:
                staged = self.ctx.local.stage_write(self._local_target(a.path), stream if counted is None
                                                    else counted.as_io(), size, r.mtime_ns, expect=expect)
            except errors.TransientError as exc:
                if self._remote_moved_on(a.path, r):   # more or fewer bytes than listed: it is being written
                    raise errors.Conflict("changed on the remote while it was read", path=a.path) from exc
                raise
            self._settle(a.path, counted, size)
        return staged, None, 0, size

    def _settle(self, path: str, counted: _Counter | None, size: int) -> str | None:
        """A whole file went through: the progress bar gets what the counter did
        not see (all of it without one), and a hash taken on the way is kept
        (and returned)."""
        if counted is None:
            self.ctx.reporter.advance(size)
            return None
        counted.settle(size)
        if counted.digest is None:
            return None
        digest: str = counted.digest.hexdigest()
        self.ctx.hashes[path] = digest
        return digest

    def _remote_moved_on(self, path: str, listed: RemoteEntry) -> bool:
        try:
            now = self.ctx.remote.stat(path)
        except errors.ProviderError:
            return True
        return now.rev != listed.rev or now.size != listed.size

    def _committed(self, a: Action, staged: Staged, outcome: RemoteEntry | Exception) -> None:
        if isinstance(outcome, Exception):
            self._fail(a, outcome)
            return
        entry = outcome
        _, seen, sent, received = staged
        s = self.ctx.summary
        if a.op is Op.UPLOAD:
            assert seen is not None
            self._record(a.path, seen, entry)
            s.uploaded += 1
            s.bytes_uploaded += seen.size
            s.bytes_sent += sent
            s.bytes_received += received
            self.ctx.reporter.action("upload", a.path)
        else:
            self._after_local(a.path)
            r = self.remote_view[a.path]
            local_entry = Entry(FILE, entry.size, entry.mtime_ns, int(entry.id or 0))
            self._record(a.path, local_entry, r)
            s.downloaded += 1
            s.bytes_downloaded += r.size
            s.bytes_received += received
            s.bytes_sent += sent
            self.ctx.reporter.action("download", a.path)

    # ---- base-only -----------------------------------------------------------
    def _records(self) -> None:
        for a in self.plan.actions:
            try:
                if a.op is Op.RECORD:
                    self._record(a.path, self.local_view[a.path], self.remote_view[a.path])
                    self.ctx.summary.recorded += 1
                elif a.op is Op.FORGET:
                    self._forget(a.path)
                elif a.op is Op.MTIME_REMOTE:
                    self._mtime_remote(a)
                elif a.op is Op.MTIME_LOCAL:
                    self._mtime_local(a)
            except (errors.ProviderError, OSError) as exc:
                self._fail(a, exc)

    def _mtime_remote(self, a: Action) -> None:
        l = self.local_view[a.path]
        r = self.remote_view[a.path]
        if self.ctx.remote.capabilities.set_mtime:
            r = self.ctx.remote.set_mtime(a.path, l.mtime_ns)
            self.ctx.reporter.action("touch remote", a.path)
        self._record(a.path, l, r)

    def _mtime_local(self, a: Action) -> None:
        r = self.remote_view[a.path]
        seen = self.local_view[a.path]
        if self.ctx.local.lstat_entry(a.path) != seen:
            self.ctx.summary.changed_during_run += 1
            return
        self._before_local(a.path)
        self.ctx.local.set_mtime(a.path, r.mtime_ns)
        self._after_local(a.path)
        now = self.ctx.local.lstat_entry(a.path)
        if now is not None:
            self.ctx.reporter.action("touch local", a.path)
            self._record(a.path, now, r)


def _abort(staged: list[Staged | None]) -> None:
    for s in staged:
        if s is not None:
            with contextlib.suppress(errors.ProviderError, OSError):   # a temp left: the next run's cleanup
                s[0].abort()


def _spelled(path: str, name: str) -> str:
    head = path.rpartition("/")[0]
    return f"{head}/{name}" if head else name


def _racy_after() -> int:
    """An mtime later than this is racy (too close to now to trust). A loop
    reads it once: a later clock would only find fewer files racy."""
    return time.time_ns() - RACY_NS


def _racy(mtime_ns: int) -> bool:
    return mtime_ns > _racy_after()


def _digest_if_racy(kind: str, size: int, mtime_ns: int) -> Any:
    return hashing.new_hasher(kind, size=size, mtime_ns=mtime_ns) if _racy(mtime_ns) else None


def _still(fd: int, seen: Entry) -> bool:
    """Whether an open file is still the one the scan saw (size, mtime, inode)."""
    st = os.fstat(fd)
    return st.st_mtime_ns == seen.mtime_ns and st.st_size == seen.size and st.st_ino == seen.ino

