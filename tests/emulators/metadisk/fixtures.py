"""Ready-made emulator + provider pairs for tests and the conformance suite.

    with metadisk_setup(tmp_path) as s: s.provider, s.emulator, s.app
    with metadisk_target(tmp_path) as target: ...     # tests/conformance Target
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncagent.providers.base import PairContext, ProviderState
from syncagent.providers.metadisk.provider import MetadiskProvider
from syncagent.providers.metadisk.signing import KeyPair, password_hash
from syncagent.providers.metadisk.transport import Api, Credentials, Tuning
from tests.emulators import start_emulator
from tests.emulators.base import EmulatorServer
from tests.emulators.metadisk.app import MetadiskApp

if TYPE_CHECKING:
    from tests.conformance.providers import Target

EMAIL, PASSWORD = "new_user@coinbend.com", "password"          # the seed's account (spec §9.3)
FAST = Tuning(attempts=4, backoff_base=0.01, backoff_cap=0.05, timeout=20, manifest_races=4, gc_grace=0.0)


@dataclass
class MetadiskSetup:
    emulator: EmulatorServer
    key: KeyPair

    @property
    def app(self) -> MetadiskApp:
        app = self.emulator.app
        assert isinstance(app, MetadiskApp)
        return app

    @property
    def url(self) -> str:
        return self.emulator.base_url.rstrip("/")

    def api(self, key: KeyPair | None = None, tuning: Tuning = FAST, email: str = EMAIL) -> Api:
        return Api(self.url, Credentials(email, password_hash(PASSWORD), key or self.key), tuning=tuning)

    def provider(self, bucket: str = "sync", root: str = "/", *, tuning: Tuning = FAST, writer: str = "host-a",
                 state: ProviderState | None = None, key: KeyPair | None = None) -> MetadiskProvider:
        p = MetadiskProvider(self.api(key, tuning), bucket, root, tuning=tuning, writer=writer)
        if state is not None:
            p.attach(PairContext("t-", state))
        return p

    def inject(self, kind: str, count: int = 1, **match: Any) -> None:
        match.setdefault("retry_after", 0.02)
        self.emulator.inject(kind, count, **match)


@contextlib.contextmanager
def metadisk_setup(tmp: Path | None = None, **options: Any) -> Iterator[MetadiskSetup]:
    """An emulator with the seed's account activated and one registered key."""
    if tmp is not None:
        options.setdefault("storage", str(tmp / "emulator-shards"))
    with start_emulator("metadisk", user=f"{EMAIL}:{PASSWORD}", **options) as emu:
        key = KeyPair.generate()
        app = emu.app
        assert isinstance(app, MetadiskApp)
        app.accounts.add_key(EMAIL, key.public)
        yield MetadiskSetup(emu, key)


@contextlib.contextmanager
def metadisk_target(tmp: Path) -> Iterator[Target]:
    from tests.conformance.providers import Quirks, Target

    with metadisk_setup(tmp) as setup, setup.provider() as provider:
        quirks = Quirks(mtime_precision_s=0.000001, chunk=setup.app.store.shard_size, inject=setup.inject)
        yield Target(provider, quirks)
