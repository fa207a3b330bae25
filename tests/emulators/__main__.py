"""python -m tests.emulators NAME --port PORT --user ID:SECRET [--user ...] [--option KEY=VALUE ...]
                                [--EMULATOR-FLAG VALUE ...]

Prints the base URL on one line, then serves until SIGTERM or SIGINT. A
second `--user` reaches the emulator as the option `extra_users`; a flag
this parser does not know (`--v1-user EMAIL:PASSWORD` for MEGA) becomes the
option of that name (v1_user), repeated ones joined by commas."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tests.emulators import EMULATORS, build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators")
    parser.add_argument("name", choices=sorted(EMULATORS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user", required=True, action="append",
                        help="ID:SECRET (SmartFile: API key:password; MEGA: EMAIL:PASSWORD)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="emulator option, e.g. oauth=CT:CS:AT:AS or pending_polls=3")
    args, rest = parser.parse_known_args(argv)
    options = dict(o.split("=", 1) for o in args.option)
    options.update(_flags(parser, rest))
    if len(args.user) > 1:
        options["extra_users"] = ",".join(args.user[1:])
    server = build(args.name, args.user[0], port=args.port, **options)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(server.base_url, flush=True)
    stop.wait()
    server.stop()
    return 0


def _flags(parser: argparse.ArgumentParser, rest: list[str]) -> dict[str, str]:
    """`--some-flag VALUE` pairs the emulator takes as options."""
    out: dict[str, list[str]] = {}
    if len(rest) % 2 or not all(flag.startswith("--") for flag in rest[::2]):
        parser.error(f"unexpected arguments: {' '.join(rest)}")
    for flag, value in zip(rest[::2], rest[1::2], strict=True):
        out.setdefault(flag[2:].replace("-", "_"), []).append(value)
    return {k: ",".join(v) for k, v in out.items()}


if __name__ == "__main__":
    sys.exit(main())
