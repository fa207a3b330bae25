"""The one exception tree of syncagent.

    SyncAgentError
    ├── ConfigError            bad configuration (exit 78); carries file:line:column
    ├── UsageError             bad command-line arguments (exit 2)
    ├── GuardRefused           a safety guard refused the run (exit 3)
    └── ProviderError          anything a provider (local folder or cloud) reports
        ├── AuthError          wrong credentials, expired or revoked token
        ├── NotFound           the path does not exist on the remote
        ├── AlreadyExists      the destination exists (mkdir of a file, move onto a name)
        ├── Conflict           the remote changed since we listed it (precondition failed)
        ├── QuotaExceeded      no space left on the remote or on the local disk
        ├── InvalidName        a name the other side cannot hold
        ├── Unsupported        the provider lacks this capability
        ├── Throttled          slow down; retry_after seconds when the server said so
        ├── TransientError     network fault, 5xx, reset: retry with backoff
        └── PermanentError     anything else that a retry cannot fix

Retry decisions are made from the class (`retryable`), never from message text.
"""

from __future__ import annotations


class SyncAgentError(Exception):
    """Base class of every error syncagent raises on purpose."""

    exit_code = 1


class ConfigError(SyncAgentError):
    """A configuration error, with the position in the file when known."""

    exit_code = 78

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.file, self.line, self.column = file, line, column
        where = ""
        if file is not None:
            where = file
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(where + message)


class UsageError(SyncAgentError):
    exit_code = 2


class GuardRefused(SyncAgentError):
    exit_code = 3


class ProviderError(SyncAgentError):
    """Base of everything a provider raises. `retryable` drives the retry loop."""

    retryable = False

    def __init__(self, message: str = "", *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message if not path else f"{message} ({path})" if message else path)


class AuthError(ProviderError):
    pass


class NotFound(ProviderError):
    pass


class AlreadyExists(ProviderError):
    pass


class Conflict(ProviderError):
    pass


class QuotaExceeded(ProviderError):
    pass


class InvalidName(ProviderError):
    pass


class Unsupported(ProviderError):
    pass


class TransientError(ProviderError):
    retryable = True


class Throttled(TransientError):
    def __init__(self, message: str = "", *, retry_after: float | None = None,
                 path: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, path=path)


class PermanentError(ProviderError):
    pass
