"""Local files the agent deletes go here (in the state dir), never to oblivion."""

from __future__ import annotations

import os
import time
from pathlib import Path

KEEP_DAYS = 30


class Trash:
    def __init__(self, state_dir: Path, pair: int) -> None:
        self.root = state_dir / "trash" / f"pair-{pair}"

    def place_for(self, rel: str) -> Path:
        """A free place in today's trash folder for `rel` (its folder created)."""
        day = self.root / time.strftime("%Y-%m-%d")
        target = day / rel
        n = 1
        while os.path.lexists(target):
            n += 1
            target = day / f"{rel}.{n}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            # today's trash holds a file named as one of rel's folders (file `d` deleted, then `d/c.txt`):
            # number the top folder instead (`d.2/c.txt`)
            top, _, rest = rel.partition("/")
            n = 2
            while os.path.lexists(day / f"{top}.{n}"):
                n += 1
            target = day / f"{top}.{n}" / rest
            target.parent.mkdir(parents=True)
        return target

    def expire(self, days: int = KEEP_DAYS, now: float | None = None) -> int:
        """Remove day folders older than `days`; returns how many went."""
        if not self.root.is_dir():
            return 0
        import shutil  # (with bz2, lzma and fnmatch: only a run that deleted something pays)

        limit = (now or time.time()) - days * 86400
        gone = 0
        for day in self.root.iterdir():
            try:
                stamp = time.mktime(time.strptime(day.name, "%Y-%m-%d"))
            except ValueError:
                continue
            if stamp < limit:
                shutil.rmtree(day, ignore_errors=True)
                gone += 1
        return gone
