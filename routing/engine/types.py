"""Plain data the routing engine takes and returns.

Everything here is immutable so a snapshot can be shared between threads and a decision can
be logged or serialised without copying. Prices are USD per token, times are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from vocabulary import Capability, ErrorType

from .pricing import PriceRules

# The vocabulary's words (vocabulary/, below every app, so the adapters read the same ones).
CAPABILITIES = frozenset(Capability)

# The adapters' error taxonomy; `fallback.on` and `ProviderStats.end()` speak it.
ERROR_TYPES = frozenset(ErrorType)

# Errors worth another target by default. invalid_request and context_length_exceeded are the
# caller's fault and would fail the same way elsewhere; authentication is a configuration fault
# of one provider, but retrying the request elsewhere silently hides a broken key, so operators
# opt in to it (and to context_length_exceeded, see docs/policies.md) explicitly.
DEFAULT_FALLBACK_ON = ERROR_TYPES - {
    ErrorType.INVALID_REQUEST,
    ErrorType.CONTEXT_LENGTH_EXCEEDED,
    ErrorType.AUTHENTICATION,
}

PROVIDER_STATUSES = frozenset({"healthy", "degraded", "down"})
BREAKER_STATES = ("closed", "open", "half_open")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """One model as served by one provider, with that provider's list prices.

    `pricing` holds the full rules (cached input, cache writes, reasoning, long-context tiers;
    pricing.py); left out, it is the flat `input_price`/`output_price`.
    `thinking_tokens` is the thinking the model is expected to spend per call until the request
    log has measured it (0: it does not think). `quality_score` and `quality_tier` place the
    model among the others (quality.py; None: unrated).
    """

    provider_id: str
    model: str
    upstream_model: str
    input_price: float
    output_price: float
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    is_default: bool = False
    pricing: PriceRules | None = None
    thinking_tokens: int = 0
    quality_score: float | None = None
    quality_tier: str | None = None

    def __post_init__(self) -> None:
        if self.pricing is None:
            object.__setattr__(
                self, "pricing", PriceRules.build(self.input_price, self.output_price)
            )


# A provider an operator took out of service (ProviderInfo.status): no traffic at all, not
# even as a last resort, unlike "down".
DRAINED = "drained"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A provider as the catalogue and the health probes see it."""

    id: str
    type: str
    status: str = "healthy"
    capacity: int | None = None
    avg_response_time: float | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str | None = None
    username: str | None = None
    groups: frozenset[str] = frozenset()
    api_key: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the engine knows about one chat request before any provider is called.

    `headers` names may be in any case (the engine lower-cases them, and only when a policy
    reads a header). `capabilities` are the ones the request needs
    (`stream=True` implies "streaming" even if the caller did not list it). `now` should be
    timezone-aware (a naive value is taken as UTC); with `now=None` the `time.*` attributes
    are missing, so conditions on them do not match.

    What the cost guard expects the answer to cost (expected.py): `expected_output_tokens` is
    the visible output expected when `max_tokens` is absent (None: the engine's default), and
    `thinking_tokens` the observed thinking per target model (a model missing from it is
    expected to think its offer's `thinking_tokens`), and `cached_share` the observed share of
    this caller's prompt tokens that each (provider, model) served from its prompt cache
    (missing: no cache hit expected).
    """

    request_id: str
    model: str
    input_tokens: int
    max_tokens: int | None = None
    stream: bool = False
    capabilities: frozenset[str] = frozenset()
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    caller: Caller = Caller()
    now: datetime | None = None
    expected_output_tokens: int | None = None
    thinking_tokens: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    cached_share: Mapping[tuple[str, str], float] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """How the gateway retries one target: `attempts` is the total tries on that target."""

    attempts: int = 1
    backoff_s: float = 0.2
    max_backoff_s: float = 2.0
    respect_retry_after: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "backoff_s": self.backoff_s,
            "max_backoff_s": self.max_backoff_s,
            "respect_retry_after": self.respect_retry_after,
        }


@dataclass(frozen=True, slots=True)
class FallbackSpec:
    """Whether a failed target hands over to the next one, and for which error types."""

    enabled: bool = True
    on: frozenset[str] = DEFAULT_FALLBACK_ON

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "on": sorted(self.on)}


@dataclass(frozen=True, slots=True)
class Target:
    provider_id: str
    model: str
    upstream_model: str
    expected_cost: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "model": self.model,
            "upstream_model": self.upstream_model,
            "expected_cost": self.expected_cost,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer: targets in the order to try them, and why.

    `targets` may be empty when a matched policy leaves nothing eligible; the gateway then
    answers with an error quoting `dropped` and `reasons` instead of calling anyone.
    """

    policy_id: str | None
    policy_name: str | None
    strategy: str
    targets: tuple[Target, ...]
    baseline: Target | None
    dropped: tuple[tuple[str, str, str], ...] = ()
    reasons: tuple[str, ...] = ()
    retry: RetrySpec = RetrySpec()
    fallback: FallbackSpec = FallbackSpec()
    timeout_s: float | None = None
    snapshot_version: str | int | None = None
    # (policy id, "canary" | "control") when a canary policy's conditions matched the request.
    canary: tuple[str, str] | None = None

    @property
    def primary(self) -> Target | None:
        return self.targets[0] if self.targets else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "policy_name": self.policy_name,
            "strategy": self.strategy,
            "targets": [t.to_dict() for t in self.targets],
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "dropped": [
                {"provider_id": p, "model": m, "reason": why} for p, m, why in self.dropped
            ],
            "reasons": list(self.reasons),
            "retry": self.retry.to_dict(),
            "fallback": self.fallback.to_dict(),
            "timeout_s": self.timeout_s,
            "snapshot_version": self.snapshot_version,
            "canary": {"policy_id": self.canary[0], "cohort": self.canary[1]}
            if self.canary
            else None,
        }


@dataclass(frozen=True, slots=True)
class DecisionOptions:
    """Per-request switches; the gateway maps its feature flags onto these.

    `max_cost_increase=None` turns the cost guard off (policies may then upgrade models).
    """

    use_policies: bool = True
    cost_optimization: bool = True
    intelligent: bool = True
    fallback: bool = True
    max_cost_increase: float | None = 0.05
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class StatsView:
    """Live figures for one provider at one instant, as `ProviderStats.snapshot_view` sees them.

    `latency_s` is None while the provider has no latency history.
    """

    latency_s: float | None = None
    error_rate: float = 0.0
    inflight: int = 0
    breaker_state: str = "closed"
    allows_request: bool = True


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem in a policy: `path` points into the JSON (`actions.targets[2].provider`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class PolicyError(ValueError):
    """A policy's conditions or actions are invalid; `issues` says where and why."""

    def __init__(self, issues: list[ValidationIssue] | tuple[ValidationIssue, ...]):
        self.issues = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "invalid policy")


class UnknownModel(LookupError):
    """The requested model is not offered by any provider in the snapshot."""

    def __init__(self, model: str):
        self.model = model
        super().__init__(f"unknown model '{model}'")

    @property
    def message(self) -> str:
        """What the caller is told (the gateway's 404, the dry run's form error)."""
        return f"The model '{self.model}' does not exist or is not offered by any provider."


__all__ = [
    "BREAKER_STATES",
    "CAPABILITIES",
    "DEFAULT_FALLBACK_ON",
    "ERROR_TYPES",
    "PROVIDER_STATUSES",
    "Caller",
    "Decision",
    "DecisionOptions",
    "FallbackSpec",
    "ModelOffer",
    "PolicyError",
    "ProviderInfo",
    "RequestContext",
    "RetrySpec",
    "StatsView",
    "Target",
    "UnknownModel",
    "ValidationIssue",
]
