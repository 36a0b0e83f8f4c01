"""A per-provider circuit breaker with time passed in, so tests drive it with a fake clock.

closed --(N consecutive failures, or error rate >= threshold over >= min_volume requests in
the rolling window)--> open --(cool-down elapsed)--> half_open --(trial succeeds)--> closed
                                                               \\--(trial fails)--> open

The cool-down is short and grows while trials keep failing: `cooldown_s` after the breaker
opens, then times `cooldown_factor` after each failed trial, up to `cooldown_max_s`; back to
`cooldown_s` once a trial closes it. A provider that recovers gets traffic again within
`cooldown_max_s` (a few seconds) instead of a fixed long wait, and a provider that stays down
costs one trial request per cool-down. Each cool-down is shortened by up to `jitter` (a
fraction, drawn from the breaker's random source) so that the breakers of many worker
processes, opened by the same outage, do not all send their trials at the same instant.

Not thread-safe on its own: `ProviderStats` owns one lock for all providers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  # consecutive failures that open the breaker
    error_rate_threshold: float = 0.5  # failure share in the window that opens it ...
    min_volume: int = 20  # ... once the window holds at least this many requests
    window_s: float = 60.0
    buckets: int = 6
    cooldown_s: float = 30.0  # the first cool-down after the breaker opens
    half_open_max_trials: int = 1  # concurrent trial requests while half-open
    success_threshold: int = 1  # successful trials needed to close again
    cooldown_max_s: float | None = None  # the longest cool-down (None: cooldown_s, no growth)
    cooldown_factor: float = 2.0  # growth after each failed trial
    jitter: float = 0.0  # each cool-down is shortened by up to this fraction, at random

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_volume < 1 or self.buckets < 1:
            raise ValueError("failure_threshold, min_volume and buckets must be >= 1")
        if not 0 < self.error_rate_threshold <= 1:
            raise ValueError("error_rate_threshold must be in (0, 1]")
        if self.window_s <= 0 or self.cooldown_s < 0:
            raise ValueError("window_s must be > 0 and cooldown_s >= 0")
        if self.half_open_max_trials < 1 or self.success_threshold < 1:
            raise ValueError("half_open_max_trials and success_threshold must be >= 1")
        if self.cooldown_max_s is not None and self.cooldown_max_s < self.cooldown_s:
            raise ValueError("cooldown_max_s must be >= cooldown_s")
        if self.cooldown_factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("cooldown_factor must be >= 1 and jitter in [0, 1)")

    def cooldown(self, failed_trials: int, draw: float) -> float:
        """The cool-down after `failed_trials` trials failed in a row (0: it just opened);
        `draw` in [0, 1) picks the jitter."""
        longest = self.cooldown_s if self.cooldown_max_s is None else self.cooldown_max_s
        base = min(self.cooldown_s * self.cooldown_factor**failed_trials, longest)
        return base * (1.0 - self.jitter * draw)


class _Window:
    """Request and failure counts over the last `window_s`, in fixed buckets."""

    __slots__ = ("bucket_s", "failures", "starts", "totals")

    def __init__(self, window_s: float, buckets: int):
        self.bucket_s = window_s / buckets
        self.starts = [float("-inf")] * buckets
        self.totals = [0] * buckets
        self.failures = [0] * buckets

    def add(self, now: float, failed: bool) -> None:
        slot_start = (now // self.bucket_s) * self.bucket_s
        i = int(now // self.bucket_s) % len(self.starts)
        if self.starts[i] != slot_start:
            self.starts[i] = slot_start
            self.totals[i] = 0
            self.failures[i] = 0
        self.totals[i] += 1
        if failed:
            self.failures[i] += 1

    def counts(self, now: float) -> tuple[int, int]:
        oldest = now - self.bucket_s * len(self.starts)
        total = failures = 0
        for start, t, f in zip(self.starts, self.totals, self.failures, strict=True):
            if start > oldest:
                total += t
                failures += f
        return total, failures

    def clear(self) -> None:
        n = len(self.starts)
        self.starts = [float("-inf")] * n
        self.totals = [0] * n
        self.failures = [0] * n


class CircuitBreaker:
    __slots__ = (
        "_config",
        "_consecutive",
        "_cooldown",
        "_failed_trials",
        "_opened_at",
        "_random",
        "_state",
        "_trial_successes",
        "_trials",
        "_window",
        "opened_count",
    )

    def __init__(
        self, config: BreakerConfig | None = None, rng: Callable[[], float] = random.random
    ):
        self._config = config or BreakerConfig()
        self._random = rng  # the jitter's source, in [0, 1); tests pass a fixed one
        self._state = CLOSED
        self._consecutive = 0
        self._failed_trials = 0  # trials failed since the breaker last closed
        self._cooldown = self._config.cooldown_s
        self._opened_at = 0.0
        self._trials = 0
        self._trial_successes = 0
        self._window = _Window(self._config.window_s, self._config.buckets)
        self.opened_count = 0

    def state(self, now: float) -> str:
        # open -> half_open is a matter of time passing, so it is evaluated on read.
        if self._state == OPEN and now - self._opened_at >= self._cooldown:
            self._state = HALF_OPEN
            self._trials = 0
            self._trial_successes = 0
        return self._state

    def allows(self, now: float) -> bool:
        state = self.state(now)
        if state == CLOSED:
            return True
        if state == HALF_OPEN:
            return self._trials < self._config.half_open_max_trials
        return False

    def seconds_until_trial(self, now: float) -> float:
        """How long until this breaker lets a request through: 0 when it does now (closed, or
        half-open with a trial slot free), else the rest of the cool-down (a busy half-open
        breaker answers as its trial ends, which takes no longer than a cool-down)."""
        state = self.state(now)
        if state == OPEN:
            return max(0.0, self._opened_at + self._cooldown - now)
        if state == HALF_OPEN and self._trials >= self._config.half_open_max_trials:
            return self._config.cooldown_s
        return 0.0

    def on_begin(self, now: float) -> bool:
        """Count a request that is about to start; True if the breaker admits it.

        A request started while half-open takes a trial slot. The request is counted whatever
        the answer, so the caller pairs every begin with one outcome or one `on_release`.
        """
        allowed = self.allows(now)
        if self._state == HALF_OPEN:
            self._trials += 1
        return allowed

    def on_release(self, now: float) -> None:
        """A request counted by `on_begin` was not sent after all: give its trial slot back."""
        if self.state(now) == HALF_OPEN:
            self._trials = max(0, self._trials - 1)

    def on_success(self, now: float) -> None:
        state = self.state(now)
        if state == HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._trial_successes += 1
            if self._trial_successes >= self._config.success_threshold:
                self._close()
            return
        if state == OPEN:
            # A straggler started before the breaker opened; one success is not a recovery.
            return
        self._consecutive = 0
        self._window.add(now, failed=False)

    def on_failure(self, now: float) -> None:
        state = self.state(now)
        if state == HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._failed_trials += 1
            self._open(now)
            return
        if state == OPEN:
            return
        self._consecutive += 1
        self._window.add(now, failed=True)
        if self._consecutive >= self._config.failure_threshold:
            self._open(now)
            return
        total, failures = self._window.counts(now)
        if total >= self._config.min_volume and failures / total >= (
            self._config.error_rate_threshold
        ):
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = OPEN
        self._opened_at = now
        self._cooldown = self._config.cooldown(self._failed_trials, self._random())
        self._trials = 0
        self._trial_successes = 0
        self.opened_count += 1

    def _close(self) -> None:
        self._state = CLOSED
        self._consecutive = 0
        self._failed_trials = 0
        self._trials = 0
        self._trial_successes = 0
        # The failures that opened the breaker must not re-open it on the next single error.
        self._window.clear()
