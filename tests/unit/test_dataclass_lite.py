"""dataclass_lite: records that behave as dataclasses without importing
dataclasses (and inspect) at start-up. providers/base.py's records are
checked field by field against dataclass() in
tests/unit/providers/test_base_records.py; here, the decorator itself."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from syncagent.dataclass_lite import dataclass, field


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class Point:
    """A frozen slots record (its __init__ written out)."""

    x: int
    y: int = 0

    def __init__(self, x: int, y: int = 0) -> None:
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)


@dataclass(init=False, repr=False, eq=False)
class Bag:
    """A mutable record with a default factory."""

    name: str = "bag"
    items: list[int] = field(default_factory=list)

    def __init__(self, name: str = "bag", items: list[int] | None = None) -> None:
        self.name = name
        self.items = [] if items is None else items


def test_the_fields_are_dataclass_fields_built_when_first_read() -> None:
    assert dataclasses.is_dataclass(Point) and dataclasses.is_dataclass(Bag(""))
    assert [(f.name, f.default) for f in dataclasses.fields(Point)] == [("x", dataclasses.MISSING), ("y", 0)]
    (_, items) = dataclasses.fields(Bag)
    assert items.default_factory is list and "items" not in Bag.__dict__   # no class attribute, as generated
    assert Bag.name == "bag"
    assert dataclasses.replace(Point(1), y=5).y == 5 and dataclasses.asdict(Bag("b", [1])) == {"name": "b",
                                                                                              "items": [1]}
    assert Point.__match_args__ == ("x", "y") and Point.__slots__ == ("x", "y")


def test_frozen_records_refuse_changes_and_a_subclass_may_add_attributes() -> None:
    p = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        p.x = 3
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
        del p.y

    class Labelled(Point):
        label = ""

    labelled = Labelled(1)
    labelled.label = "here"    # not a field: allowed, as dataclass() allows it on a subclass
    assert labelled.__dict__ == {"label": "here"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        labelled.x = 2


def test_only_written_out_records_without_bases() -> None:
    with pytest.raises(TypeError, match="write __init__"):
        dataclass(frozen=True)
    with pytest.raises(TypeError, match="without base classes"):
        dataclass(init=False, repr=False, eq=False)(type("Sub", (Point,), {"__annotations__": {}}))


def test_importing_the_records_imports_neither_dataclasses_nor_inspect() -> None:
    code = ("import sys; import syncagent.providers.base as b; b.Capabilities(); b.RemoteEntry('a', b.Kind.FILE); "
            "print(sorted({'dataclasses', 'inspect', 'typing'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
