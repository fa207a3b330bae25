"""The pure coalescer: per-path net effects, moves, safe-save patterns,
delete grace, own-write suppression, the adaptive quiet window, bursts.
No filesystem, no threads: a fake clock drives time."""

from __future__ import annotations

import time

from syncagent.agent.coalesce import Batch, Coalescer, Fingerprint


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make(**kw: object) -> tuple[Coalescer, Clock]:
    clock = Clock()
    return Coalescer(clock=clock, **kw), clock  # type: ignore[arg-type]


def settle(c: Coalescer, clock: Clock) -> Batch | None:
    """Jump to the deadline and take what is due."""
    due = c.deadline()
    if due is None:
        return c.take()
    clock.t = max(clock.t, due)
    return c.take()


def test_a_burst_on_one_file_is_one_dirty_path() -> None:
    c, clock = make()
    for kind in ("created", "modified", "modified", "closed", "modified", "closed"):
        c.add(kind, "notes.txt")
    assert settle(c, clock) == Batch(frozenset({"notes.txt"}))
    assert c.take() is None and c.deadline() is None


def test_nothing_before_the_quiet_window_then_the_batch() -> None:
    c, clock = make(quiet=0.05)
    c.add("modified", "a.txt")
    assert c.deadline() == clock.t + c.quiet_window()
    clock.advance(0.03)
    assert c.take() is None
    c.add("modified", "b.txt")            # a new event restarts the window
    clock.advance(0.04)
    assert c.take() is None
    clock.advance(0.03)
    assert c.take() == Batch(frozenset({"a.txt", "b.txt"}))


def test_the_quiet_window_widens_under_a_burst_up_to_its_cap() -> None:
    c, _ = make(quiet=0.05, quiet_max=1.5, burst=100)
    c.add("modified", "one")
    lone = c.quiet_window()
    for i in range(1000):
        c.add("modified", f"f{i}")
    wide = c.quiet_window()
    for i in range(100_000):
        c.add("modified", f"g{i % 10}")
    assert lone < 0.06 < wide < 1.5 and c.quiet_window() == 1.5


def test_endless_activity_still_yields_a_batch_after_max_delay() -> None:
    c, clock = make(quiet=0.05, max_delay=2.0)
    for _ in range(100):
        c.add("modified", "app.log")
        clock.advance(0.03)               # never quiet for 50 ms
        if clock.t < 1002.0:
            assert c.take() is None
    assert c.take() == Batch(frozenset({"app.log"}))


def test_a_move_marks_source_and_destination() -> None:
    c, clock = make(delete_grace=0)
    c.add("moved", "old/name.txt", "new/name.txt")
    assert settle(c, clock) == Batch(frozenset({"old/name.txt", "new/name.txt"}))
    c.add("moved_from", "dir/a", is_dir=True)       # the halves, unpaired or not
    c.add("moved_to", "dir/b", is_dir=True)
    assert settle(c, clock) == Batch(frozenset({"dir/a", "dir/b"}))


def test_safe_save_write_temp_then_rename_over_is_one_update() -> None:
    c, clock = make()
    c.add("created", ".doc.txt.swp")
    c.add("modified", ".doc.txt.swp")
    c.add("closed", ".doc.txt.swp")
    c.add("moved", ".doc.txt.swp", "doc.txt")
    assert settle(c, clock) == Batch(frozenset({"doc.txt"}))


def test_safe_save_backup_rename_then_new_file() -> None:
    """vim/emacs: doc.txt -> doc.txt~, write a new doc.txt, remove the backup.
    The backup name may be reported: it is in no base, so the engine does
    nothing with it; doc.txt is an update, never a deletion."""
    c, clock = make()
    c.add("moved", "doc.txt", "doc.txt~")
    c.add("created", "doc.txt")
    c.add("modified", "doc.txt")
    c.add("deleted", "doc.txt~")
    batch = settle(c, clock)
    assert batch is not None and "doc.txt" in batch.paths and batch.paths <= {"doc.txt", "doc.txt~"}


def test_delete_then_recreate_is_one_update_even_if_slow() -> None:
    c, clock = make(quiet=0.05, delete_grace=0.5)
    c.add("deleted", "report.odt")
    clock.advance(0.2)                    # quiet window passed, the grace has not
    assert c.take() is None
    assert c.deadline() == 1000.0 + 0.5
    c.add("created", "report.odt")
    c.add("modified", "report.odt")
    assert settle(c, clock) == Batch(frozenset({"report.odt"}))


def test_a_real_delete_goes_after_its_grace_and_others_do_not_wait() -> None:
    c, clock = make(quiet=0.05, delete_grace=0.5)
    c.add("deleted", "gone.txt")
    c.add("modified", "kept.txt")
    clock.advance(0.1)
    assert c.take() == Batch(frozenset({"kept.txt"}))
    assert c.take() is None
    clock.advance(0.4)
    assert c.take() == Batch(frozenset({"gone.txt"}))


def test_a_transient_file_is_not_reported() -> None:
    c, clock = make()
    c.add("created", ".~lock.report.odt#")
    c.add("modified", ".~lock.report.odt#")
    c.add("deleted", ".~lock.report.odt#")
    assert settle(c, clock) is None and c.pending() == 0


def test_the_agents_temp_files_and_noise_are_dropped() -> None:
    c, clock = make()
    c.add("created", "sub/.syncagent-p1-abc.tmp")
    c.add("modified", "sub/.syncagent-p1-abc.tmp")
    c.add("opened", "sub/x")
    c.add("closed_no_write", "sub/x")
    c.add("modified", "sub", is_dir=True)
    assert settle(c, clock) is None
    c.add("moved", "sub/.syncagent-p1-abc.tmp", "sub/x")
    assert settle(c, clock) == Batch(frozenset({"sub/x"}))


def test_own_writes_are_dropped_inside_their_window() -> None:
    c, clock = make(own_window=2.0)
    c.expect_write("dl.bin")
    c.add("moved", ".syncagent-1.tmp", "dl.bin")
    c.add("modified", "user.txt")
    assert settle(c, clock) == Batch(frozenset({"user.txt"}))
    clock.advance(3.0)                    # the window is over: a later edit counts
    c.add("modified", "dl.bin")
    assert settle(c, clock) == Batch(frozenset({"dl.bin"}))


def test_own_writes_with_a_fingerprint_keep_a_users_later_edit() -> None:
    disk: dict[str, Fingerprint] = {"dl.bin": (10, 111, 7)}
    clock = Clock()
    c = Coalescer(clock=clock, own_window=2.0, fingerprint=disk.get)
    c.expect_write("dl.bin")
    c.add("moved", ".syncagent-1.tmp", "dl.bin")
    c.wrote("dl.bin")
    c.add("closed", "dl.bin")             # late event of our own write
    assert settle(c, clock) is None
    disk["dl.bin"] = (12, 222, 7)         # the user saves over it within the window
    c.add("modified", "dl.bin")
    assert settle(c, clock) == Batch(frozenset({"dl.bin"}))
    c.add("modified", "dl.bin")           # and the expectation is gone for good
    assert settle(c, clock) == Batch(frozenset({"dl.bin"}))


def test_a_rescan_is_a_batch_of_its_own_kind() -> None:
    c, clock = make()
    c.add("modified", "a")
    c.rescan()
    c.add("deleted", "b")                 # deletions are not held back before a rescan
    assert settle(c, clock) == Batch(frozenset({"a", "b"}), rescan=True)
    c.rescan()
    assert settle(c, clock) == Batch(frozenset(), rescan=True)


def test_a_burst_of_20000_events_costs_well_under_a_second_of_cpu() -> None:
    c, clock = make()
    start = time.process_time()
    for i in range(20_000):
        path = f"d{i % 50}/f{i % 5000}.txt"
        c.add("created" if i < 5000 else "modified", path, now=clock.t + i * 1e-5)
    clock.advance(2.0)
    batch = c.take()
    cpu = time.process_time() - start
    assert batch is not None and len(batch.paths) == 5000
    assert cpu < 0.5, f"{cpu:.3f} s of CPU for 20,000 events"
    print(f"20,000 events -> 5,000 paths in {cpu * 1000:.1f} ms CPU")
