"""The engine's delta path: send the difference of a changed file, not the file.

Uploads: the provider gives the signature of its copy, we compute the delta
of the local file against it, the provider patches its copy in place
(atomically). Downloads: we send the signature of the local copy, the
provider computes the delta, we patch into a temp file beside the local copy.
Either result is verified; any failure falls back to a whole-file transfer.

A delta spends CPU and reads both files to save bytes: on a local disk it
loses (rsync's own delta mode costs ~2.8x a copy locally), over a network it
wins. `auto` therefore uses it only where the provider's bytes are expensive.
"""

from __future__ import annotations

import os

from syncagent import errors
from syncagent.engine.identity import Identity
from syncagent.engine.localside import LocalSide, entry_rev
from syncagent.engine.records import Entry
from syncagent.engine.report import Reporter
from syncagent.providers.base import Provider, RemoteEntry, StagedWrite

TYPE_CHECKING = False
if TYPE_CHECKING:   # (names for the type checker only: no typing import at run time)
    from typing import IO, Literal


class DeltaPath:
    def __init__(self, local: LocalSide, remote: Provider, mode: str, threshold: int,
                 reporter: Reporter, identity: Identity) -> None:
        self.local, self.remote, self.reporter, self.identity = local, remote, reporter, identity
        self.always = mode == "always"
        self.threshold = threshold
        self.enabled = mode != "never" and remote.capabilities.delta and self._library_ready(mode)

    def _library_ready(self, mode: str) -> bool:
        try:
            from syncagent import delta

            if delta.available():
                return True
            reason = "librsync could not be loaded"
        except ImportError as exc:
            reason = str(exc)
        if mode == "always" or self.remote.capabilities.expensive_bytes:
            self.reporter.warn(f"delta transfers are off ({reason}; install the librsync2 package); "
                               "sending whole files")
        return False

    def wanted(self, size: int) -> bool:
        if not self.enabled:
            return False
        return self.always or (self.remote.capabilities.expensive_bytes and size >= self.threshold)

    def _hash_kind(self) -> Literal["blake2", "md4"]:
        return self.remote.capabilities.delta_hash

    def upload(self, path: str, seen: Entry, r: RemoteEntry) -> tuple[RemoteEntry, int, int, str]:
        """Patch the remote copy. Returns (new entry, bytes sent, bytes received, content hash)."""
        import tempfile  # (with shutil, bz2, lzma and random: only a delta transfer pays for it)

        from syncagent import delta

        with tempfile.TemporaryFile() as sig, tempfile.TemporaryFile() as diff:
            self.remote.signature(path, sig)
            received = sig.tell()
            sig.seek(0)
            with self.local.read(path) as f:
                st = os.fstat(f.fileno())
                if (st.st_size, st.st_mtime_ns, st.st_ino) != (seen.size, seen.mtime_ns, seen.ino):
                    raise errors.Conflict("changed since the scan", path=path)
                delta.delta(sig, f, diff)
            sent = diff.tell()
            diff.seek(0)
            wanted_hash = self.local.hash_of(path, self.identity.kind)
            entry = self.remote.patch(path, diff, seen.size, seen.mtime_ns, expect=r.rev)
        got = self.identity.remote_hash(path, entry)
        if got is not None and got != wanted_hash:
            raise errors.TransientError("the patched remote file does not match", path=path)
        if entry.size != seen.size:
            raise errors.TransientError("the patched remote file has the wrong size", path=path)
        return entry, sent, received, wanted_hash

    def download(self, path: str, r: RemoteEntry, seen: Entry) -> tuple[StagedWrite, int, int]:
        """Patch a temp copy of the local file. Returns (staged write, bytes sent, bytes received)."""
        import tempfile  # (with shutil, bz2, lzma and random: only a delta transfer pays for it)

        from syncagent import delta

        with tempfile.TemporaryFile() as sig, tempfile.TemporaryFile() as diff:
            with self.local.read(path) as basis:
                delta.signature(basis, sig, hash=self._hash_kind())
            sent = sig.tell()
            sig.seek(0)
            self.remote.delta(path, sig, diff)
            received = diff.tell()
            diff.seek(0)
            want = r.hash if r.hash and self.identity.remote_hashes else None
            staged = self.local.stage_patch(path, _io(diff), r.size, r.mtime_ns, expect=entry_rev(seen),
                                            content_hash=want, hash_kind=self.identity.kind)
        return staged, sent, received


def _io(f: IO[bytes]) -> IO[bytes]:
    return f
