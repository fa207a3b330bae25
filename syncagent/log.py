"""The one log of syncagent: structlog, readable on a terminal, JSON for the service.

    from syncagent.log import get_logger
    get_logger(pair="docs").warning("sync failed", error=str(exc))

`configure(fmt, level)` (called once by each command) also routes the
standard `logging` module into the same pipeline: records of libraries
(urllib3's pool warnings, watchdog's observer, requests-oauthlib) and
Python warnings become structlog events with a `logger` field, rendered like
ours (one JSON object per line under `--log-format json`).

Secrets never reach a line: fields whose name looks secret are masked, every
value registered with `add_secret` (API passwords, tokens) is masked
wherever it appears, and so are credentials in URLs, Authorization headers
and OAuth parameters inside message text.

structlog (and what it pulls in) costs ~0.1 s to import, so nothing here
imports it until the first message: a quiet no-op sync never pays for it.
Nor for `logging` (~8 ms with traceback): when no library has imported it
yet, `configure` routes it the moment one does (a finder on sys.meta_path
sees the import), or at the first Python warning, whichever comes first.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import threading
from collections.abc import MutableMapping

TYPE_CHECKING = False
if TYPE_CHECKING:   # (typing and logging are imported at run time only where used: see above)
    import logging
    from typing import Any

INFO = 20  # logging.INFO, without importing logging at start-up
MASK = "***"
_configured: dict[str, Any] = {"format": None, "level": INFO}

# The patterns are compiled at the first line logged (~1.5 ms), not at import: a quiet run logs none.
@functools.cache
def _secret_keys() -> re.Pattern[str]:
    return re.compile(r"pass|secret|token|key|auth|cookie|credential|signature", re.IGNORECASE)


@functools.cache
def _secret_text() -> tuple[re.Pattern[str], ...]:
    return (
        re.compile(r"(?i)(authorization:?\s*(?:basic|bearer|oauth)?\s*)[^\s,;]+(?:[^\n]*)"),
        re.compile(r"(?i)\b((?:oauth_)?(?:signature|token|token_secret|verifier|password|secret|api_key|"
                   r"access_token|refresh_token|client_secret)\s*[=:]\s*\"?)[^\"&\s,]+"),
        re.compile(r"(//[^/@\s:]*:)[^/@\s]+(@)"),   # user:password@host in a URL
    )


_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Mask `value` wherever it would appear in a log line from now on."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every known secret and credential-shaped fragment masked."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _secret_text():
        text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.lastindex == 2 else ""), text)
    return text


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """No secret ever reaches a log line, whatever a caller passed."""
    for key in list(event):
        value = event[key]
        if key not in ("event", "logger") and _secret_keys().search(key):
            event[key] = MASK
        elif isinstance(value, str):
            event[key] = scrub(value)
    return event


def configure(fmt: str | None = None, level: int = INFO) -> None:
    """Choose the format ('console' or 'json'; None: console on a TTY, else JSON)
    and route the standard logging module into it."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    _configured["format"] = fmt
    _configured["level"] = level
    _configured.pop("done", None)
    if "logging" in sys.modules:
        _route_stdlib(level)
    else:
        _route_stdlib_when_used()


class _Stderr:
    """structlog's output: the current sys.stderr, one write per line."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


def _setup() -> None:
    import structlog

    fmt = _configured["format"] or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"), redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_configured["level"]),
        logger_factory=lambda *_: _Stderr(),
        cache_logger_on_first_use=True,
    )
    _configured["done"] = True


def get_logger(**bind: Any) -> Any:
    if "done" not in _configured:
        _setup()
    import structlog

    return structlog.get_logger().bind(**bind)


# ---- the standard logging module, routed into structlog --------------------------------------
class _RouteOnImport:
    """A meta-path finder that routes `logging` into structlog as soon as a
    library imports it: the module is found by the finders after this one and
    loaded as usual; its loader is wrapped to route once the module has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "logging":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: Any = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RoutingLoader(spec.loader)
                return spec
        return None


class _RoutingLoader:
    """The loader of `logging`, which routes it once the module has run."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        _route_stdlib(_configured["level"])


_HOOK = _RouteOnImport()
_shown_before: list[Any] = []     # warnings.showwarning as it was before route_then_show replaced it


def _route_stdlib_when_used() -> None:
    """Route `logging` when it is imported, and Python warnings at the first one
    (unrouted, the warnings module would print it raw)."""
    import warnings

    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
    if not _shown_before:
        _shown_before.append(warnings.showwarning)
        warnings.showwarning = _route_then_show


def _route_then_show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     file: Any = None, line: str | None = None) -> None:
    import warnings

    _route_stdlib(_configured["level"])     # captureWarnings: warnings.showwarning is logging's now
    warnings.showwarning(message, category, filename, lineno, file, line)


def _route_stdlib(level: int) -> None:
    import logging
    import warnings

    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_HOOK)
    if _shown_before:   # captureWarnings keeps the original, to call it and to restore it
        if warnings.showwarning is _route_then_show:
            warnings.showwarning = _shown_before[0]
        _shown_before.clear()

    class ToStructlog(logging.Handler):
        """Re-emits each stdlib record as a structlog event (one pipeline, one format)."""

        routes_to_structlog = True

        def emit(self, record: logging.LogRecord) -> None:
            _emit_record(record)

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "routes_to_structlog", False):
            root.removeHandler(handler)
    root.addHandler(ToStructlog(level))
    root.setLevel(level)
    logging.captureWarnings(True)


def _emit_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a library's bad format string: keep the raw text
        message = str(record.msg)
    fields: dict[str, Any] = {"logger": record.name}
    if record.exc_info and record.exc_info[1] is not None:
        fields["error"] = type(record.exc_info[1]).__name__
    name = record.levelname.lower()
    method = name if name in ("debug", "info", "warning", "error", "critical") else "info"
    getattr(get_logger(), method)(message.replace("\n", " | "), **fields)
