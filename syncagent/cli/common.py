"""What every command shares: the state dir default, the one way to fail,
and a clean stop on SIGTERM / Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from syncagent import errors

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from types import FrameType
    from typing import NoReturn


def default_state_dir() -> Path:
    env = os.environ.get("SYNCAGENT_STATE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_state_dir("syncagent"))


def fail(exc: errors.SyncAgentError) -> NoReturn:
    # stderr itself, not click.echo: the fast `sync` entry never imports click
    print(f"syncagent: {exc}", file=sys.stderr, flush=True)
    sys.exit(exc.exit_code)


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: unwind (closing the state DB, dropping temps)
    and exit 128 + the signal number. A BaseException, so no `except
    Exception` on the way swallows it; the run is crash-safe at any point."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def exit(self) -> NoReturn:
        name = signal.Signals(self.signum).name
        print(f"syncagent: stopped by {name}; nothing half-written is kept, the next run carries on",
              file=sys.stderr, flush=True)
        sys.exit(128 + self.signum)


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Stopped` while the block runs (main thread only)."""
    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    wanted = (signal.SIGTERM, signal.SIGINT)
    try:
        previous = {s: signal.signal(s, on_signal) for s in wanted}
    except ValueError:   # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
