"""Deterministic crash points for the kill -9 tests.

`SYNCAGENT_CRASH_AT=name:n` kills the process with SIGKILL the n-th time it
passes the point `name`. Unset (always, outside tests), a point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_spec = os.environ.get("SYNCAGENT_CRASH_AT", "")
_name, _, _count = _spec.partition(":")
_left = int(_count or "1") if _spec else 0


def point(name: str) -> None:
    global _left
    if _left and name == _name:
        _left -= 1
        if _left == 0:
            os.kill(os.getpid(), signal.SIGKILL)
