"""The Store's own SQL against the tables the peewee models create; its
connection layer (one connection per thread, nested transactions, the
error messages); migrated files equal to new ones; a no-op writes nothing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from syncagent.engine import state, state_schema
from syncagent.engine.records import Base
from syncagent.engine.state import Connections, StateError, Store
from tests.helpers import age_files, sync_in_process, write

FILE = Base("file", 10, 1_700_000_000_000_000_000, 42, "h1", "rev1", "id1", "rh1", 10, 5)
DIR = Base("dir", 0, 0, 7, None, "", None, None, 0, 0)


def _models_made(state_dir: Path) -> Store:
    """A Store over a file the models created (and nothing else did)."""
    state_dir.mkdir()
    state_schema.create_or_migrate(state_dir / "state.db", state.SCHEMA_VERSION)
    return Store(state_dir)


def _schema(path: Path) -> dict[str, object]:
    """Every table's columns (name, type, not null, default, key) and indexes (columns, unique)."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        out: dict[str, object] = {}
        for t in tables:
            columns = [row[1:] for row in conn.execute(f"PRAGMA table_info({t})")]
            indexes = sorted((tuple(c[2] for c in conn.execute(f"PRAGMA index_info({ix[1]})")), ix[2])
                             for ix in conn.execute(f"PRAGMA index_list({t})"))
            rowid = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (t,)).fetchone()[0]
            out[t] = (columns, indexes, "WITHOUT ROWID" in rowid.upper())
        return out
    finally:
        conn.close()


def test_every_store_query_runs_on_the_tables_the_models_create(tmp_path: Path) -> None:
    store = _models_made(tmp_path / "s")
    try:
        assert store.schema_version() == state.SCHEMA_VERSION
        assert store.info() == {"path": str(store.path), "schema_version": state.SCHEMA_VERSION}
        assert not store.has_pair("/l", "r:")
        pair = store.pair_id("/l", "r:")
        assert store.pair_id("/l", "r:") == pair and store.has_pair("/l", "r:")
        other = store.pair_id("/l", "s:")
        assert other != pair

        ps = store.provider_state(pair)
        ps.put("node/a", "1")
        ps.put("node/b", "2")
        store.write_base(pair, [("d", DIR), ("d/f", FILE), ("d/g", FILE._replace(hash="h2")), ("e", FILE)], [],
                         cursor="c1")
        store.write_base(other, [("d/f", FILE)], [])
        assert store.get_cursor(pair) == "c1" and store.get_cursor(other) is None
        assert store.read_provider_state(pair, "node/a") == "1"
        assert list(store.iter_provider_state(pair, "node/")) == [("node/a", "1"), ("node/b", "2")]
        ps.put("node/a", None)
        store.commit_provider_state(pair)
        assert list(ps.items("node/")) == [("node/b", "2")]

        assert store.load_base(pair)["d/f"] == FILE
        assert [r[0] for r in store.iter_base_brief(pair)] == ["d", "d/f", "d/g", "e"]
        assert list(store.base_brief_stream(pair)) == list(store.iter_base_brief(pair))
        assert set(store.load_base_paths(pair, ["d/g", "nope"])) == {"d/g"}
        assert set(store.load_base_under(pair, ["d"])) == {"d", "d/f", "d/g"}
        assert store.count_base(pair) == 4 and store.count_base_files(pair) == 3

        store.settle_base(pair, [("d/f", 11, "rev2")])
        assert store.load_base(pair)["d/f"][1:] == (11, *FILE[2:5], "rev2", *FILE[6:])
        store.write_base(pair, [], ["e"])
        store.write_base(pair, [("dx", FILE), ("x/old", FILE)], [])
        store.move_base_prefix(pair, "d", "x")   # (dx is not under d; what x held before goes)
        assert [r[0] for r in store.iter_base_brief(pair)] == ["dx", "x", "x/f", "x/g"]
        assert store.load_base(pair)["x/f"][1:] == (11, *FILE[2:5], "rev2", *FILE[6:])
        store.write_base(pair, [], ["dx", "x", "x/f", "x/g"])
        assert store.count_base(pair) == 0 and store.count_base(other) == 1
        store.set_cursor(pair, None)
        assert store.get_cursor(pair) is None

        store.write_hash_cache(other, [("d/f", "sha256", 1, 2, 3, "x"), ("new", "sha256", 1, 2, 3, "y")])
        assert store.cached_hash(other, "new", "sha256", 1, 2, 3) == "y"
        store.prune_hash_cache(other)     # d/f is in the base: its row goes
        assert store.cached_hash(other, "d/f", "sha256", 1, 2, 3) is None
        assert store.cached_hash(other, "new", "sha256", 1, 2, 3) == "y"

        first = store.journal_add(pair, ("upload", "a", ""))
        store.journal_add(pair, ("delete", "b", "x"))
        assert store.journal(pair) == [("upload", "a", ""), ("delete", "b", "x")]
        store.journal_clear(pair, [first])
        assert store.journal(pair) == [("delete", "b", "x")]
        store.journal_clear(pair)
        assert store.journal(pair) == []

        store.mark_synced(pair)
        stamped = store.db.connection().execute("SELECT last_sync FROM pair WHERE id = ?", (pair,)).fetchone()[0]
        assert stamped is not None
    finally:
        store.close()


@pytest.mark.parametrize("version", [1, 2])
def test_a_migrated_file_has_the_schema_of_a_new_one(tmp_path: Path, version: int) -> None:
    new = _models_made(tmp_path / "new")
    new.close()
    old = Store(tmp_path / "old")
    pair = old.pair_id("/l", "r:")
    old.write_base(pair, [("a", FILE)], [])
    dropped = {1: "DROP TABLE provider_state; DROP TABLE hash_cache;", 2: "DROP TABLE hash_cache;"}[version]
    old.db.connection().executescript(f"{dropped} UPDATE meta SET value = '{version}' WHERE key = 'schema_version';")
    old.close()
    migrated = Store(tmp_path / "old")
    try:
        assert migrated.schema_version() == state.SCHEMA_VERSION
        assert migrated.load_base(pair) == {"a": FILE}
    finally:
        migrated.close()
    assert _schema(tmp_path / "old/state.db") == _schema(tmp_path / "new/state.db")


def _master(path: Path) -> list[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"), key=str)
    finally:
        conn.close()


def test_a_new_file_is_made_as_the_models_make_it_without_importing_them(tmp_path: Path) -> None:
    """Store makes a new file from NEW_FILE_SQL: the very statements the models
    issue (same tables, indexes and their names), and peewee is not imported."""
    _models_made(tmp_path / "models").close()
    probe = ("import sys; from pathlib import Path; from syncagent.engine.state import Store; "
             f"Store(Path({str(tmp_path / 'raw')!r})).close(); print('peewee' in sys.modules)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert _master(tmp_path / "raw/state.db") == _master(tmp_path / "models/state.db")
    store = Store(tmp_path / "raw")
    try:
        assert store.schema_version() == state.SCHEMA_VERSION
    finally:
        store.close()


def test_stores_opening_one_new_file_at_once_make_it_once(tmp_path: Path) -> None:
    """Six threads open one new file at once, 40 times over (the agent's pairs
    start together on one state file): the switch to WAL is retried, the
    tables are made once. Before the retry, ~5 % of rounds failed with
    "database is locked"."""
    for round_no in range(40):
        folder = tmp_path / str(round_no)
        errors: list[BaseException] = []

        def open_close(folder: Path = folder, errors: list[BaseException] = errors) -> None:
            try:
                Store(folder).close()
            except BaseException as exc:   # the test reports any
                errors.append(exc)

        threads = [threading.Thread(target=open_close) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], f"round {round_no}"
        store = Store(folder)
        try:
            assert store.schema_version() == state.SCHEMA_VERSION
        finally:
            store.close()


def test_a_file_without_its_schema_version_is_damaged(tmp_path: Path) -> None:
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "state.db")
    conn.execute("DELETE FROM meta")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="damaged"):
        Store(tmp_path)


def test_a_file_that_is_not_a_database_is_damaged_and_a_folder_cannot_be_used(tmp_path: Path) -> None:
    write(tmp_path / "a/state.db", "not a database, " * 100)
    with pytest.raises(StateError, match=r"damaged.*mv "):
        Store(tmp_path / "a")
    (tmp_path / "b/state.db").mkdir(parents=True)
    with pytest.raises(StateError, match="cannot use the state database"):
        Store(tmp_path / "b")


def test_an_inner_block_that_fails_rolls_back_only_its_own_writes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    pair = store.pair_id("/l", "r:")
    try:
        with store.db.atomic(state.WRITE):
            store.set_cursor(pair, "outer")
            with pytest.raises(KeyError), store.db.atomic():
                store.write_base(pair, [("a", FILE)], [], cursor="inner")   # itself nested: a savepoint in one
                raise KeyError
            assert store.count_base(pair) == 0 and store.get_cursor(pair) == "outer"
            store.write_base(pair, [("b", FILE)], [])
        assert store.get_cursor(pair) == "outer" and set(store.load_base(pair)) == {"b"}
        with pytest.raises(KeyError), store.db.atomic(state.WRITE):
            store.write_base(pair, [("c", FILE)], ["b"], cursor="gone")
            raise KeyError
        assert not store.db.in_transaction()
        assert store.get_cursor(pair) == "outer" and set(store.load_base(pair)) == {"b"}
    finally:
        store.close()


def test_each_thread_has_its_own_connection_and_closes_its_own(tmp_path: Path) -> None:
    db = Connections(tmp_path / "x.db")
    mine = db.connection()
    assert db.connection() is mine
    assert mine.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert mine.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
    assert mine.execute("PRAGMA synchronous").fetchone()[0] == 1      # NORMAL
    seen: list[sqlite3.Connection] = []

    def use_and_close() -> None:
        seen.append(db.connection())
        db.connection().execute("CREATE TABLE t (v)")
        db.close()

    worker = threading.Thread(target=use_and_close)
    worker.start()
    worker.join()
    assert seen and seen[0] is not mine
    with pytest.raises(sqlite3.ProgrammingError):
        seen[0].execute("SELECT 1")           # closed by its thread
    assert mine.execute("SELECT count(*) FROM t").fetchone()[0] == 0     # this one still open
    db.close()
    assert db.connection() is not mine
    db.close()


def test_a_run_with_nothing_to_do_writes_nothing(tmp_path: Path) -> None:
    """So closing the store has no WAL to checkpoint (two fdatasyncs on a no-op)."""
    local, remote, st = tmp_path / "l", tmp_path / "r", tmp_path / "s"
    write(local / "a/one.txt", "1")
    age_files(local)        # else a racy base row is confirmed (written) by the second run
    sync_in_process(local, remote, st)
    store = Store(st)
    try:
        pair = store.pair_id(str(local), f"local:{remote}")
        stamped = store.db.connection().execute("SELECT last_sync FROM pair WHERE id = ?", (pair,)).fetchone()[0]
        assert stamped is not None, "a run that wrote stamps its pair"
    finally:
        store.close()
    wal_sizes: list[int] = []
    real_close = Store.close

    def close_and_measure(self: Store) -> None:
        wal_sizes.append((self.path.parent / "state.db-wal").stat().st_size)
        real_close(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Store, "close", close_and_measure)
        summary = sync_in_process(local, remote, st)
    assert summary.errors == 0 and wal_sizes == [0]
