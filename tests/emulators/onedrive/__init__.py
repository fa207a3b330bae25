"""The OneDrive (Microsoft Graph) emulator, with the identity platform's
OAuth endpoints on the same port (spec: /work/shared/specs/onedrive.md).

    python -m tests.emulators onedrive --port 8080 --user alice:TOKEN --option auto_approve=1

`--user NAME:TOKEN` (several: comma-separated or repeated) gives each user a
drive and a static bearer token; the OAuth flows issue expiring ones.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulators.onedrive.app import OneDriveApp

if TYPE_CHECKING:
    from tests.conformance.providers import Target


def create(user: str, **options: Any) -> OneDriveApp:
    """Options: seed, clock, storage (a folder for blobs), quota_total, and
    everything `OneDriveApp.configure` takes (auto_approve, access_lifetime,
    device_interval, delta_retention, session_lifetime, simple_upload_limit,
    strict_fragments, copy_polls, client_ids, ...)."""
    users: dict[str, str] = {}
    extra = str(options.pop("extra_users", ""))    # the second and later --user of python -m tests.emulators
    for spec in filter(None, [*user.split(","), *extra.split(",")]):
        name, sep, token = spec.partition(":")
        if not sep or not name or not token:
            raise ValueError(f"--user wants NAME:TOKEN, got {spec!r}")
        users[name] = token
    app = OneDriveApp(users, seed=int(options.pop("seed", 0)), **_pick(options, "clock", "storage"),
                      quota_total=int(options.pop("quota_total", 5 << 30)))
    app.configure(options)
    return app


def conformance_target(tmp: Path) -> contextlib.AbstractContextManager[Target]:
    """The conformance suite's provider on a fresh emulator (tests/emulators/onedrive/fixtures.py)."""
    from tests.emulators.onedrive.fixtures import conformance_target as target

    return target(tmp)


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {n: options.pop(n) for n in names if n in options}


__all__ = ["OneDriveApp", "conformance_target", "create"]
