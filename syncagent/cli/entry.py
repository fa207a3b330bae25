"""The `syncagent` command's entry point (console script and `python -m syncagent`).

A one-shot `syncagent sync ...` is mostly start-up, and click's import is
a seventh of a no-op run, so a plain `sync` whose argv the declarative
table reads with certainty (fast_parse) runs without click. Everything
else, `sync --help`, an unknown option, a value click would refuse, and
every other command, goes unchanged to click's main: one behaviour,
whichever way the argv took.
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing is not imported at run time: every sync imports this module)
    from collections.abc import Mapping
    from typing import Any, NoReturn


# The collector's default first threshold (700 new containers) makes a sync over
# 10,000 files run it hundreds of times, and the older generations it promotes
# into are walked whole again and again: ~25 ms of a 0.4 s initial sync (W1,
# docs/benchmarks.md). The engine's tables are tuples and dicts that form no
# cycles; what does (an exception's traceback, a closed connection) is still
# collected, every 20,000 new containers instead of every 700.
GC_THRESHOLDS = (20_000, 10, 10)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    args = sys.argv[1:]
    if args[:1] == ["sync"] and not _completing(os.environ):
        from syncagent.cli.fast_parse import parse
        from syncagent.cli.sync_options import SYNC_PARAMS

        params = parse(SYNC_PARAMS, args[1:], os.environ)
        if params is not None:
            _run_sync(params)
    from syncagent.cli.main import main as click_main

    click_main()


def _completing(environ: Mapping[str, str]) -> bool:
    """Whether the shell asks click for completions (`_SYNCAGENT_COMPLETE=...`, named after the program)."""
    return any(name.startswith("_") and name.endswith("_COMPLETE") for name in environ)


def _run_sync(params: dict[str, Any]) -> NoReturn:
    """The run, with what click's standalone main would do on an interrupt or a closed stdout."""
    import errno

    from syncagent.cli.sync_run import run

    try:
        run(**params)
    except SystemExit as done:   # the run is over: closed, reported, its exit code chosen
        if done.code is None or isinstance(done.code, int):
            _leave(done.code or 0)
        raise
    except (EOFError, KeyboardInterrupt):   # before or after the signal handlers: click prints the same
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # stdout's reader is gone (`| head`): no BrokenPipeError again at the interpreter's last flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _leave(code: int) -> NoReturn:
    """End the process without the interpreter's teardown, which frees every
    object of the run one by one (6.5 ms after a 10,000-file sync, more the
    bigger the tree). Only once the run is over: its state database and
    provider are closed and its threads joined by then, and what it printed
    is flushed here."""
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):   # a reader gone, or a stream closed: nothing more to say
            stream.flush()
    os._exit(code)

