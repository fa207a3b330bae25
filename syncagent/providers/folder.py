"""A plain folder as the remote: the embedded default, no account needed.

The folder work itself (staged atomic writes, renames, the scan) is the
engine's own LocalSide; this adds the Provider interface around it: what
the folder can do, the names its listing skipped, and its temp leftovers.
Its registration (config schema) is providers/local.py: a sync between two
plain folders never loads the config machinery.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from syncagent.engine.localside import LocalSide
from syncagent.native import NATIVE
from syncagent.paths import TEMP_PREFIX
from syncagent.providers.base import Capabilities, PairContext, Provider, RemoteEntry

STALE_TEMP_SECONDS = 86400.0   # another machine's temp this old is a leftover, not a live upload


class LocalProvider(LocalSide, Provider):
    name = "local"
    capabilities = Capabilities(
        hash_kind="sha256", delta=True, server_move=True, server_copy=True, set_mtime=True,
        ids=True, expensive_bytes=False, quota=True, transfers=1, mtime_revs=True, links=True,
        sorted_listing=True, stage_ahead=True,
    )

    def attach(self, pair: PairContext) -> None:
        super().attach(pair)
        self.temp_tag = pair.tag

    def local_folder(self) -> str | None:
        return self.fspath("")

    def merge_listing(self) -> Iterator[RemoteEntry]:
        """list() as the engine's merge reads it: where the native module
        reads a folder, its runs of plain files stay C records that only
        the native merge reads, and it makes a RemoteEntry only for a path
        it keeps (engine/merge.py). Without the module, or where a subclass
        lists otherwise (a test's faults): list() itself."""
        if NATIVE is None or type(self).list is not LocalSide.list:
            return self.list()
        return self._listing("", raw=True)

    def skipped(self) -> dict[str, str]:
        scan = self.last_scan
        return dict(scan.skipped) if scan is not None else {}

    def unfit_names(self) -> dict[str, str]:
        scan = self.last_scan
        return dict(scan.unfit) if scan is not None else {}

    def cleanup_temps(self) -> int:
        """Our own leftovers at once; anyone's only after a day (another
        machine sharing the folder may be uploading right now)."""
        scan = self.last_scan
        if scan is None:
            return 0
        mine = TEMP_PREFIX + self.temp_tag if self.temp_tag else None
        limit = time.time() - STALE_TEMP_SECONDS
        gone = 0
        for rel in scan.temps:
            path = os.path.join(self.fspath(""), rel)
            name = rel.rsplit("/", 1)[-1]
            try:
                old = os.lstat(path).st_mtime < limit
            except OSError:
                continue
            if (mine is not None and name.startswith(mine)) or old:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    gone += 1
        return gone
