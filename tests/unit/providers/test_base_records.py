"""The records of providers/base.py whose dataclass methods are written out
by hand (so importing the module compiles nothing): each behaves as the
dataclass(frozen=True, slots=True) of the same fields would."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from syncagent.providers.base import ChangeBatch, Deleted, Kind, Quota, RemoteEntry

SAMPLES: dict[type, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    # class: (all fields given, the first fields only: the rest take their defaults)
    RemoteEntry: (("a/b.txt", Kind.FILE, 3, 7, "r1", "sha256:00", "id9", "b\u0301.txt"), ("a", Kind.DIR)),
    Deleted: (("gone.txt",), ("gone.txt",)),
    ChangeBatch: (([RemoteEntry("x", Kind.FILE)], "c1", True), ([Deleted("y")], "c2")),
    Quota: ((10, 100), (10, None)),
}


def generated(cls: type) -> Any:
    """The dataclass dataclass() makes of `cls`'s fields, with every method generated."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default) if f.default is not dataclasses.MISSING
               else dataclasses.field()) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=True, slots=True)


def signature(cls: type) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_written_out_methods_match_the_generated_ones(cls: type) -> None:
    ref = generated(cls)
    assert signature(cls) == signature(ref)
    assert cls.__match_args__ == ref.__match_args__  # type: ignore[attr-defined]
    assert cls.__slots__ == ref.__slots__  # type: ignore[attr-defined]
    for values in SAMPLES[cls]:
        ours, theirs = cls(*values), ref(*values)
        assert repr(ours) == repr(theirs)
        assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
        assert ours == cls(*values)
        assert ours != theirs    # another class: never equal, as generated __eq__ has it
        kwargs = {f.name: v for f, v in zip(dataclasses.fields(cls), values, strict=False)}
        assert cls(**kwargs) == ours
        assert pickle.loads(pickle.dumps(ours)) == ours
        first = dataclasses.fields(cls)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(ours, first, values[0])
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(ours, first)
        assert not hasattr(ours, "__dict__")
        try:
            expected_hash: int | None = hash(theirs)
        except TypeError:   # a list field (ChangeBatch.changes): unhashable, as generated
            expected_hash = None
        if expected_hash is None:
            with pytest.raises(TypeError):
                hash(ours)
        else:
            assert hash(ours) == expected_hash


def test_a_field_that_differs_makes_records_unequal() -> None:
    entry = RemoteEntry("a", Kind.FILE, 1, 2, "r", "h", "i", "s")
    for f in dataclasses.fields(RemoteEntry):
        changed: dict[str, Any] = {f.name: Kind.DIR if f.name == "kind" else "other"}
        other = dataclasses.replace(entry, **changed)
        assert other != entry and hash(other) != hash(entry), f.name
    assert Quota(1, 2) != Quota(1, None) and Deleted("a") != Deleted("b")
    assert ChangeBatch([], "c") != ChangeBatch([], "c", reset=True)
    assert RemoteEntry("a", Kind.FILE) != Deleted("a")


def test_match_reads_the_fields_in_order() -> None:
    match RemoteEntry("a", Kind.DIR, 5):
        case RemoteEntry(path, Kind.DIR, size):
            assert (path, size) == ("a", 5)
        case _:
            pytest.fail("no match")
