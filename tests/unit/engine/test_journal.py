"""The journal of intents packs a batch into one row; recovery reads it back."""

from __future__ import annotations

from pathlib import Path

from syncagent.engine import journal
from syncagent.engine.state import Store


def test_a_packed_batch_comes_back_whole_with_what_its_staged_row_expects(tmp_path: Path) -> None:
    odd = "d/tab\there\nnewline-\udcff.bin"      # any byte a name can hold, an undecodable one included
    first = [("upload", "a.txt", "1\t2\t3\t\t"), ("download", odd, "4\t5\tr\ti\t\t"), ("upload", "c", "6\t7\t8\t\t")]
    staged = [("upload", "a.txt", "1\t2\t3\t\t\t2-1-9"), ("download", odd, "4\t5\tr\ti\t\t\t4\t5\t7"),
              ("upload", "c", "6\t7\t8\t\t")]     # c: not staged, its intent stands
    store = Store(tmp_path)
    try:
        pair = store.pair_id("/l", "local:/r")
        row = journal.pack(first)
        store.journal_add(pair, row)
        store.journal_add(pair, journal.pack(first[:1]))     # another batch in flight: its own key
        assert sorted(journal.unpack(store.journal(pair))) == sorted(first)
        store.journal_add(pair, journal.pack_expected(row[1], ["2-1-9", [4, 5, 7], None]))
        assert sorted(journal.unpack(store.journal(pair))) == sorted(staged)
    finally:
        store.close()


def test_a_rev_with_the_separator_is_kept_out_of_the_fields() -> None:
    row = journal.pack([("upload", "a", "1\t2\t3\t\t")])
    rows = [row, journal.pack_expected(row[1], ["r\tx\ny"])]
    assert journal.unpack(rows) == [("upload", "a", "1\t2\t3\t\t\tr x y")]


def test_an_older_versions_staged_row_still_wins() -> None:
    """Before the expected row, a staged batch was written whole again (BATCH_STAGED)."""
    import json

    first = [("upload", "a.txt", "1\t2\t3\t\t")]
    staged = [("upload", "a.txt", "1\t2\t3\t\t\t2-1-9")]
    rows = [(journal.BATCH, "", json.dumps(first)), (journal.BATCH_STAGED, "", json.dumps(staged))]
    assert journal.unpack(rows) == staged


def test_an_expected_row_that_does_not_fit_its_batch_leaves_the_intents() -> None:
    row = journal.pack([("upload", "a", "1\t2\t3\t\t")])
    for bad in (journal.pack_expected(row[1], ["x", "y"]), (journal.BATCH_EXPECTED, row[1], "{not json"),
                journal.pack_expected("unknown", ["x"])):
        assert journal.unpack([row, bad]) == [("upload", "a", "1\t2\t3\t\t")]


def test_rows_of_one_intent_each_still_recover() -> None:
    """A journal left by an older version (one row per transfer) is read as it is."""
    rows = [("upload", "a.txt", "1\t2\t3\t\t"), ("download", "b.txt", "4\t5\tr\ti\t\t")]
    assert journal.unpack(rows) == rows


def test_an_unreadable_packed_row_is_left_to_the_planner() -> None:
    assert journal.unpack([(journal.BATCH, "", "{not json")]) == []
