"""The MEGA API emulator (spec: /work/shared/specs/mega.md, §7).

    python -m tests.emulators mega --port PORT --user EMAIL:PASSWORD [--user ...] [--v1-user EMAIL:PASSWORD]
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulators.mega.accounts import seed_account
from tests.emulators.mega.app import MegaApp

if TYPE_CHECKING:
    from tests.conformance.providers import Target


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


def _credentials(spec: str) -> tuple[str, str]:
    email, sep, password = spec.partition(":")
    if not sep or not email:
        raise ValueError(f"expected EMAIL:PASSWORD, got {spec!r}")
    return email, password


def create(user: str, **options: Any) -> MegaApp:
    """`user` is a v2 account "EMAIL:PASSWORD". Options: `extra_users` (more v2 accounts),
    `v1_user` (legacy accounts), `tsid_user` (accounts without an RSA key pair: `us`
    answers a tsid), `storage` (a folder for ciphertext), and what `configure` takes
    (`quota`, `wait_timeout`)."""
    app = MegaApp(storage=options.pop("storage", None))
    for version, rsa, specs in ((2, True, [user, *_listed(options.pop("extra_users", None))]),
                                (1, True, _listed(options.pop("v1_user", None))),
                                (2, False, _listed(options.pop("tsid_user", None)))):
        for spec in specs:
            email, password = _credentials(spec)
            app.add_account(seed_account(email, password, version, rsa=rsa))
    app.configure(options)
    return app


@contextlib.contextmanager
def conformance_target(tmp: Path) -> Iterator[Target]:
    """The conformance suite's view of a MEGA remote on this emulator."""
    from tests.emulators.mega.fixtures import mega_setup

    with mega_setup(tmp) as setup:
        yield setup.target()


__all__ = ["MegaApp", "conformance_target", "create"]
