"""Content identity: a first sync onto files already there moves nothing and
makes no conflict copy, whatever hash the remote offers (or none)."""

from __future__ import annotations

import io
from pathlib import Path

import requests

from syncagent.engine.report import Reporter
from syncagent.engine.state import Store
from syncagent.engine.sync import Engine, SyncOptions
from syncagent.providers.base import Capabilities
from syncagent.providers.local import LocalProvider
from tests.emulators.fixtures import KEY, PASSWORD, smartfile_setup
from tests.helpers import tree, write


def _engine(local: Path, provider: LocalProvider | object, state: Path, **options: object) -> tuple[Engine, Store]:
    store = Store(state)
    return Engine(local, provider, "x", store, SyncOptions(**options),  # type: ignore[arg-type]
                  Reporter(out=io.StringIO(), err=io.StringIO())), store


class NoHashNoDelta(LocalProvider):
    """A folder that offers no content hash and no delta: only a download can compare."""

    capabilities = Capabilities(hash_kind=None, delta=False, ids=True, expensive_bytes=True, transfers=1,
                                mtime_revs=True)
    reads = 0

    def read(self, path: str):  # type: ignore[no-untyped-def]
        NoHashNoDelta.reads += 1
        return super().read(path)


def test_download_compare_records_equal_files_and_keeps_both_when_they_differ(tmp_path: Path) -> None:
    local, remote = tmp_path / "l", tmp_path / "r"
    for i in range(5):
        write(local / f"same{i}.txt", f"content {i}")
        write(remote / f"same{i}.txt", f"content {i}")
    write(local / "differs.txt", "mine!")
    write(remote / "differs.txt", "yours")
    write(local / "big.bin", "a" * 2000)
    write(remote / "big.bin", "a" * 2000)
    engine, store = _engine(local, NoHashNoDelta(remote), tmp_path / "s", compare_limit=1000)
    try:
        summary = engine.sync()
    finally:
        store.close()
    assert summary.conflicts == 2, "differs.txt differs; big.bin is above the limit, so not proven equal"
    assert summary.uploaded == 2 and summary.downloaded == 2  # the two conflict copies travel both ways
    # the five equal files and differs.txt were compared (once), big.bin was not; then two downloads
    assert NoHashNoDelta.reads == 6 + 2
    assert tree(local) == tree(remote)


def test_first_sync_onto_smartfile_files_uploaded_by_another_client_sends_nothing(tmp_path: Path) -> None:
    local = tmp_path / "local"
    files = {f"d{i % 3}/f{i}.txt": (f"same content {i}\n" * (i * 50 + 1)).encode() for i in range(12)}
    (tmp_path / "emu").mkdir()
    with smartfile_setup(tmp_path / "emu", root="/sync") as sf:
        api = sf.emulator.base_url + "api/2/"
        for rel, data in files.items():
            write(local / rel, data)
            folder = "/sync/" + rel.rpartition("/")[0]
            r = requests.put(api + "path/oper/mkdir/", data={"path": folder}, auth=(KEY, PASSWORD), timeout=10)
            r = requests.post(api + "path/data" + folder + "/", files={"file": (rel.rpartition("/")[2], data)},
                              auth=(KEY, PASSWORD), timeout=10)
            assert r.status_code < 300, r.text
        assert all(e.hash is None for e in sf.provider.list() if e.kind == "file"), "foreign files carry no hash"
        sf.emulator.clear_log()
        engine, store = _engine(local, sf.provider, tmp_path / "s")
        try:
            summary = engine.sync()
            again = engine.sync()
        finally:
            store.close()
        content = [r for r in sf.emulator.requests if "/path/data/" in r.path]
    assert summary.conflicts == 0 and summary.uploaded == 0 and summary.downloaded == 0, summary
    assert summary.bytes_sent == 0 and summary.bytes_received == 0
    assert summary.recorded == len(files) + 3  # and the three folders
    assert content == [], f"file content crossed the wire: {[(r.method, r.path) for r in content]}"
    assert not again.changed_anything() and again.recorded == 0
