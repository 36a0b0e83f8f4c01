"""The `actions` half of a routing policy: where to send a matching request, and how.

As with conditions, validation and compilation are the same walk, so a policy that validates
always compiles. Unknown keys are errors: a misspelt `strategie` would otherwise silently
fall back to the default strategy.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .quality import NO_DOWNGRADE, TIERS, DowngradeSpec
from .types import (
    CAPABILITIES,
    DEFAULT_FALLBACK_ON,
    ERROR_TYPES,
    FallbackSpec,
    ModelOffer,
    RetrySpec,
    ValidationIssue,
)

STRATEGIES = ("priority", "weighted", "cheapest", "fastest", "least_loaded", "balanced")
DEFAULT_BALANCED_WEIGHTS = {"cost": 0.5, "latency": 0.3, "errors": 0.2}
MAX_RETRY_ATTEMPTS = 5
ANY_PROVIDER = "*"

_ACTION_KEYS = (
    "targets",
    "strategy",
    "weights",
    "fallback",
    "retry",
    "timeout_s",
    "constraints",
    "allow_downgrade_to",
    "max_score_drop",
)
_TARGET_KEYS = ("provider", "model", "weight")
_FALLBACK_KEYS = ("enabled", "on")
_RETRY_KEYS = ("attempts", "backoff_ms", "max_backoff_ms", "respect_retry_after")
_CONSTRAINT_KEYS = ("max_cost_usd", "max_latency_s", "capabilities", "min_context_window")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One entry of `actions.targets`; `provider=None` is the `*` wildcard."""

    provider: str | None
    model: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Constraints:
    max_cost_usd: float | None = None
    max_latency_s: float | None = None
    capabilities: frozenset[str] = frozenset()
    min_context_window: int | None = None


_DEFAULT_FALLBACK = FallbackSpec()
_DEFAULT_RETRY = RetrySpec()
_NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """Compiled actions. `targets=None` means "the requested model on every provider"."""

    targets: tuple[TargetSpec, ...] | None = None
    strategy: str = "priority"
    weights: tuple[float, float, float] = (0.5, 0.3, 0.2)
    fallback: FallbackSpec = _DEFAULT_FALLBACK
    retry: RetrySpec = _DEFAULT_RETRY
    timeout_s: float | None = None
    constraints: Constraints = _NO_CONSTRAINTS
    downgrade: DowngradeSpec = NO_DOWNGRADE


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _suggest(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Catalogue:
    """What the validator knows exists; either part may be unknown (None)."""

    def __init__(self, offers: Iterable[ModelOffer] | None, providers: Iterable[str] | None):
        self.offers: set[tuple[str, str]] | None = None
        self.models: set[str] | None = None
        self.providers: set[str] | None = set(providers) if providers is not None else None
        if offers is not None:
            offer_list = list(offers)
            self.offers = {(o.provider_id, o.model) for o in offer_list}
            self.models = {o.model for o in offer_list}
            if self.providers is None:
                self.providers = {o.provider_id for o in offer_list}


class _Compiler:
    def __init__(self, catalogue: _Catalogue):
        self.catalogue = catalogue
        self.issues: list[ValidationIssue] = []

    def error(self, path: str, message: str) -> None:
        self.issues.append(ValidationIssue(path, message))

    def keys(self, obj: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.error(
                    f"{path}.{key}",
                    f"unknown key '{key}'{_suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                )

    def object(self, value: Any, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.error(path, "must be a JSON object")
            return None
        return value

    def actions(self, obj: Any) -> ActionSpec:
        path = "actions"
        actions = self.object(obj, path)
        if actions is None:
            return ActionSpec()
        self.keys(actions, _ACTION_KEYS, path)

        strategy = actions.get("strategy", "priority")
        if strategy not in STRATEGIES:
            self.error(f"{path}.strategy", f"must be one of {', '.join(STRATEGIES)}")
            strategy = "priority"

        return ActionSpec(
            targets=self.targets(actions["targets"]) if "targets" in actions else None,
            strategy=strategy,
            weights=self.weights(actions.get("weights"), strategy),
            fallback=self.fallback(actions.get("fallback")),
            retry=self.retry(actions.get("retry")),
            timeout_s=self.positive(actions.get("timeout_s"), f"{path}.timeout_s"),
            constraints=self.constraints(actions.get("constraints")),
            downgrade=self.downgrade(actions),
        )

    def downgrade(self, actions: Mapping[str, Any]) -> DowngradeSpec:
        """`allow_downgrade_to` (a tier name) and `max_score_drop` (points >= 0); either one
        lets the policy substitute lower-tier models (quality.py)."""
        allow_to = actions.get("allow_downgrade_to")
        if allow_to is not None and allow_to not in TIERS:
            self.error(
                "actions.allow_downgrade_to",
                f"must be one of {', '.join(TIERS)}{_suggest(allow_to, TIERS)}",
            )
            allow_to = None
        drop = actions.get("max_score_drop")
        if drop is not None and (not _is_num(drop) or drop < 0):
            self.error("actions.max_score_drop", "must be a number of score points >= 0")
            drop = None
        if allow_to is None and drop is None:
            return NO_DOWNGRADE
        return DowngradeSpec(
            allow_to=allow_to, max_score_drop=None if drop is None else float(drop)
        )

    def targets(self, value: Any) -> tuple[TargetSpec, ...] | None:
        path = "actions.targets"
        if not isinstance(value, list | tuple):
            self.error(path, "must be a list of {provider, model} objects")
            return None
        if not value:
            # Same as omitting the key: the requested model on every provider offering it.
            return None
        specs: list[TargetSpec] = []
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(value):
            tpath = f"{path}[{i}]"
            target = self.object(item, tpath)
            if target is None:
                continue
            self.keys(target, _TARGET_KEYS, tpath)
            provider = target.get("provider")
            model = target.get("model")
            ok = True
            if not isinstance(provider, str) or not provider.strip():
                self.error(f"{tpath}.provider", "required: a provider id or '*'")
                ok = False
            if not isinstance(model, str) or not model.strip():
                self.error(f"{tpath}.model", "required: a model name")
                ok = False
            weight = target.get("weight", 1.0)
            if not _is_num(weight) or weight <= 0:
                self.error(f"{tpath}.weight", "must be a number greater than 0")
                weight = 1.0
            if not ok:
                continue
            if (provider, model) in seen:
                self.error(tpath, f"duplicate target {provider}/{model}")
                continue
            seen.add((provider, model))
            self.check_offer(provider, model, tpath)
            specs.append(
                TargetSpec(
                    provider=None if provider == ANY_PROVIDER else provider,
                    model=model,
                    weight=float(weight),
                )
            )
        return tuple(specs) if specs else None

    def check_offer(self, provider: str, model: str, path: str) -> None:
        cat = self.catalogue
        provider_known = True
        if provider != ANY_PROVIDER and cat.providers is not None and provider not in cat.providers:
            self.error(
                f"{path}.provider",
                f"unknown provider '{provider}'{_suggest(provider, cat.providers)}",
            )
            provider_known = False
        if cat.models is None or cat.offers is None:
            return
        if model not in cat.models:
            self.error(f"{path}.model", f"unknown model '{model}'{_suggest(model, cat.models)}")
        elif provider_known and provider != ANY_PROVIDER and (provider, model) not in cat.offers:
            self.error(f"{path}.model", f"provider '{provider}' does not offer model '{model}'")

    def weights(self, value: Any, strategy: str) -> tuple[float, float, float]:
        path = "actions.weights"
        merged = dict(DEFAULT_BALANCED_WEIGHTS)
        if value is None:
            return (merged["cost"], merged["latency"], merged["errors"])
        weights = self.object(value, path)
        if weights is None:
            return (merged["cost"], merged["latency"], merged["errors"])
        self.keys(weights, tuple(DEFAULT_BALANCED_WEIGHTS), path)
        for key in DEFAULT_BALANCED_WEIGHTS:
            if key in weights:
                w = weights[key]
                if not _is_num(w) or w < 0:
                    self.error(f"{path}.{key}", "must be a number greater than or equal to 0")
                else:
                    merged[key] = float(w)
        if sum(merged.values()) <= 0:
            self.error(path, "at least one weight must be greater than 0")
            merged = dict(DEFAULT_BALANCED_WEIGHTS)
        return (merged["cost"], merged["latency"], merged["errors"])

    def fallback(self, value: Any) -> FallbackSpec:
        path = "actions.fallback"
        if value is None:
            return FallbackSpec()
        fallback = self.object(value, path)
        if fallback is None:
            return FallbackSpec()
        self.keys(fallback, _FALLBACK_KEYS, path)
        enabled = fallback.get("enabled", True)
        if not isinstance(enabled, bool):
            self.error(f"{path}.enabled", "must be true or false")
            enabled = True
        on = DEFAULT_FALLBACK_ON
        if "on" in fallback:
            raw = fallback["on"]
            if not isinstance(raw, list | tuple):
                self.error(f"{path}.on", "must be a list of error types")
            else:
                good = []
                for i, error_type in enumerate(raw):
                    if error_type not in ERROR_TYPES:
                        self.error(
                            f"{path}.on[{i}]",
                            f"unknown error type '{error_type}'{_suggest(error_type, ERROR_TYPES)}"
                            f"; one of {', '.join(sorted(ERROR_TYPES))}",
                        )
                    else:
                        good.append(error_type)
                on = frozenset(good)
        return FallbackSpec(enabled=enabled, on=on)

    def retry(self, value: Any) -> RetrySpec:
        path = "actions.retry"
        default = RetrySpec()
        if value is None:
            return default
        retry = self.object(value, path)
        if retry is None:
            return default
        self.keys(retry, _RETRY_KEYS, path)
        attempts = retry.get("attempts", default.attempts)
        if not _is_int(attempts) or not 1 <= attempts <= MAX_RETRY_ATTEMPTS:
            self.error(f"{path}.attempts", f"must be an integer between 1 and {MAX_RETRY_ATTEMPTS}")
            attempts = default.attempts
        backoff_ms = retry.get("backoff_ms", default.backoff_s * 1000)
        if not _is_num(backoff_ms) or backoff_ms < 0:
            self.error(f"{path}.backoff_ms", "must be a number of milliseconds >= 0")
            backoff_ms = default.backoff_s * 1000
        max_backoff_ms = retry.get("max_backoff_ms", max(default.max_backoff_s * 1000, backoff_ms))
        if not _is_num(max_backoff_ms) or max_backoff_ms < 0:
            self.error(f"{path}.max_backoff_ms", "must be a number of milliseconds >= 0")
            max_backoff_ms = max(default.max_backoff_s * 1000, backoff_ms)
        elif max_backoff_ms < backoff_ms:
            self.error(f"{path}.max_backoff_ms", "must be greater than or equal to backoff_ms")
        respect = retry.get("respect_retry_after", default.respect_retry_after)
        if not isinstance(respect, bool):
            self.error(f"{path}.respect_retry_after", "must be true or false")
            respect = default.respect_retry_after
        return RetrySpec(
            attempts=attempts,
            backoff_s=backoff_ms / 1000,
            max_backoff_s=max_backoff_ms / 1000,
            respect_retry_after=respect,
        )

    def positive(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if not _is_num(value) or value <= 0:
            self.error(path, "must be a number greater than 0")
            return None
        return float(value)

    def constraints(self, value: Any) -> Constraints:
        path = "actions.constraints"
        if value is None:
            return Constraints()
        constraints = self.object(value, path)
        if constraints is None:
            return Constraints()
        self.keys(constraints, _CONSTRAINT_KEYS, path)
        caps: set[str] = set()
        if "capabilities" in constraints:
            raw = constraints["capabilities"]
            if not isinstance(raw, list | tuple):
                self.error(f"{path}.capabilities", "must be a list of capabilities")
            else:
                for i, cap in enumerate(raw):
                    if cap not in CAPABILITIES:
                        self.error(
                            f"{path}.capabilities[{i}]",
                            f"unknown capability '{cap}'{_suggest(cap, CAPABILITIES)}; "
                            f"one of {', '.join(sorted(CAPABILITIES))}",
                        )
                    else:
                        caps.add(cap)
        min_window = constraints.get("min_context_window")
        if min_window is not None and (not _is_int(min_window) or min_window < 1):
            self.error(f"{path}.min_context_window", "must be an integer greater than 0")
            min_window = None
        return Constraints(
            max_cost_usd=self.positive(constraints.get("max_cost_usd"), f"{path}.max_cost_usd"),
            max_latency_s=self.positive(constraints.get("max_latency_s"), f"{path}.max_latency_s"),
            capabilities=frozenset(caps),
            min_context_window=min_window,
        )


def validate_actions(
    obj: Any,
    offers: Iterable[ModelOffer] | None = None,
    providers: Iterable[str] | None = None,
) -> list[ValidationIssue]:
    """Every problem in a policy's `actions`, with paths like `actions.targets[2].provider`.

    With `offers` and/or `providers` the targets are also checked against what exists now;
    without them only the shape is checked (a snapshot drops missing targets at decision time).
    """
    return compile_actions(obj, offers, providers)[1]


def compile_actions(
    obj: Any,
    offers: Iterable[ModelOffer] | None = None,
    providers: Iterable[str] | None = None,
) -> tuple[ActionSpec, list[ValidationIssue]]:
    """The compiled actions and the issues found; the spec is only usable if there are none."""
    compiler = _Compiler(_Catalogue(offers, providers))
    spec = compiler.actions(obj)
    return spec, compiler.issues
