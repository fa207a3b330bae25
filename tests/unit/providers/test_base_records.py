"""The records of providers/base.py whose dataclass methods are written out
by hand (so importing the module compiles less): each behaves as the
dataclass of the same fields and flags would."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from syncagent.providers.base import (
    Capabilities,
    ChangeBatch,
    Deleted,
    Kind,
    MemoryState,
    PairContext,
    Quota,
    RemoteEntry,
)

STATE = MemoryState()
SAMPLES: dict[type, tuple[tuple[Any, ...], ...]] = {
    # class: (all fields given, the first fields only: the rest take their defaults)
    RemoteEntry: (("a/b.txt", Kind.FILE, 3, 7, "r1", "sha256:00", "id9", "b\u0301.txt"), ("a", Kind.DIR)),
    Deleted: (("gone.txt",), ("gone.txt",)),
    ChangeBatch: (([RemoteEntry("x", Kind.FILE)], "c1", True), ([Deleted("y")], "c2")),
    Quota: ((10, 100), (10, None)),
    Capabilities: (("sha1", True, "md4", False, True, True, True, True, True, ":", 100, 200, 2, False, True, 8,
                    True, True, True), ("md5",), ()),
    PairContext: (("p1-", STATE), ("p2-",), ()),
}
# class: (frozen, slots) as the class declared them before its methods were written out
FLAGS = {RemoteEntry: (True, True), Deleted: (True, True), ChangeBatch: (True, True), Quota: (True, True),
         Capabilities: (True, False), PairContext: (False, False)}


def generated(cls: type) -> Any:
    """The dataclass dataclass() makes of `cls`'s fields, with every method generated."""
    fields = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            fields.append((f.name, f.type, dataclasses.field(default=f.default)))
        elif f.default_factory is not dataclasses.MISSING:
            fields.append((f.name, f.type, dataclasses.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, f.type, dataclasses.field()))
    frozen, slots = FLAGS[cls]
    return dataclasses.make_dataclass(cls.__name__, fields, frozen=frozen, slots=slots)


def signature(cls: type) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults of the parameters; a generated default_factory (shown as
    <factory>) is None in a written-out __init__, which then calls the factory."""
    return [(p.name, p.kind, None if repr(p.default) == "<factory>" else p.default)
            for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_written_out_methods_match_the_generated_ones(cls: type) -> None:
    ref = generated(cls)
    assert signature(cls) == signature(ref)
    assert cls.__match_args__ == ref.__match_args__  # type: ignore[attr-defined]
    frozen, slots = FLAGS[cls]
    assert getattr(cls, "__slots__", None) == getattr(ref, "__slots__", None)
    for values in SAMPLES[cls]:
        ours = cls(*values)
        theirs = ref(*(getattr(ours, f.name) for f in dataclasses.fields(cls)))  # the same default state
        assert repr(ours) == repr(theirs)
        if cls is not PairContext:   # (asdict would deep-copy its MemoryState: the same, but not equal)
            assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
        again = cls(*values) if cls is not PairContext else cls(ours.tag, ours.state)
        assert ours == again
        assert ours != theirs    # another class: never equal, as generated __eq__ has it
        kwargs = {f.name: getattr(ours, f.name) for f in dataclasses.fields(cls)}
        assert cls(**kwargs) == ours and dataclasses.replace(ours) == ours
        if cls is not PairContext:
            assert pickle.loads(pickle.dumps(ours)) == ours
        first = dataclasses.fields(cls)[0].name
        if frozen:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(ours, first, getattr(ours, first))
            with pytest.raises(dataclasses.FrozenInstanceError):
                delattr(ours, first)
        assert hasattr(ours, "__dict__") is not slots
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


def test_each_pair_context_gets_a_state_of_its_own() -> None:
    one, two = PairContext(), PairContext("t")
    assert isinstance(one.state, MemoryState) and one.state is not two.state
