"""Auterity's routing engine: pure Python, no Django, no I/O.

It compiles operators' routing policies, keeps live provider statistics with a circuit breaker
per provider, and decides for one request which provider+model targets to try and why. The
gateway (`gateway/service.py`) feeds it plain data; the dry-run endpoint uses it unchanged.
The policy language is documented for operators in docs/policies.md.
"""

from .actions import STRATEGIES, ActionSpec, Constraints, TargetSpec, validate_actions
from .breaker import BreakerConfig, CircuitBreaker
from .conditions import validate_conditions
from .decide import OVER_COST_GUARD, decide
from .expected import DEFAULT_EXPECTED_OUTPUT_TOKENS, NO_ESTIMATES, OutputEstimates
from .pricing import PriceRules, Rates
from .snapshot import CompiledPolicy, Snapshot, compile_policy, compile_snapshot
from .stats import ProviderStats, StatsConfig
from .types import (
    CAPABILITIES,
    DEFAULT_FALLBACK_ON,
    DRAINED,
    ERROR_TYPES,
    Caller,
    Decision,
    DecisionOptions,
    FallbackSpec,
    ModelOffer,
    PolicyError,
    ProviderInfo,
    RequestContext,
    RetrySpec,
    StatsView,
    Target,
    UnknownModel,
    ValidationIssue,
)

__all__ = [
    "CAPABILITIES",
    "DEFAULT_EXPECTED_OUTPUT_TOKENS",
    "DEFAULT_FALLBACK_ON",
    "DRAINED",
    "ERROR_TYPES",
    "NO_ESTIMATES",
    "OVER_COST_GUARD",
    "STRATEGIES",
    "ActionSpec",
    "BreakerConfig",
    "Caller",
    "CircuitBreaker",
    "CompiledPolicy",
    "Constraints",
    "Decision",
    "DecisionOptions",
    "FallbackSpec",
    "ModelOffer",
    "OutputEstimates",
    "PolicyError",
    "PriceRules",
    "ProviderInfo",
    "ProviderStats",
    "Rates",
    "RequestContext",
    "RetrySpec",
    "Snapshot",
    "StatsConfig",
    "StatsView",
    "Target",
    "TargetSpec",
    "UnknownModel",
    "ValidationIssue",
    "compile_policy",
    "compile_snapshot",
    "decide",
    "validate_actions",
    "validate_conditions",
]
