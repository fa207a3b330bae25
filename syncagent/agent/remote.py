"""One provider per pair for the agent's life.

Opening a provider can cost a login and a tree fetch (MEGA), a token refresh
(OneDrive), a new HTTP session (SmartFile): the agent opens it once and
reuses it for every poll and every sync. It is opened again only when

* the provider says the credentials failed (`AuthError`): once, in case a
  token expired or a session was dropped; a second failure is the caller's
  to report (the pair pauses until `syncagent auth NAME`);
* the config file (or the credentials file) changed since it was opened:
  the remote's definition or its secrets may be different now;

and it is closed at shutdown. Only the pair's own thread uses it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from syncagent import errors
from syncagent.log import get_logger
from syncagent.providers.base import Provider
from syncagent.providers.remotes import open_remote, parse_remote

T = TypeVar("T")
Opener = Callable[[str, "str | None"], tuple[Provider, str]]
Stamp = tuple[tuple[int, int, int] | None, ...]


class RemoteHandle:
    """The pair's provider: `call(action)` runs `action(provider, canonical)`."""

    def __init__(self, spec: str, config_path: str | None = None, *, opener: Opener = open_remote) -> None:
        self.spec, self.config_path, self.opener = spec, config_path, opener
        self.name = parse_remote(spec)[0]       # None: a plain folder, no config involved
        self.provider: Provider | None = None
        self.canonical = ""
        self.opened = 0                          # how many times a provider was opened (tests, logs)
        self._stamp: Stamp = ()
        self.log = get_logger(remote=self.name or spec)

    @property
    def auth_hint(self) -> str:
        """What the user should run when the credentials fail."""
        return f"run `syncagent auth {self.name}`" if self.name else "check the folder's permissions"

    def call(self, action: Callable[[Provider, str], T]) -> T:
        """`action` with the open provider; after an AuthError the provider is
        opened again and `action` tried once more (a second AuthError is raised)."""
        provider, canonical = self.get()
        try:
            return action(provider, canonical)
        except errors.AuthError as exc:
            self.log.info("the remote refused the credentials; opening it again", error=str(exc))
            self.close()
        provider, canonical = self.get()
        return action(provider, canonical)

    def get(self) -> tuple[Provider, str]:
        stamp = self._config_stamp()
        if self.provider is not None and stamp != self._stamp:
            self.log.info("the config changed; opening the remote again")
            self.close()
        if self.provider is None:
            self._stamp = stamp     # even if the open fails: a paused pair waits for the next change
            self.provider, self.canonical = self.opener(self.spec, self.config_path)
            self.opened += 1
        return self.provider, self.canonical

    def config_changed(self) -> bool:
        """Whether the config or credentials file changed since the last open
        (a paused pair retries at once after `syncagent auth NAME`)."""
        return self._config_stamp() != self._stamp

    def close(self) -> None:
        provider, self.provider = self.provider, None
        if provider is None:
            return
        try:
            provider.close()
        except Exception as exc:  # closing must never take the agent down
            self.log.warning("closing the remote failed", error=f"{type(exc).__name__}: {exc}")

    def _config_stamp(self) -> Stamp:
        """(inode, size, mtime) of the files a named remote is built from."""
        if self.name is None:
            return ()
        return tuple(_file_stamp(p) for p in self._sources())

    def _sources(self) -> list[Path]:
        from syncagent import config
        from syncagent.credentials import default_credentials_file

        return [Path(self.config_path) if self.config_path else config.default_path(), default_credentials_file()]


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
