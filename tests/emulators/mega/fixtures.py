"""Ready-made MEGA emulator + provider pairs for tests and the conformance suite.

    with mega_setup(tmp_path) as s: s.provider, s.emulator, s.inject("-3", 2)
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncagent.http import Timeouts
from syncagent.providers.mega.api import Api, Tuning
from syncagent.providers.mega.provider import MegaProvider
from syncagent.providers.mega.session import Session, login
from syncagent.retry import RetryPolicy
from tests.emulators import start_emulator
from tests.emulators.base import EmulatorServer

if TYPE_CHECKING:
    from tests.conformance.providers import Target

EMAIL = "user@example.org"
PASSWORD = "correct horse battery staple"
V1_EMAIL = "legacy@example.org"
V1_PASSWORD = "password"

# production timings scaled down so fault tests take milliseconds
FAST = Tuning(retry=RetryPolicy(attempts=5, backoff_base=0.005, backoff_cap=0.05, retry_after_cap=0.5, deadline=60),
              timeouts=Timeouts(connect=5, read=20, total=120), quota_wait=0.05, quota_waits=3, wait_timeout=2.0)
QUICK = 0.02   # seconds an injected throttle asks for


@dataclass
class MegaSetup:
    provider: MegaProvider
    emulator: EmulatorServer
    email: str = EMAIL
    password: str = PASSWORD

    def inject(self, kind: str, count: int = 1, **match: Any) -> None:
        match.setdefault("retry_after", QUICK)
        self.emulator.inject(kind, count, **match)

    def target(self) -> Target:
        from tests.conformance.providers import Quirks, Target

        return Target(self.provider, Quirks(mtime_precision_s=1.0, chunk=1 << 20, inject=self.inject))

    def new_provider(self, root: str = "/sync", **kw: Any) -> MegaProvider:
        """A second client of the same account (another machine, the web app)."""
        api = Api(self.emulator.base_url, tuning=FAST)
        return MegaProvider(api, login(api, self.email, self.password), root, **kw)


@contextlib.contextmanager
def mega_emulator(tmp: Path | None = None, **options: Any) -> Iterator[EmulatorServer]:
    options.setdefault("v1_user", f"{V1_EMAIL}:{V1_PASSWORD}")
    options.setdefault("wait_timeout", 1.0)
    if tmp is not None:
        options.setdefault("storage", str(tmp))
    with start_emulator("mega", user=f"{EMAIL}:{PASSWORD}", **options) as emu:
        yield emu


@contextlib.contextmanager
def mega_setup(tmp: Path | None = None, root: str = "/sync", tuning: Tuning = FAST,
               sleep: Callable[[float], None] = time.sleep, hard_delete: bool = False,
               relogin: bool = True, **options: Any) -> Iterator[MegaSetup]:
    """An emulator (options go to it) and a provider logged in, rooted at `root`."""
    with mega_emulator(tmp, **options) as emu:
        api = Api(emu.base_url, tuning=tuning, sleep=sleep)
        session = login(api, EMAIL, PASSWORD)

        def again() -> Session:
            return login(Api(emu.base_url, tuning=tuning, sleep=sleep), EMAIL, PASSWORD)

        with MegaProvider(api, session, root, hard_delete=hard_delete, relogin=again if relogin else None) as p:
            assert isinstance(p, MegaProvider)
            p.ensure_root()
            yield MegaSetup(p, emu)
