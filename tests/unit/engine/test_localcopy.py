"""Staging local files into a local folder by their paths (engine/localcopy.py):
the native batch and its Python twin do the same, and neither lets a file
that is not the scanned one, or that changed while it was copied, through."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from syncagent import errors
from syncagent.engine import localcopy, safedirs
from syncagent.engine.localside import FSYNC_EACH_UP_TO, LocalSide, LocalStaged
from syncagent.engine.report import Reporter, Summary
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import ANY, Expect, LocalSource, StagedWrite
from syncagent.providers.local import LocalProvider
from tests.helpers import age_files, tree, write


@pytest.fixture(params=["native", "python"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs on the native batch and on the Python twin."""
    if request.param == "native":
        if localcopy.native() is None:
            pytest.skip("the native staging module is not built here")
    else:
        monkeypatch.setattr(localcopy, "_loaded", [None])
    yield request.param


def _source(src: Path, target: str, *, expect: Expect = None, seen: dict[str, int] | None = None) -> LocalSource:
    st = src.stat()
    values = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino, **(seen or {})}
    return LocalSource(target, str(src), values["size"], values["mtime_ns"], values["ino"], expect)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_copies_are_staged_then_committed_with_the_sources_bytes_and_times(tmp_path: Path,
                                                                             path_kind: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / f"d{i % 3}" / f"f{i}.bin", os.urandom(i * 37)) for i in range(40)]
    age_files(src)
    for i in range(3):
        (dst / f"d{i}").mkdir(parents=True)
    side = LocalSide(dst)
    sources = [_source(f, f"{f.parent.name}/{f.name}") for f in files]
    staged = side.stage_copies(sources)
    assert all(isinstance(s, StagedWrite) for s in staged)
    assert all(not (dst / s.path).exists() for s in sources), "staged files are not visible yet"
    side.flush()
    for s, w in zip(sources, staged, strict=True):
        assert isinstance(w, StagedWrite)
        entry = w.commit()
        st = (dst / s.path).stat()
        assert entry.rev == f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"
        assert st.st_mtime_ns == s.mtime_ns and st.st_size == s.size
    assert tree(src) == tree(dst)
    assert all(not n.startswith(".syncagent-") for d in dst.iterdir() for n in _names(d))


@pytest.mark.parametrize("seen", [{"size": 1}, {"mtime_ns": 1}, {"ino": 1}])
def test_a_file_that_is_not_the_scanned_one_is_refused(tmp_path: Path, path_kind: str,
                                                        seen: dict[str, int]) -> None:
    """Size (it grew or shrank), mtime or inode other than the scan saw: Conflict, no temp left."""
    src = write(tmp_path / "src" / "a.txt", "some words")
    (tmp_path / "dst").mkdir()
    side = LocalSide(tmp_path / "dst")
    [result] = side.stage_copies([_source(src, "a.txt", seen=seen)])
    assert isinstance(result, errors.Conflict)
    assert _names(tmp_path / "dst") == []


def test_a_source_that_is_a_link_is_not_followed(tmp_path: Path, path_kind: str) -> None:
    real = write(tmp_path / "secret.txt", "not for the remote")
    link = tmp_path / "src" / "a.txt"
    link.parent.mkdir()
    link.symlink_to(real)
    (tmp_path / "dst").mkdir()
    side = LocalSide(tmp_path / "dst")
    seen = real.stat()   # what a scan that followed the link would have seen
    [result] = side.stage_copies([LocalSource("a.txt", str(link), seen.st_size, seen.st_mtime_ns, seen.st_ino,
                                              None)])
    assert isinstance(result, errors.ProviderError)
    assert _names(tmp_path / "dst") == []


def test_a_missing_source_or_folder_fails_alone(tmp_path: Path, path_kind: str) -> None:
    good = write(tmp_path / "src" / "ok.txt", "fine")
    gone = write(tmp_path / "src" / "gone.txt", "soon gone")
    (tmp_path / "dst").mkdir()
    sources = [_source(gone, "gone.txt"), _source(good, "ok.txt"),
               _source(good, "nofolder/ok.txt")]
    gone.unlink()
    side = LocalSide(tmp_path / "dst")
    results = side.stage_copies(sources)
    assert isinstance(results[0], errors.NotFound) and isinstance(results[2], errors.NotFound)
    assert isinstance(results[1], StagedWrite)
    results[1].commit()
    assert _names(tmp_path / "dst") == ["ok.txt"]


def test_a_folder_replaced_by_a_link_after_it_was_opened_is_not_written_through(tmp_path: Path,
                                                                              path_kind: str) -> None:
    """The kept descriptor of d/ is checked at every use: once d is a link, the
    file is walked to again from the root, which refuses the link."""
    src = write(tmp_path / "src" / "a.txt", "data")
    dst, elsewhere = tmp_path / "dst", tmp_path / "elsewhere"
    (dst / "d").mkdir(parents=True)
    elsewhere.mkdir()
    side = LocalSide(dst)
    [first] = side.stage_copies([_source(src, "d/a.txt")])   # d/ is opened and kept
    assert isinstance(first, StagedWrite)
    first.abort()
    (dst / "d").rename(tmp_path / "old-d")
    (dst / "d").symlink_to(elsewhere)
    [second] = side.stage_copies([_source(src, "d/b.txt")])
    assert isinstance(second, safedirs.LinkInTheWay)
    assert _names(elsewhere) == [] and _names(tmp_path / "old-d") == []


def test_a_folder_replaced_while_its_run_is_copied_takes_the_run_back(tmp_path: Path) -> None:
    """The native loop checks a folder before and after its run of files: a
    folder renamed away in the middle of the run (here while the run's first
    source, a pipe, waits for its bytes) leaves no temp in the old folder, and
    every file of the run is STALE (the engine walks to the new folder)."""
    module = localcopy.native()
    if module is None:
        pytest.skip("the native staging module is not built here")
    folder, old = tmp_path / "dst" / "d", tmp_path / "old-d"
    folder.mkdir(parents=True)
    pipe = tmp_path / "src" / "pipe"
    pipe.parent.mkdir()
    os.mkfifo(pipe)
    plain = write(tmp_path / "src" / "b.txt", "bytes")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    here = os.fstat(fd)
    st = plain.stat()
    jobs = [(str(pipe), os.fsencode(folder), fd, here.st_dev, here.st_ino, "t1", 0, 0, 0, False),
            (str(plain), os.fsencode(folder), fd, here.st_dev, here.st_ino, "t2", st.st_size, st.st_mtime_ns,
             st.st_ino, True)]

    def replace_the_folder_mid_run() -> None:
        deadline = time.monotonic() + 10
        while True:   # the pipe opens for writing once the copy has opened it for reading
            try:
                writer = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.005)
        folder.rename(old)
        folder.mkdir()
        os.write(writer, b"late")
        os.close(writer)

    helper = threading.Thread(target=replace_the_folder_mid_run)
    helper.start()
    try:
        done = module.stage_copies(jobs, 1)
    finally:
        helper.join()
        os.close(fd)
    assert [status for status, *_ in done] == [module.STALE, module.STALE]
    assert _names(old) == [] and _names(folder) == []


def test_a_name_that_appeared_meanwhile_is_not_overwritten(tmp_path: Path, path_kind: str) -> None:
    src = write(tmp_path / "src" / "a.txt", "ours")
    (tmp_path / "dst").mkdir()
    side = LocalSide(tmp_path / "dst")
    [staged] = side.stage_copies([_source(src, "a.txt", expect=None)])
    assert isinstance(staged, StagedWrite)
    write(tmp_path / "dst" / "a.txt", "theirs")
    with pytest.raises(errors.Conflict):
        staged.commit()
    assert (tmp_path / "dst" / "a.txt").read_text() == "theirs"
    assert _names(tmp_path / "dst") == ["a.txt"]


def _staged_batch(side: LocalSide, sources: list[LocalSource]) -> list[StagedWrite]:
    staged = side.stage_copies(sources)
    assert all(isinstance(w, StagedWrite) for w in staged)
    side.flush()
    return [w for w in staged if isinstance(w, StagedWrite)]


def test_a_batch_is_committed_at_once_across_folders(tmp_path: Path, path_kind: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    module = localcopy.native()
    if module is not None:
        real = module.commit_renames

        def counted(jobs: list[tuple[object, ...]], threads: int) -> list[int]:
            calls.append(len(jobs))
            return list(real(jobs, threads))

        monkeypatch.setattr(module, "commit_renames", counted)
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / f"d{i % 4}" / f"f{i}.bin", os.urandom(i * 11)) for i in range(60)]
    files.append(write(src / "top.txt", "at the root"))
    age_files(src)
    for i in range(4):
        (dst / f"d{i}").mkdir(parents=True)
    side = LocalSide(dst)
    sources = [_source(f, f.relative_to(src).as_posix()) for f in files]
    staged = _staged_batch(side, sources)
    results = side.commit_staged(staged)
    for s, w, r in zip(sources, staged, results, strict=True):
        assert r == w.entry and not isinstance(r, Exception)
        st = (dst / s.path).stat()
        assert r.rev == f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"
    assert tree(src) == tree(dst)
    assert all(not n.startswith(".syncagent-") for d in dst.rglob("*") for n in [d.name])
    assert not side._unflushed
    assert calls == ([61] if path_kind == "native" else []), "the native path renames the whole batch in one call"


def test_names_that_are_not_utf8_are_copied_and_committed_byte_for_byte(tmp_path: Path, path_kind: str) -> None:
    """The module encodes the names as os.fsencode does (an undecodable byte
    travels as its surrogate escape and comes back as the same byte)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (dst / "d").mkdir(parents=True)
    raw = [b"caf\xe9.txt", b"plain.txt", "\u00e9t\u00e9.txt".encode()]
    files = [write(src / os.fsdecode(name), name) for name in raw]
    side = LocalSide(dst)
    staged = _staged_batch(side, [_source(f, f"d/{f.name}") for f in files])
    results = side.commit_staged(staged)
    assert all(r == w.entry for r, w in zip(results, staged, strict=True))
    assert sorted(os.listdir(os.fsencode(dst / "d"))) == sorted(raw)
    assert all((dst / "d" / os.fsdecode(n)).read_bytes() == n for n in raw)


def test_a_batch_commit_keeps_a_name_that_appeared_and_commits_the_rest(tmp_path: Path, path_kind: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / "d" / f"f{i}.txt", f"ours {i}") for i in range(5)]
    (dst / "d").mkdir(parents=True)
    side = LocalSide(dst)
    staged = _staged_batch(side, [_source(f, f"d/{f.name}", expect=None) for f in files])
    write(dst / "d" / "f2.txt", "theirs")
    results = side.commit_staged(staged)
    assert isinstance(results[2], errors.Conflict)
    assert all(r == w.entry for i, (r, w) in enumerate(zip(results, staged, strict=True)) if i != 2)
    assert (dst / "d" / "f2.txt").read_text() == "theirs"
    assert _names(dst / "d") == [f"f{i}.txt" for i in range(5)], "the refused temp is removed"


def test_a_batch_commit_overwrites_only_where_it_may(tmp_path: Path, path_kind: str) -> None:
    """expect=ANY overwrites; expect=a version renames only over that version."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    a, b, c = (write(src / n, f"new {n}") for n in ("a.txt", "b.txt", "c.txt"))
    old_b = write(dst / "b.txt", "old b")
    write(dst / "a.txt", "old a")
    write(dst / "c.txt", "old c")
    st = old_b.stat()
    side = LocalSide(dst)
    staged = _staged_batch(side, [_source(a, "a.txt", expect=ANY),
                                  _source(b, "b.txt", expect=f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"),
                                  _source(c, "c.txt", expect="1-2-3")])
    results = side.commit_staged(staged)
    assert results[0] == staged[0].entry and results[1] == staged[1].entry
    assert isinstance(results[2], errors.Conflict)
    assert [(dst / n).read_text() for n in ("a.txt", "b.txt", "c.txt")] == ["new a.txt", "new b.txt", "old c"]
    assert _names(dst) == ["a.txt", "b.txt", "c.txt"]


def test_a_batch_commit_does_not_rename_through_a_folder_replaced_by_a_link(tmp_path: Path, path_kind: str) -> None:
    src, dst, elsewhere = tmp_path / "src", tmp_path / "dst", tmp_path / "elsewhere"
    files = [write(src / n, n) for n in ("x.txt", "y.txt")]
    (dst / "d").mkdir(parents=True)
    (dst / "e").mkdir()
    elsewhere.mkdir()
    side = LocalSide(dst)
    staged = _staged_batch(side, [_source(files[0], "d/x.txt"), _source(files[1], "e/y.txt")])
    (dst / "d").rename(tmp_path / "old-d")
    (dst / "d").symlink_to(elsewhere)
    results = side.commit_staged(staged)
    assert isinstance(results[0], errors.ProviderError)
    assert results[1] == staged[1].entry and (dst / "e" / "y.txt").read_text() == "y.txt"
    assert _names(elsewhere) == []
    assert not (tmp_path / "old-d" / "x.txt").exists()


def test_a_batch_commit_into_a_removed_folder_fails_for_its_files_alone(tmp_path: Path, path_kind: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / n, n) for n in ("x.txt", "y.txt", "z.txt")]
    (dst / "gone").mkdir(parents=True)
    side = LocalSide(dst)
    staged = _staged_batch(side, [_source(files[0], "gone/x.txt"), _source(files[1], "gone/y.txt"),
                                  _source(files[2], "z.txt")])
    import shutil

    shutil.rmtree(dst / "gone")
    results = side.commit_staged(staged)
    assert isinstance(results[0], errors.NotFound) and isinstance(results[1], errors.NotFound)
    assert results[2] == staged[2].entry
    assert _names(dst) == ["z.txt"]


def test_a_file_written_to_while_it_is_copied_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python twin's copy, with a write landing in the middle of it (the
    native loop runs the same check: the source's descriptor after the copy)."""
    monkeypatch.setattr(localcopy, "_loaded", [None])
    src = write(tmp_path / "src" / "a.txt", "first words")
    (tmp_path / "dst").mkdir()
    from syncagent.fileio import copy_range as real

    def copy_while_typing(fd_in: int, out: int, limit: int) -> int:
        n = real(fd_in, out, limit)
        with open(src, "ab") as f:
            f.write(b" and more")
        return n

    monkeypatch.setattr(localcopy, "copy_range", copy_while_typing)
    [result] = LocalSide(tmp_path / "dst").stage_copies([_source(src, "a.txt")])
    assert isinstance(result, errors.Conflict)
    assert _names(tmp_path / "dst") == []


def test_a_big_batch_is_flushed_while_it_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   path_kind: str) -> None:
    """The early syncfs runs beside a big native batch; the flush that makes the
    batch durable before any rename is still the caller's (it stays needed)."""
    calls: list[str] = []
    monkeypatch.setattr(localcopy, "syncfs", lambda root: calls.append(str(root)))
    monkeypatch.setattr(localcopy, "EARLY_FLUSH_EVERY", 0.0)
    files = [write(tmp_path / "src" / f"f{i}", b"x" * i) for i in range(FSYNC_EACH_UP_TO + 1)]
    (tmp_path / "dst").mkdir()
    side = LocalSide(tmp_path / "dst")
    staged = side.stage_copies([_source(f, f.name) for f in files])
    assert all(isinstance(s, StagedWrite) for s in staged)
    assert len(side._unflushed) == len(files), "every temp waits for the flush before its rename"
    if path_kind == "native":
        assert calls and set(calls) == {str(tmp_path / "dst")}


class TypedDuringCopy(LocalProvider):
    """Appends to a source file just before the batch copy reads it."""

    victim: Path | None = None

    def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception]:
        if self.victim is not None:
            with open(self.victim, "ab") as f:
                f.write(b" and more typed meanwhile")
        return super().stage_copies(sources)


def _sync(local: Path, provider: LocalProvider, store: Store) -> Summary:
    return Engine(local, provider, "x", store, SyncOptions(), Reporter(out=io.StringIO())).sync()


def test_the_engine_leaves_a_file_changed_before_its_copy_for_the_next_run(tmp_path: Path, path_kind: str) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    for i in range(30):
        write(local / f"d{i % 2}" / f"f{i}.txt", f"file {i}")
    age_files(local)
    provider = TypedDuringCopy(remote)
    provider.victim = local / "d1" / "f7.txt"
    store = Store(tmp_path / "s")
    try:
        first = _sync(local, provider, store)
        assert first.uploaded == 29 and first.changed_during_run == 1 and first.exit_code == 0
        assert not (remote / "d1" / "f7.txt").exists()
        provider.victim = None
        again = _sync(local, provider, store)
    finally:
        store.close()
    assert again.uploaded == 1 and tree(local) == tree(remote)


def test_the_install_built_the_staging_module_where_it_can() -> None:
    import shutil
    import sysconfig

    if os.environ.get("SYNCAGENT_NATIVE") == "0":
        pytest.skip("SYNCAGENT_NATIVE=0 asks for the pure-Python path")
    if not (Path(sysconfig.get_paths()["include"], "Python.h").exists() and shutil.which("cc")):
        pytest.skip("no C compiler or Python headers here: the Python twin is the one that runs")
    assert localcopy.native() is not None, "a compiler and Python.h are here but `pip install` did not build _stage.c"


# A libc `syscall` that refuses renameat2 as a file system without it does
# (EINVAL), and passes every other call on: the native commit must fall back
# to looking first and renaming plainly, with the same outcomes.
_NO_RENAMEAT2 = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>
long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_renameat2) {
        static const char said[] = "renameat2 refused\n";
        (void)!write(2, said, sizeof said - 1);
        errno = EINVAL;
        return -1;
    }
    long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""

_FALLBACK_PROBE = """
import os, sys
from pathlib import Path
from syncagent import errors
from syncagent.engine import localcopy
from syncagent.engine.localside import LocalSide
from syncagent.providers.base import LocalSource
assert localcopy.native() is not None
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(src.iterdir())
side = LocalSide(dst)
sources = []
for f in files:
    st = f.stat()
    sources.append(LocalSource(f.name, str(f), st.st_size, st.st_mtime_ns, st.st_ino, None))
staged = side.stage_copies(sources)
side.flush()
(dst / "f2.txt").write_text("theirs")
results = side.commit_staged(staged)
print(" ".join("conflict" if isinstance(r, errors.Conflict) else "error" if isinstance(r, Exception) else "ok"
               for r in results))
"""


def test_a_file_system_without_rename_noreplace_gets_a_look_then_a_plain_rename(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    if localcopy.native() is None or not shutil.which("cc"):
        pytest.skip("the native module or a C compiler is missing here")
    (tmp_path / "shim.c").write_text(_NO_RENAMEAT2)
    shim = tmp_path / "shim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(tmp_path / "shim.c"), "-ldl"], check=True)
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(5):
        write(src / f"f{i}.txt", f"ours {i}")
    dst.mkdir()
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    probe = subprocess.run([sys.executable, "-c", _FALLBACK_PROBE, str(src), str(dst)], env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stderr.count("renameat2 refused") >= 1, "the shim refused renameat2: the plain way ran"
    assert probe.stdout.split() == ["ok", "ok", "conflict", "ok", "ok"]
    assert (dst / "f2.txt").read_text() == "theirs"
    assert sorted(p.name for p in dst.iterdir()) == [f"f{i}.txt" for i in range(5)]
    assert all((dst / f"f{i}.txt").read_text() == f"ours {i}" for i in (0, 1, 3, 4))


def test_a_prepared_batch_copies_on_another_thread_and_is_made_on_the_callers(tmp_path: Path) -> None:
    """prepare_copies splits a native batch: temps named before it runs, only
    the copying (and noting them for the next flush, once written) on the
    staging thread, the staged writes made back on the caller's thread."""
    if localcopy.native() is None:
        pytest.skip("the native staging module is not built here")
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / f"d{i % 2}" / f"f{i}.bin", os.urandom(100 + i)) for i in range(30)]
    age_files(src)
    for i in range(2):
        (dst / f"d{i}").mkdir(parents=True)
    side = LocalSide(dst)
    batch = side.prepare_copies([_source(f, f"{f.parent.name}/{f.name}") for f in files])
    assert isinstance(batch, localcopy.NativeCopies)
    assert not side._unflushed, "a flush begun before they are written must not take them for flushed"
    ran: list[bool] = []
    copier = threading.Thread(target=lambda: ran.append(batch.run()))
    copier.start()
    copier.join()
    assert ran == [True]
    assert len(side._unflushed) == 30, "noted once written: the flush after the copy covers them"
    side.flush()
    staged = [s for s in batch.results() if isinstance(s, StagedWrite)]
    assert len(staged) == 30
    assert all(not isinstance(e, Exception) for e in side.commit_staged(staged))
    assert tree(src) == tree(dst) and not side._unflushed


def test_a_prepared_batch_never_run_lets_go_of_its_folders(tmp_path: Path) -> None:
    if localcopy.native() is None:
        pytest.skip("the native staging module is not built here")
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / "d" / f"f{i}.bin", b"x" * i) for i in range(5)]
    (dst / "d").mkdir(parents=True)
    side = LocalSide(dst)
    batch = side.prepare_copies([_source(f, f"d/{f.name}") for f in files])
    assert isinstance(batch, localcopy.NativeCopies) and batch._folders is not None
    batch.close()
    assert not side._unflushed and batch._folders is None, "the folders it was lent are given back"
    assert _names(dst / "d") == [], "nothing was written"


def test_a_subclass_that_stages_its_own_way_is_called(tmp_path: Path) -> None:
    class Own(LocalSide):
        def stage_copies(self, sources: Sequence[LocalSource]) -> Sequence[StagedWrite | Exception]:
            called.append(len(sources))
            return super().stage_copies(sources)

    called: list[int] = []
    src = write(tmp_path / "src" / "a.txt", b"a")
    (tmp_path / "dst").mkdir()
    side = Own(tmp_path / "dst")
    batch = side.prepare_copies([_source(src, "a.txt")])
    assert batch.run() and called == [1]
    assert len(batch.results()) == 1


def test_files_staged_again_after_their_folder_was_replaced_are_flushed_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder replaced between a batch's making and its copy: those files are
    staged again on the caller's thread, after the batch's own flush may have
    begun, so they are made durable there and then."""
    if localcopy.native() is None:
        pytest.skip("the native staging module is not built here")
    src, dst = tmp_path / "src", tmp_path / "dst"
    files = [write(src / f"f{i}.bin", os.urandom(50 + i)) for i in range(3)]
    (dst / "d").mkdir(parents=True)
    side = LocalSide(dst)
    batch = side.prepare_copies([_source(f, f"d/{f.name}") for f in files])
    (dst / "d").rename(tmp_path / "old-d")
    (dst / "d").mkdir()
    assert batch.run()
    flushed: list[set[tuple[str, str]]] = []
    real = LocalSide._flush

    def noted(self: LocalSide, staged: set[tuple[str, str]]) -> None:
        flushed.append(set(staged))
        real(self, staged)

    monkeypatch.setattr(LocalSide, "_flush", noted)
    staged = [s for s in batch.results() if isinstance(s, LocalStaged)]
    assert len(staged) == 3
    assert {s.staged for s in staged} <= set().union(*flushed) and not side._unflushed
    assert all(not isinstance(e, Exception) for e in side.commit_staged(staged))
    assert sorted(p.name for p in (dst / "d").iterdir()) == [f.name for f in files]
