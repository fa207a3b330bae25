"""The state database: the base of every pair (the last state known to be the
same on both sides), change-feed cursors and the journal of intents.

SQLite in WAL mode, one file per user, through the standard library: one
connection per thread (Connections), every query the Store's own SQL.
Bulk reads and writes take one query or one transaction: a no-op sync of
100,000 files must load its base in a fraction of a second. The schema is
peewee models (state_schema.py), imported only to create or migrate a file:
a run over an up-to-date file never imports peewee.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path

from syncagent.engine.records import Base
from syncagent.errors import SyncAgentError
from syncagent.native import NATIVE
from syncagent.providers.base import ProviderState

TYPE_CHECKING = False
if TYPE_CHECKING:   # (names for the type checker only: no typing import at run time)
    from typing import Any

SCHEMA_VERSION = 3

PRAGMAS = (("journal_mode", "wal"), ("synchronous", "normal"), ("busy_timeout", 10000))
TIMEOUT = 10         # seconds a statement waits for another connection's lock (busy_timeout's, at connect)
# Every transaction here writes: take the write lock at BEGIN, so a transaction
# that reads first never fails with SQLITE_BUSY on a stale snapshot (WAL) but
# waits its turn under busy_timeout like any writer (several pairs, one file).
WRITE = "IMMEDIATE"
# The tables of a new file as the peewee models (state_schema.py) create them, so a
# first run makes its file without importing peewee (~45 ms of a run that copies
# 10,000 files in under a second); test_state_store checks the two are the same.
NEW_FILE_SQL = (
    'CREATE TABLE "meta" ("key" TEXT NOT NULL PRIMARY KEY, "value" TEXT NOT NULL)',
    'CREATE TABLE "pair" ("id" INTEGER NOT NULL PRIMARY KEY, "local" TEXT NOT NULL, "remote" TEXT NOT NULL, '
    '"created" REAL NOT NULL, "last_sync" REAL)',
    'CREATE UNIQUE INDEX "pairrow_local_remote" ON "pair" ("local", "remote")',
    'CREATE TABLE "base" ("pair" INTEGER NOT NULL, "path" TEXT NOT NULL, "kind" TEXT NOT NULL, '
    '"size" INTEGER NOT NULL, "mtime_ns" INTEGER NOT NULL, "ino" INTEGER NOT NULL, "hash" TEXT, '
    '"rrev" TEXT NOT NULL, "rid" TEXT, "rhash" TEXT, "rsize" INTEGER NOT NULL, "rmtime_ns" INTEGER NOT NULL, '
    'PRIMARY KEY ("pair", "path")) WITHOUT ROWID',
    'CREATE TABLE "cursor" ("pair" INTEGER NOT NULL PRIMARY KEY, "cursor" TEXT NOT NULL)',
    'CREATE TABLE "journal" ("id" INTEGER NOT NULL PRIMARY KEY, "pair" INTEGER NOT NULL, "op" TEXT NOT NULL, '
    '"path" TEXT NOT NULL, "detail" TEXT NOT NULL, "started" REAL NOT NULL)',
    'CREATE INDEX "journalrow_pair" ON "journal" ("pair")',
    'CREATE TABLE "provider_state" ("pair" INTEGER NOT NULL, "key" TEXT NOT NULL, "value" TEXT NOT NULL, '
    'PRIMARY KEY ("pair", "key")) WITHOUT ROWID',
    'CREATE TABLE "hash_cache" ("pair" INTEGER NOT NULL, "path" TEXT NOT NULL, "kind" TEXT NOT NULL, '
    '"size" INTEGER NOT NULL, "mtime_ns" INTEGER NOT NULL, "ino" INTEGER NOT NULL, "value" TEXT NOT NULL, '
    'PRIMARY KEY ("pair", "path")) WITHOUT ROWID',
)
BASE_COLUMNS = ("kind", "size", "mtime_ns", "ino", "hash", "rrev", "rid", "rhash", "rsize", "rmtime_ns")


class StateError(SyncAgentError):
    pass


def damaged(path: Path, exc: BaseException) -> StateError:
    """The one message for a state database SQLite cannot read: what, and how to recover."""
    return StateError(
        f"the state database {path} is damaged ({exc}); the run stopped. To recover: move it aside "
        f"(mv '{path}' '{path}.broken') and run again: with no history the next run compares both sides "
        "and keeps every file, but files deleted on one side since the last sync come back from the other")


@contextmanager
def readable(path: Path) -> Iterator[None]:
    """Turn SQLite's "malformed" errors into the one message that says how to recover."""
    try:
        yield
    except (sqlite3.OperationalError, sqlite3.IntegrityError):
        raise       # busy, locked, out of space, a constraint: not a damaged file
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc


@contextmanager
def usable(path: Path) -> Iterator[None]:
    """Opening errors as one line: a file SQLite cannot use (permissions,
    locked, out of space) or one it cannot read (damaged)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StateError(f"cannot use the state database {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc


# Rows per statement of a bulk write. sqlite3's executemany lets go of the GIL
# around every row's step and must take it back after: while another thread
# runs Python (a staging thread wrapping its results) each row waits for that
# thread's switch interval. 10,000 base rows took 20 ms alone and 4 s beside a
# busy thread; in statements of 500 rows, 18 ms alone.
ROWS_PER_STATEMENT = 500


def many_rows(conn: sqlite3.Connection, head: str, width: int, rows: Iterable[Sequence[object]]) -> None:
    """`head` ("INSERT ... VALUES") over `rows` of `width` values, many rows a statement."""
    limit = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    one = "(" + ", ".join("?" * width) + ")"
    full = f"{head} {', '.join([one] * limit)}"
    it = iter(rows)
    while chunk := list(islice(it, limit)):
        sql = full if len(chunk) == limit else f"{head} {', '.join([one] * len(chunk))}"
        conn.execute(sql, list(chain.from_iterable(chunk)))


def many_keys(conn: sqlite3.Connection, head: str, fixed: Sequence[object], keys: Iterable[object]) -> None:
    """`head` ("... WHERE ... AND key IN") over `keys`, many a statement."""
    limit = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(fixed)))
    it = iter(keys)
    while chunk := list(islice(it, limit)):
        conn.execute(f"{head} ({', '.join('?' * len(chunk))})", (*fixed, *chunk))


def _pragma(conn: sqlite3.Connection, name: str, value: object) -> None:
    """Set one pragma. Switching a new file to WAL takes an exclusive lock,
    and SQLite answers "database is locked" at once, without its busy
    timeout, when another connection is opening the same new file (the
    agent's pairs start together on one state file): that one is retried
    for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            conn.execute(f"PRAGMA {name} = {value}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class _ThreadState(threading.local):
    conn: sqlite3.Connection | None = None
    depth = 0           # atomic() blocks open on this thread's connection
    marked = 0          # the connection's total_changes at the last mark()


class Connections:
    """One SQLite file, one connection per thread (a connection is never
    shared: the agent syncs each pair on a thread of its own), opened on
    first use with the pragmas, closed by `close()` on the thread that used
    it (a thread that ends without it closes with its thread-local state).
    Autocommit outside `atomic()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = _ThreadState()

    def connection(self) -> sqlite3.Connection:
        conn = self._local.conn
        if conn is None:
            conn = self._local.conn = self._open()
            self._local.depth = self._local.marked = 0
        return conn

    def _open(self) -> sqlite3.Connection:
        with usable(self.path):
            conn = sqlite3.connect(self.path, timeout=TIMEOUT, isolation_level=None)
            try:
                for name, value in PRAGMAS:
                    _pragma(conn, name, value)
            except BaseException:
                conn.close()
                raise
        return conn

    def close(self) -> None:
        """Close this thread's connection (if it has one)."""
        conn, self._local.conn = self._local.conn, None
        if conn is not None:
            conn.close()

    def in_transaction(self) -> bool:
        conn = self._local.conn
        return conn is not None and conn.in_transaction

    @contextmanager
    def atomic(self, lock: str = "DEFERRED") -> Iterator[sqlite3.Connection]:
        """A transaction (BEGIN `lock`), or inside one a savepoint: the
        block's writes commit together or not at all; an inner block that
        fails rolls back only its own."""
        conn = self.connection()
        depth = self._local.depth
        savepoint = f"s{depth}"
        conn.execute(f"BEGIN {lock}" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException:
            self._local.depth = depth
            if conn.in_transaction:     # an error may have rolled it all back already (SQLITE_FULL)
                conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO {savepoint}")
                if depth:
                    conn.execute(f"RELEASE {savepoint}")
            raise
        self._local.depth = depth
        try:
            conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
        except BaseException:
            if depth == 0 and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def wrote_since_mark(self) -> bool:
        """Whether this thread's connection wrote a row since `mark()` (or since it opened)."""
        return self.connection().total_changes != self._local.marked

    def mark(self) -> None:
        self._local.marked = self.connection().total_changes


class Store:
    """One opened state database."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state folder {state_dir}: {exc.strerror}") from exc
        self.path = state_dir / "state.db"
        self._provider_states: dict[int, PairState] = {}
        self.db = Connections(self.path)
        with usable(self.path):
            version = self._stored_version()
            if version is None:
                version = self._create()
            if version != SCHEMA_VERSION:
                from syncagent.engine import state_schema  # peewee: only for an older (or newer) file

                state_schema.create_or_migrate(self.path, SCHEMA_VERSION)

    def _create(self) -> int | None:
        """Make the tables of a new file; returns the version found once
        under the write lock (another process may have made them first)."""
        with self.db.atomic(WRITE) as conn:
            if self._has_meta():
                return self._stored_version()   # made meanwhile (a missing version: state_schema says damaged)
            for sql in NEW_FILE_SQL:
                conn.execute(sql)
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return SCHEMA_VERSION

    def close(self) -> None:
        """Close this thread's connection (each thread that used the store closes its own)."""
        self.db.close()

    def _sql(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.db.connection().execute(sql, params)

    # ---- schema ------------------------------------------------------------
    def schema_version(self) -> int:
        version = self._stored_version()
        if version is None:
            raise damaged(self.path, sqlite3.DatabaseError("its schema version is missing"))
        return version

    def _has_meta(self) -> bool:
        return self._sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None

    def _stored_version(self) -> int | None:
        """The file's schema version; None for a new file (no meta table yet)."""
        if not self._has_meta():
            return None
        row = self._sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    # ---- pairs -------------------------------------------------------------
    def pair_id(self, local: str, remote: str) -> int:
        found = "SELECT id FROM pair WHERE local = ? AND remote = ?"
        row = self._sql(found, (local, remote)).fetchone()
        if row is None:
            with self.db.atomic(WRITE) as conn:     # another process may add it first: its id is as good
                conn.execute("INSERT OR IGNORE INTO pair (local, remote, created) VALUES (?, ?, ?)",
                             (local, remote, time.time()))
                row = conn.execute(found, (local, remote)).fetchone()
        return int(row[0])

    def has_pair(self, local: str, remote: str) -> bool:
        return self._sql("SELECT 1 FROM pair WHERE local = ? AND remote = ?", (local, remote)).fetchone() is not None

    def mark_synced(self, pair: int) -> None:
        """Stamp `pair.last_sync`: the end of the last run that changed the
        state. A run that wrote nothing (a no-op) writes nothing here either,
        so closing the store leaves no WAL to checkpoint (two fdatasyncs)."""
        if self.db.wrote_since_mark():
            self._sql("UPDATE pair SET last_sync = ? WHERE id = ?", (time.time(), pair))
        self.db.mark()

    # ---- base --------------------------------------------------------------
    def load_base(self, pair: int) -> dict[str, Base]:
        cols = ", ".join(BASE_COLUMNS)
        cur = self._sql(f"SELECT path, {cols} FROM base WHERE pair = ?", (pair,))
        return {row[0]: Base._make(row[1:]) for row in cur}

    def iter_base_brief(self, pair: int) -> Iterator[tuple[str, str, int, int, int, str]]:
        """(path, kind, size, mtime_ns, ino, rrev) of every row, streamed in
        ascending path order (the primary key's: BINARY, i.e. UTF-8 bytes,
        which is code-point order, as Python compares str): enough to tell an
        unchanged path without holding a full row for each."""
        cur = self._sql(
            "SELECT path, kind, size, mtime_ns, ino, rrev FROM base WHERE pair = ? ORDER BY path", (pair,))
        return iter(cur)   # the cursor itself: no generator frame per row

    def base_brief_stream(self, pair: int) -> Iterable[tuple[str, str, int, int, int, str]]:
        """iter_base_brief's rows, read by the native module's thread on a
        read-only connection where it is built (the merge then makes no
        Python object for a quiet row). Only when this connection has
        nothing uncommitted: the other connection sees what is committed."""
        if NATIVE is not None and hasattr(NATIVE, "base_reader") and not self.db.in_transaction():
            reader: Iterable[tuple[str, str, int, int, int, str]] | None = NATIVE.base_reader(str(self.path), pair)
            if reader is not None:
                return reader
        return self.iter_base_brief(pair)

    def load_base_paths(self, pair: int, paths: Iterable[str]) -> dict[str, Base]:
        """Full rows of some paths, in batches of one query each."""
        cols = ", ".join(BASE_COLUMNS)
        wanted = list(paths)
        out: dict[str, Base] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            cur = self._sql(f"SELECT path, {cols} FROM base WHERE pair = ? AND path IN ({marks})", (pair, *chunk))
            out.update((row[0], Base._make(row[1:])) for row in cur)
        return out

    def load_base_under(self, pair: int, roots: Iterable[str]) -> dict[str, Base]:
        """Base rows of some paths and of everything below them (a range
        scan of the primary key per root: '/' + 1 is '0')."""
        cols = ", ".join(BASE_COLUMNS)
        out: dict[str, Base] = {}
        for root in roots:
            cur = self._sql(
                f"SELECT path, {cols} FROM base WHERE pair = ? AND (path = ? OR (path > ? AND path < ?))",
                (pair, root, root + "/", root + "0"))
            out.update((row[0], Base._make(row[1:])) for row in cur)
        return out

    def count_base_files(self, pair: int) -> int:
        cur = self._sql("SELECT count(*) FROM base WHERE pair = ? AND kind = 'file'", (pair,))
        return int(cur.fetchone()[0])

    def count_base(self, pair: int) -> int:
        return int(self._sql("SELECT count(*) FROM base WHERE pair = ?", (pair,)).fetchone()[0])

    def write_base(self, pair: int, upserts: Iterable[tuple[str, Base]], deletes: Iterable[str],
                   cursor: str | None = None) -> None:
        """Commit base changes in one transaction, with the provider state
        buffered for this pair and (when given) the change-feed cursor."""
        with self.db.atomic(WRITE) as conn:
            self._flush_provider_state(pair)
            if cursor is not None:
                self.set_cursor(pair, cursor)
            many_rows(conn, f"INSERT OR REPLACE INTO base (pair, path, {', '.join(BASE_COLUMNS)}) VALUES",
                      len(BASE_COLUMNS) + 2, ((pair, path, *b) for path, b in upserts))
            many_keys(conn, "DELETE FROM base WHERE pair = ? AND path IN", (pair,), deletes)

    def settle_base(self, pair: int, rows: Iterable[tuple[str, int, str]]) -> None:
        """Racy rows confirmed by content: (path, size, rrev) replace the
        racy markers (size -1, rrev ""); nothing else of the row changes, and
        no provider state is committed with them."""
        with self.db.atomic(WRITE) as conn:
            conn.executemany("UPDATE base SET size = ?, rrev = ? WHERE pair = ? AND path = ?",
                             ((size, rrev, pair, path) for path, size, rrev in rows))

    def move_base_prefix(self, pair: int, src: str, dst: str) -> None:
        """The rows of `src` and everything under it, now under `dst` (what a
        move did on disk), in one transaction: killed between two moves, the
        next run finds each moved item where it went, not new on both sides."""
        with self.db.atomic(WRITE) as conn:
            conn.execute("DELETE FROM base WHERE pair = ? AND (path = ? OR substr(path, 1, ?) = ?)",
                         (pair, dst, len(dst) + 1, dst + "/"))
            conn.execute("UPDATE base SET path = ? || substr(path, ?) "
                         "WHERE pair = ? AND (path = ? OR substr(path, 1, ?) = ?)",
                         (dst, len(src) + 1, pair, src, len(src) + 1, src + "/"))

    # ---- hash cache --------------------------------------------------------
    def cached_hash(self, pair: int, path: str, kind: str, size: int, mtime_ns: int, ino: int) -> str | None:
        cur = self._sql(
            "SELECT value FROM hash_cache WHERE pair = ? AND path = ? AND kind = ? AND size = ? AND mtime_ns = ? "
            "AND ino = ?", (pair, path, kind, size, mtime_ns, ino))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    def write_hash_cache(self, pair: int, rows: Iterable[tuple[str, str, int, int, int, str]]) -> None:
        with self.db.atomic(WRITE) as conn:
            many_rows(conn, "INSERT OR REPLACE INTO hash_cache (pair, path, kind, size, mtime_ns, ino, value) VALUES",
                      7, ((pair, *row) for row in rows))

    def prune_hash_cache(self, pair: int) -> None:
        """Drop cached hashes the base now carries (the base row is the cache then)."""
        with self.db.atomic(WRITE) as conn:
            conn.execute("DELETE FROM hash_cache WHERE pair = ? AND path IN (SELECT path FROM base WHERE pair = ?)",
                         (pair, pair))

    # ---- provider state ----------------------------------------------------
    def provider_state(self, pair: int) -> PairState:
        """The pair's provider-owned store (one object per pair and Store)."""
        found = self._provider_states.get(pair)
        if found is None:
            found = self._provider_states[pair] = PairState(self, pair)
        return found

    def _flush_provider_state(self, pair: int) -> None:
        state = self._provider_states.get(pair)
        if state is None or not state.pending:
            return
        conn = self.db.connection()
        pending = state.take()
        many_rows(conn, "INSERT OR REPLACE INTO provider_state (pair, key, value) VALUES", 3,
                  ((pair, k, v) for k, v in pending.items() if v is not None))
        many_keys(conn, "DELETE FROM provider_state WHERE pair = ? AND key IN", (pair,),
                  [k for k, v in pending.items() if v is None])

    def commit_provider_state(self, pair: int) -> None:
        state = self._provider_states.get(pair)
        if state is None or not state.pending:
            return    # nothing to write: no transaction (it would wait for the write lock)
        with self.db.atomic(WRITE):
            self._flush_provider_state(pair)

    def read_provider_state(self, pair: int, key: str) -> str | None:
        cur = self._sql("SELECT value FROM provider_state WHERE pair = ? AND key = ?", (pair, key))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    def iter_provider_state(self, pair: int, prefix: str) -> Iterator[tuple[str, str]]:
        cur = self._sql(
            "SELECT key, value FROM provider_state WHERE pair = ? AND key >= ? ORDER BY key", (pair, prefix))
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield str(key), str(value)

    # ---- cursors -----------------------------------------------------------
    def get_cursor(self, pair: int) -> str | None:
        row = self._sql("SELECT cursor FROM cursor WHERE pair = ?", (pair,)).fetchone()
        return None if row is None else str(row[0])

    def set_cursor(self, pair: int, cursor: str | None) -> None:
        if cursor is None:
            self._sql("DELETE FROM cursor WHERE pair = ?", (pair,))
        else:
            self._sql("INSERT OR REPLACE INTO cursor (pair, cursor) VALUES (?, ?)", (pair, cursor))

    # ---- journal -----------------------------------------------------------
    def journal(self, pair: int) -> list[tuple[str, str, str]]:
        cur = self._sql("SELECT op, path, detail FROM journal WHERE pair = ?", (pair,))
        return [(str(op), str(path), str(detail)) for op, path, detail in cur]

    def journal_add(self, pair: int, entry: tuple[str, str, str]) -> int:
        """Record what is about to be in flight (a batch packed into one row,
        journal.pack); the row's id, for journal_clear."""
        op, path, detail = entry
        with self.db.atomic(WRITE) as conn:
            cur = conn.execute("INSERT INTO journal (pair, op, path, detail, started) VALUES (?, ?, ?, ?, ?)",
                               (pair, op, path, detail, time.time()))
            return int(cur.lastrowid or 0)

    def journal_clear(self, pair: int, rows: Sequence[int] | None = None) -> None:
        """Forget the pair's journal: every row, or only `rows` (a batch done
        while the next one's intents are already written)."""
        if rows is None:
            self._sql("DELETE FROM journal WHERE pair = ?", (pair,))
        elif rows:
            marks = ",".join("?" * len(rows))
            self._sql(f"DELETE FROM journal WHERE pair = ? AND id IN ({marks})", (pair, *rows))

    def info(self) -> dict[str, Any]:
        return {"path": str(self.path), "schema_version": self.schema_version()}


class PairState(ProviderState):
    """ProviderState over the `provider_state` table: reads see buffered puts
    first; puts become durable with the next base batch (or `commit`)."""

    def __init__(self, store: Store, pair: int) -> None:
        self.store, self.pair_id = store, pair
        self.pending: dict[str, str | None] = {}
        self._lock = threading.Lock()     # transfer threads put (upload sessions) while the engine commits

    def get(self, key: str) -> str | None:
        with self._lock:
            if key in self.pending:
                return self.pending[key]
        return self.store.read_provider_state(self.pair_id, key)

    def put(self, key: str, value: str | None) -> None:
        with self._lock:
            self.pending[key] = value

    def take(self) -> dict[str, str | None]:
        """The buffered puts, handed over for a commit."""
        with self._lock:
            pending, self.pending = self.pending, {}
        return pending

    def items(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        stored = dict(self.store.iter_provider_state(self.pair_id, prefix))
        with self._lock:
            pending = dict(self.pending)
        for key, value in pending.items():
            if key.startswith(prefix):
                if value is None:
                    stored.pop(key, None)
                else:
                    stored[key] = value
        for key in sorted(stored):
            yield key, stored[key]

    def commit(self) -> None:
        self.store.commit_provider_state(self.pair_id)


@contextmanager
def pair_lock(state_dir: Path, pair: int, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the pair's lock (a file in the state dir, never in a root)."""
    lock_dir = state_dir / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"pair-{pair}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncAgentError(
                        "another syncagent is syncing this pair right now; try again when it is done"
                    ) from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)
