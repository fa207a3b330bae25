"""engine/records.py makes its NamedTuples with collections.namedtuple (no
typing import at start-up): the same classes typing.NamedTuple would make."""

from __future__ import annotations

import pickle
import typing
from typing import Any

from syncagent.engine import records


def test_the_records_are_the_named_tuples_typing_would_make() -> None:
    classes: tuple[Any, ...] = (records.Entry, records.Base)
    for cls in classes:
        ref: Any = typing.NamedTuple(cls.__name__, list(cls.__annotations__.items()))  # type: ignore[misc]
        assert cls._fields == ref._fields and cls.__mro__[1:] == (tuple, object)
        assert cls.__module__ == "syncagent.engine.records" and cls.__doc__.startswith(("What a scan", "One base"))
        values = tuple(range(len(cls._fields)))
        ours = cls(*values)
        assert ours == values and ours._replace(size=9).size == 9 and repr(ours) == repr(ref(*values))
        assert pickle.loads(pickle.dumps(ours)) == ours
