"""The journal of intents packs a batch into one row; recovery reads it back."""

from __future__ import annotations

from pathlib import Path

from syncagent.engine import journal
from syncagent.engine.state import Store


def test_a_packed_batch_comes_back_whole_and_its_staged_row_wins(tmp_path: Path) -> None:
    odd = "d/tab\there\nnewline-\udcff.bin"      # any byte a name can hold, an undecodable one included
    first = [("upload", "a.txt", "1\t2\t3\t\t"), ("download", odd, "4\t5\tr\ti\t\t")]
    staged = [("upload", "a.txt", "1\t2\t3\t\t\t2-1-9"), ("download", odd, "4\t5\tr\ti\t\t\t4\t5\t7")]
    store = Store(tmp_path)
    try:
        pair = store.pair_id("/l", "local:/r")
        store.journal_add(pair, journal.pack(first))
        assert sorted(journal.unpack(store.journal(pair))) == sorted(first)
        store.journal_add(pair, journal.pack(staged, staged=True))
        assert sorted(journal.unpack(store.journal(pair))) == sorted(staged)
    finally:
        store.close()


def test_rows_of_one_intent_each_still_recover() -> None:
    """A journal left by an older version (one row per transfer) is read as it is."""
    rows = [("upload", "a.txt", "1\t2\t3\t\t"), ("download", "b.txt", "4\t5\tr\ti\t\t")]
    assert journal.unpack(rows) == rows


def test_an_unreadable_packed_row_is_left_to_the_planner() -> None:
    assert journal.unpack([(journal.BATCH, "", "{not json")]) == []
