"""Ready-made OneDrive emulator + provider pairs for tests and the conformance suite.

    with onedrive_setup(tmp_path) as s: s.provider, s.emulator, s.inject(...)
    with conformance_target(tmp_path) as target: ...        # tests/conformance Target
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from syncagent.http import Timeouts, new_session
from syncagent.providers.onedrive.provider import OneDriveProvider
from syncagent.providers.onedrive.tokens import Endpoints, TokenSet, TokenSource
from syncagent.providers.onedrive.transport import Graph, Tuning
from syncagent.retry import RetryPolicy
from tests.emulators import start_emulator
from tests.emulators.base import EmulatorServer

if TYPE_CHECKING:
    from tests.conformance.providers import Target

USER = "alice"
TOKEN = "EwB-static-test-token-of-alice"
CLIENT_ID = "00000000-0000-0000-0000-00005ca1ab1e"
QUICK_THROTTLE = 0.02   # seconds the emulator asks a throttled client to wait

# production timings scaled down so fault tests take milliseconds; small enough
# sizes that a 2 MiB file goes through an upload session in 640 KiB fragments
FAST = Tuning(retry=RetryPolicy(attempts=4, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.5, deadline=30),
              timeouts=Timeouts(connect=5, read=20, total=60), simple_limit=1 << 20, fragment=2 * 327_680,
              page_size=50, delta_page=50, copy_poll_initial=0.005, copy_poll_max=0.02, copy_timeout=20)


@dataclass
class OneDriveSetup:
    provider: OneDriveProvider
    emulator: EmulatorServer
    sleeps: list[float] = field(default_factory=list)

    def inject(self, kind: str, count: int = 1, **match: Any) -> None:
        match.setdefault("retry_after", QUICK_THROTTLE)
        self.emulator.inject(kind, count, **match)

    @property
    def app(self) -> Any:
        return self.emulator.app


def graph_for(emu: EmulatorServer, tokens: TokenSet | None = None, *, tuning: Tuning = FAST,
              sleep: Callable[[float], None] = time.sleep, save: Callable[[dict[str, str]], None] | None = None,
              session: requests.Session | None = None) -> Graph:
    return graph_at(emu.base_url, tokens, tuning=tuning, sleep=sleep, save=save, session=session)


def graph_at(base_url: str, tokens: TokenSet | None = None, *, tuning: Tuning = FAST,
             sleep: Callable[[float], None] = time.sleep, save: Callable[[dict[str, str]], None] | None = None,
             session: requests.Session | None = None) -> Graph:
    """A Graph client of the emulator at `base_url` (the static token of USER by default)."""
    session = session or new_session(tuning.timeouts, user_agent_suffix="onedrive-tests")
    source = TokenSource(Endpoints(base_url.rstrip("/"), "common"), CLIENT_ID,
                         tokens or TokenSet(TOKEN, "", time.time() + 10 * 365 * 86400), session=session, save=save,
                         remote="od")
    return Graph(source, session, graph_url=base_url + "v1.0", tuning=tuning, sleep=sleep)


@contextlib.contextmanager
def onedrive_emulator(tmp: Path | None = None, **options: Any) -> Iterator[EmulatorServer]:
    if tmp is not None:
        options.setdefault("storage", str(tmp))
    with start_emulator("onedrive", user=f"{USER}:{TOKEN}", **options) as emu:
        yield emu


@contextlib.contextmanager
def onedrive_setup(tmp: Path | None = None, root: str = "sync", tuning: Tuning = FAST, **options: Any
                   ) -> Iterator[OneDriveSetup]:
    """An emulator (options go to it) and a provider rooted at `root` on it; the
    provider's sleeps are recorded (and shortened) so tests can see Retry-After."""
    with onedrive_emulator(tmp, **options) as emu:
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(min(seconds, 0.05))

        with OneDriveProvider(graph_for(emu, tuning=tuning, sleep=sleep), root, sleep=sleep) as p:
            assert isinstance(p, OneDriveProvider)
            p.ensure_root()
            yield OneDriveSetup(p, emu, sleeps)


@contextlib.contextmanager
def conformance_target(tmp: Path) -> Iterator[Target]:
    """The conformance suite's view: provider, quirks, and fault injection."""
    from tests.conformance.providers import Quirks, Target

    with onedrive_setup(tmp) as setup:
        quirks = Quirks(mtime_precision_s=1.0, chunk=1 << 20, inject=setup.inject)
        yield Target(setup.provider, quirks)


__all__ = ["CLIENT_ID", "FAST", "TOKEN", "USER", "OneDriveSetup", "conformance_target", "graph_at", "graph_for",
           "onedrive_emulator", "onedrive_setup", "replace"]
