"""The state database: the base of every pair (the last state known to be the
same on both sides), change-feed cursors and the journal of intents.

peewee on SQLite in WAL mode, one file per user. Bulk reads and writes go
through the raw connection in one query or one transaction: a no-op sync
of 100,000 files must load its base in a fraction of a second.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import peewee as pw

from syncagent.engine.records import Base
from syncagent.errors import SyncAgentError
from syncagent.native import NATIVE
from syncagent.providers.base import ProviderState

SCHEMA_VERSION = 3

database = pw.SqliteDatabase(None)
# Every transaction here writes: take the write lock at BEGIN, so a transaction
# that reads first never fails with SQLITE_BUSY on a stale snapshot (WAL) but
# waits its turn under busy_timeout like any writer (several pairs, one file).
WRITE = "IMMEDIATE"


class _Model(pw.Model):
    class Meta:
        database = database


class MetaRow(_Model):
    key = pw.TextField(primary_key=True)
    value = pw.TextField()

    class Meta:
        table_name = "meta"


class PairRow(_Model):
    local = pw.TextField()
    remote = pw.TextField()
    created = pw.FloatField(default=time.time)
    last_sync = pw.FloatField(null=True)

    class Meta:
        table_name = "pair"
        indexes = ((("local", "remote"), True),)


class BaseRow(_Model):
    pair = pw.IntegerField()
    path = pw.TextField()
    kind = pw.TextField()
    size = pw.IntegerField(default=0)
    mtime_ns = pw.IntegerField(default=0)
    ino = pw.IntegerField(default=0)
    hash = pw.TextField(null=True)
    rrev = pw.TextField(default="")
    rid = pw.TextField(null=True)
    rhash = pw.TextField(null=True)
    rsize = pw.IntegerField(default=0)
    rmtime_ns = pw.IntegerField(default=0)

    class Meta:
        table_name = "base"
        primary_key = pw.CompositeKey("pair", "path")
        without_rowid = True


class CursorRow(_Model):
    pair = pw.IntegerField(primary_key=True)
    cursor = pw.TextField()

    class Meta:
        table_name = "cursor"


class JournalRow(_Model):
    pair = pw.IntegerField(index=True)
    op = pw.TextField()
    path = pw.TextField()
    detail = pw.TextField(default="")
    started = pw.FloatField(default=time.time)

    class Meta:
        table_name = "journal"


class ProviderStateRow(_Model):
    pair = pw.IntegerField()
    key = pw.TextField()
    value = pw.TextField()

    class Meta:
        table_name = "provider_state"
        primary_key = pw.CompositeKey("pair", "key")
        without_rowid = True


class HashCacheRow(_Model):
    """Local content hashes by (size, mtime_ns, inode): a rerun hashes nothing it has seen."""

    pair = pw.IntegerField()
    path = pw.TextField()
    kind = pw.TextField()
    size = pw.IntegerField()
    mtime_ns = pw.IntegerField()
    ino = pw.IntegerField()
    value = pw.TextField()

    class Meta:
        table_name = "hash_cache"
        primary_key = pw.CompositeKey("pair", "path")
        without_rowid = True


MODELS: list[type[pw.Model]] = [MetaRow, PairRow, BaseRow, CursorRow, JournalRow, ProviderStateRow, HashCacheRow]
BASE_COLUMNS = ("kind", "size", "mtime_ns", "ino", "hash", "rrev", "rid", "rhash", "rsize", "rmtime_ns")


# Migrations from version N to N+1, applied in order inside one transaction.
# A migration alters; it never drops the base (losing it turns every file into a conflict).
MIGRATIONS: dict[int, list[str]] = {
    1: ["CREATE TABLE IF NOT EXISTS provider_state (pair INTEGER NOT NULL, key TEXT NOT NULL, "
        "value TEXT NOT NULL, PRIMARY KEY (pair, key)) WITHOUT ROWID"],
    2: ["CREATE TABLE IF NOT EXISTS hash_cache (pair INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, "
        "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, value TEXT NOT NULL, "
        "PRIMARY KEY (pair, path)) WITHOUT ROWID"],
}


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
    except (sqlite3.OperationalError, pw.OperationalError, sqlite3.IntegrityError, pw.IntegrityError):
        raise       # busy, locked, out of space, a constraint: not a damaged file
    except (sqlite3.DatabaseError, pw.DatabaseError) as exc:
        raise damaged(path, exc) from exc


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
        database.init(str(self.path), pragmas={"journal_mode": "wal", "synchronous": "normal",
                                               "busy_timeout": 10000})
        try:
            database.connect(reuse_if_open=True)
            self._migrate()
        except pw.OperationalError as exc:
            raise StateError(f"cannot use the state database {self.path}: {exc}") from exc
        except pw.DatabaseError as exc:
            raise damaged(self.path, exc) from exc

    def close(self) -> None:
        if not database.is_closed():
            database.close()

    # ---- schema ------------------------------------------------------------
    def _migrate(self) -> None:
        """Create or upgrade the schema. An up-to-date file is only read: a
        transaction that reads and then writes fails at once with "database
        is locked" when another connection committed in between (SQLite's
        busy timeout does not cover that upgrade), so a change takes the
        write lock first (BEGIN IMMEDIATE) and looks again under it."""
        if self._stored_version() == SCHEMA_VERSION:
            return
        with database.atomic("IMMEDIATE"):
            if not MetaRow.table_exists():
                database.create_tables(MODELS)
                MetaRow.replace(key="schema_version", value=str(SCHEMA_VERSION)).execute()
                return
            version = int(MetaRow.get_by_id("schema_version").value)
            if version > SCHEMA_VERSION:
                raise StateError(f"{self.path} was written by a newer syncagent (schema {version})")
            while version < SCHEMA_VERSION:
                for sql in MIGRATIONS[version]:
                    database.execute_sql(sql)
                version += 1
            MetaRow.replace(key="schema_version", value=str(version)).execute()

    def schema_version(self) -> int:
        return int(MetaRow.get_by_id("schema_version").value)

    def _stored_version(self) -> int | None:
        """The file's schema version; None for a new file (no meta table yet).
        Raw SQL, as on every path each run takes: peewee builds a query in ~1 ms."""
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        if database.execute_sql(found).fetchone() is None:
            return None
        row = database.execute_sql("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    # ---- pairs -------------------------------------------------------------
    def pair_id(self, local: str, remote: str) -> int:
        row = database.execute_sql("SELECT id FROM pair WHERE local = ? AND remote = ?", (local, remote)).fetchone()
        if row is not None:
            return int(row[0])
        created, _ = PairRow.get_or_create(local=local, remote=remote)
        return int(created.get_id())

    def has_pair(self, local: str, remote: str) -> bool:
        return PairRow.select().where((PairRow.local == local) & (PairRow.remote == remote)).exists()

    def mark_synced(self, pair: int) -> None:
        database.execute_sql("UPDATE pair SET last_sync = ? WHERE id = ?", (time.time(), pair))

    # ---- base --------------------------------------------------------------
    def load_base(self, pair: int) -> dict[str, Base]:
        cols = ", ".join(BASE_COLUMNS)
        cur = database.execute_sql(f"SELECT path, {cols} FROM base WHERE pair = ?", (pair,))
        return {row[0]: Base._make(row[1:]) for row in cur}

    def iter_base_brief(self, pair: int) -> Iterator[tuple[str, str, int, int, int, str]]:
        """(path, kind, size, mtime_ns, ino, rrev) of every row, streamed in
        ascending path order (the primary key's: BINARY, i.e. UTF-8 bytes,
        which is code-point order, as Python compares str): enough to tell an
        unchanged path without holding a full row for each."""
        cur = database.execute_sql(
            "SELECT path, kind, size, mtime_ns, ino, rrev FROM base WHERE pair = ? ORDER BY path", (pair,))
        return iter(cur)   # the cursor itself: no generator frame per row

    def base_brief_stream(self, pair: int) -> Iterable[tuple[str, str, int, int, int, str]]:
        """iter_base_brief's rows, read by the native module's thread on a
        read-only connection where it is built (the merge then makes no
        Python object for a quiet row). Only when this connection has
        nothing uncommitted: the other connection sees what is committed."""
        if NATIVE is not None and hasattr(NATIVE, "base_reader") and not database.in_transaction():
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
            cur = database.execute_sql(f"SELECT path, {cols} FROM base WHERE pair = ? AND path IN ({marks})",
                                       (pair, *chunk))
            out.update((row[0], Base._make(row[1:])) for row in cur)
        return out

    def load_base_under(self, pair: int, roots: Iterable[str]) -> dict[str, Base]:
        """Base rows of some paths and of everything below them (a range
        scan of the primary key per root: '/' + 1 is '0')."""
        cols = ", ".join(BASE_COLUMNS)
        out: dict[str, Base] = {}
        for root in roots:
            cur = database.execute_sql(
                f"SELECT path, {cols} FROM base WHERE pair = ? AND (path = ? OR (path > ? AND path < ?))",
                (pair, root, root + "/", root + "0"))
            out.update((row[0], Base._make(row[1:])) for row in cur)
        return out

    def count_base_files(self, pair: int) -> int:
        cur = database.execute_sql("SELECT count(*) FROM base WHERE pair = ? AND kind = 'file'", (pair,))
        return int(cur.fetchone()[0])

    def count_base(self, pair: int) -> int:
        return int(BaseRow.select().where(BaseRow.pair == pair).count())

    def write_base(self, pair: int, upserts: Iterable[tuple[str, Base]], deletes: Iterable[str],
                   cursor: str | None = None) -> None:
        """Commit base changes in one transaction, with the provider state
        buffered for this pair and (when given) the change-feed cursor."""
        conn = database.connection()
        placeholders = ", ".join("?" * (len(BASE_COLUMNS) + 2))
        with database.atomic(WRITE):
            self._flush_provider_state(pair)
            if cursor is not None:
                self.set_cursor(pair, cursor)
            conn.executemany(
                f"INSERT OR REPLACE INTO base (pair, path, {', '.join(BASE_COLUMNS)}) VALUES ({placeholders})",
                ((pair, path, *b) for path, b in upserts))
            conn.executemany("DELETE FROM base WHERE pair = ? AND path = ?", ((pair, p) for p in deletes))

    def settle_base(self, pair: int, rows: Iterable[tuple[str, int, str]]) -> None:
        """Racy rows confirmed by content: (path, size, rrev) replace the
        racy markers (size -1, rrev ""); nothing else of the row changes, and
        no provider state is committed with them."""
        conn = database.connection()
        with database.atomic(WRITE):
            conn.executemany("UPDATE base SET size = ?, rrev = ? WHERE pair = ? AND path = ?",
                             ((size, rrev, pair, path) for path, size, rrev in rows))

    def delete_base_prefix(self, pair: int, folder: str) -> None:
        conn = database.connection()
        with database.atomic(WRITE):
            conn.execute("DELETE FROM base WHERE pair = ? AND (path = ? OR substr(path, 1, ?) = ?)",
                         (pair, folder, len(folder) + 1, folder + "/"))

    # ---- hash cache --------------------------------------------------------
    def cached_hash(self, pair: int, path: str, kind: str, size: int, mtime_ns: int, ino: int) -> str | None:
        cur = database.execute_sql(
            "SELECT value FROM hash_cache WHERE pair = ? AND path = ? AND kind = ? AND size = ? AND mtime_ns = ? "
            "AND ino = ?", (pair, path, kind, size, mtime_ns, ino))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    def write_hash_cache(self, pair: int, rows: Iterable[tuple[str, str, int, int, int, str]]) -> None:
        conn = database.connection()
        with database.atomic(WRITE):
            conn.executemany("INSERT OR REPLACE INTO hash_cache (pair, path, kind, size, mtime_ns, ino, value) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", ((pair, *row) for row in rows))

    def prune_hash_cache(self, pair: int) -> None:
        """Drop cached hashes the base now carries (the base row is the cache then)."""
        conn = database.connection()
        with database.atomic(WRITE):
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
        conn = database.connection()
        pending = state.take()
        conn.executemany("INSERT OR REPLACE INTO provider_state (pair, key, value) VALUES (?, ?, ?)",
                         ((pair, k, v) for k, v in pending.items() if v is not None))
        conn.executemany("DELETE FROM provider_state WHERE pair = ? AND key = ?",
                         ((pair, k) for k, v in pending.items() if v is None))

    def commit_provider_state(self, pair: int) -> None:
        state = self._provider_states.get(pair)
        if state is None or not state.pending:
            return    # nothing to write: no transaction (it would wait for the write lock)
        with database.atomic(WRITE):
            self._flush_provider_state(pair)

    def read_provider_state(self, pair: int, key: str) -> str | None:
        cur = database.execute_sql("SELECT value FROM provider_state WHERE pair = ? AND key = ?", (pair, key))
        row = cur.fetchone()
        return None if row is None else str(row[0])

    def iter_provider_state(self, pair: int, prefix: str) -> Iterator[tuple[str, str]]:
        cur = database.execute_sql(
            "SELECT key, value FROM provider_state WHERE pair = ? AND key >= ? ORDER BY key", (pair, prefix))
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield str(key), str(value)

    # ---- cursors -----------------------------------------------------------
    def get_cursor(self, pair: int) -> str | None:
        row = CursorRow.get_or_none(CursorRow.pair == pair)
        return None if row is None else str(row.cursor)

    def set_cursor(self, pair: int, cursor: str | None) -> None:
        if cursor is None:
            CursorRow.delete().where(CursorRow.pair == pair).execute()
        else:
            CursorRow.replace(pair=pair, cursor=cursor).execute()

    # ---- journal -----------------------------------------------------------
    def journal_add(self, pair: int, entries: Iterable[tuple[str, str, str]]) -> None:
        """Record what is about to be in flight (one transaction per batch)."""
        now = time.time()
        conn = database.connection()
        with database.atomic(WRITE):
            conn.executemany("INSERT INTO journal (pair, op, path, detail, started) VALUES (?, ?, ?, ?, ?)",
                             ((pair, op, path, detail, now) for op, path, detail in entries))

    def journal(self, pair: int) -> list[tuple[str, str, str]]:
        cur = database.execute_sql("SELECT op, path, detail FROM journal WHERE pair = ?", (pair,))
        return [(str(op), str(path), str(detail)) for op, path, detail in cur]

    def journal_clear(self, pair: int) -> None:
        JournalRow.delete().where(JournalRow.pair == pair).execute()

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
