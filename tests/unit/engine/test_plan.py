"""The decision table, exhaustively, without I/O.

A tiny model world holds contents per path; views are built from it, the pure
planner plans, a simulator applies the plan (conflicts renamed aside and
planned again, as the engine does), and the outcome is checked against the
invariants: both sides end equal, no unsynced version is lost, a change beats a
delete, the remote version keeps the name in a conflict.
"""

from __future__ import annotations

import itertools
import zlib

import pytest

from syncagent.engine.plan import Action, Mode, Op, Plan, hash_needs, plan, rekey
from syncagent.engine.records import DIR, FILE, Base, Entry
from syncagent.paths import conflict_name
from syncagent.providers.base import Kind, RemoteEntry

DIRV = "<dir>"
Tree = dict[str, str]


def _ver(content: str) -> int:
    return zlib.crc32(content.encode()) + 1


def views(local: Tree, remote: Tree, base: Tree) -> tuple[dict[str, Entry], dict[str, RemoteEntry],
                                                           dict[str, Base], dict[str, bool]]:
    """Entries whose metadata equals the base exactly when the content does."""
    b: dict[str, Base] = {}
    for p, c in base.items():
        kind = DIR if c == DIRV else FILE
        v = 0 if kind == DIR else _ver(c)
        b[p] = Base(kind, len(c) if kind == FILE else 0, v, v + 7, c, f"r{v}", f"id{p}", None, len(c), v)
    l = {p: (Entry(DIR, 0, 0, _ver(p) + 7) if c == DIRV else Entry(FILE, len(c), _ver(c), _ver(c) + 7))
         for p, c in local.items()}
    for p, e in l.items():  # a folder keeps its inode when unchanged
        if p in b and b[p].kind == e.kind == DIR:
            l[p] = Entry(DIR, 0, 0, b[p].ino)
    r = {p: (RemoteEntry(p, Kind.DIR, id=f"id{p}") if c == DIRV
             else RemoteEntry(p, Kind.FILE, len(c), _ver(c), f"r{_ver(c)}", None, f"new{p}{c}"))
         for p, c in remote.items()}
    same = {p: local[p] == remote[p] for p in hash_needs(l, r, b)}
    return l, r, b, same


def simulate(local: Tree, remote: Tree, base: Tree, mode: Mode = Mode.TWO_WAY) -> tuple[Tree, Tree, Plan]:
    local, remote = dict(local), dict(remote)
    l, r, b, same = views(local, remote, base)
    the_plan = plan(l, r, b, same, mode, remote_ids=True)
    if the_plan.conflicts:
        for a in the_plan.conflicts:
            new = conflict_name(a.path, lambda q: q in local or q in remote, now=0, host="h")
            rekey(local, a.path, new)  # type: ignore[arg-type]
        l, r, b, same = views(local, remote, base)
        the_plan = plan(l, r, b, same, mode, remote_ids=True)
        assert not the_plan.conflicts, "a second pass must not conflict again"
    for m in the_plan.moves:
        rekey(remote if m.op is Op.MOVE_REMOTE else local, m.path, m.dst)  # type: ignore[arg-type]
    order = sorted(the_plan.actions, key=_phase)
    for a in order:
        _apply(a, local, remote)
    return local, remote, the_plan


def _phase(a: Action) -> tuple[int, int]:
    if a.op in (Op.DELETE_LOCAL, Op.DELETE_REMOTE):
        return (0, -a.path.count("/"))
    if a.op in (Op.MKDIR_LOCAL, Op.MKDIR_REMOTE):
        return (1, a.path.count("/"))
    return (2, 0)


def _apply(a: Action, local: Tree, remote: Tree) -> None:
    def drop(tree: Tree, p: str) -> None:
        if a.recursive or tree.get(p) == DIRV:
            assert a.recursive or not any(q.startswith(p + "/") for q in tree), f"rmdir of non-empty {p}"
            for q in [q for q in tree if q.startswith(p + "/")]:
                del tree[q]
        tree.pop(p, None)

    if a.op is Op.UPLOAD:
        assert remote.get(a.path) != DIRV
        remote[a.path] = local[a.path]
    elif a.op is Op.DOWNLOAD:
        assert local.get(a.path) != DIRV
        local[a.path] = remote[a.path]
    elif a.op is Op.MKDIR_REMOTE:
        remote[a.path] = DIRV
    elif a.op is Op.MKDIR_LOCAL:
        local[a.path] = DIRV
    elif a.op is Op.DELETE_REMOTE:
        drop(remote, a.path)
    elif a.op is Op.DELETE_LOCAL:
        drop(local, a.path)


BASES = [None, "B", DIRV]
SIDES = [None, "B", "X", "S", DIRV]


def _cases() -> list[tuple[str | None, str | None, str | None]]:
    out = []
    for base, lo, re_ in itertools.product(BASES, SIDES, SIDES):
        if (lo == "B" or re_ == "B") and base != "B":
            continue  # "B" means: unchanged since a file base
        out.append((base, lo, re_))
    return out


def _tree(value: str | None, side: str) -> Tree:
    if value is None:
        return {}
    if value == "X":
        return {"x": f"{side}-edit"}
    if value == "S":
        return {"x": "same-edit"}
    return {"x": value}


@pytest.mark.parametrize(("base", "lo", "re_"), _cases())
def test_two_way_table(base: str | None, lo: str | None, re_: str | None) -> None:
    local, remote, b = _tree(lo, "local"), _tree(re_, "remote"), _tree(base, "base")
    end_l, end_r, the_plan = simulate(local, remote, b)
    assert end_l == end_r, f"sides differ after sync: {end_l} vs {end_r} ({the_plan.actions})"
    unsynced = {c for c in (*local.values(), *remote.values()) if c not in (DIRV, "B")}
    assert unsynced <= set(end_l.values()), "an unsynced version was lost"
    if lo is not None and re_ is not None and lo != re_ and lo != "B" and re_ != "B" and \
            not (lo == re_ == DIRV) and lo != base and re_ != base:
        # a real clash: the remote's version keeps the name, the local one moves aside
        assert end_l.get("x") == remote["x"] or (end_l.get("x") == DIRV and remote["x"] == DIRV)
        copies = [p for p in end_l if "conflict" in p]
        assert copies, "both sides changed differently: a conflict copy must exist"
    if base == "B" and lo is None and re_ == "B":
        assert "x" not in end_l, "a local delete must propagate"
    if base == "B" and re_ is None and lo == "B":
        assert "x" not in end_r, "a remote delete must propagate"
    if base == "B" and lo is None and re_ == "X":
        assert end_l["x"] == "remote-edit", "a change beats a delete"
    if lo == re_ == "S":
        assert not the_plan.conflicts and not the_plan.transfers()


@pytest.mark.parametrize(("base", "lo", "re_"), _cases())
@pytest.mark.parametrize("mode", [Mode.UPLOAD, Mode.DOWNLOAD])
def test_mirror_modes(base: str | None, lo: str | None, re_: str | None, mode: Mode) -> None:
    local, remote, b = _tree(lo, "local"), _tree(re_, "remote"), _tree(base, "base")
    end_l, end_r, the_plan = simulate(local, remote, b, mode)
    assert end_l == end_r
    if mode is Mode.UPLOAD:
        assert end_l == local, "upload mode never touches local"
        assert not the_plan.of(Op.DOWNLOAD, Op.DELETE_LOCAL, Op.MKDIR_LOCAL, Op.CONFLICT)
    else:
        assert end_r == remote, "download mode never touches the remote"
        assert not the_plan.of(Op.UPLOAD, Op.DELETE_REMOTE, Op.MKDIR_REMOTE, Op.CONFLICT)


def test_folder_deleted_locally_while_remote_child_changed_survives() -> None:
    base = {"d": DIRV, "d/a": "A", "d/b": "B"}
    remote = {"d": DIRV, "d/a": "A2", "d/b": "B"}
    end_l, end_r, _ = simulate({}, remote, base)
    assert end_l == end_r == {"d": DIRV, "d/a": "A2"}


def test_folder_deleted_with_everything_folds_into_one_delete() -> None:
    base = {"d": DIRV, "d/a": "A", "d/s": DIRV, "d/s/b": "B"}
    end_l, end_r, the_plan = simulate({}, dict(base), base)
    assert end_l == end_r == {}
    deletes = the_plan.of(Op.DELETE_REMOTE)
    assert [(a.path, a.recursive) for a in deletes] == [("d", True)]


ASIDE = "d (conflict h 1970-01-01 000000)"


def test_a_folder_replaced_by_a_file_remotely_while_changed_inside_locally_is_a_clash() -> None:
    """Found by test_stateful: the remote file used to replace the local folder, and
    the unsynced d/c went with it. Now the local folder is renamed aside."""
    base = {"d": DIRV, "d/c": "C"}
    for inside in ({"d/c": "C2"}, {"d/c": "C", "d/e": DIRV, "d/e/f": "F"}):   # changed; new deeper down
        end_l, end_r, the_plan = simulate({"d": DIRV, **inside}, {"d": "FILE"}, base)
        assert end_l == end_r
        assert end_l == {"d": "FILE", ASIDE: DIRV, **{ASIDE + q[1:]: c for q, c in inside.items()}}
        assert not the_plan.of(Op.DELETE_LOCAL)


def test_a_folder_replaced_by_a_file_locally_while_changed_inside_remotely_is_a_clash() -> None:
    base = {"d": DIRV, "d/c": "C"}
    end_l, end_r, the_plan = simulate({"d": "FILE"}, {"d": DIRV, "d/c": "C2"}, base)
    assert end_l == end_r == {"d": DIRV, "d/c": "C2", ASIDE: "FILE"}
    assert not the_plan.of(Op.DELETE_REMOTE)


def test_a_folder_with_nothing_new_inside_is_replaced_by_the_other_sides_file() -> None:
    base = {"d": DIRV, "d/c": "C"}
    assert simulate({"d": DIRV, "d/c": "C"}, {"d": "FILE"}, base)[:2] == ({"d": "FILE"}, {"d": "FILE"})
    assert simulate({"d": "FILE"}, {"d": DIRV, "d/c": "C"}, base)[:2] == ({"d": "FILE"}, {"d": "FILE"})


def test_a_file_moved_into_a_folder_the_other_side_deleted_keeps_the_folder() -> None:
    """Found by test_stateful: b.txt moved locally into d while the remote
    deleted the (empty) d. The move lands remotely, so d stays on both sides;
    before, the remote's deletion of d was replayed locally and took d/c.txt."""
    base = {"d": DIRV, "b.txt": "B"}
    l, r, b, same = views({"d": DIRV, "d/c.txt": "B"}, {"b.txt": "B"}, base)
    l["d/c.txt"] = Entry(FILE, 1, b["b.txt"].mtime_ns, b["b.txt"].ino)   # same inode: a rename
    the_plan = plan(l, r, b, same)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_REMOTE, "b.txt", "d/c.txt")]
    assert not the_plan.of(Op.DELETE_LOCAL, Op.DELETE_REMOTE)
    assert [a.path for a in the_plan.of(Op.MKDIR_REMOTE)] == ["d"]


def test_a_remote_move_into_a_folder_deleted_locally_keeps_the_folder() -> None:
    base = {"d": DIRV, "b.txt": "B"}
    l, r, b, same = views({"b.txt": "B"}, {"d": DIRV, "d/c.txt": "B"}, base)
    r["d/c.txt"] = RemoteEntry("d/c.txt", Kind.FILE, b["b.txt"].rsize, b["b.txt"].rmtime_ns, "r", id=b["b.txt"].rid)
    the_plan = plan(l, r, b, same, remote_ids=True)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_LOCAL, "b.txt", "d/c.txt")]
    assert not the_plan.of(Op.DELETE_LOCAL, Op.DELETE_REMOTE)
    assert [a.path for a in the_plan.of(Op.MKDIR_LOCAL)] == ["d"]


def test_local_rename_is_a_remote_move() -> None:
    base = {"d": DIRV, "d/a": "A"}
    l, r, b, same = views({"d": DIRV, "d/z": "A"}, dict(base), base)
    l["d/z"] = Entry(FILE, 1, b["d/a"].mtime_ns, b["d/a"].ino)  # same inode: a rename
    the_plan = plan(l, r, b, same)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_REMOTE, "d/a", "d/z")]
    assert not the_plan.transfers() and not the_plan.of(Op.DELETE_REMOTE)


def test_folder_rename_is_one_move() -> None:
    base = {"d": DIRV, "d/a": "A", "d/b": "B"}
    l, r, b, same = views({}, dict(base), base)
    l = {"e": Entry(DIR, 0, 0, b["d"].ino),
         "e/a": Entry(FILE, 1, b["d/a"].mtime_ns, b["d/a"].ino),
         "e/b": Entry(FILE, 1, b["d/b"].mtime_ns, b["d/b"].ino)}
    the_plan = plan(l, r, b, same)
    assert [(m.path, m.dst) for m in the_plan.moves] == [("d", "e")]
    assert not [a for a in the_plan.actions if a.op not in (Op.RECORD, Op.FORGET)]


def test_remote_rename_is_a_local_move() -> None:
    base = {"a": "A"}
    l, r, b, same = views(dict(base), {}, base)
    r = {"z": RemoteEntry("z", Kind.FILE, 1, b["a"].rmtime_ns, b["a"].rrev, None, b["a"].rid)}
    the_plan = plan(l, r, b, same, remote_ids=True)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_LOCAL, "a", "z")]


def test_mtime_only_change_transfers_nothing() -> None:
    base = {"a": "A"}
    l, r, b, _ = views(dict(base), dict(base), base)
    l["a"] = l["a"]._replace(mtime_ns=l["a"].mtime_ns + 10)
    the_plan = plan(l, r, b, {"a": True})
    assert [a.op for a in the_plan.actions] == [Op.MTIME_REMOTE]


def test_remote_rename_without_ids_is_found_by_content_hash() -> None:
    base = {"a": "A"}
    l, r, b, same = views(dict(base), {}, base)
    b["a"] = b["a"]._replace(rhash="sha256:aa", rid=None)
    r = {"z": RemoteEntry("z", Kind.FILE, 1, b["a"].rmtime_ns, "other-rev", "sha256:aa", None)}
    the_plan = plan(l, r, b, same, remote_ids=False)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_LOCAL, "a", "z")]


def test_without_server_moves_a_local_rename_is_an_upload_and_a_delete() -> None:
    base = {"d": DIRV, "d/a": "A"}
    l, r, b, same = views({"d": DIRV, "d/z": "A"}, dict(base), base)
    l["d/z"] = Entry(FILE, 1, b["d/a"].mtime_ns, b["d/a"].ino)
    the_plan = plan(l, r, b, same, remote_moves=False)
    assert not the_plan.moves
    assert sorted((a.op, a.path) for a in the_plan.of(Op.UPLOAD, Op.DELETE_REMOTE)) == \
        sorted([(Op.DELETE_REMOTE, "d/a"), (Op.UPLOAD, "d/z")])


def test_mtimes_within_the_remote_precision_are_equal() -> None:
    base = {"a": "A"}
    l, r, b, _ = views(dict(base), dict(base), base)
    l["a"] = l["a"]._replace(mtime_ns=l["a"].mtime_ns + 400_000_000)
    assert [a.op for a in plan(l, r, b, {"a": True}, mtime_precision_ns=10**9).actions] == [Op.RECORD]
    assert [a.op for a in plan(l, r, b, {"a": True}).actions] == [Op.MTIME_REMOTE]


def test_a_move_waits_for_nothing_in_its_way() -> None:
    """A remote folder renamed onto the name of a local file (which the plan
    removes later) is not a move: moves run first and could not land."""
    base = {"a.txt": "A", "d": DIRV, "d/e": DIRV}
    l, r, b, same = views({"a.txt": "A", "d": DIRV, "d/e": DIRV}, {"a.txt": DIRV, "a.txt/e": DIRV, "b.txt": "A"},
                          base)
    r["a.txt/e"] = RemoteEntry("a.txt/e", Kind.DIR, id=b["d/e"].rid)
    the_plan = plan(l, r, b, same, remote_ids=True)
    assert not [m for m in the_plan.moves if m.dst.startswith("a.txt/")]


def _renamed(l: dict[str, Entry], b: dict[str, Base], old: str, new: str) -> None:
    """The local side renamed `old` to `new` (same inode, size and mtime)."""
    for p, row in b.items():  # views() gives every folder one inode
        if row.kind == DIR:
            b[p] = row._replace(ino=_ver(p) + 7)
    e = b[old]
    l.pop(old, None)
    l[new] = Entry(e.kind, e.size if e.kind == FILE else 0, e.mtime_ns if e.kind == FILE else 0, e.ino)


def test_a_file_moved_out_of_a_folder_renamed_on_the_same_side_moves_from_where_the_folder_went() -> None:
    """Found by test_stateful: d/e/f.txt renamed to b.txt, then d to x. The
    remote renames d first, so the file's move starts from x/e/f.txt."""
    base = {"d": DIRV, "d/e": DIRV, "d/e/f.txt": "F"}
    l, r, b, same = views({}, dict(base), base)
    l = {}
    _renamed(l, b, "d", "x")
    _renamed(l, b, "d/e", "x/e")
    _renamed(l, b, "d/e/f.txt", "b.txt")
    the_plan = plan(l, r, b, same)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_REMOTE, "d", "x"),
                                                                (Op.MOVE_REMOTE, "x/e/f.txt", "b.txt")]
    assert not [a for a in the_plan.actions if a.op not in (Op.RECORD, Op.FORGET)]


def test_a_remote_move_into_a_folder_renamed_locally_lands_where_the_rename_took_the_folder() -> None:
    """Found by test_stateful: the remote moved a.txt into d while d was renamed
    to x locally. The rename carries what d holds, so a.txt goes to x/c.txt
    (before: a download, a delete and an empty d left behind locally)."""
    base = {"a.txt": "A", "d": DIRV, "d/f": "F"}
    l, r, b, same = views({}, {"d": DIRV, "d/f": "F", "d/c.txt": "A"}, base)
    l = {"a.txt": Entry(FILE, 1, b["a.txt"].mtime_ns, b["a.txt"].ino)}
    _renamed(l, b, "d", "x")
    _renamed(l, b, "d/f", "x/f")
    r["d/c.txt"] = RemoteEntry("d/c.txt", Kind.FILE, b["a.txt"].rsize, b["a.txt"].rmtime_ns, "r", id=b["a.txt"].rid)
    the_plan = plan(l, r, b, same, remote_ids=True)
    assert [(m.op, m.path, m.dst) for m in the_plan.moves] == [(Op.MOVE_REMOTE, "d", "x"),
                                                                (Op.MOVE_LOCAL, "a.txt", "x/c.txt")]
    assert not [a for a in the_plan.actions if a.op not in (Op.RECORD, Op.FORGET)]


def test_a_move_into_a_folder_that_a_folder_move_brings_runs_after_it() -> None:
    """Locally d/g went to x, then a.txt into x: the remote renames d/g to x
    before a.txt goes into x (else a.txt's move would make an x that d/g's
    could not take)."""
    base = {"a.txt": "A", "d": DIRV, "d/g": DIRV, "d/g/f": "F"}
    l, r, b, same = views({}, dict(base), base)
    l = {}
    _renamed(l, b, "d", "d")
    _renamed(l, b, "d/g", "x")
    _renamed(l, b, "d/g/f", "x/f")
    _renamed(l, b, "a.txt", "x/a.txt")
    the_plan = plan(l, r, b, same)
    assert [(m.path, m.dst) for m in the_plan.moves] == [("d/g", "x"), ("a.txt", "x/a.txt")]
