"""The local trash: every deleted file gets a place of its own."""

from __future__ import annotations

from pathlib import Path

from syncagent.engine.trash import Trash


def test_a_file_then_a_folder_of_the_same_name_on_one_day(tmp_path: Path) -> None:
    # `d` (a file) deleted, then `d/c.txt` (the remote renamed something into a folder `d`): both kept
    trash = Trash(tmp_path, 1)
    first = trash.place_for("d")
    first.write_text("the file d")
    places = [trash.place_for("d/c.txt") for _ in range(2)]
    for i, place in enumerate(places):
        assert place.name == "c.txt" and place.parent.is_dir()
        place.write_text(str(i))
    nested = trash.place_for("d/e/f.txt")
    assert nested.parent.is_dir() and nested.parent.name == "e"
    assert first.read_text() == "the file d"
    assert len({first, *places, nested}) == 4
    assert [p.read_text() for p in places] == ["0", "1"]


def test_a_name_taken_today_gets_a_number(tmp_path: Path) -> None:
    trash = Trash(tmp_path, 1)
    one = trash.place_for("a/b.txt")
    one.write_text("1")
    two = trash.place_for("a/b.txt")
    assert two.name == "b.txt.2" and two.parent == one.parent
