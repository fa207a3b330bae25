"""Walk a local tree into {nfc relative path: Entry}, cheaply.

One lstat per file (os.scandir gives the type and inode for free); no file
is opened here. Content hashes are computed later, only for what changed.
"""

from __future__ import annotations

import os
import stat as statmod
import unicodedata
from collections.abc import Iterable, Iterator

from syncagent.engine.records import DIR, FILE, Entry
from syncagent.native import NATIVE
from syncagent.paths import IGNORE_FILE, TEMP_PREFIX, TEMP_SUFFIX, IgnoreRules, is_utf8
from syncagent.providers.base import RemoteEntry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


class Scan:
    """A scanned tree.

    `skipped` holds paths that are left alone on BOTH sides (links, special
    files, unreadable folders, names clashing under NFC): their base rows must
    not read as deletions. `disk` maps an NFC path to its on-disk spelling
    where the two differ. `temps` are the agent's leftover temp files.
    (A plain class: every sync imports this module, and a dataclass would import inspect.)
    """

    def __init__(self, root: Path, entries: dict[str, Entry] | None = None, skipped: dict[str, str] | None = None,
                 ignored: set[str] | None = None) -> None:
        self.root = root
        self.entries: dict[str, Entry] = {} if entries is None else entries
        self.skipped: dict[str, str] = {} if skipped is None else skipped
        self.ignored: set[str] = set() if ignored is None else ignored
        self.disk: dict[str, str] = {}
        self.temps: list[str] = []
        self.unfit: dict[str, str] = {}   # skipped names the other side cannot hold either

    def disk_path(self, path: str) -> str:
        """The on-disk relative spelling of an NFC path (its parents included)."""
        exact = self.disk.get(path)
        if exact is not None:
            return exact
        if not self.disk or "/" not in path:
            return path
        head, _, tail = path.rpartition("/")
        return f"{self.disk_path(head)}/{tail}"

    def is_skipped(self, path: str) -> bool:
        """Whether `path` is a skipped path or lies under one."""
        if not self.skipped and not self.ignored:
            return False
        probe = path
        while True:
            if probe in self.skipped or probe in self.ignored:
                return True
            cut = probe.rfind("/")
            if cut < 0:
                return False
            probe = probe[:cut]


def scan_tree(root: Path, rules: IgnoreRules | None = None, start: str = "", into: Scan | None = None) -> Scan:
    """Scan `root` (which must exist) into `Scan.entries`. Never follows a link."""
    result = into if into is not None else Scan(root)
    result.entries.update(walk(root, rules, start, result))
    if start and start in result.skipped:
        result.entries.pop(start, None)   # the folder asked for could not be read
    return result


READ_AHEAD = 64   # folders a walk's read-ahead thread may hold, read and not yet asked for

# One item of a folder's sorted listing: (nfc relative path, its Entry, absolute on-disk path, on-disk
# relative path). A folder has a second item, (path + "/", None, "", ""): where its contents come.
# For a listing (walk_listing) the native reader gives a RemoteEntry in place of the Entry. In a raw
# walk it gives a run of a folder's consecutive plain files as one item, (first path, RawRun, "", ""):
# the records stay in C until the native merge keeps one (native/_native.c).
_Item = tuple[str, Entry | RemoteEntry | None, str, str]


def walk(root: Path, rules: IgnoreRules | None = None, start: str = "", into: Scan | None = None,
         *, raw: bool = False) -> Iterator[tuple[str, Entry]]:
    """Yield (nfc relative path, Entry) of every file and folder below
    `root` (or below its subfolder `start`), in ascending code-point order
    of the path: the order of `sorted()` on the path strings and of SQLite
    on the base's primary key, so a scan, a listing and the base can be
    merged in one pass (engine/merge.py). Never follows a link.

    That order is not a depth-first walk: "a-b" sorts between the folder
    "a" and its contents ("a/..."), because "-" < "/". Each folder is read
    whole and sorted, with one extra item per subfolder (its path + "/")
    that marks where its contents come; a subfolder is read as soon as its
    own entry comes up (an unreadable one is skipped, never yielded), and
    held until its contents are due. Memory follows the largest folder and
    the depth, not the tree. `into` collects what is not an entry (skipped,
    ignored and temp names, on-disk spellings) as the walk goes.

    `raw` (for the native merge only, engine/merge.py): where the native
    module reads a folder, its runs of plain files come as one item each,
    (first path, RawRun), not as an Entry per file. Without the native
    module, or with ignore rules (matched per name in Python), every item
    is an Entry as without it.
    """
    # (remote=False: every item is an Entry, or a RawRun where `raw` asks for them)
    return _walk(root, rules, start, into, False, raw and not rules)  # type: ignore[return-value]


def walk_listing(root: Path, start: str = "", into: Scan | None = None, *, raw: bool = False
                 ) -> Iterator[tuple[str, Entry | RemoteEntry]]:
    """walk() for a folder provider's listing: a folder the native module
    read comes as the RemoteEntry objects the listing yields (built in C,
    where the dataclass would cost more than the walk), any other as Entry.
    `raw`: as walk()'s, the runs of files as RawRun items."""
    return _walk(root, None, start, into, True, raw)


def _walk(root: Path, rules: IgnoreRules | None, start: str, into: Scan | None, remote: bool, raw: bool
          ) -> Iterator[tuple[str, Entry | RemoteEntry]]:
    result = into if into is not None else Scan(root)
    top = f"{root}/{start}" if start else str(root)
    prefix = start + "/" if start else ""
    # A thread reads the folders ahead, in this walk's order, without the GIL (native/_native.c).
    ahead = NATIVE.readahead(top, READ_AHEAD) if NATIVE is not None else None
    try:
        yield from _walk_folders(top, start, prefix, result, rules, remote, ahead, raw)
    finally:
        if ahead is not None:
            ahead.close()


def _walk_folders(top: str, start: str, prefix: str, result: Scan, rules: IgnoreRules | None, remote: bool,
                  ahead: object, raw: bool) -> Iterator[tuple[str, Entry | RemoteEntry]]:
    try:
        first = _read_folder(top, prefix, prefix, result, rules, remote, ahead, raw)
    except OSError as exc:
        if not start:
            raise
        result.skipped[start] = f"cannot read folder: {exc.strerror}"
        return
    stack = [iter(first)]
    pending: dict[str, list[_Item]] = {}   # folder path + "/" -> its listing, read, contents not yet due
    while stack:
        for rel, entry, abs_path, disk_rel in stack[-1]:
            if entry is None:
                contents = pending.pop(rel, None)
                if contents:
                    stack.append(iter(contents))
                    break
                continue
            if abs_path:   # a folder (a file's item has no path: nothing to read)
                try:
                    pending[rel + "/"] = _read_folder(abs_path, disk_rel + "/", rel + "/", result, rules, remote,
                                                      ahead, raw)
                except OSError as exc:
                    result.skipped[rel] = f"cannot read folder: {exc.strerror}"
                    continue
            yield rel, entry
        else:
            stack.pop()


def _read_folder(abs_dir: str, disk_prefix: str, rel_prefix: str, result: Scan,
                 rules: IgnoreRules | None, remote: bool = False, ahead: object = None, raw: bool = False
                 ) -> list[_Item]:
    """One folder's entries, sorted by path (see walk()): read by the native
    module where it is built and the folder is plain (ASCII names, files and
    folders only), else by the loop below, which knows every odd case."""
    if NATIVE is not None:
        got: tuple[list[_Item], list[str]] | None = NATIVE.read_folder(abs_dir, disk_prefix, rel_prefix, remote,
                                                                        ahead, raw)
        if got is not None:
            items, temps = got
            result.temps.extend(temps)
            return _drop_ignored(items, rules, result) if rules else items
    return _read_folder_py(abs_dir, disk_prefix, rel_prefix, result, rules)


def _drop_ignored(items: list[_Item], rules: IgnoreRules, result: Scan) -> list[_Item]:
    """A native folder listing less what the ignore rules exclude (a folder with its contents' marker)."""
    kept: list[_Item] = []
    dropped: set[str] = set()
    for item in items:
        rel, entry, abs_path, _ = item
        if entry is None:
            if rel[:-1] in dropped:
                continue
        elif abs_path:
            if rules.matches(rel, True):
                result.ignored.add(rel)
                dropped.add(rel)
                continue
        elif rel.rpartition("/")[2] != IGNORE_FILE and rules.matches(rel, False):
            result.ignored.add(rel)
            continue
        kept.append(item)
    return kept


def _read_folder_py(abs_dir: str, disk_prefix: str, rel_prefix: str, result: Scan,
                    rules: IgnoreRules | None) -> list[_Item]:
    """One folder's entries, sorted by path (see walk()). One lstat per
    file (os.scandir gives the type and inode for free); no file is opened.

    This loop is the hot path of a no-op sync (100,000 files: most of the
    run), hence the local aliases and the ASCII fast path: only non-ASCII
    names can differ from their NFC form or collide under it."""
    skipped, disk, temps = result.skipped, result.disk, result.temps
    use_rules = bool(rules)
    new, S_ISREG = tuple.__new__, statmod.S_ISREG
    items: list[_Item] = []
    composed: dict[str, str] = {}
    clashes: set[str] = set()
    folded: list[str] = []
    with os.scandir(abs_dir) as it:
        for de in it:
            name = de.name
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                temps.append(disk_prefix + name)
                continue
            if name.isascii():
                rel = rel_prefix + name
            else:
                if not is_utf8(name):
                    rel = rel_prefix + name
                    skipped[rel] = result.unfit[rel] = "the name is not valid UTF-8"
                    continue
                key = unicodedata.normalize("NFC", name)
                rel = rel_prefix + key
                if key in composed:
                    skipped[rel] = result.unfit[rel] = "two names that differ only in Unicode normalization"
                    clashes.add(rel)
                    continue
                composed[key] = name
                if key != name:
                    disk[rel] = disk_prefix + name
                    if key.isascii():
                        folded.append(rel)   # "\u212a" is "K" under NFC: an ASCII "K" may be here too
            try:
                if de.is_file(follow_symlinks=False):   # most names: one type test (d_type), then the lstat
                    st = de.stat(follow_symlinks=False)
                elif de.is_symlink():
                    skipped[rel] = "symbolic link (not followed)"
                    continue
                elif de.is_dir(follow_symlinks=False):
                    if use_rules and rules is not None and rules.matches(rel, True):
                        result.ignored.add(rel)
                        continue
                    items.append((rel, new(Entry, (DIR, 0, 0, de.inode())), de.path, disk_prefix + name))
                    items.append((rel + "/", None, "", ""))
                    continue
                else:
                    st = de.stat(follow_symlinks=False)
            except OSError as exc:
                skipped[rel] = f"cannot read: {exc.strerror}"
                continue
            if not S_ISREG(st.st_mode):
                skipped[rel] = "special file (fifo, socket or device)"
                continue
            if use_rules and rules is not None and name != IGNORE_FILE and rules.matches(rel, False):
                result.ignored.add(rel)
                continue
            items.append((rel, new(Entry, (FILE, st.st_size, st.st_mtime_ns, st.st_ino)), "", ""))
    if folded:
        for rel in folded:
            if sum(1 for i in items if i[0] == rel) > 1:
                skipped[rel] = result.unfit[rel] = "two names that differ only in Unicode normalization"
                clashes.add(rel)
    if clashes:
        items = [i for i in items if i[0] not in clashes and not (i[1] is None and i[0][:-1] in clashes)]
    items.sort()   # paths are unique within a folder: only the first field is ever compared
    return items


def scan_paths(root: Path, paths: Iterable[str], rules: IgnoreRules | None = None) -> Scan:
    """Scan only some paths (and, for folders, what is below them): the
    agent's sync of a handful of dirty paths in a big tree. Their parent
    folders are stat'ed too, so a new file in a new folder brings the folder
    (and a file standing where a parent folder is wanted shows as that file)."""
    result = Scan(root)
    wanted = set(paths)
    for p in list(wanted):
        q = p.rpartition("/")[0]
        while q:
            result.entries.setdefault(q, Entry(DIR, 0, 0, 0))  # placeholder, replaced below
            q = q.rpartition("/")[0]
    parents = [q for q in result.entries if q not in wanted]
    result.entries.clear()
    for q in parents:
        # a file where a parent folder was (kept: the plan must see it, e.g. to replace it
        # by the other side's new folder, instead of planning a folder it cannot make there)
        e = stat_entry(root / q)
        if e is not None:
            result.entries[q] = e
    for p in sorted(wanted):
        if result.is_skipped(p):
            continue
        try:
            st = os.lstat(root / p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            result.skipped[p] = f"cannot read: {exc.strerror}"
            continue
        if statmod.S_ISLNK(st.st_mode):
            result.skipped[p] = "symbolic link (not followed)"
        elif statmod.S_ISDIR(st.st_mode):
            if rules and rules.matches(p, True):
                result.ignored.add(p)
                continue
            result.entries[p] = Entry(DIR, 0, 0, st.st_ino)
            scan_tree(root, rules, start=p, into=result)
        elif not statmod.S_ISREG(st.st_mode):
            result.skipped[p] = "special file (fifo, socket or device)"
        elif rules and p.rsplit("/", 1)[-1] != IGNORE_FILE and rules.matches(p, False):
            result.ignored.add(p)
        else:
            result.entries[p] = Entry(FILE, st.st_size, st.st_mtime_ns, st.st_ino)
    return result


def stat_entry(path: str | os.PathLike[str]) -> Entry | None:
    """A fresh Entry for one path (None when absent, a link or special)."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if statmod.S_ISDIR(st.st_mode):
        return Entry(DIR, 0, 0, st.st_ino)
    if statmod.S_ISREG(st.st_mode):
        return Entry(FILE, st.st_size, st.st_mtime_ns, st.st_ino)
    return None
