"""structlog setup: readable on a terminal, JSON for the service.

structlog (and what it pulls in) costs ~0.1 s to import, so nothing here
imports it until the first message: a quiet no-op sync never pays for it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import MutableMapping
from typing import Any

INFO = 20  # logging.INFO, without importing logging at start-up
_configured: dict[str, Any] = {"format": None, "level": INFO}
_SECRET_KEYS = re.compile(r"pass|secret|token|key|auth|cookie|credential", re.IGNORECASE)


def configure(fmt: str | None = None, level: int = INFO) -> None:
    """Choose the format ('console' or 'json'; None: console on a TTY, else JSON)."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    _configured["format"] = fmt
    _configured["level"] = level
    _configured.pop("done", None)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No secret ever reaches a log line, whatever a caller passed."""
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "***"
    return event


def _setup() -> None:
    import structlog

    fmt = _configured["format"] or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"), redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_configured["level"]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured["done"] = True


def get_logger(**bind: Any) -> Any:
    if "done" not in _configured:
        _setup()
    import structlog

    return structlog.get_logger().bind(**bind)
