"""Ready-made emulator + provider pairs for tests (and the conformance suite).

    with smartfile_provider(tmp_path) as provider: ...          # connected, rooted at /sync
    with smartfile_setup(tmp_path) as s: s.provider, s.emulator  # plus the fault handle
    with smartfile_target(tmp_path) as target: ...               # tests/conformance Target
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncagent.http import Timeouts
from syncagent.providers.smartfile import SmartFileProvider, Tuning
from syncagent.retry import RetryPolicy
from tests.emulators import start_emulator
from tests.emulators.base import EmulatorServer

if TYPE_CHECKING:
    from tests.conformance.providers import Target

# the official client's test credentials (spec §9.1)
KEY = "8g1aq1UF2QfZTG47yEVhVLAFqyfDdp"
PASSWORD = "3II3UFD3pBAwy3Rbz8mVWBhJTA2Gvd"
CLIENT_TOKEN = "8oWot4KrppJDzfokDsHNJrND0Ay13s"
CLIENT_SECRET = "0I7BV6Bm3Rgfk73LL68vBp0u23KcKr"
ACCESS_TOKEN = "hIlkipZNmwIJ28HQtQRcbGuXBePQp5"
ACCESS_SECRET = "Scen1dwmVtWhjLpJfnilrfdc5OZWCJ"
OAUTH = f"{CLIENT_TOKEN}:{CLIENT_SECRET}:{ACCESS_TOKEN}:{ACCESS_SECRET}"

# production timings scaled down so fault tests take milliseconds
FAST = Tuning(retry=RetryPolicy(attempts=4, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.5, deadline=60),
              timeouts=Timeouts(connect=5, read=20, total=60), page_size=50, poll_initial=0.005, poll_max=0.02,
              task_timeout=20)
QUICK_THROTTLE = 0.02  # seconds the emulator asks a throttled client to wait


@dataclass
class SmartFileSetup:
    provider: SmartFileProvider
    emulator: EmulatorServer

    def inject(self, kind: str, count: int = 1, **match: Any) -> None:
        match.setdefault("retry_after", QUICK_THROTTLE)
        self.emulator.inject(kind, count, **match)


@contextlib.contextmanager
def smartfile_emulator(tmp: Path | None = None, **options: Any) -> Iterator[EmulatorServer]:
    options.setdefault("oauth", OAUTH)
    if tmp is not None:
        options.setdefault("storage", str(tmp))
    with start_emulator("smartfile", user=f"{KEY}:{PASSWORD}", **options) as emu:
        yield emu


@contextlib.contextmanager
def smartfile_setup(tmp: Path | None = None, root: str = "/sync", tuning: Tuning = FAST,
                    sleep: Callable[[float], None] = time.sleep, **options: Any) -> Iterator[SmartFileSetup]:
    """An emulator (options go to it) and a provider rooted at `root` on it."""
    with smartfile_emulator(tmp, **options) as emu, \
            SmartFileProvider(root, api_key=KEY, api_password=PASSWORD, url=emu.base_url, tuning=tuning,
                              sleep=sleep) as p:
        assert isinstance(p, SmartFileProvider)
        p.ensure_root()
        yield SmartFileSetup(p, emu)


@contextlib.contextmanager
def smartfile_provider(tmp: Path | None = None, **kw: Any) -> Iterator[SmartFileProvider]:
    with smartfile_setup(tmp, **kw) as setup:
        yield setup.provider


@contextlib.contextmanager
def smartfile_target(tmp: Path) -> Iterator[Target]:
    """The conformance suite's view: provider, quirks, and fault injection."""
    from tests.conformance.providers import Quirks, Target

    with smartfile_setup(tmp) as setup:
        quirks = Quirks(mtime_precision_s=1.0, chunk=1 << 20, inject=setup.inject)
        yield Target(setup.provider, quirks)
