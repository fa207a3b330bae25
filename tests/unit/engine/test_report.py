"""Summary writes its dataclass methods out (no dataclasses import at
start-up): each behaves as the generated one would."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from syncagent.engine.report import Summary


def generated() -> Any:
    fields = []
    for f in dataclasses.fields(Summary):
        default = (dataclasses.field(default_factory=f.default_factory)
                   if f.default_factory is not dataclasses.MISSING else dataclasses.field(default=f.default))
        fields.append((f.name, f.type, default))
    return dataclasses.make_dataclass("Summary", fields)


def test_summary_behaves_as_the_generated_dataclass() -> None:
    ref = generated()
    ours_params = [(p.name, p.default) for p in inspect.signature(Summary).parameters.values()]
    ref_params = [(p.name, None if repr(p.default) == "<factory>" else p.default)
                  for p in inspect.signature(ref).parameters.values()]
    assert ours_params == ref_params
    samples: tuple[dict[str, Any], ...] = ({}, {"uploaded": 2, "refused": "big delete", "error_list": [
        {"path": "a", "error": "x"}], "skipped_names": ["b"], "conflict_list": ["c"], "seconds": 1.5, "dry_run": True})
    for kwargs in samples:
        ours, theirs = Summary(**kwargs), ref(**kwargs)
        assert repr(ours) == repr(theirs)
        assert ours == Summary(**kwargs) and ours != theirs and ours != Summary(moved=9)
        assert ours.as_dict() == {**dataclasses.asdict(theirs), "exit_code": ours.exit_code}
        assert ours.as_dict()["error_list"] is not ours.error_list
    assert Summary().error_list is not Summary().error_list and Summary.__hash__ is None
