"""What a sync run tells its user: one line per action, warnings, a progress
bar on a terminal, and the closing summary (text or JSON).

Per-action lines bypass structlog on purpose: a 10,000-file sync must not
spend a fifth of its time formatting log records.
"""

from __future__ import annotations

import sys
import time

from syncagent.dataclass_lite import fields_eq, fields_repr
from syncagent.paths import printable

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing and dataclasses, which imports inspect, are not imported at run time)
    from dataclasses import dataclass, field
    from typing import IO, Any
else:
    from syncagent.dataclass_lite import dataclass, field


@dataclass(init=False, repr=False, eq=False)
class Summary:
    """What a run did, counted; its exit code. Its dataclass methods are written out
    (syncagent/dataclass_lite.py; tests/unit/engine/test_report.py checks them)."""

    uploaded: int = 0
    downloaded: int = 0
    deleted_local: int = 0
    deleted_remote: int = 0
    moved: int = 0
    mkdirs: int = 0
    conflicts: int = 0
    recorded: int = 0
    errors: int = 0
    changed_during_run: int = 0
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0
    bytes_sent: int = 0          # bytes that crossed to the remote (deltas count their size)
    bytes_received: int = 0
    seconds: float = 0.0
    refused: str | None = None
    dry_run: bool = False
    cancelled: bool = False
    error_list: list[dict[str, str]] = field(default_factory=list)
    # names skipped because one side cannot hold them (not UTF-8, forbidden, clashing): the run exits 1
    skipped_names: list[str] = field(default_factory=list)
    conflict_list: list[str] = field(default_factory=list)

    def __init__(self, uploaded: int = 0, downloaded: int = 0, deleted_local: int = 0, deleted_remote: int = 0,
                 moved: int = 0, mkdirs: int = 0, conflicts: int = 0, recorded: int = 0, errors: int = 0,
                 changed_during_run: int = 0, bytes_uploaded: int = 0, bytes_downloaded: int = 0,
                 bytes_sent: int = 0, bytes_received: int = 0, seconds: float = 0.0, refused: str | None = None,
                 dry_run: bool = False, cancelled: bool = False, error_list: list[dict[str, str]] | None = None,
                 skipped_names: list[str] | None = None, conflict_list: list[str] | None = None) -> None:
        self.uploaded, self.downloaded = uploaded, downloaded
        self.deleted_local, self.deleted_remote = deleted_local, deleted_remote
        self.moved, self.mkdirs, self.conflicts, self.recorded, self.errors = moved, mkdirs, conflicts, recorded, errors
        self.changed_during_run = changed_during_run
        self.bytes_uploaded, self.bytes_downloaded = bytes_uploaded, bytes_downloaded
        self.bytes_sent, self.bytes_received = bytes_sent, bytes_received
        self.seconds, self.refused, self.dry_run, self.cancelled = seconds, refused, dry_run, cancelled
        self.error_list = [] if error_list is None else error_list
        self.skipped_names = [] if skipped_names is None else skipped_names
        self.conflict_list = [] if conflict_list is None else conflict_list

    __repr__ = fields_repr
    __eq__ = fields_eq

    __hash__ = None  # type: ignore[assignment]   # mutable, as the generated class is

    @property
    def exit_code(self) -> int:
        if self.refused:
            return 3
        return 1 if self.errors or self.skipped_names else 0

    def changed_anything(self) -> bool:
        return any((self.uploaded, self.downloaded, self.deleted_local, self.deleted_remote,
                    self.moved, self.mkdirs, self.conflicts))

    def as_dict(self) -> dict[str, Any]:
        """Every field (lists copied, as dataclasses.asdict does), and the exit code."""
        d: dict[str, Any] = {name: getattr(self, name) for name in self.__match_args__}
        d["error_list"] = [dict(error) for error in self.error_list]
        d["skipped_names"], d["conflict_list"] = list(self.skipped_names), list(self.conflict_list)
        d["exit_code"] = self.exit_code
        return d


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Reporter:
    """Console output of a run. `quiet` keeps only warnings, errors and the summary."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, json_summary: bool = False,
                 out: IO[str] | None = None, err: IO[str] | None = None, json_logs: bool = False) -> None:
        self.quiet, self.verbose, self.json_summary = quiet, verbose, json_summary
        self.json_logs = json_logs  # warnings and errors as structlog JSON lines (--log-format json)
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._bar = self.err.isatty() and not quiet and not json_summary
        self._bar_shown = False
        self._last_bar = 0.0
        self.done_bytes = 0
        self.total_bytes = 0

    def action(self, op: str, path: str, detail: str = "") -> None:
        if self.quiet or self.json_summary:
            return
        self._clear_bar()
        path = printable(path)
        self.out.write(f"{op:<14} {path}{'  (' + detail + ')' if detail else ''}\n")

    def warn(self, message: str, path: str | None = None) -> None:
        self._clear_bar()
        path = printable(path) if path else path
        if self.json_logs:
            from syncagent.log import get_logger

            get_logger().warning(message, path=path)
            return
        self.err.write(f"warning: {message}{': ' + path if path else ''}\n")

    def error(self, message: str, path: str | None = None) -> None:
        self._clear_bar()
        path = printable(path) if path else path
        if self.json_logs:
            from syncagent.log import get_logger

            get_logger().error(message, path=path)
            return
        self.err.write(f"error: {message}{': ' + path if path else ''}\n")

    def info(self, message: str) -> None:
        if not self.quiet and not self.json_summary:
            self._clear_bar()
            self.out.write(message + "\n")

    def start_transfers(self, total_bytes: int) -> None:
        self.total_bytes, self.done_bytes = total_bytes, 0

    def advance(self, nbytes: int) -> None:
        self.done_bytes += nbytes
        if not self._bar:
            return
        now = time.monotonic()
        if now - self._last_bar < 0.1 and self.done_bytes < self.total_bytes:
            return
        self._last_bar = now
        total = max(self.total_bytes, 1)
        frac = min(1.0, self.done_bytes / total)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        self.err.write(f"\r[{bar}] {frac * 100:5.1f}%  {human_bytes(self.done_bytes)} / "
                       f"{human_bytes(self.total_bytes)}")
        self.err.flush()
        self._bar_shown = True

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.err.write("\r\033[K")
            self._bar_shown = False

    def summary(self, s: Summary) -> None:
        self._clear_bar()
        if self.json_summary:
            import json

            self.out.write(json.dumps(s.as_dict()) + "\n")
            self.out.flush()
            return
        parts = [f"{s.uploaded} uploaded", f"{s.downloaded} downloaded",
                 f"{s.deleted_local + s.deleted_remote} deleted", f"{s.moved} moved",
                 f"{s.conflicts} conflicts", f"{s.errors} errors"]
        line = ", ".join(parts)
        traffic = (f"; {human_bytes(s.bytes_uploaded)} up ({human_bytes(s.bytes_sent)} sent), "
                   f"{human_bytes(s.bytes_downloaded)} down; {s.seconds:.2f} s")
        prefix = "dry run: would do " if s.dry_run else ""
        self.out.write(prefix + line + traffic + "\n")
        if s.skipped_names:
            self.out.write(f"{len(s.skipped_names)} names skipped: the other side cannot hold them "
                           "(see the warnings)\n")
        if s.changed_during_run:
            self.out.write(f"{s.changed_during_run} items changed during the run; the next run takes them\n")
        if s.refused:
            self.err.write(f"refused: {s.refused}\n")
        self.out.flush()
