"""The manifest's merge: order-free, nothing one writer did is lost to another's concurrent write."""

from __future__ import annotations

import itertools

from syncagent.providers.metadisk import manifest as mf
from syncagent.providers.metadisk.manifest import DIR, FILE, GONE, Item, Manifest, merge, overlay, successor


def f(v: str, h: str, *, a: tuple[str, ...] = (), t: float = 1.0, w: str = "host-a", i: str = "id") -> Item:
    return Item(FILE, v, a, i, h, 3, 1_000_000_000, w, t)


def doc(**items: Item) -> Manifest:
    return Manifest(1, (), {k.replace("__", "/"): v for k, v in items.items()})


def test_a_successor_supersedes_what_it_replaced() -> None:
    old = f("001-a", "h1")
    new = successor(old, FILE, now=2.0, writer="host-b", h="h2", s=3, m=0)
    assert new.a[0] == "001-a" and new.i == old.i
    merged = merge([doc(x=old), doc(x=new)])
    assert merged.items["x"] == new
    gone = successor(new, GONE, now=3.0, writer="host-a")
    assert merge([doc(x=new), doc(x=gone)]).items["x"].kind == GONE


def test_merge_is_order_free_and_writes_the_same_bytes() -> None:
    docs = [doc(a=f("001-a", "h1"), b=f("002-b", "h2", w="host-b", t=2.0)),
            doc(a=f("003-a", "h3", t=3.0), c=Item(DIR, "004-c", (), "d")),
            doc(b=Item(GONE, "005-b", ("002-b",), "id", t=5.0))]
    outputs = {merge(list(p)).encode() for p in itertools.permutations(docs)}
    assert len(outputs) == 1


def test_concurrent_different_content_keeps_both() -> None:
    base = f("001-a", "h0")
    mine = successor(base, FILE, now=10.0, writer="laptop", h="h1", s=1, m=0)
    theirs = successor(base, FILE, now=20.0, writer="desktop", h="h2", s=2, m=0)
    merged = merge([doc(**{"d__x.txt": mine}), doc(**{"d__x.txt": theirs})]).live()
    assert merged["d/x.txt"].h == "h2"                      # the newer keeps the name
    copies = [p for p in merged if "conflict" in p]
    assert copies == ["d/x (conflict laptop 1970-01-01 000010).txt"] and merged[copies[0]].h == "h1"
    again = merge([Manifest(items=merged), doc(**{"d__x.txt": mine})])   # a stale head later: no new copy
    assert sorted(again.live()) == sorted(merged)


def test_equal_content_folds_and_a_change_beats_a_delete() -> None:
    base = f("001-a", "h0")
    one = successor(base, FILE, now=5.0, writer="a", h="h1", s=1, m=0)
    two = successor(base, FILE, now=6.0, writer="b", h="h1", s=1, m=0)
    assert list(merge([doc(x=one), doc(x=two)]).live()) == ["x"]
    edit = successor(base, FILE, now=5.0, writer="a", h="h9", s=1, m=0)
    delete = successor(base, GONE, now=9.0, writer="b")
    merged = merge([doc(x=edit), doc(x=delete)])
    assert merged.items["x"].h == "h9" and merged.items["x"].live


def test_a_folder_deleted_while_a_file_was_added_inside_keeps_the_file() -> None:
    folder = Item(DIR, "001-d", (), "d")
    deleted = merge([doc(d=successor(folder, GONE, now=2.0, writer="a"))])
    added = doc(d=folder, d__new=f("002-n", "h1"))
    merged = merge([deleted, added]).live()
    assert "d/new" in merged       # the folder is implied by what lies in it


def test_a_file_where_a_folder_is_needed_goes_aside() -> None:
    merged = merge([doc(x=f("001-a", "h1", w="a")), doc(x=Item(DIR, "002-d", (), "d"), x__y=f("003-y", "h2"))])
    live = merged.live()
    assert live["x"].kind == DIR and live["x/y"].h == "h2"
    assert [p for p in live if p.startswith("x (conflict")]


def test_overlay_applies_local_changes_and_round_trips() -> None:
    base = {"a": f("001-a", "h0")}
    change = {"a": successor(base["a"], FILE, now=2.0, writer="x", h="h1", s=1, m=0)}
    assert overlay(base, change)["a"].h == "h1" and overlay(base, {}) == base
    m = Manifest(3, ("p1", "p2"), overlay(base, change), {"h0": 12.5})
    back = Manifest.decode(m.encode())
    assert back == Manifest(3, ("p1", "p2"), m.items, {"h0": 12.5})
    assert mf.is_manifest_name(mf.manifest_filename(3, "my host/é"))
