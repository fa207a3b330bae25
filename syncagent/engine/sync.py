"""One sync run of one pair: lock, scan both sides, guard, plan, execute.

The one-shot command and the daemon both call `Engine.sync()`; nothing else
decides what to transfer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from syncagent import errors
from syncagent.engine import crashpoint, feed, journal
from syncagent.engine.feed import RemoteChanges
from syncagent.engine.identity import DEFAULT_COMPARE_LIMIT, Identity
from syncagent.engine.localside import LocalSide
from syncagent.engine.merge import Merged, merge
from syncagent.engine.plan import Mode, Op, Plan, State, busy_paths, hash_needs, plan, rekey, remote_state
from syncagent.engine.records import FILE, Base, Entry
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.scan import Scan, walk
from syncagent.engine.spill import Spill, remove_leftovers
from syncagent.engine.state import Store, pair_lock, readable
from syncagent.engine.views import build_views
from syncagent.paths import TEMP_PREFIX, IgnoreRules, conflict_name, printable
from syncagent.providers.base import PairContext, Provider, RemoteEntry

TYPE_CHECKING = False
if TYPE_CHECKING:   # (names for the type checker only: no typing import at run time)
    from syncagent.engine.localside import OwnWrites

BIG_DELETE_MIN = 5


def _ancestors(path: str) -> list[str]:
    out = []
    q = path.rpartition("/")[0]
    while q:
        out.append(q)
        q = q.rpartition("/")[0]
    return out


class SyncOptions:
    """How a run behaves (the command line's options). A plain class: a
    dataclass compiles its methods when the module is imported."""

    def __init__(self, mode: Mode = Mode.TWO_WAY, dry_run: bool = False, force: bool = False,
                 max_delete: float = 50.0, excludes: list[str] | None = None, trash: bool = True,
                 delta: str = "auto", delta_threshold: int = 1 << 20, lock_wait: float = 0.0,
                 compare_limit: int = DEFAULT_COMPARE_LIMIT, stop: threading.Event | None = None) -> None:
        self.mode = mode
        self.dry_run = dry_run
        self.force = force
        self.max_delete = max_delete
        self.excludes: list[str] = [] if excludes is None else excludes
        self.trash = trash
        self.delta = delta                        # auto | always | never
        self.delta_threshold = delta_threshold
        self.lock_wait = lock_wait
        self.compare_limit = compare_limit        # download-and-compare files up to this size
        self.stop = stop                          # set by the agent on SIGTERM: finish the batch, then stop


class Engine:
    """Syncs one pair (a local folder and a provider) against its base."""

    def __init__(self, local_root: Path, remote: Provider, remote_spec: str, store: Store,
                 options: SyncOptions | None = None, reporter: Reporter | None = None,
                 own_writes: OwnWrites | None = None) -> None:
        self.local_root = Path(os.path.abspath(local_root))
        self.remote = remote
        self.remote_spec = remote_spec
        self.store = store
        self.options = options or SyncOptions()
        self.reporter = reporter or Reporter()
        self.own_writes = own_writes
        self.feed_cursor: str | None = None
        self.summary: Summary | None = None
        with readable(store.path):
            self.pair = store.pair_id(str(self.local_root), remote_spec)
        self.rules = IgnoreRules()
        self.tag = f"p{self.pair}-"
        self.local = LocalSide(self.local_root, temp_tag=self.tag)
        self.identity = Identity(self.local, remote, store, self.pair, self.reporter, self.options.compare_limit)
        self.hashes = self.identity.memo
        if remote.pair.tag != self.tag:
            remote.attach(PairContext(self.tag, store.provider_state(self.pair)))

    # ---- the run -------------------------------------------------------------
    def sync(self, paths: set[str] | None = None, cursor: str | None = None) -> Summary:
        """One run over the whole tree, or (the agent's case) over `paths`
        and what lies below them; a partial run falls back to a whole one
        when it cannot be trusted (first sync, non-ASCII names). `cursor`:
        the change-feed position `paths` came from, kept once they synced."""
        started = time.monotonic()
        summary = Summary(dry_run=self.options.dry_run)
        self.feed_cursor = cursor
        self.summary = summary
        if paths is not None and not paths:
            return summary  # nothing is dirty
        if paths is not None and any(not p.isascii() for p in paths):
            paths = None
        with pair_lock(self.store.state_dir, self.pair, wait=self.options.lock_wait), readable(self.store.path):
            remove_leftovers(self.store.state_dir, self.tag)   # a killed run's scratch (spill.py)
            try:
                self._recover()
                if paths is not None and self.store.count_base(self.pair):
                    self._sync_paths(summary, paths)
                else:
                    self._sync(summary)
            except errors.GuardRefused as exc:
                summary.refused = str(exc)
            finally:
                self.local.close()     # the local side's root descriptor lives for one run
        summary.seconds = time.monotonic() - started
        return summary

    def _recover(self) -> None:
        """A killed run's transfers: adopt what landed as the base (journal.py)."""
        if self.options.dry_run or not self.store.journal(self.pair):
            return
        adopted = journal.recover(self.store, self.pair, self.local, self.remote, self.identity.kind)
        self.reporter.info(f"the last run was interrupted; {adopted} transfers that had landed were recorded")

    def remote_changes(self) -> RemoteChanges:
        """What a poll must sync: from the change feed where the provider has
        one (O(changes)), else from the listing against the base. Cheaper than
        a run: no local walk, no hashing."""
        with pair_lock(self.store.state_dir, self.pair, wait=self.options.lock_wait), readable(self.store.path):
            if not self.store.count_base(self.pair) or not self.remote.root_exists():
                return RemoteChanges(None)
            rules = IgnoreRules.load(self.local_root, self.options.excludes)
            if self.remote.capabilities.change_feed:
                return feed.from_feed(self.remote, self.store, self.pair, rules)
            remove_leftovers(self.store.state_dir, self.tag)
            with Spill(self.store.state_dir, self.tag) as spill:
                return feed.from_listing(self.remote, self.store, self.pair, rules, spill)

    def _phase(self, name: str, started: float, detail: str = "") -> float:
        """With -v: how long each phase took (where the time of a slow run goes)."""
        now = time.monotonic()
        if self.reporter.verbose:
            self.reporter.info(f"  {name:<10} {now - started:7.3f} s  {detail}".rstrip())
        return now

    def _sync(self, summary: Summary) -> None:
        t = time.monotonic()
        self._check_roots(self._has_base)
        local_scan, merged = self._merge_sides()
        remote_skipped = self.remote.skipped()
        t = self._phase("scan", t, f"{merged.local_count} local, {merged.remote_count} remote, "
                                   f"{len(merged.changed)} base rows differ")
        self._remove_stale_temps(local_scan)
        if (merged.local_count and merged.remote_count and not self.options.dry_run and not merged.base_files
                and not self._has_base()):
            self.reporter.warn(f"no earlier sync of this pair is recorded (state: {self.store.path}): both sides "
                               "are merged as in a first sync, so a file deleted on one side comes back from "
                               "the other")
        has_files = {"local": merged.local_files, "remote": merged.remote_files}
        base = self.store.load_base_paths(self.pair, merged.changed)
        t = self._phase("base", t, f"{len(base)} rows loaded, {merged.base_files} files synced before")
        local, remote, base, hidden = self._views(local_scan, merged.remote, remote_skipped, base)
        base = self._settle_racy(local, remote, base)
        self._guard_empty(has_files, merged.base_files)
        self._phase("views", t)
        self._plan_and_run(summary, local, remote, base, hidden, merged.base_files)

    def _sync_paths(self, summary: Summary, paths: set[str]) -> None:
        """Sync a few dirty paths: stat them (and scan the folders among
        them) on both sides, load their base rows, plan and run as usual."""
        from syncagent.engine.scan import scan_paths

        self._check_roots(lambda: True)
        self.rules = IgnoreRules.load(self.local_root, self.options.excludes)
        local_scan = scan_paths(self.local_root, paths, self.rules)
        self.local.last_scan = local_scan
        remote_list: list[RemoteEntry] = []
        roots = sorted(paths)
        for p in {*roots, *(a for q in roots for a in _ancestors(q))}:
            try:
                entry = self.remote.stat(p)
            except errors.NotFound:
                continue
            remote_list.append(entry)
            if p in paths and entry.kind == "dir":
                remote_list.extend(self.remote.list(p))
        base = self.store.load_base_under(self.pair, roots)
        base.update(self.store.load_base_paths(self.pair, {a for q in roots for a in _ancestors(q)}))
        local, remote, base, hidden = self._views(local_scan, remote_list, {}, base)
        base = self._settle_racy(local, remote, base)
        self._plan_and_run(summary, local, remote, base, hidden, self.store.count_base_files(self.pair))

    def _plan_and_run(self, summary: Summary, local: dict[str, Entry], remote: dict[str, RemoteEntry],
                      base: dict[str, Base], hidden: set[str], base_files: int) -> None:
        t = time.monotonic()
        the_plan = self._plan(local, remote, base, hidden)
        self._phase("plan", t, f"{len(the_plan.actions) + len(the_plan.moves)} actions")
        if the_plan.conflicts:
            local, failed = self._resolve_conflicts(the_plan, local, remote, summary)
            if failed:  # left alone this run, on both sides
                remote = {p: e for p, e in remote.items() if p not in failed}
                base = {p: b for p, b in base.items() if p not in failed}
                hidden = hidden | failed
            the_plan = self._plan(local, remote, base, hidden)
        self._guard_big_delete(the_plan, base_files)
        if self.options.dry_run:
            self._report_dry(the_plan, summary)
            return
        if not the_plan.actions and not the_plan.moves:
            self._finish(summary)
            return
        from syncagent.engine.deltapath import DeltaPath
        from syncagent.engine.execute import Cancelled, Context, Executor
        from syncagent.engine.trash import Trash

        deltas = None
        caps = self.remote.capabilities
        # In auto mode a delta pays off only where bytes cross a network (DeltaPath.wanted): a local pair never
        # asks for one, so it does not load librsync either (ctypes and a dlopen, ~5 ms).
        wanted = self.options.delta == "always" or (self.options.delta == "auto" and caps.expensive_bytes)
        if wanted and caps.delta and the_plan.of(Op.UPLOAD, Op.DOWNLOAD):
            deltas = DeltaPath(self.local, self.remote, self.options.delta, self.options.delta_threshold,
                               self.reporter, self.identity)
        ctx = Context(self.local, self.remote, self.store, self.pair,
                      Trash(self.store.state_dir, self.pair) if self.options.trash else None,
                      self.reporter, summary, self.hashes, self.own_writes, deltas, self.options.stop,
                      self.identity.kind)
        try:
            Executor(ctx, the_plan).run()
        except Cancelled:
            summary.cancelled = True
            return
        self.store.journal_clear(self.pair)
        self._finish(summary)
        if ctx.trash is not None and summary.deleted_local:
            ctx.trash.expire()

    def _finish(self, summary: Summary) -> None:
        """The run is over: the feed position moves on only if every item of
        it synced (a failed item is asked for again at the next poll)."""
        if self.feed_cursor is not None and not summary.errors:
            self.store.write_base(self.pair, [], [], cursor=self.feed_cursor)
        else:
            self.store.commit_provider_state(self.pair)
        self.identity.end_of_run()
        self.store.mark_synced(self.pair)

    # ---- roots and scans -----------------------------------------------------
    def _has_base(self) -> bool:
        """Whether the pair has synced before. (Asked only where the answer
        matters: the count reads every row of the base, and a run with files in
        its base already knows from the merge.)"""
        return self.store.count_base(self.pair) > 0

    def _check_roots(self, has_base: Callable[[], bool]) -> None:
        if not self.local_root.is_dir():
            if has_base():
                raise errors.GuardRefused(f"the local folder {self.local_root} is missing (unmounted?); "
                                          "nothing was changed")
            if not self.options.dry_run:
                self.local.ensure_root()
        if not self.remote.root_exists():
            if has_base():
                raise errors.GuardRefused(f"the remote folder {self.remote.describe()} is missing; "
                                          "nothing was changed")
            if not self.options.dry_run:
                self.remote.ensure_root()

    def _merge_sides(self) -> tuple[Scan, Merged]:
        """Walk the local tree, list the remote and read the base, merged in
        one pass (merge.py): what comes back is only what is not quiet. The
        local scan's `entries` are those paths; the rest of the Scan (skipped
        names, spellings, temps) is filled by the walk. A listing that must
        be sorted first, or the walk held while the remote is listed, goes
        to disk past a bound (spill.py)."""
        rules = IgnoreRules.load(self.local_root, self.options.excludes)
        self.rules = rules
        local_scan = Scan(self.local_root)
        self.local.last_scan = local_scan
        caps = self.remote.capabilities
        base = self.store.base_brief_stream(self.pair)
        streamed = caps.sorted_listing and not (caps.change_feed and not self.options.dry_run)
        with Spill(self.store.state_dir, self.tag) as spill:
            local: Iterable[tuple[str, Entry]] = ()
            if not self.local_root.is_dir():  # dry run of a first sync
                remote: Iterable[RemoteEntry] = spill.sort_listing(self._list_remote())
            elif streamed:
                # Both streams straight into the merge: a folder provider's listing and the walk may keep
                # their plain files as C records the native merge reads (scan.walk's `raw`).
                local = walk(self.local_root, rules, into=local_scan, raw=True)
                remote = self.remote.merge_listing() if self.remote.root_exists() else ()
            elif caps.expensive_bytes:
                from concurrent.futures import ThreadPoolExecutor  # (only here: a local pair never pays)

                # A network listing waits on I/O: overlap it with the local walk, held (spooled) only
                # while the listing runs; what is left of the walk then streams into the merge.
                with ThreadPoolExecutor(1, thread_name_prefix="list-remote") as pool:
                    remote_future = pool.submit(lambda: spill.sort_listing(self._list_remote()))
                    local = spill.spool(walk(self.local_root, rules, into=local_scan), until=remote_future.done)
                    remote = remote_future.result()
            else:
                # Two CPU-bound scans in threads fight over the GIL: one after the other is faster.
                remote = spill.sort_listing(self._list_remote())
                local = walk(self.local_root, rules, into=local_scan, raw=True)
            merged = merge(local, remote, base, prune=not caps.case_insensitive)
        local_scan.entries = merged.local
        return local_scan, merged

    def _list_remote(self) -> Iterable[RemoteEntry]:
        """The whole remote tree, as a stream. A change-feed provider lists
        it by starting its feed, so the run ends holding the cursor the next
        poll asks from."""
        if not self.remote.root_exists():
            return ()
        if self.remote.capabilities.change_feed and not self.options.dry_run:
            batch = self.remote.changes(None)
            self.feed_cursor = batch.cursor
            return (c for c in batch.changes if isinstance(c, RemoteEntry))
        return self.remote.list()

    def _remove_stale_temps(self, local_scan: Scan) -> None:
        """Temp files of this pair left by a killed run (we hold the pair lock)."""
        if self.options.dry_run:
            return
        mine = TEMP_PREFIX + self.tag
        for rel in local_scan.temps:
            if rel.rsplit("/", 1)[-1].startswith(mine):
                with contextlib.suppress(OSError):
                    os.unlink(local_scan.root / rel)
        self.remote.cleanup_temps()

    def _views(self, local_scan: Scan, remote_list: list[RemoteEntry], remote_skipped: dict[str, str],
               base: dict[str, Base]) -> tuple[dict[str, Entry], dict[str, RemoteEntry], dict[str, Base],
                                               set[str]]:
        """Filter the three maps down to what this run may touch (views.py)."""
        v = build_views(local_scan, remote_list, remote_skipped, base, self.rules, self.remote, self.reporter)
        if self.summary is not None:
            self.summary.skipped_names.extend(sorted(printable(p) for p in v.unfit))
        return v.local, v.remote, v.base, v.hidden

    def _settle_racy(self, local: dict[str, Entry], remote: dict[str, RemoteEntry],
                     base: dict[str, Base]) -> dict[str, Base]:
        """Base rows recorded within a clock tick of their mtime don't trust
        metadata: compare content once, and keep the row if it still holds."""
        racy = [p for p, b in base.items() if b.kind == FILE and (b.size < 0 or (b.rrev == "" and p in remote))]
        if not racy:
            return base
        started = time.time_ns()
        racy_rows = {p: base[p] for p in racy}
        base = dict(base)
        for p in racy:
            b = base[p]
            if b.size < 0:
                l = local.get(p)
                if l is not None and l.kind == FILE and l.mtime_ns == b.mtime_ns and l.ino == b.ino \
                        and b.hash and self._local_hash(p) == b.hash:
                    b = b._replace(size=l.size)
            r = remote.get(p)
            if b.rrev == "" and r is not None and r.kind == FILE and r.mtime_ns == b.rmtime_ns and b.hash:
                rh = self.identity.remote_hash(p, r)
                if rh == b.hash:
                    b = b._replace(rrev=r.rev)
            base[p] = b
        self._settle_racy_renames(local, base, racy)
        self._keep_settled(base, racy_rows, started)
        return base

    def _keep_settled(self, base: dict[str, Base], racy_rows: dict[str, Base], started: int) -> None:
        """Racy rows confirmed by content, now well past their mtime, are
        stored as confirmed (what recording them now would write): else every
        later run and poll compares them again, and a quiet poll syncs."""
        from syncagent.engine.execute import RACY_NS  # (the executor is imported only when a run acts)

        if self.options.dry_run:
            return
        settled = []
        for p, was in racy_rows.items():
            b = base[p]
            if b != was and started - b.mtime_ns >= RACY_NS and started - b.rmtime_ns >= RACY_NS:
                settled.append((p, b.size, b.rrev))
        if settled:
            self.store.settle_base(self.pair, settled)

    def _settle_racy_renames(self, local: dict[str, Entry], base: dict[str, Base], racy: list[str]) -> None:
        """A racy row whose file was renamed: confirm it at the new name, so
        the rename is replayed as a move with nothing to upload after it."""
        gone = {base[p].ino: p for p in racy if p not in local and base[p].size < 0}
        if not gone:
            return
        for q, l in local.items():
            p = gone.get(l.ino) if q not in base else None
            if p is None or l.kind != FILE or l.mtime_ns != base[p].mtime_ns:
                continue
            b = base[p]
            if b.hash and self._local_hash(q) == b.hash:
                base[p] = b._replace(size=l.size)

    def _local_hash(self, p: str) -> str | None:
        return self.identity.local_hash(p)

    # ---- planning ------------------------------------------------------------
    def _plan(self, local: dict[str, Entry], remote: dict[str, RemoteEntry], base: dict[str, Base],
              hidden: set[str]) -> Plan:
        busy = busy_paths(local, remote, base)
        same = self._content_same(local, remote, base, busy)
        caps = self.remote.capabilities
        return plan(local, remote, base, same, self.options.mode, remote_ids=caps.ids, hidden=hidden, busy=busy,
                    remote_moves=caps.server_move, mtime_precision_ns=caps.mtime_precision_ns)

    def _content_same(self, local: dict[str, Entry], remote: dict[str, RemoteEntry],
                      base: dict[str, Base], busy: list[str]) -> dict[str, bool]:
        """Compare content only where equal content changes the decision: a
        first sync onto files already there, or both sides changed."""
        same: dict[str, bool] = {}
        proofs: list[tuple[str, Entry, RemoteEntry]] = []
        for p in hash_needs(local, remote, base, busy):
            l, r, b = local[p], remote[p], base.get(p)
            unchanged_remote = b is not None and (remote_state(r, b) is State.SAME
                                                  or (r.hash is not None and r.hash == b.rhash))
            if b is not None and b.hash and unchanged_remote:
                lh = self.identity.local_hash(p, l)
                if lh is not None:
                    same[p] = lh == b.hash
                continue
            proofs.append((p, l, r))
        workers = self.remote.capabilities.transfers if self.remote.capabilities.expensive_bytes else 1
        same.update(self.identity.same_many(proofs, workers))
        self.identity.save_cache()
        return same

    def _resolve_conflicts(self, the_plan: Plan, local: dict[str, Entry], remote: dict[str, RemoteEntry],
                           summary: Summary) -> tuple[dict[str, Entry], set[str]]:
        """The remote version keeps the name; the local one is renamed aside.
        Then both travel to both sides in the second planning pass. Returns
        the new local view and the paths whose rename failed."""
        local = dict(local)
        failed: set[str] = set()
        for a in the_plan.conflicts:
            def taken(q: str) -> bool:
                return q in local or q in remote or self.local.lstat_entry(q) is not None

            new = conflict_name(a.path, taken)
            if not self.options.dry_run:
                try:
                    self._rename_aside(a.path, new)
                except errors.ProviderError as exc:
                    summary.errors += 1
                    summary.error_list.append({"path": a.path, "op": "conflict", "error": str(exc)})
                    self.reporter.error(f"conflict: could not keep the local version aside: {exc}", a.path)
                    local.pop(a.path, None)
                    failed.add(a.path)
                    continue
            rekey(local, a.path, new)  # type: ignore[arg-type]
            crashpoint.point("conflict")
            summary.conflicts += 1
            summary.conflict_list.append(new)
            self.reporter.action("conflict", a.path, f"local version kept as {new.rsplit('/', 1)[-1]}")
        return local, failed

    def _rename_aside(self, path: str, new: str) -> None:
        if self.own_writes is not None:
            self.own_writes.suppress(path)
            self.own_writes.suppress(new)
        self.local.rename_aside(path, new)
        if self.own_writes is not None:
            self.own_writes.wrote(path)
            self.own_writes.wrote(new)

    # ---- guards --------------------------------------------------------------
    def _guard_empty(self, has_files: dict[str, bool], base_files: int) -> None:
        if self.options.force or not base_files:
            return
        mode = self.options.mode
        check = ["local"] if mode is Mode.UPLOAD else ["remote"] if mode is Mode.DOWNLOAD else ["local", "remote"]
        for name in check:
            if not has_files[name]:
                raise errors.GuardRefused(
                    f"the {name} side lists no files while the last sync saw some "
                    "(an unmounted disk or an expired share?); nothing was changed. "
                    "Use --force if the side really was emptied.")

    def _guard_big_delete(self, the_plan: Plan, base_files: int) -> None:
        if self.options.force:
            return
        for op, side in ((Op.DELETE_LOCAL, "local"), (Op.DELETE_REMOTE, "remote")):
            n = the_plan.deleted_files(op)
            if n > BIG_DELETE_MIN and base_files and n * 100 > self.options.max_delete * base_files:
                raise errors.GuardRefused(
                    f"this run would delete {n} of {base_files} files on the {side} side "
                    f"(more than {self.options.max_delete:g}%); nothing was changed. "
                    "Use --force to go ahead, or --max-delete to raise the limit.")

    # ---- dry run ---------------------------------------------------------------
    def _report_dry(self, the_plan: Plan, summary: Summary) -> None:
        for a in the_plan.moves:
            self.reporter.action("would move", f"{a.path} -> {a.dst}")
            summary.moved += 1
        for a in the_plan.actions:
            if a.op in (Op.RECORD, Op.FORGET):
                continue
            self.reporter.action("would " + str(a.op), a.path)
            if a.op is Op.UPLOAD:
                summary.uploaded += 1
                summary.bytes_uploaded += the_plan.local[a.path].size
            elif a.op is Op.DOWNLOAD:
                summary.downloaded += 1
                summary.bytes_downloaded += the_plan.remote[a.path].size
            elif a.op is Op.DELETE_LOCAL:
                summary.deleted_local += the_plan.files_taken(a)
            elif a.op is Op.DELETE_REMOTE:
                summary.deleted_remote += the_plan.files_taken(a)

