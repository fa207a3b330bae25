"""The one retry policy: which errors, how many tries, the backoff formula,
Retry-After honoured and capped, the total deadline, and its log line."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import structlog.testing

from syncagent import errors
from syncagent.retry import RetryPolicy, backoff_delay


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(*errs: errors.ProviderError, then: str = "done") -> tuple[Callable[[], str], list[int]]:
    calls = [0]

    def fn() -> str:
        calls[0] += 1
        if calls[0] <= len(errs):
            raise errs[calls[0] - 1]
        return then

    return fn, calls


def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    random.seed(7)
    for attempt in range(8):
        bound = min(30.0, 0.5 * 2 ** attempt)
        samples = [backoff_delay(attempt) for _ in range(200)]
        assert all(0 <= s <= bound for s in samples)
        assert max(samples) > bound * 0.8  # spread over the whole range, not a fixed step


def test_transient_errors_are_retried_until_success() -> None:
    clock = Clock()
    fn, calls = failing(errors.TransientError("reset"), errors.TransientError("500"))
    assert RetryPolicy(attempts=3).call(fn, sleep=clock.sleep, clock=clock) == "done"
    assert calls[0] == 3 and len(clock.sleeps) == 2


def test_attempts_bound_every_try_the_first_included() -> None:
    clock = Clock()
    fn, calls = failing(*[errors.TransientError("down")] * 10)
    with pytest.raises(errors.TransientError, match="down"):
        RetryPolicy(attempts=4).call(fn, sleep=clock.sleep, clock=clock)
    assert calls[0] == 4 and len(clock.sleeps) == 3


@pytest.mark.parametrize("err", [errors.AuthError("no"), errors.NotFound("gone"), errors.PermanentError("bad"),
                                 errors.Conflict("changed")])
def test_errors_a_retry_cannot_fix_go_up_at_once(err: errors.ProviderError) -> None:
    clock = Clock()
    fn, calls = failing(err)
    with pytest.raises(type(err)):
        RetryPolicy().call(fn, sleep=clock.sleep, clock=clock)
    assert calls[0] == 1 and clock.sleeps == []


def test_which_classes_is_part_of_the_policy() -> None:
    clock = Clock()
    only_throttling = RetryPolicy(retry_on=(errors.Throttled,))
    fn, calls = failing(errors.TransientError("500"))
    with pytest.raises(errors.TransientError):
        only_throttling.call(fn, sleep=clock.sleep, clock=clock)
    assert calls[0] == 1
    fn, _ = failing(errors.Throttled("slow down", retry_after=1))
    assert only_throttling.call(fn, sleep=clock.sleep, clock=clock) == "done"


def test_retry_after_is_honoured_exactly_and_capped() -> None:
    clock = Clock()
    policy = RetryPolicy(retry_after_cap=10)
    fn, _ = failing(errors.Throttled("a", retry_after=3), errors.Throttled("b", retry_after=3600),
                    errors.Throttled("c", retry_after=None))
    assert policy.call(fn, sleep=clock.sleep, clock=clock) == "done"
    assert clock.sleeps[:2] == [3, 10]
    assert 0 <= clock.sleeps[2] <= policy.backoff_base * 4  # no Retry-After: the backoff formula


def test_the_deadline_stops_waits_that_would_end_past_it() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=100, deadline=5, retry_after_cap=60)
    fn, calls = failing(*[errors.Throttled("slow", retry_after=2)] * 100)
    with pytest.raises(errors.Throttled) as err:
        policy.call(fn, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [2, 2] and calls[0] == 3  # a third wait would end at 6 s > 5 s
    assert err.value.retry_after == 2  # the caller still learns what the server asked


def test_a_shared_budget_counts_every_failure_once() -> None:
    clock = Clock()
    attempts = RetryPolicy(attempts=3).start("download", sleep=clock.sleep, clock=clock)
    attempts.failed(errors.TransientError("open"))
    attempts.failed(errors.TransientError("broke mid-body"))
    with pytest.raises(errors.TransientError, match="again"):
        attempts.failed(errors.TransientError("again"))
    assert len(clock.sleeps) == 2


def test_may_retry_false_raises_at_once() -> None:
    attempts = RetryPolicy().start("rename", sleep=Clock().sleep)
    with pytest.raises(errors.TransientError):
        attempts.failed(errors.TransientError("reset after sending"), may_retry=False)


def test_each_retry_is_one_structured_log_line() -> None:
    clock = Clock()
    fn, _ = failing(errors.Throttled("429", retry_after=1.5))
    with structlog.testing.capture_logs() as logs:
        RetryPolicy().call(fn, "smartfile GET path/info", sleep=clock.sleep, clock=clock)
    assert logs == [{"event": "retrying", "log_level": "info", "what": "smartfile GET path/info",
                     "error": "Throttled", "reason": "429", "attempt": 2, "attempts": 5, "wait_s": 1.5}]
