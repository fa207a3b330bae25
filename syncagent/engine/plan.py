"""The decision table: (local, base, remote) -> actions. Pure: no I/O.

The planner sees three maps keyed by NFC relative path: the local scan, the
remote listing and the base (last synced state), plus `same`: for paths
whose two sides might hold equal content, whether they do (the engine
computes that beforehand, hashing only what `hash_needs` names).

Order of work: moves are found first (by inode locally, by id remotely) and
folded into the views; then files are decided; then folders, bottom-up,
knowing which files survive; deletes of whole folders fold into one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping

from syncagent.engine.records import DIR, FILE, Base, Entry
from syncagent.paths import is_under, parent
from syncagent.providers.base import RemoteEntry


class Mode(enum.StrEnum):
    TWO_WAY = "two-way"
    UPLOAD = "upload"
    DOWNLOAD = "download"


class State(enum.Enum):
    ABSENT = "absent"      # not there, and not in the base
    SAME = "same"          # unchanged since the base
    NEW = "new"            # there, not in the base
    CHANGED = "changed"    # content (or kind) changed since the base
    DELETED = "deleted"    # in the base, gone now


class Op(enum.StrEnum):
    UPLOAD = "upload"
    DOWNLOAD = "download"
    MKDIR_LOCAL = "mkdir-local"
    MKDIR_REMOTE = "mkdir-remote"
    DELETE_LOCAL = "delete-local"
    DELETE_REMOTE = "delete-remote"
    MOVE_LOCAL = "move-local"
    MOVE_REMOTE = "move-remote"
    CONFLICT = "conflict"          # rename the local version aside, then plan again
    RECORD = "record"              # both sides agree: write the base only
    MTIME_LOCAL = "mtime-local"    # same content, newer mtime on the remote
    MTIME_REMOTE = "mtime-remote"
    FORGET = "forget"              # gone on both sides: drop the base


# The classes here are plain classes, not dataclasses: dataclass() compiles its generated methods
# when the module is imported, and every sync imports this one.

class Action:
    """One step of a plan: `op` on `path` (to `dst` for a move)."""

    __slots__ = ("dst", "kind", "op", "path", "reason", "recursive")

    def __init__(self, op: Op, path: str, kind: str = FILE, dst: str = "", recursive: bool = False,
                 reason: str = "") -> None:
        self.op = op
        self.path = path
        self.kind = kind
        self.dst = dst
        self.recursive = recursive
        self.reason = reason

    def __repr__(self) -> str:
        return (f"Action(op={self.op!r}, path={self.path!r}, kind={self.kind!r}, dst={self.dst!r}, "
                f"recursive={self.recursive!r}, reason={self.reason!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Action):
            return NotImplemented
        return (self.op, self.path, self.kind, self.dst, self.recursive, self.reason) == (
            other.op, other.path, other.kind, other.dst, other.recursive, other.reason)

    __hash__ = None  # type: ignore[assignment]   # mutable (a delete folds into a recursive one)


class Plan:
    """The actions of a run, with the views they were planned from."""

    def __init__(self) -> None:
        self.actions: list[Action] = []
        # Moves found first; the views below are already rekeyed by them.
        self.moves: list[Action] = []
        self.local: dict[str, Entry] = {}
        self.remote: dict[str, RemoteEntry] = {}
        self.base: dict[str, Base] = {}
        self._folded: dict[Op, dict[str, int]] = {}   # files under each folded delete, per side

    def of(self, *ops: Op) -> list[Action]:
        return [a for a in self.actions if a.op in ops]

    @property
    def conflicts(self) -> list[Action]:
        return self.of(Op.CONFLICT)

    def deleted_files(self, op: Op) -> int:
        """How many files the deletes of `op` remove (a folded folder counts its files)."""
        return sum(self.files_taken(a) for a in self.of(op))

    def files_taken(self, delete: Action) -> int:
        """The files one delete removes: a file itself, a folded folder's files
        (its children are FORGETs, so they would count for nothing)."""
        if delete.kind == FILE:
            return 1
        if not delete.recursive:
            return 0
        counts = self._folded.get(delete.op)
        if counts is None:
            tops = {a.path for a in self.of(delete.op) if a.recursive}
            view: Mapping[str, Entry | RemoteEntry] = self.local if delete.op is Op.DELETE_LOCAL else self.remote
            counts = self._folded[delete.op] = {}
            for p, e in view.items():
                if str(e.kind) != FILE:
                    continue
                q = parent(p)
                while q and q not in tops:
                    q = parent(q)
                if q:
                    counts[q] = counts.get(q, 0) + 1
        return counts.get(delete.path, 0)

    def transfers(self) -> int:
        return len(self.of(Op.UPLOAD, Op.DOWNLOAD))


# ---- states -----------------------------------------------------------------

def local_state(l: Entry | None, b: Base | None) -> State:
    if b is None:
        return State.ABSENT if l is None else State.NEW
    if l is None:
        return State.DELETED
    if l.kind != b.kind:
        return State.CHANGED
    if l.kind == DIR or (l.size == b.size and l.mtime_ns == b.mtime_ns and l.ino == b.ino):
        return State.SAME
    return State.CHANGED


def remote_state(r: RemoteEntry | None, b: Base | None) -> State:
    if b is None:
        return State.ABSENT if r is None else State.NEW
    if r is None:
        return State.DELETED
    if r.kind != b.kind:
        return State.CHANGED
    if r.kind == DIR or r.rev == b.rrev:
        return State.SAME
    return State.CHANGED


def busy_paths(local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base]) -> list[str]:
    """The sorted paths where something may have to be done: everything but
    the paths unchanged on both sides since the base (most of a big tree on
    a quiet day, so this loop is kept tight)."""
    busy: list[str] = []
    lget, rget = local.get, remote.get
    for p, b in base.items():
        l, r = lget(p), rget(p)
        if l is None or r is None or l.kind != b.kind or r.kind != b.kind:
            busy.append(p)
            continue
        if b.kind == DIR:
            continue
        if l.mtime_ns != b.mtime_ns or l.size != b.size or l.ino != b.ino or r.rev != b.rrev:
            busy.append(p)
    busy.extend(p for p in local if p not in base)
    busy.extend(p for p in remote if p not in base and p not in local)
    busy.sort()
    return busy


def hash_needs(local: dict[str, Entry], remote: dict[str, RemoteEntry],
               base: dict[str, Base], busy: Iterable[str] | None = None) -> list[str]:
    """Paths where both sides hold a file of equal size and at least one side
    changed: the only places where content equality changes the decision."""
    out = []
    for p in busy if busy is not None else busy_paths(local, remote, base):
        l, r = local.get(p), remote.get(p)
        if l is None or r is None or l.kind != FILE or r.kind != FILE or l.size != r.size:
            continue
        b = base.get(p)
        if local_state(l, b) is State.SAME and remote_state(r, b) is State.SAME:
            continue
        out.append(p)
    return out


# ---- moves ------------------------------------------------------------------

def find_moves(local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
               mode: Mode, remote_ids: bool, busy: list[str], remote_moves: bool = True) -> list[Action]:
    """Renames on one side, to be replayed as renames on the other.

    Locally a move keeps its inode; remotely its id. Only an unchanged source
    on the other side is moved, and only onto a free name; anything else is
    left to the table (upload + delete), which is never wrong, only slower.
    """
    moves: list[Action] = []
    olds = [p for p in busy if p in base]
    news = [p for p in busy if p not in base]
    if not olds or not news:
        return moves
    if mode is not Mode.DOWNLOAD and remote_moves:
        gone = {base[p].ino: p for p in olds
                if p not in local and base[p].ino and p in remote and remote_state(remote[p], base[p]) is State.SAME}
        for p in news:
            l = local.get(p)
            src = gone.get(l.ino) if l is not None else None
            if l is not None and src is not None and p not in remote and _same_local(l, base[src]) \
                    and _room_for(p, remote):
                moves.append(Action(Op.MOVE_REMOTE, src, l.kind, dst=p, reason="moved locally"))
    if mode is not Mode.UPLOAD:
        # A remote rename keeps the item's id; where the service has no ids,
        # a file with the same content hash and size stands in for one.
        def remote_key(kind: str, rid: str | None, rhash: str | None, size: int) -> str | None:
            if remote_ids:
                return rid
            return f"{rhash}:{size}" if kind == FILE and rhash else None

        gone_r: dict[str, str] = {}
        for p in olds:
            b = base[p]
            key = remote_key(b.kind, b.rid, b.rhash, b.rsize)
            if key and p not in remote and p in local and local_state(local[p], b) is State.SAME:
                gone_r.setdefault(key, p)
        for p in news:
            r = remote.get(p)
            key = remote_key(str(r.kind), r.id, r.hash, r.size) if r is not None else None
            src = gone_r.pop(key, None) if key else None
            if r is not None and src is not None and p not in local and _same_remote(r, base[src]) \
                    and _room_for(p, local):
                moves.append(Action(Op.MOVE_LOCAL, src, str(r.kind), dst=p, reason="moved remotely"))
    return _compose(_outermost(moves), local, remote)


def _room_for(dst: str, view: Mapping[str, Entry | RemoteEntry]) -> bool:
    """A move can land at `dst` only if no file sits where one of its folders
    must be (that file may go later in the plan, but moves run first)."""
    q = parent(dst)
    while q:
        e = view.get(q)
        if e is not None and str(e.kind) != DIR:
            return False
        q = parent(q)
    return True


def _adopt_remote_revs(base: dict[str, Base], remote: dict[str, RemoteEntry], folder: str) -> None:
    """A service may give a renamed item a new rev; the content did not
    change (same size and mtime), so the moved base rows take the new revs
    instead of reading as remote edits."""
    for q in [q for q in base if q == folder or is_under(q, folder)]:
        r, b = remote.get(q), base[q]
        if r is not None and _same_remote(r, b) and (b.kind == DIR or r.hash is None or r.hash == b.rhash):
            base[q] = b._replace(rrev=r.rev, rid=r.id)


def _same_local(l: Entry, b: Base) -> bool:
    """A rename keeps the inode, size and mtime; a reused inode does not."""
    # (a negative base size marks a racy row: its mtime and inode still identify the file)
    return l.kind == b.kind and (l.kind == DIR or ((l.size == b.size or b.size < 0) and l.mtime_ns == b.mtime_ns))


def _same_remote(r: RemoteEntry, b: Base) -> bool:
    return r.kind == b.kind and (r.kind == DIR or (r.size == b.rsize and r.mtime_ns == b.rmtime_ns))


def _outermost(moves: list[Action]) -> list[Action]:
    """Keep a folder's move, drop the moves of its children that it implies."""
    moves.sort(key=lambda a: a.path.count("/"))
    kept: list[Action] = []
    kept_folders: dict[str, Action] = {}
    taken_paths: set[str] = set()
    taken_dsts: set[str] = set()
    for m in moves:
        implied = any(m.dst == k.dst + m.path[len(k.path):]
                      for k in (kept_folders.get(q) for q in _above(m.path)) if k is not None)
        if not implied and m.path not in taken_paths and m.dst not in taken_dsts:
            kept.append(m)
            taken_paths.add(m.path)
            taken_dsts.add(m.dst)
            if m.kind == DIR:
                kept_folders[m.path] = m
    return kept


def _above(path: str) -> Iterator[str]:
    """The folders above `path`, nearest first."""
    q = parent(path)
    while q:
        yield q
        q = parent(q)


def _compose(moves: list[Action], local: Mapping[str, Entry], remote: Mapping[str, RemoteEntry]) -> list[Action]:
    """Order the moves and give each the paths it has when its turn comes.

    Moves are found in the trees as they were, but a folder's move shifts the
    paths of what it holds. On the same side, a move out of a folder that
    moves runs after it, from where the folder's move put it, and a move into
    a folder that a move brings runs after that move. A move into a folder
    that the other side renamed lands where the rename took that folder (the
    rename carries the folder's contents, whatever joined it on the other
    side). A move that cannot be ordered or whose new destination is taken is
    dropped: the table then uploads and deletes, which is never wrong, only
    slower. Each move looks only at the folders above its own paths, so a
    run of many folder renames costs no more than their number.
    """
    by_src: dict[tuple[Op, str], Action] = {(k.op, k.path): k for k in moves if k.kind == DIR}
    if not by_src:
        return moves
    by_dst: dict[tuple[Op, str], Action] = {(k.op, k.dst): k for k in moves if k.kind == DIR}

    def other(op: Op) -> Op:
        return Op.MOVE_LOCAL if op is Op.MOVE_REMOTE else Op.MOVE_REMOTE

    def first(m: Action) -> list[Action]:
        """The folder moves `m` must run after."""
        found = [by_src.get((m.op, q)) for q in _above(m.path)]
        found += [by_dst.get((m.op, q)) for q in _above(m.dst)]
        found += [by_src.get((other(m.op), q)) for q in _above(m.dst)]
        return [k for k in found if k is not None and k is not m]

    waits = {id(m): first(m) for m in moves}
    todo, ordered, placed = list(moves), [], set[int]()
    while todo:
        ready = [m for m in todo if all(id(k) in placed for k in waits[id(m)])]
        if not ready:  # a cycle: those left are left to the table
            break
        ordered.extend(ready)
        placed.update(id(m) for m in ready)
        todo = [m for m in todo if id(m) not in placed]
    kept: list[Action] = []
    # the folder moves kept so far, by side and by the path they moved from (as rewritten), with their turn
    moved_from: dict[tuple[Op, str], tuple[int, Action]] = {}
    taken_dsts: set[str] = set()

    def follow(op: Op, path: str) -> str:
        """Where `path` is once the kept folder moves of side `op` ran, in their order."""
        turn = -1
        while True:
            later = [(t, k) for t, k in (moved_from.get((op, q), (-1, None)) for q in _above(path))
                     if k is not None and t > turn]
            if not later:
                return path
            turn, k = min(later, key=lambda tk: tk[0])
            path = k.dst + path[len(k.path):]

    for m in ordered:
        src, dst = follow(m.op, m.path), follow(other(m.op), m.dst)
        if dst != m.dst:
            target: Mapping[str, Entry | RemoteEntry] = local if m.op is Op.MOVE_LOCAL else remote
            if dst in target or not _room_for(dst, target) or dst in taken_dsts:
                continue
        m = m if (src, dst) == (m.path, m.dst) else Action(m.op, src, m.kind, dst=dst, reason=m.reason)
        if m.kind == DIR:
            moved_from[(m.op, m.path)] = (len(kept), m)
        kept.append(m)
        taken_dsts.add(m.dst)
    return kept


def rekey(mapping: dict[str, object], src: str, dst: str) -> None:
    """Move `src` and everything under it to `dst` in a view (in place)."""
    prefix = src + "/"
    for p in [p for p in mapping if p == src or p.startswith(prefix)]:
        mapping[dst + p[len(src):]] = mapping.pop(p)


# ---- the table ---------------------------------------------------------------

class _Ctx:
    """What the table's functions share while one plan is made."""

    def __init__(self, local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
                 same: dict[str, bool], mode: Mode, hidden: set[str], mtime_precision_ns: int = 1) -> None:
        self.local, self.remote, self.base, self.same = local, remote, base, same
        self.mode, self.hidden, self.mtime_precision_ns = mode, hidden, mtime_precision_ns
        self.actions: list[Action] = []
        # paths that exist at the end of the plan (on both sides)
        self.survivors: set[str] = set()
        self._changed_local: set[str] | None = None
        self._changed_remote: set[str] | None = None

    def add(self, op: Op, path: str, kind: str, reason: str = "") -> None:
        self.actions.append(Action(op, path, kind, reason=reason))

    def changed_below(self, folder: str, *, local: bool) -> bool:
        """Whether a path under `folder` is new or changed on that side (an
        unsynced version a replacement of the folder would delete). The
        folders above such paths are gathered once, on the first question."""
        found = self._changed_local if local else self._changed_remote
        if found is None:
            base = self.base
            if local:
                paths = [q for q, e in self.local.items() if local_state(e, base.get(q)) is not State.SAME]
            else:
                paths = [q for q, r in self.remote.items() if remote_state(r, base.get(q)) is not State.SAME]
            found = _ancestors(paths)
            if local:
                self._changed_local = found
            else:
                self._changed_remote = found
        return folder in found


def plan(local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
         same: dict[str, bool], mode: Mode = Mode.TWO_WAY, *, remote_ids: bool = False,
         hidden: Iterable[str] = (), busy: list[str] | None = None, remote_moves: bool = True,
         mtime_precision_ns: int = 1) -> Plan:
    """The whole plan for one pair. The inputs are not modified.

    `hidden`: paths present on a side but left out of the views (ignored,
    skipped); the folders above them are never deleted recursively.
    `remote_moves`: the remote can rename on the server (else a local
    rename is an upload and a delete). `mtime_precision_ns`: modification
    times closer than this are equal (the coarser side rounds).
    """
    result = Plan()
    if busy is None:
        busy = busy_paths(local, remote, base)
    moves = find_moves(local, remote, base, mode, remote_ids, busy, remote_moves)
    if moves:
        base, local, remote = dict(base), dict(local), dict(remote)
        for m in moves:
            rekey(base, m.path, m.dst)  # type: ignore[arg-type]
            rekey(remote if m.op is Op.MOVE_REMOTE else local, m.path, m.dst)  # type: ignore[arg-type]
            if m.op is Op.MOVE_LOCAL:
                _adopt_remote_revs(base, remote, m.dst)
        result.moves = moves
        busy = busy_paths(local, remote, base)
    result.local, result.remote, result.base = local, remote, dict(base) if not moves else base
    ctx = _Ctx(local, remote, base, same, mode, _ancestors(hidden), max(1, mtime_precision_ns))
    # A move's destination is on both sides once the moves ran, though the rekeyed
    # views no longer list it as busy: the folders above it must not be deleted by
    # the other side's deletion of that folder (it would take the moved file along).
    ctx.survivors.update(m.dst for m in moves)
    dirs: list[str] = []
    actions, survivors = ctx.actions, ctx.survivors
    new_here_goes_up = mode is not Mode.DOWNLOAD   # (a download mirror deletes what only this side has)
    lget, rget, bget = local.get, remote.get, base.get
    for p in busy:
        l, r, b = lget(p), rget(p), bget(p)
        if b is None and r is None and l is not None and new_here_goes_up:
            # new on this side alone, every path of a first sync: what the table says, without the lookups
            if l.kind == DIR:
                dirs.append(p)
            else:
                survivors.add(p)
                actions.append(Action(Op.UPLOAD, p, FILE, reason="new"))
            continue
        if _kind(l, r, b) == DIR and (l is None or l.kind == DIR) and (r is None or r.kind == DIR):
            dirs.append(p)
            continue
        _decide_file(ctx, p, l, r, b)
    _decide_dirs(ctx, dirs)
    result.actions = _fold_deletes(ctx.actions, ctx)
    return result


def _kind(l: Entry | None, r: RemoteEntry | None, b: Base | None) -> str:
    for e in (l, r, b):
        if e is not None:
            return str(e.kind)
    return FILE


def _decide_file(ctx: _Ctx, p: str, l: Entry | None, r: RemoteEntry | None, b: Base | None) -> None:
    """A path where at least one side is (or was) a file."""
    L, R = local_state(l, b), remote_state(r, b)
    if ctx.mode is Mode.UPLOAD:
        return _mirror(ctx, p, l, r, L, R, Op.UPLOAD, Op.MKDIR_REMOTE, Op.DELETE_REMOTE, Op.MTIME_REMOTE)
    if ctx.mode is Mode.DOWNLOAD:
        return _mirror(ctx, p, r, l, R, L, Op.DOWNLOAD, Op.MKDIR_LOCAL, Op.DELETE_LOCAL, Op.MTIME_LOCAL)
    lk = None if l is None else l.kind
    rk = None if r is None else str(r.kind)
    if L is State.SAME and R is State.SAME:
        ctx.survivors.add(p)
        return None
    if l is None and r is None:
        if b is not None:
            ctx.add(Op.FORGET, p, b.kind, "deleted on both sides")
        return None
    if R is State.SAME or R is State.ABSENT:   # only the local side moved on
        if l is None:
            ctx.add(Op.DELETE_REMOTE, p, rk or FILE, "deleted locally")
            return None
        if rk == DIR and lk == FILE and ctx.changed_below(p, local=False):
            return _clash(ctx, p, lk)
        return _push(ctx, p, l, r, Op.UPLOAD, Op.MKDIR_REMOTE, Op.DELETE_REMOTE, Op.MTIME_REMOTE)
    if L is State.SAME or L is State.ABSENT:   # only the remote side moved on
        if r is None:
            ctx.add(Op.DELETE_LOCAL, p, lk or FILE, "deleted remotely")
            return None
        if lk == DIR and rk == FILE and ctx.changed_below(p, local=True):
            return _clash(ctx, p, lk)
        return _push(ctx, p, r, l, Op.DOWNLOAD, Op.MKDIR_LOCAL, Op.DELETE_LOCAL, Op.MTIME_LOCAL)
    if l is None:                              # deleted here, changed there
        assert r is not None
        return _create(ctx, p, str(r.kind), Op.DOWNLOAD, Op.MKDIR_LOCAL,
                       "changed remotely, deleted locally (a change beats a delete)")
    if r is None:
        return _create(ctx, p, l.kind, Op.UPLOAD, Op.MKDIR_REMOTE,
                       "changed locally, deleted remotely (a change beats a delete)")
    # both sides hold something new
    if lk == FILE and rk == FILE and ctx.same.get(p):
        ctx.survivors.add(p)
        ctx.add(Op.RECORD, p, FILE, "same content on both sides")
        return None
    ctx.survivors.add(p)
    ctx.add(Op.CONFLICT, p, lk or FILE, "changed on both sides" if b else "new on both sides")
    return None


def _clash(ctx: _Ctx, p: str, kind: str) -> None:
    """One side made a file of a folder while the other changed something in
    that folder: replacing the folder would delete unsynced versions, so it
    is a file-vs-folder conflict (the local one is renamed aside)."""
    ctx.survivors.add(p)
    ctx.add(Op.CONFLICT, p, kind, "a file on one side, a folder with changes inside on the other")


def _push(ctx: _Ctx, p: str, src: Entry | RemoteEntry, dst: Entry | RemoteEntry | None,
          transfer: Op, mkdir: Op, delete: Op, mtime: Op) -> None:
    """Make the destination side like the source side, which alone changed."""
    src_kind = str(src.kind)
    if dst is not None and str(dst.kind) != src_kind:
        ctx.add(delete, p, str(dst.kind), "replaced by a " + ("folder" if src_kind == DIR else "file"))
        return _create(ctx, p, src_kind, transfer, mkdir, "kind changed")
    if dst is not None and src_kind == FILE and ctx.same.get(p):
        ctx.survivors.add(p)
        if abs(src.mtime_ns - dst.mtime_ns) >= ctx.mtime_precision_ns:
            ctx.add(mtime, p, FILE, "only the modification time changed")
        else:
            ctx.add(Op.RECORD, p, FILE, "same content")
        return None
    reason = "changed" if dst is not None else "new"
    return _create(ctx, p, src_kind, transfer, mkdir, reason)


def _create(ctx: _Ctx, p: str, kind: str, transfer: Op, mkdir: Op, reason: str) -> None:
    ctx.survivors.add(p)
    ctx.add(mkdir if kind == DIR else transfer, p, kind, reason)


def _mirror(ctx: _Ctx, p: str, src: Entry | RemoteEntry | None, dst: Entry | RemoteEntry | None,
            S: State, D: State, transfer: Op, mkdir: Op, delete: Op, mtime: Op) -> None:
    """upload/download modes: the target becomes an exact copy of the source."""
    if src is None:
        if dst is not None:
            ctx.add(delete, p, str(dst.kind), "not on the source side (mirror)")
        elif p in ctx.base:
            ctx.add(Op.FORGET, p, ctx.base[p].kind)
        return None
    if dst is not None and S is State.SAME and D is State.SAME:
        ctx.survivors.add(p)
        return None
    return _push(ctx, p, src, dst, transfer, mkdir, delete, mtime)


def _decide_dirs(ctx: _Ctx, dirs: list[str]) -> None:
    """Folders, deepest first: a folder deleted on one side survives when
    something inside it survives (a change beats a delete)."""
    keep: set[str] = set()
    for p in ctx.survivors:
        q = parent(p)
        while q and q not in keep:
            keep.add(q)
            q = parent(q)
    for p in sorted(dirs, key=lambda d: d.count("/"), reverse=True):
        l, r, b = ctx.local.get(p), ctx.remote.get(p), ctx.base.get(p)
        has_b = b is not None and b.kind == DIR  # a file base says nothing of a folder
        action = _decide_dir(ctx, p, l is not None, r is not None, has_b, p in keep)
        if action is not None:
            ctx.actions.append(action)
        if (l is not None or r is not None) and (action is None or not action.op.startswith("delete")):
            q = p
            while q and q not in keep:
                keep.add(q)
                q = parent(q)


def _decide_dir(ctx: _Ctx, p: str, has_l: bool, has_r: bool, has_b: bool, needed: bool) -> Action | None:
    mode = ctx.mode
    if mode is Mode.UPLOAD:
        has_l, has_r, mk, rm = has_l, has_r, Op.MKDIR_REMOTE, Op.DELETE_REMOTE
    elif mode is Mode.DOWNLOAD:
        has_l, has_r, mk, rm = has_r, has_l, Op.MKDIR_LOCAL, Op.DELETE_LOCAL
    if mode is not Mode.TWO_WAY:
        if has_l and not has_r:
            return Action(mk, p, DIR, reason="mirror")
        if has_r and not has_l:
            return Action(rm, p, DIR, reason="not on the source side (mirror)")
        if has_l and has_r and not has_b:
            return Action(Op.RECORD, p, DIR)
        return Action(Op.FORGET, p, DIR) if has_b and not has_l and not has_r else None
    if has_l and has_r:
        return None if has_b else Action(Op.RECORD, p, DIR, reason="folder on both sides")
    if not has_l and not has_r:
        return Action(Op.FORGET, p, DIR) if has_b else None
    if has_l:  # the remote side lacks it
        if not has_b or needed:
            return Action(Op.MKDIR_REMOTE, p, DIR, reason="new locally" if not has_b else "still in use")
        return Action(Op.DELETE_LOCAL, p, DIR, reason="deleted remotely")
    if not has_b or needed:
        return Action(Op.MKDIR_LOCAL, p, DIR, reason="new remotely" if not has_b else "still in use")
    return Action(Op.DELETE_REMOTE, p, DIR, reason="deleted locally")


def _fold_deletes(actions: list[Action], ctx: _Ctx) -> list[Action]:
    """A folder deleted with everything inside becomes one recursive delete,
    unless it holds something the views do not show (ignored or skipped
    paths): those must survive, so that folder is emptied item by item."""
    for op in (Op.DELETE_LOCAL, Op.DELETE_REMOTE):
        dir_deletes = sorted(a.path for a in actions if a.op is op and a.kind == DIR
                             and a.path not in ctx.hidden)
        if not dir_deletes:
            continue
        tops: list[str] = []
        for d in dir_deletes:
            if not tops or not is_under(d, tops[-1]):
                tops.append(d)
        for a in actions:
            if a.op is op and a.kind == DIR and a.path in tops:
                a.recursive = True
        top_set = set(tops)
        for a in actions:
            if a.op is op and a.path not in top_set and _under_any(a.path, top_set):
                a.op = Op.FORGET  # the recursive delete takes it; its base row goes
    return actions


def _ancestors(paths: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for p in paths:
        q = parent(p)
        while q and q not in out:
            out.add(q)
            q = parent(q)
    return out


def _under_any(path: str, tops: set[str]) -> bool:
    q = parent(path)
    while q:
        if q in tops:
            return True
        q = parent(q)
    return False
