"""The one retry policy of syncagent (the shape of urllib3's `Retry` or tenacity).

A `RetryPolicy` holds everything about retrying one operation:

* which errors: the classes in `retry_on` (default `TransientError`, which
  includes `Throttled`); nothing else is ever retried, and the decision comes
  from the class, never from message text;
* how many tries: `attempts` in all (the first one included);
* how long to wait: `backoff_delay` (full jitter, the one formula), or the
  server's Retry-After for a `Throttled` error, capped at `retry_after_cap`;
* a total `deadline` (seconds since the first try): no wait that would end
  past it, no try that would start past it.

Where retries happen, and nowhere else (no layer wraps another's retries):

* each HTTP request of a provider's transport: `policy.call(...)`, one
  budget per request (SmartFile: syncagent/providers/smartfile/transport.py);
* a SmartFile download that breaks mid-body resumes with Range *inside that
  same budget*: the opening request and every resume share one `Attempts`;
* the engine does not retry a failed action (the next run does), and the
  agent's back-off between whole runs (`backoff_delay` in agent/daemon.py)
  is a schedule, not a retry of a call.

So the most tries one transfer gets is `attempts` (5 by default) of its
content request (an upload's POST, a download's GET plus its resumes). The
one exception is the engine's delta path: a delta upload or download that
fails falls back to the whole file once, so such a transfer makes at most
2 x 5 tries of its content. A request that is not safe to repeat (a rename,
a task, a patch) is retried only when the server certainly did not act on it
(it answered with an error status).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from syncagent.errors import ProviderError, Throttled, TransientError

T = TypeVar("T")


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter: a random delay up to base * 2**attempt, capped (the one formula)."""
    return random.uniform(0, min(cap, base * (2 ** attempt)))


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5                  # tries in all, the first included
    backoff_base: float = 0.5          # seconds: full jitter up to base * 2**(retry-1)
    backoff_cap: float = 20.0
    retry_after_cap: float = 60.0      # the longest server-asked wait we sit out
    deadline: float = 600.0            # seconds from the first try to the last wait's end
    retry_on: tuple[type[ProviderError], ...] = (TransientError,)

    def retryable(self, err: ProviderError) -> bool:
        return isinstance(err, self.retry_on)

    def delay(self, retry: int, err: ProviderError) -> float:
        """How long to wait before retry number `retry` (1 = the second try)."""
        if isinstance(err, Throttled) and err.retry_after is not None:
            return min(max(0.0, err.retry_after), self.retry_after_cap)
        return backoff_delay(retry - 1, base=self.backoff_base, cap=self.backoff_cap)

    def start(self, what: str = "", *, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Attempts:
        """A fresh budget for one operation (share it to keep resumes inside it)."""
        return Attempts(self, what, sleep, clock)

    def call(self, fn: Callable[[], T], what: str = "", *, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> T:
        """`fn()` until it returns, or until the policy says stop (then its error goes up)."""
        attempts = self.start(what, sleep=sleep, clock=clock)
        while True:
            try:
                return fn()
            except ProviderError as err:
                attempts.failed(err)


class Attempts:
    """The budget of one operation: how many tries so far, since when."""

    def __init__(self, policy: RetryPolicy, what: str, sleep: Callable[[float], None],
                 clock: Callable[[], float]) -> None:
        self.policy, self.what, self.sleep, self.clock = policy, what, sleep, clock
        self.tries = 0
        self.started = clock()

    def failed(self, err: ProviderError, *, may_retry: bool = True) -> None:
        """A try failed with `err`: wait before the next one, or raise `err`.
        `may_retry=False` raises at once (a request the server may have acted on)."""
        self.tries += 1
        policy = self.policy
        if not may_retry or not policy.retryable(err) or self.tries >= policy.attempts:
            raise err
        wait = policy.delay(self.tries, err)
        if self.clock() - self.started + wait > policy.deadline:
            raise err
        from syncagent.log import get_logger

        get_logger().info("retrying", what=self.what, error=type(err).__name__, reason=str(err),
                          attempt=self.tries + 1, attempts=policy.attempts, wait_s=round(wait, 3))
        self.sleep(wait)
