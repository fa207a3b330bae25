"""Content identity for one pair: is the local file the same content as the
remote one, without moving it?

The pair has one hash kind: the remote's (`Capabilities.hash_kind`) when it
can be computed here (syncagent.hashing), else sha256 for our own records.
Local hashes are computed once per run and cached in the state database by
(size, mtime_ns, inode), so a rerun hashes nothing it has seen.

Where the remote gives no usable hash for a file (a file uploaded by another
client to a service whose hash we keep in our own attribute), equality is
proven another way, cheapest first:
  1. the provider's delta signature (same block and strong-sum sizes
     computed here: a few bytes per block cross the wire, no content);
  2. a download compared byte for byte, up to `compare_limit` bytes;
  3. otherwise it is not proven: the caller keeps both versions.
"""

from __future__ import annotations

import struct

from syncagent import errors, hashing
from syncagent.engine.localside import LocalSide
from syncagent.engine.records import Entry
from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.providers.base import Provider, RemoteEntry

TYPE_CHECKING = False
if TYPE_CHECKING:   # (names for the type checker only: no typing import at run time)
    from typing import IO

DEFAULT_COMPARE_LIMIT = 16 << 20
_SIG_MAGIC = {0x72730136: "md4", 0x72730137: "blake2"}
CHUNK = 1 << 20


def pair_hash_kind(remote: Provider) -> str:
    kind = remote.capabilities.hash_kind
    return kind if kind is not None and hashing.known(kind) else "sha256"


class Identity:
    def __init__(self, local: LocalSide, remote: Provider, store: Store, pair: int, reporter: Reporter,
                 compare_limit: int = DEFAULT_COMPARE_LIMIT) -> None:
        self.local, self.remote, self.store, self.pair = local, remote, store, pair
        self.reporter = reporter
        self.kind = pair_hash_kind(remote)
        self.remote_hashes = remote.capabilities.hash_kind == self.kind
        self.compare_limit = compare_limit
        self.memo: dict[str, str] = {}          # path -> local hash this run (shared with the executor)
        self._cache_rows: list[tuple[str, str, int, int, int, str]] = []
        self.cache_written = False
        self._verdicts: dict[tuple[str, Entry, RemoteEntry], bool] = {}   # a second planning pass asks again

    # ---- local hashes ---------------------------------------------------------
    def local_hash(self, path: str, seen: Entry | None = None) -> str | None:
        """The local file's hash in the pair's kind; None if it cannot be read."""
        found = self.memo.get(path)
        if found is not None:
            return found
        if seen is not None:
            cached = self.store.cached_hash(self.pair, path, self.kind, seen.size, seen.mtime_ns, seen.ino)
            if cached is not None:
                self.memo[path] = cached
                return cached
        try:
            value = self.local.hash_of(path, self.kind)
        except (OSError, errors.ProviderError):
            return None
        self.memo[path] = value
        if seen is not None:
            self._cache_rows.append((path, self.kind, seen.size, seen.mtime_ns, seen.ino, value))
        return value

    def save_cache(self) -> None:
        if self._cache_rows:
            self.store.write_hash_cache(self.pair, self._cache_rows)
            self._cache_rows = []
            self.cache_written = True

    def end_of_run(self) -> None:
        """Rows for paths the base now holds are redundant: drop them."""
        self.save_cache()
        if self.cache_written:
            self.store.prune_hash_cache(self.pair)
            self.cache_written = False

    # ---- the remote side ------------------------------------------------------
    def remote_hash(self, path: str, r: RemoteEntry) -> str | None:
        """The remote file's hash in the pair's kind, if the service gives one cheaply."""
        if not self.remote_hashes:
            return None
        return r.hash or self.remote.content_hash(path)

    def same(self, path: str, l: Entry, r: RemoteEntry) -> bool:
        """Whether two files of equal size hold the same bytes (False when it
        cannot be proven)."""
        if l.size != r.size:
            return False
        key = (path, l, r)
        if key not in self._verdicts:
            self._verdicts[key] = self._same(path, l, r)
        return self._verdicts[key]

    def same_many(self, items: list[tuple[str, Entry, RemoteEntry]], workers: int = 1) -> dict[str, bool]:
        """`same` for many files. Proofs that cross the network (a signature,
        a download) run `workers` at a time; hashes are compared here, in this
        thread (it alone touches the state database)."""
        out: dict[str, bool] = {}
        remote_side: list[tuple[str, Entry, RemoteEntry]] = []
        for path, l, r in items:
            if l.size != r.size:
                out[path] = False
            elif (path, l, r) in self._verdicts or self.remote_hash(path, r) is not None or workers <= 1:
                out[path] = self.same(path, l, r)
            else:
                remote_side.append((path, l, r))
        if remote_side:
            from concurrent.futures import ThreadPoolExecutor  # (imported by the runs that use it)

            with ThreadPoolExecutor(workers, thread_name_prefix="compare") as pool:
                verdicts = pool.map(lambda item: self._same_remotely(*item), remote_side)
                for (path, l, r), verdict in zip(remote_side, verdicts, strict=True):
                    self._verdicts[(path, l, r)] = out[path] = verdict
        return out

    def _same(self, path: str, l: Entry, r: RemoteEntry) -> bool:
        rh = self.remote_hash(path, r)
        if rh is not None:
            return self.local_hash(path, l) == rh
        return self._same_remotely(path, l, r)

    def _same_remotely(self, path: str, l: Entry, r: RemoteEntry) -> bool:
        """Proof without a remote hash (no state database access: runs in a pool)."""
        try:
            if self.remote.capabilities.delta:
                verdict = self._same_signature(path, l)
                if verdict is not None:
                    return verdict
            if l.size <= self.compare_limit:
                return self._same_bytes(path, l)
        except (errors.ProviderError, OSError) as exc:
            if isinstance(exc, errors.AuthError):
                raise
            self.reporter.warn(f"could not compare contents ({exc}); keeping both versions", path)
        return False

    def _same_signature(self, path: str, l: Entry) -> bool | None:
        """Compare the remote's delta signature with one made here with the
        same parameters. None: the signature cannot be read or made here."""
        from syncagent import delta

        if not delta.available():
            return None
        import tempfile

        with tempfile.TemporaryFile() as theirs, tempfile.TemporaryFile() as ours:
            self.remote.signature(path, theirs)
            theirs.seek(0)
            header = theirs.read(12)
            if len(header) < 12:
                return None
            magic, block_len, strong_len = struct.unpack(">III", header)
            hash_name = _SIG_MAGIC.get(magic)
            if hash_name is None:
                return None
            with self.local.read(path) as basis:
                delta.signature(basis, ours, hash=hash_name, block_len=block_len,  # type: ignore[arg-type]
                                strong_len=strong_len)
            return _same_stream(theirs, ours, rewind=True)

    def _same_bytes(self, path: str, l: Entry) -> bool:
        with self.remote.read(path) as theirs, self.local.read(path) as ours:
            return _same_stream(theirs, ours)


def _same_stream(a: IO[bytes], b: IO[bytes], *, rewind: bool = False) -> bool:
    if rewind:
        a.seek(0)
        b.seek(0)
    while True:
        x = a.read(CHUNK)
        y = _read_exactly(b, len(x)) if x else b.read(1)
        if x != y:
            return False
        if not x:
            return True


def _read_exactly(f: IO[bytes], n: int) -> bytes:
    parts = []
    while n:
        chunk = f.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)
