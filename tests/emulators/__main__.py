"""python -m tests.emulators NAME --port PORT --user ID:SECRET [--option KEY=VALUE ...]

Prints the base URL on one line, then serves until SIGTERM or SIGINT."""

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
    parser.add_argument("--user", required=True, help="ID:SECRET (SmartFile: API key:password)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="emulator option, e.g. oauth=CT:CS:AT:AS or pending_polls=3")
    args = parser.parse_args(argv)
    options = dict(o.split("=", 1) for o in args.option)
    server = build(args.name, args.user, port=args.port, **options)
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


if __name__ == "__main__":
    sys.exit(main())
