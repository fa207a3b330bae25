"""Retry with exponential backoff and jitter, decided by the error's class."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from syncagent.errors import ProviderError, Throttled

T = TypeVar("T")


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter: a random delay up to base * 2**attempt, capped."""
    return random.uniform(0, min(cap, base * (2 ** attempt)))


def with_retries(fn: Callable[[], T], *, attempts: int = 4, base: float = 0.5, cap: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `fn`; on a retryable ProviderError wait and try again."""
    for attempt in range(attempts):
        try:
            return fn()
        except ProviderError as exc:
            if not exc.retryable or attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt, base=base, cap=cap)
            if isinstance(exc, Throttled) and exc.retry_after is not None:
                delay = min(max(delay, exc.retry_after), cap * 4)
            sleep(delay)
    raise AssertionError("unreachable")
