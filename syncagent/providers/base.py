"""The provider interface: what the engine needs from a storage service.

Every provider (a plain folder, SmartFile, MEGA, Metadisk, OneDrive) fills this
one interface and declares what it can do in `Capabilities`; the engine asks
capabilities, never "which provider is this". Paths are relative to the
provider's root, '/'-separated, NFC-normalized; "" is the root itself.

Errors are raised as the classes of `syncagent.errors`, mapped in one place
per provider.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterable, Iterator, Sequence

from syncagent import errors
from syncagent.dataclass_lite import field_values, fields_eq, fields_repr

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing and dataclasses, which imports inspect, are not imported at run time)
    from dataclasses import dataclass, field
    from typing import IO, Any, Final, Literal
else:
    from syncagent.dataclass_lite import dataclass, field

# The records below are dataclasses (fields(), replace(), asdict() and match work on them) whose
# __init__, __repr__, __eq__ and __hash__ are written out here, not generated: dataclass() compiles
# each generated method when the module is imported (~0.3 ms apiece on the project's machine, paid
# by every command), and importing dataclasses costs more (syncagent/dataclass_lite.py).
# tests/unit/providers/test_base_records.py checks them against the methods dataclass() would generate.
_set = object.__setattr__


class Kind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class RemoteEntry:
    """One file or folder as the provider lists it.

    `rev` changes whenever the content (or, for some services, metadata) does;
    the engine compares it with the rev it stored at the last sync. `id` is a
    handle that survives renames (inode, item id, node handle) where the
    service has one: it lets the engine see a remote move as a move.
    """

    path: str
    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    rev: str = ""
    hash: str | None = None
    id: str | None = None
    # The service's own byte form of the last name where it differs from the NFC `path` (a name
    # written by a Mac in NFD): a new copy on the other side keeps it.
    spelling: str | None = None

    def __init__(self, path: str, kind: Kind, size: int = 0, mtime_ns: int = 0, rev: str = "",
                 hash: str | None = None, id: str | None = None, spelling: str | None = None) -> None:
        # the slots' own setters (bound below): 40% cheaper than object.__setattr__ by name, and an
        # entry is made for every listed or staged file
        _entry_path(self, path)
        _entry_kind(self, kind)
        _entry_size(self, size)
        _entry_mtime_ns(self, mtime_ns)
        _entry_rev(self, rev)
        _entry_hash(self, hash)
        _entry_id(self, id)
        _entry_spelling(self, spelling)

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}(path={self.path!r}, kind={self.kind!r}, size={self.size!r}, "
                f"mtime_ns={self.mtime_ns!r}, rev={self.rev!r}, hash={self.hash!r}, id={self.id!r}, "
                f"spelling={self.spelling!r})")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.path, self.kind, self.size, self.mtime_ns, self.rev, self.hash, self.id, self.spelling) == (
            other.path, other.kind, other.size, other.mtime_ns, other.rev, other.hash, other.id, other.spelling)

    def __hash__(self) -> int:
        return hash((self.path, self.kind, self.size, self.mtime_ns, self.rev, self.hash, self.id, self.spelling))


(_entry_path, _entry_kind, _entry_size, _entry_mtime_ns, _entry_rev, _entry_hash, _entry_id,
 _entry_spelling) = (vars(RemoteEntry)[name].__set__ for name in (
    "path", "kind", "size", "mtime_ns", "rev", "hash", "id", "spelling"))


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class Deleted:
    """A change-feed record: this path is gone."""

    path: str

    def __init__(self, path: str) -> None:
        _set(self, "path", path)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.path,) == (other.path,)

    def __hash__(self) -> int:
        return hash((self.path,))


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class ChangeBatch:
    """What `changes(cursor)` returns. `reset` means: the cursor was too old,
    treat `changes` as a full listing."""

    changes: list[RemoteEntry | Deleted]
    cursor: str
    reset: bool = False

    def __init__(self, changes: list[RemoteEntry | Deleted], cursor: str, reset: bool = False) -> None:
        _set(self, "changes", changes)
        _set(self, "cursor", cursor)
        _set(self, "reset", reset)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(changes={self.changes!r}, cursor={self.cursor!r}, reset={self.reset!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.changes, self.cursor, self.reset) == (other.changes, other.cursor, other.reset)

    def __hash__(self) -> int:
        return hash((self.changes, self.cursor, self.reset))


@dataclass(frozen=True, slots=True, init=False, repr=False, eq=False)
class Quota:
    """Bytes used and the total (None: no limit, or the service does not say)."""

    used: int
    total: int | None

    def __init__(self, used: int, total: int | None) -> None:
        _set(self, "used", used)
        _set(self, "total", total)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(used={self.used!r}, total={self.total!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.used, self.total) == (other.used, other.total)

    def __hash__(self) -> int:
        return hash((self.used, self.total))


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Capabilities:
    """What a provider can do; per-provider quirks are data here.
    (__init__, __repr__, __eq__ and __hash__ are the generated ones, written out over the fields below.)"""

    # The content hash RemoteEntry.hash carries: a kind of syncagent.hashing ("sha256", "sha1", "md5",
    # "quickxor", "mega", "metadisk"...), computable locally; None: no content hash at all.
    hash_kind: str | None = None
    # (a file without a hash, e.g. one another client uploaded where the hash is our own attribute,
    # is compared by delta signature or by download: engine/identity.py)
    delta: bool = False                   # signature() and patch() work
    delta_hash: Literal["blake2", "md4"] = "blake2"   # strong sum; "md4" is the librsync 0.9.7 format
    server_move: bool = True
    server_copy: bool = False
    change_feed: bool = False
    set_mtime: bool = False               # mtime can be set after upload
    ids: bool = False                     # RemoteEntry.id survives renames
    case_insensitive: bool = False
    forbidden_chars: str = ""
    max_name_length: int = 255
    max_path_length: int | None = None
    mtime_precision_ns: int = 1
    expensive_bytes: bool = True          # bytes cross a network: deltas pay off
    links: bool = False                   # link(path) gives a share URL
    transfers: int = 4                    # parallel transfers that pay off
    mtime_revs: bool = False              # rev is derived from mtime (racy within a clock tick)
    # list() yields paths in ascending code-point order of their NFC form (see Provider.list); without
    # it the engine sorts the listing itself before merging it with the local scan and the base.
    sorted_listing: bool = False
    quota: bool = False
    # A batch may be staged on another thread while the batch before it is flushed, committed and
    # recorded (its flush, commit_staged and batch_committed run meanwhile on the engine's thread).
    stage_ahead: bool = False

    def __init__(self, hash_kind: str | None = None, delta: bool = False,
                 delta_hash: Literal["blake2", "md4"] = "blake2", server_move: bool = True, server_copy: bool = False,
                 change_feed: bool = False,
                 set_mtime: bool = False, ids: bool = False, case_insensitive: bool = False, forbidden_chars: str = "",
                 max_name_length: int = 255, max_path_length: int | None = None, mtime_precision_ns: int = 1,
                 expensive_bytes: bool = True, links: bool = False, transfers: int = 4, mtime_revs: bool = False,
                 sorted_listing: bool = False, quota: bool = False, stage_ahead: bool = False) -> None:
        _set(self, "hash_kind", hash_kind)
        _set(self, "delta", delta)
        _set(self, "delta_hash", delta_hash)
        _set(self, "server_move", server_move)
        _set(self, "server_copy", server_copy)
        _set(self, "change_feed", change_feed)
        _set(self, "set_mtime", set_mtime)
        _set(self, "ids", ids)
        _set(self, "case_insensitive", case_insensitive)
        _set(self, "forbidden_chars", forbidden_chars)
        _set(self, "max_name_length", max_name_length)
        _set(self, "max_path_length", max_path_length)
        _set(self, "mtime_precision_ns", mtime_precision_ns)
        _set(self, "expensive_bytes", expensive_bytes)
        _set(self, "links", links)
        _set(self, "transfers", transfers)
        _set(self, "mtime_revs", mtime_revs)
        _set(self, "sorted_listing", sorted_listing)
        _set(self, "quota", quota)
        _set(self, "stage_ahead", stage_ahead)

    __repr__ = fields_repr
    __eq__ = fields_eq

    def __hash__(self) -> int:
        return hash(field_values(self))


class _AnyRev:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _AnyRev()
"""`expect=ANY`: overwrite whatever is there. `expect=None`: the path must not
exist. `expect="<rev>"`: the path must still have that rev (else Conflict)."""

Expect = str | None | _AnyRev


class LocalSource:
    """An upload's bytes as a file on this machine (Provider.stage_copies): the
    target `path`; the file's absolute `source` path, to be opened without
    following a final link; what the scan saw of it (`size`, `mtime_ns`,
    `ino`), which the copy must find before and after it reads (else
    Conflict); the mtime the target gets is `mtime_ns`; `expect` as for write."""

    __slots__ = ("expect", "ino", "mtime_ns", "path", "size", "source")

    def __init__(self, path: str, source: str, size: int, mtime_ns: int, ino: int, expect: Expect) -> None:
        self.path, self.source, self.size, self.mtime_ns, self.ino, self.expect = (
            path, source, size, mtime_ns, ino, expect)

    def __repr__(self) -> str:
        return f"LocalSource({self.path!r}, {self.source!r}, {self.size}, {self.mtime_ns}, {self.ino})"


class ProviderState(abc.ABC):
    """A per-pair key/value store in the state database that a provider owns
    (node trees, id maps, delta links, manifests, upload sessions).

    `put` is buffered and committed in the same transaction as the engine's
    next base batch (so the provider's view never runs ahead of the base), or
    by `commit()` for work outside a sync run (the remote commands).
    Values are text (JSON is the usual choice); keys are free-form, and
    `items(prefix)` reads them back in key order.
    """

    @abc.abstractmethod
    def get(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def put(self, key: str, value: str | None) -> None:
        """Set (None: delete) `key`; visible to `get` at once, durable at the next commit."""

    @abc.abstractmethod
    def items(self, prefix: str = "") -> Iterator[tuple[str, str]]: ...

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the buffered puts durable now."""


class MemoryState(ProviderState):
    """Provider state kept in memory: the default before `attach`, and for
    one-off commands that have no state database."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def items(self, prefix: str = "") -> Iterator[tuple[str, str]]:
        for key in sorted(self.data):
            if key.startswith(prefix):
                yield key, self.data[key]

    def commit(self) -> None:
        """Nothing to make durable."""


@dataclass(init=False, repr=False, eq=False)
class PairContext:
    """What the engine gives a provider once, for the life of a pair.

    `tag`: this pair's mark in temp names, so leftovers of a killed run can be
    told from another machine's live uploads. `state`: the provider's own store.
    """

    tag: str = ""
    state: ProviderState = field(default_factory=MemoryState)

    def __init__(self, tag: str = "", state: ProviderState | None = None) -> None:
        self.tag = tag
        self.state = MemoryState() if state is None else state

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(tag={self.tag!r}, state={self.state!r})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.tag, self.state) == (other.tag, other.state)

    __hash__ = None  # type: ignore[assignment]   # mutable, as the generated class is


class StagedWrite(abc.ABC):
    """A write whose bytes are stored but not yet visible under their name.

    Lets the executor make a whole batch durable with one flush before any
    file appears, instead of one fsync per file.
    """

    entry: RemoteEntry
    visible = False     # True: the bytes are already under their name; abort() cannot take them back

    @abc.abstractmethod
    def commit(self) -> RemoteEntry:
        """Make the file visible under its name (Conflict if `expect` fails)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Throw the staged bytes away."""


class CopyBatch:
    """Provider.stage_copies in three steps, so that a staging thread does only
    the copying while the engine's thread does the Python around it: made by
    prepare_copies on the engine's thread, `run()` on any thread, `results()`
    back on the engine's thread once run() has said the provider took them.
    This one calls stage_copies in run()."""

    def __init__(self, stage_copies: Callable[[Sequence[LocalSource]], Sequence[StagedWrite | Exception] | None],
                 sources: Sequence[LocalSource]) -> None:
        self.stage_copies, self.sources = stage_copies, sources
        self._results: Sequence[StagedWrite | Exception] | None = None

    def run(self) -> bool:
        """Copy. False: the provider does not take them (they go per file)."""
        self._results = self.stage_copies(self.sources)
        return self._results is not None

    def close(self) -> None:
        """Let go of what a batch that will not run holds."""

    def results(self) -> Sequence[StagedWrite | Exception]:
        """One per source, in order, as stage_copies gives them (after run())."""
        return self._results if self._results is not None else [
            errors.PermanentError("not staged", path=s.path) for s in self.sources]


class DoneWrite(StagedWrite):
    """A write that was complete (and visible) as soon as it was made."""

    visible = True

    def __init__(self, entry: RemoteEntry) -> None:
        self.entry = entry

    def commit(self) -> RemoteEntry:
        return self.entry

    def abort(self) -> None:
        """Nothing to undo: the service already holds the file."""


def commit_one(write: StagedWrite) -> RemoteEntry | Exception:
    """`write.commit()`, its error as the result (Provider.commit_staged)."""
    from syncagent.errors import ProviderError

    try:
        return write.commit()
    except (ProviderError, OSError) as exc:
        return exc


def walk_breadth_first(start: str, children: Callable[[str], Iterable[RemoteEntry]]) -> Iterator[RemoteEntry]:
    """Every entry below folder `start`, breadth first over `children(folder)`
    (for services that list one folder per request, page by page): memory
    holds one page and the queue of folders. A subfolder removed while the
    walk goes is simply gone; `start` itself missing raises NotFound."""
    from collections import deque

    from syncagent.errors import NotFound

    folders = deque([start])
    while folders:
        folder = folders.popleft()
        try:
            for entry in children(folder):
                yield entry
                if entry.kind is Kind.DIR:
                    folders.append(entry.path)
        except NotFound:
            if folder == start:
                raise


class Provider(abc.ABC):
    """A storage service rooted at one folder."""

    name: str = "provider"
    capabilities: Capabilities = Capabilities()
    _pair: PairContext | None = None

    @property
    def pair(self) -> PairContext:
        """The pair this provider serves (an in-memory one until `attach`)."""
        if self._pair is None:
            self._pair = PairContext()
        return self._pair

    def attach(self, pair: PairContext) -> None:
        """Called once by the engine before the first run of a pair (and again
        if the provider is reopened): the pair's temp tag and provider state."""
        self._pair = pair

    def batch_committed(self) -> None:
        """Hook: the engine has just committed a batch of base rows (and this
        provider's buffered state with them)."""

    # ---- listing ---------------------------------------------------------
    @abc.abstractmethod
    def list(self, path: str = "") -> Iterator[RemoteEntry]:
        """Every entry below `path` (recursive, not including `path`).

        Order: where `capabilities.sorted_listing` is declared, entries come
        in ascending code-point order of their NFC path, the order `sorted()`
        gives the path strings (and SQLite the base rows): "a", "a-b", "a/x",
        "a0" (not depth-first: "-" sorts before "/"). The engine then merges
        the listing with the local scan and the base as it streams, holding
        neither tree. Without it the order is free and the engine sorts."""

    def merge_listing(self) -> Iterator[RemoteEntry]:
        """The whole listing as the engine's streaming merge reads it. The
        default is list(); a provider whose entries the native merge can read
        without a Python object each (the folder provider) yields those
        records instead, and the merge makes entries only for what it keeps."""
        return self.list()

    @abc.abstractmethod
    def stat(self, path: str) -> RemoteEntry:
        """The entry at `path`; NotFound if there is none."""

    def name_problem(self, path: str) -> str | None:
        """Why this service cannot hold `path` (a new local name about to be
        uploaded), or None. The default checks the declared capabilities;
        a service with reserved names or trailing-dot rules overrides it."""
        caps = self.capabilities
        name = path.rsplit("/", 1)[-1]
        if caps.forbidden_chars and any(c in caps.forbidden_chars for c in name):
            return f"{self.name} cannot hold a name with any of {caps.forbidden_chars!r}"
        if len(name.encode("utf-8", "surrogateescape")) > caps.max_name_length:
            return f"the name is too long for {self.name}"
        if caps.max_path_length and len(path) > caps.max_path_length:
            return f"the path is too long for {self.name}"
        return None

    def skipped(self) -> dict[str, str]:
        """Names the last `list()` left out, with why (a name this side cannot
        hold, two items listed under one name, a link...). The engine keeps
        them out of the plan on both sides: a skipped name is never a deletion."""
        return {}

    def unfit_names(self) -> dict[str, str]:
        """The part of `skipped()` that are names this side cannot hold or
        lists twice (rather than, say, links it does not follow): they are
        reported by name and the run exits 1. By default, all of them."""
        return self.skipped()

    def cleanup_temps(self) -> int:
        """Remove leftovers of this pair's killed runs (temp names carrying
        `pair.tag`), and anyone's older than a day; returns how many went.
        Called with the pair lock held, after a full listing."""
        return 0

    def root_exists(self) -> bool:
        """Whether the provider's root folder exists (a missing root must not
        look like an emptied one)."""
        return True

    def ensure_root(self) -> None:
        """Create the root folder (first sync only)."""

    def changes(self, cursor: str | None) -> ChangeBatch:
        """What changed since `cursor` (None: start a feed, listing everything)."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no change feed")

    # ---- content ---------------------------------------------------------
    @abc.abstractmethod
    def read(self, path: str) -> IO[bytes]:
        """A binary stream of the file's content (use as a context manager)."""

    @abc.abstractmethod
    def write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        """Store `size` bytes from `stream` at `path` atomically (a reader never
        sees half a file); parents must exist. See `ANY` for `expect`."""

    def stage_write(self, path: str, stream: IO[bytes], size: int, mtime_ns: int, *,
                    expect: Expect = ANY) -> StagedWrite:
        """Two-phase `write`: providers with cheap atomic renames override it."""
        return DoneWrite(self.write(path, stream, size, mtime_ns, expect=expect))

    def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception] | None:
        """Optional: stage writes whose bytes are files on this machine, for a
        service that can copy them itself faster than it takes them as a stream
        (a folder on this machine: the kernel copies, on a few threads). One
        result per source, in order: its staged write, or that file's error
        (Conflict: the file is not the one the scan saw, or changed while it
        was copied). None (the default): not offered, the engine sends the bytes."""
        return None

    def prepare_copies(self, sources: Sequence[LocalSource]) -> CopyBatch:
        """stage_copies in three steps (CopyBatch), for a staging thread that
        should only copy. This one runs stage_copies in CopyBatch.run(); a
        provider whose copying can run without the GIL splits it."""
        return CopyBatch(self.stage_copies, sources)

    def flush(self) -> None:
        """Make every staged write durable (before their commits)."""

    def commit_staged(self, writes: Sequence[StagedWrite]) -> Sequence[RemoteEntry | Exception]:
        """Make a batch of this provider's staged writes visible (after
        flush). One result per write, in order: its entry, or that file's
        error (Conflict: its `expect` failed). The default commits them one
        by one; a provider that can rename a batch at once overrides it."""
        return [commit_one(w) for w in writes]

    def content_hash(self, path: str) -> str | None:
        """The content hash (`capabilities.hash_kind`) when it is cheap to get
        without a download; None otherwise."""
        return None

    @abc.abstractmethod
    def mkdir(self, path: str) -> RemoteEntry:
        """Create a folder (parents too); succeeds if it already is a folder."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> RemoteEntry:
        """Rename or move; AlreadyExists if `dst` exists."""

    def copy(self, src: str, dst: str) -> RemoteEntry:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} cannot copy on the server")

    @abc.abstractmethod
    def delete(self, path: str, *, recursive: bool = False) -> None:
        """Remove a file, or a folder (non-empty only with recursive)."""

    def delete_many(self, paths: Sequence[tuple[str, bool]]) -> dict[str, Exception]:
        """Delete several `(path, recursive)` at once; returns the failures by
        path (a path already gone is not a failure). Services with a batch
        call (one task for many paths) override it; the engine always calls
        this for its remote deletes."""
        from syncagent.errors import NotFound, ProviderError

        failed: dict[str, Exception] = {}
        for path, recursive in paths:
            try:
                self.delete(path, recursive=recursive)
            except NotFound:
                pass
            except ProviderError as exc:
                failed[path] = exc
        return failed

    def set_mtime(self, path: str, mtime_ns: int) -> RemoteEntry:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} cannot set modification times")

    # ---- delta capability --------------------------------------------------
    def signature(self, path: str, out: IO[bytes]) -> None:
        """Write a librsync signature of the remote file to `out`."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no delta transfers")

    def patch(self, path: str, delta: IO[bytes], size: int, mtime_ns: int, *,
              expect: Expect = ANY) -> RemoteEntry:
        """Apply a librsync delta to the remote file, atomically replacing it;
        `size` is the size of the result."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no delta transfers")

    def delta(self, path: str, signature: IO[bytes], out: IO[bytes]) -> None:
        """Write the delta from a local basis (given by its signature) to the
        remote file: the download side of the delta capability."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no delta transfers")

    # ---- extras for the command line --------------------------------------
    def quota(self) -> Quota:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} does not report a quota")

    def link(self, path: str) -> str:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no share links")

    def info(self, path: str) -> dict[str, Any]:
        entry = self.stat(path)
        return {"path": entry.path, "kind": str(entry.kind), "size": entry.size,
                "mtime_ns": entry.mtime_ns, "rev": entry.rev, "hash": entry.hash, "id": entry.id}

    def share_link(self, path: str, kind: str = "view") -> str:
        """A share link of a kind ("view", "edit", "embed": HTML to embed)."""
        from syncagent.errors import Unsupported

        if kind == "view":
            return self.link(path)
        raise Unsupported(f"{self.name} has no {kind} links")

    def set_info(self, path: str, *, name: str | None = None, description: str | None = None) -> RemoteEntry:
        """Rename in place and/or set a description (the SkyDrive seed's `info_set`)."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} cannot set descriptions")

    def recent(self) -> Sequence[RemoteEntry]:
        """Recently used files, newest first, where the service keeps such a list."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} keeps no list of recent files")

    def comments(self, path: str) -> Sequence[dict[str, Any]]:
        """Comments on an item, where the service has them."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no comments on items")

    # ---- account extras (the Metadisk seed's keys and buckets) ---------------
    def account_keys(self) -> Sequence[str]:
        """The public keys registered to the account (signed-request services)."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no account keys")

    def add_account_key(self, public_key: str) -> None:
        """Register a public key (made elsewhere) with the account."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no account keys")

    def remove_account_key(self, public_key: str) -> None:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no account keys")

    def containers(self) -> Sequence[dict[str, Any]]:
        """The account's buckets (id, name, and what the service tells of them)."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no buckets")

    def create_container(self, name: str) -> dict[str, Any]:
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no buckets")

    def remove_container(self, name: str) -> None:
        """Remove a bucket by name or id (and what it holds, as the service does)."""
        from syncagent.errors import Unsupported

        raise Unsupported(f"{self.name} has no buckets")

    def local_folder(self) -> str | None:
        """The folder on this machine this provider stores into, if it is one
        (a local folder remote): the command refuses roots that overlap."""
        return None

    def describe(self) -> str:
        """A human name for logs (never with a secret)."""
        return self.name

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
