"""Live per-provider statistics: peak-EWMA latency, error rate, in-flight count, breaker.

One registry per process, shared by the gateway's threads behind one lock; every operation is
a handful of arithmetic steps, so the lock is held for microseconds. Time is passed in (`now`,
monotonic seconds) or read from the injected clock, which keeps tests deterministic.

Latency follows Finagle's peak-EWMA: a sample above the current estimate replaces it at once
(react to trouble immediately), a lower one is blended in with weight 1 - exp(-dt/decay)
where dt is the time since the previous sample (recover cautiously), and the estimate decays
towards zero while no samples arrive, so an idle provider is eventually tried again. The decay
is computed on read without mutating, which is what Finagle's `observe(0)`-on-read does.
While a provider has no latency history but has requests in flight it reports a penalty
latency, so a burst is not piled onto an unknown provider before its first answer is back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from vocabulary import ErrorType

from .breaker import BreakerConfig, CircuitBreaker
from .types import StatsView

# The provider answered correctly; the request was at fault. These neither count as provider
# failures nor reset anything that a failure would set; they are health-neutral successes.
CALLER_ERRORS = frozenset({ErrorType.INVALID_REQUEST, ErrorType.CONTEXT_LENGTH_EXCEEDED})
# Failures whose elapsed time says something about the provider's speed. A refused connection
# after 3 ms would otherwise make a broken provider look fast.
SLOW_FAILURES = frozenset({ErrorType.TIMEOUT})


@dataclass(frozen=True, slots=True)
class StatsConfig:
    latency_decay_s: float = 10.0
    error_alpha: float = 0.1  # weight of one outcome in the error-rate EWMA (~10-request memory)
    error_decay_s: float = 60.0  # while idle, the error rate decays towards 0 with this constant
    inflight_penalty_s: float = 60.0
    # live_view() reuses a provider's figures for this long: routing does not need them
    # fresher, and admission is still decided exactly by begin().
    view_max_age_s: float = 0.05
    breaker: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        if self.latency_decay_s <= 0 or self.error_decay_s <= 0:
            raise ValueError("decay times must be > 0")
        if not 0 < self.error_alpha <= 1:
            raise ValueError("error_alpha must be in (0, 1]")


class _ProviderState:
    __slots__ = (
        "breaker",
        "err_rate",
        "err_stamp",
        "has_latency",
        "inflight",
        "latency",
        "latency_stamp",
    )

    def __init__(self, config: StatsConfig):
        self.latency = 0.0
        self.latency_stamp = 0.0
        self.has_latency = False
        self.err_rate = 0.0
        self.err_stamp = 0.0
        self.inflight = 0
        self.breaker = CircuitBreaker(config.breaker)


class ProviderStats:
    """Thread-safe registry of live provider statistics, keyed by provider id."""

    def __init__(
        self,
        config: StatsConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.config = config or StatsConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _ProviderState] = {}
        self._recent: dict[str, tuple[float, StatsView | None]] = {}

    def reset(self, config: StatsConfig | None = None) -> None:
        """Forget every provider's figures (tests), optionally with a new configuration. The
        registry stays the same object, so every module holding it sees the reset."""
        with self._lock:
            if config is not None:
                self.config = config
            self._states.clear()
            self._recent.clear()

    def _state(self, provider_id: str) -> _ProviderState:
        state = self._states.get(provider_id)
        if state is None:
            state = self._states[provider_id] = _ProviderState(self.config)
        return state

    def begin(self, provider_id: str, now: float | None = None) -> bool:
        """Count a request to `provider_id` as in flight; True if the breaker admits it.

        The request is counted either way: pair every `begin()` with exactly one `end()` (the
        request was sent) or `release()` (it was not, e.g. because this returned False).
        """
        now = self._clock() if now is None else now
        with self._lock:
            state = self._state(provider_id)
            state.inflight += 1
            return state.breaker.on_begin(now)

    def release(self, provider_id: str, now: float | None = None) -> None:
        """Undo a `begin()` whose request was never sent (the breaker refused it, the deadline
        passed): frees the in-flight count and any half-open trial slot, records no outcome."""
        now = self._clock() if now is None else now
        with self._lock:
            state = self._states.get(provider_id)
            if state is not None:
                state.inflight = max(0, state.inflight - 1)
                state.breaker.on_release(now)

    def end(
        self,
        provider_id: str,
        latency_s: float | None,
        ok: bool,
        error_type: str | None = None,
        now: float | None = None,
    ) -> None:
        """Record the outcome of a request started with `begin()`."""
        now = self._clock() if now is None else now
        failed = not ok and error_type not in CALLER_ERRORS
        sample = (
            latency_s
            if latency_s is not None
            and latency_s >= 0
            and math.isfinite(latency_s)
            and (ok or error_type in SLOW_FAILURES)
            else None
        )
        cfg = self.config
        with self._lock:
            state = self._state(provider_id)
            state.inflight = max(0, state.inflight - 1)
            if sample is not None:
                w = math.exp(-max(now - state.latency_stamp, 0.0) / cfg.latency_decay_s)
                current = state.latency * w
                if not state.has_latency or sample > current:
                    state.latency = sample
                else:
                    state.latency = current + sample * (1.0 - w)
                state.latency_stamp = now
                state.has_latency = True
            decayed = state.err_rate * math.exp(
                -max(now - state.err_stamp, 0.0) / cfg.error_decay_s
            )
            state.err_rate = decayed + cfg.error_alpha * ((1.0 if failed else 0.0) - decayed)
            state.err_stamp = now
            if failed:
                state.breaker.on_failure(now)
            else:
                state.breaker.on_success(now)

    def _view(self, state: _ProviderState, now: float) -> StatsView:
        cfg = self.config
        if state.has_latency:
            latency: float | None = state.latency * math.exp(
                -max(now - state.latency_stamp, 0.0) / cfg.latency_decay_s
            )
        elif state.inflight:
            latency = cfg.inflight_penalty_s
        else:
            latency = None
        error_rate = state.err_rate * math.exp(-max(now - state.err_stamp, 0.0) / cfg.error_decay_s)
        breaker = state.breaker
        return StatsView(
            latency_s=latency,
            error_rate=error_rate,
            inflight=state.inflight,
            breaker_state=breaker.state(now),
            allows_request=breaker.allows(now),
        )

    def view(self, provider_id: str, now: float | None = None) -> StatsView:
        now = self._clock() if now is None else now
        with self._lock:
            state = self._states.get(provider_id)
            return self._view(state, now) if state is not None else StatsView()

    def snapshot_view(self, now: float | None = None) -> Mapping[str, StatsView]:
        """Every known provider's figures at one instant (providers never seen are absent;
        `decide()` treats an absent provider as fresh: no history, breaker closed)."""
        now = self._clock() if now is None else now
        with self._lock:
            return {pid: self._view(state, now) for pid, state in self._states.items()}

    def live_view(self, now: float | None = None) -> Mapping[str, StatsView]:
        """A lazy `snapshot_view` for `decide()`: a provider's figures are computed when first
        read, and reused by other requests for up to `config.view_max_age_s`. What the gateway
        passes per request, since a decision reads a handful of providers, not all of them."""
        return _LiveView(self, self._clock() if now is None else now)

    def _view_of(self, provider_id: str, now: float) -> StatsView | None:
        # Read without the lock: a dict lookup of an immutable (time, view) pair is atomic.
        recent = self._recent.get(provider_id)
        if recent is not None and 0 <= now - recent[0] <= self.config.view_max_age_s:
            return recent[1]
        with self._lock:
            state = self._states.get(provider_id)
            view = self._view(state, now) if state is not None else None
            self._recent[provider_id] = (now, view)
        return view

    def _provider_ids(self) -> list[str]:
        with self._lock:
            return list(self._states)

    def retry_after_s(
        self,
        provider_ids: Iterable[str] | None = None,
        now: float | None = None,
        default: float = 1.0,
    ) -> float:
        """Seconds a caller refused for lack of a provider should wait before trying again
        (the gateway's Retry-After): until the soonest breaker among `provider_ids` (every
        known provider when None) lets a trial through, or `default` when one may be tried
        now or none is known (its failures are not the breakers' doing)."""
        now = self._clock() if now is None else now
        with self._lock:
            ids = list(self._states) if provider_ids is None else list(provider_ids)
            waits = []
            for provider_id in ids:
                state = self._states.get(provider_id)
                waits.append(0.0 if state is None else state.breaker.seconds_until_trial(now))
        soonest = min(waits, default=0.0)
        return soonest if soonest > 0 else default

    def forget(self, provider_id: str) -> None:
        """Drop a provider's history, e.g. when it is deleted or reconfigured."""
        with self._lock:
            self._states.pop(provider_id, None)
            self._recent.pop(provider_id, None)


class _LiveView(Mapping[str, StatsView]):
    __slots__ = ("_cache", "_now", "_stats")

    def __init__(self, stats: ProviderStats, now: float):
        self._stats = stats
        self._now = now
        self._cache: dict[str, StatsView | None] = {}

    def get(self, provider_id: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            view = self._cache[provider_id]
        except KeyError:
            view = self._cache[provider_id] = self._stats._view_of(provider_id, self._now)
        return default if view is None else view

    def __getitem__(self, provider_id: str) -> StatsView:
        view = self.get(provider_id)
        if view is None:
            raise KeyError(provider_id)
        return view

    def __iter__(self) -> Iterator[str]:
        return iter(self._stats._provider_ids())

    def __len__(self) -> int:
        return len(self._stats._provider_ids())
