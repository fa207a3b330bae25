"""A staged local write lands only where the caller expects: a new file's
name must still be free, an existing file must still be the one listed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from syncagent import errors
from syncagent.engine.localside import LocalSide, entry_rev
from syncagent.engine.records import Entry


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".syncagent-")]


def test_a_new_file_lands_when_its_name_is_still_free(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    side = LocalSide(tmp_path)
    staged = side.stage_write("d/new.txt", io.BytesIO(b"hello"), 5, 1_000_000_000, expect=None)
    entry = staged.commit()
    assert (tmp_path / "d/new.txt").read_bytes() == b"hello"
    assert entry.size == 5 and entry.mtime_ns == 1_000_000_000 and _temps(tmp_path / "d") == []


def test_a_name_taken_since_the_listing_is_a_conflict_and_nothing_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    side = LocalSide(tmp_path)
    staged = side.stage_write("d/new.txt", io.BytesIO(b"ours"), 4, 0, expect=None)
    (tmp_path / "d/new.txt").write_bytes(b"the user's")
    with pytest.raises(errors.Conflict):
        staged.commit()
    assert (tmp_path / "d/new.txt").read_bytes() == b"the user's" and _temps(tmp_path / "d") == []


def test_an_existing_file_is_replaced_only_if_it_is_still_the_one_listed(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_bytes(b"v1")
    st = target.stat()
    listed = entry_rev(Entry("file", st.st_size, st.st_mtime_ns, st.st_ino))
    side = LocalSide(tmp_path)
    side.stage_write("f.txt", io.BytesIO(b"v2"), 2, 0, expect=listed).commit()
    assert target.read_bytes() == b"v2"
    late = side.stage_write("f.txt", io.BytesIO(b"v3"), 2, 0, expect=listed)   # v2 is no longer what was listed
    with pytest.raises(errors.Conflict):
        late.commit()
    assert target.read_bytes() == b"v2" and _temps(tmp_path) == []
