"""The state database's schema: peewee models, and the migrations from
each older version.

Imported only when a file is new or older than this syncagent (state.py
checks the version in raw SQL first): a run over an up-to-date file never
pays for peewee's import. The models create the tables; every query the
Store runs is its own SQL on its own connection (tests/unit/engine/
test_state_schema.py checks the two agree).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw

from syncagent.engine.state import PRAGMAS, TIMEOUT, StateError, damaged

database = pw.SqliteDatabase(None)
_opening = threading.Lock()     # `database` is bound to one file at a time


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


# Migrations from version N to N+1, applied in order inside one transaction.
# A migration alters; it never drops the base (losing it turns every file into a conflict).
MIGRATIONS: dict[int, list[str]] = {
    1: ["CREATE TABLE IF NOT EXISTS provider_state (pair INTEGER NOT NULL, key TEXT NOT NULL, "
        "value TEXT NOT NULL, PRIMARY KEY (pair, key)) WITHOUT ROWID"],
    2: ["CREATE TABLE IF NOT EXISTS hash_cache (pair INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, "
        "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, value TEXT NOT NULL, "
        "PRIMARY KEY (pair, path)) WITHOUT ROWID"],
}


def create_or_migrate(path: Path, newest: int) -> None:
    """Bring the file at `path` to schema `newest`: create every table in a
    new file, run the migrations on an older one, refuse a newer one.

    On a connection of its own (peewee's, closed before returning), under
    the write lock taken first (BEGIN IMMEDIATE): a transaction that reads
    and then writes fails at once with "database is locked" when another
    connection committed in between (SQLite's busy timeout does not cover
    that upgrade), so the version is read again under the lock."""
    with _opening, _mapped(path):
        database.init(str(path), pragmas=PRAGMAS, timeout=TIMEOUT)
        try:
            database.connect()
            with database.atomic("IMMEDIATE"):
                _create_or_migrate(path, newest)
        finally:
            database.close()


def _create_or_migrate(path: Path, newest: int) -> None:
    if not MetaRow.table_exists():
        database.create_tables(MODELS)
        MetaRow.replace(key="schema_version", value=str(newest)).execute()
        return
    row = MetaRow.get_or_none(MetaRow.key == "schema_version")
    if row is None:
        raise damaged(path, pw.DatabaseError("its schema version is missing"))
    version = int(row.value)
    if version > newest:
        raise StateError(f"{path} was written by a newer syncagent (schema {version})")
    while version < newest:
        for sql in MIGRATIONS[version]:
            database.execute_sql(sql)
        version += 1
    MetaRow.replace(key="schema_version", value=str(version)).execute()


@contextmanager
def _mapped(path: Path) -> Iterator[None]:
    """peewee's errors as the Store's own connection reports them."""
    try:
        yield
    except pw.OperationalError as exc:
        raise StateError(f"cannot use the state database {path}: {exc}") from exc
    except pw.DatabaseError as exc:
        raise damaged(path, exc) from exc
