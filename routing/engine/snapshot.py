"""Compiled policies and the immutable snapshot a decision reads.

The gateway rebuilds a snapshot when the policy/provider version changes and shares it between
threads; nothing here is mutated after construction. Everything a decision would otherwise
compute per request from the catalogue (offers per model, the default offer, each policy's
target list expanded against the offers, which policies can possibly match a model) is
computed once here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .actions import ActionSpec, TargetSpec, compile_actions
from .canary import in_cohort
from .conditions import Facts, Predicate, attribute_paths, compile_conditions
from .index import Guard, ModelFilter, PolicyIndex, build_indexes, guard_and_residual, model_filter
from .types import ModelOffer, PolicyError, ProviderInfo

ACTIVE = "active"
_DEFAULT_SPEC = ActionSpec()


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A validated policy, ready to evaluate: `matches(facts)` runs the closure tree."""

    id: str
    name: str
    priority: int
    conditions: Mapping[str, Any]
    actions: Mapping[str, Any]
    predicate: Predicate = field(repr=False, compare=False)
    spec: ActionSpec = _DEFAULT_SPEC
    status: str = ACTIVE
    # What the snapshot's index files the policy under (index.py); derived from `conditions`.
    model_filter: ModelFilter | None = field(default=None, repr=False, compare=False)
    guard: Guard | None = field(default=None, repr=False, compare=False)
    # What is left to evaluate once the index found the policy through its guard.
    residual: Predicate | None = field(default=None, repr=False, compare=False)
    # "canary N %": only that sticky share of callers is routed by it (canary.py).
    canary_percent: float | None = None

    def matches(self, facts: Facts) -> bool:
        return self.predicate(facts)


def compile_policy(
    id: Any,
    name: str,
    priority: int,
    conditions: Any,
    actions: Any,
    *,
    status: str = ACTIVE,
    canary_percent: float | None = None,
) -> CompiledPolicy:
    """Validate and compile one policy; raises `PolicyError` listing every issue.

    Targets are checked for shape only: a provider or model that disappears after the policy
    was saved must not make the policy uncompilable, the decision just drops that target.
    """
    predicate, condition_issues = compile_conditions(conditions)
    spec, action_issues = compile_actions(actions)
    issues = condition_issues + action_issues
    if issues:
        raise PolicyError(issues)
    policy_guard, residual_conditions = guard_and_residual(conditions)
    residual = predicate
    if residual_conditions is not None:
        residual = compile_conditions(residual_conditions)[0]
    if canary_percent is not None:
        # A canary matches only its cohort's requests; `predicate` stays the conditions alone
        # (decide() reads it to find the control cohort).
        policy_id, percent, conditions_hold = str(id), float(canary_percent), residual

        def residual(facts, _id=policy_id, _percent=percent, _holds=conditions_hold):
            return _holds(facts) and in_cohort(_id, _percent, facts)

    return CompiledPolicy(
        id=str(id),
        name=str(name),
        priority=int(priority),
        conditions=conditions,
        actions=actions,
        predicate=predicate,
        spec=spec,
        status=status,
        model_filter=model_filter(conditions),
        guard=policy_guard,
        residual=residual,
        canary_percent=canary_percent,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """One policy target after wildcard expansion, in written order (`index`)."""

    provider_id: str
    model: str
    offer: ModelOffer | None
    weight: float
    index: int
    wildcard: bool = False
    info: ProviderInfo | None = None  # the offer's provider, None if unknown


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str | int
    policies: tuple[CompiledPolicy, ...]
    providers: Mapping[str, ProviderInfo]
    offers: Mapping[tuple[str, str], ModelOffer]
    offers_by_model: Mapping[str, tuple[ModelOffer, ...]]
    default_offers: Mapping[str, ModelOffer]
    policy_index: Mapping[str, PolicyIndex]  # model -> the policies its requests can match
    candidates: Mapping[str, tuple[Candidate, ...]]  # policy id -> expanded explicit targets
    model_candidates: Mapping[str, tuple[Candidate, ...]]  # model -> every provider offering it
    warnings: tuple[str, ...] = ()
    # Whether any active policy reads time.* / header.*; if not, decisions skip computing them.
    uses_time: bool = True
    uses_headers: bool = True
    # Policies active as canaries, and every policy's place in evaluation order.
    canaries: tuple[CompiledPolicy, ...] = ()
    order: Mapping[str, int] = field(default_factory=dict)

    def policy(self, policy_id: str) -> CompiledPolicy | None:
        for p in self.policies:
            if p.id == policy_id:
                return p
        return None


def _offer_order(offer: ModelOffer) -> tuple[Any, ...]:
    # Default provider first, then by list price, then id so the order never depends on input.
    return (not offer.is_default, offer.input_price + offer.output_price, offer.provider_id)


def compile_snapshot(
    policies: Iterable[CompiledPolicy],
    providers: Iterable[ProviderInfo],
    offers: Iterable[ModelOffer],
    version: str | int,
) -> Snapshot:
    """Build the read-only view decisions use.

    Only policies with status "active" are kept. Order: `priority` ascending (a lower number is
    evaluated first), then name, then id. Inconsistent catalogue data (two defaults for a model,
    none, duplicate offers) is resolved deterministically and reported in `warnings`.
    """
    warnings: list[str] = []

    provider_map: dict[str, ProviderInfo] = {}
    for info in providers:
        if info.id in provider_map:
            warnings.append(f"duplicate provider '{info.id}' ignored")
            continue
        provider_map[info.id] = info

    offer_map: dict[tuple[str, str], ModelOffer] = {}
    for offer in offers:
        key = (offer.provider_id, offer.model)
        if key in offer_map:
            warnings.append(f"duplicate offer {offer.provider_id}/{offer.model} ignored")
            continue
        offer_map[key] = offer

    grouped: dict[str, list[ModelOffer]] = {}
    for offer in offer_map.values():
        grouped.setdefault(offer.model, []).append(offer)

    by_model: dict[str, tuple[ModelOffer, ...]] = {}
    defaults: dict[str, ModelOffer] = {}
    for model, model_offers in sorted(grouped.items()):
        ordered = tuple(sorted(model_offers, key=_offer_order))
        by_model[model] = ordered
        flagged = [o for o in ordered if o.is_default]
        if len(flagged) > 1:
            warnings.append(
                f"model '{model}' has {len(flagged)} default providers; "
                f"using '{flagged[0].provider_id}'"
            )
        if not flagged:
            warnings.append(
                f"model '{model}' has no default provider; using the cheapest, "
                f"'{ordered[0].provider_id}'"
            )
        defaults[model] = flagged[0] if flagged else ordered[0]

    active: list[CompiledPolicy] = []
    seen_ids: set[str] = set()
    for policy in policies:
        if policy.status != ACTIVE:
            continue
        if policy.id in seen_ids:
            warnings.append(f"duplicate policy id '{policy.id}' ignored")
            continue
        seen_ids.add(policy.id)
        active.append(policy)
    active.sort(key=lambda p: (p.priority, p.name, p.id))
    ordered_policies = tuple(active)

    policy_index = build_indexes(ordered_policies, by_model)

    candidates = {
        p.id: _expand(p.spec.targets, offer_map, by_model, provider_map)
        for p in ordered_policies
        if p.spec.targets is not None
    }

    # A policy without `targets` means "the requested model on every provider offering it".
    model_candidates = {
        model: tuple(
            Candidate(o.provider_id, model, o, 1.0, i, True, provider_map.get(o.provider_id))
            for i, o in enumerate(model_offers)
        )
        for model, model_offers in by_model.items()
    }

    paths = set().union(*(attribute_paths(p.conditions) for p in ordered_policies))

    return Snapshot(
        version=version,
        policies=ordered_policies,
        providers=MappingProxyType(provider_map),
        offers=MappingProxyType(offer_map),
        offers_by_model=MappingProxyType(by_model),
        default_offers=MappingProxyType(defaults),
        policy_index=MappingProxyType(policy_index),
        candidates=MappingProxyType(candidates),
        model_candidates=MappingProxyType(model_candidates),
        warnings=tuple(warnings),
        uses_time=any(path.startswith("time.") for path in paths),
        uses_headers=any(path.startswith("header.") for path in paths),
        canaries=tuple(p for p in ordered_policies if p.canary_percent is not None),
        order=MappingProxyType({p.id: i for i, p in enumerate(ordered_policies)}),
    )


def _expand(
    targets: tuple[TargetSpec, ...],
    offers: Mapping[tuple[str, str], ModelOffer],
    by_model: Mapping[str, tuple[ModelOffer, ...]],
    providers: Mapping[str, ProviderInfo],
) -> tuple[Candidate, ...]:
    expanded: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for spec in targets:
        if spec.provider is None:
            model_offers = by_model.get(spec.model, ())
            if not model_offers:
                # Kept so the decision can say why it was dropped.
                expanded.append(Candidate("*", spec.model, None, spec.weight, len(expanded), True))
                continue
            for offer in model_offers:
                key = (offer.provider_id, offer.model)
                if key not in seen:
                    seen.add(key)
                    expanded.append(
                        Candidate(
                            offer.provider_id,
                            offer.model,
                            offer,
                            spec.weight,
                            len(expanded),
                            True,
                            providers.get(offer.provider_id),
                        )
                    )
            continue
        key = (spec.provider, spec.model)
        if key in seen:
            continue
        seen.add(key)
        expanded.append(
            Candidate(
                spec.provider,
                spec.model,
                offers.get(key),
                spec.weight,
                len(expanded),
                info=providers.get(spec.provider),
            )
        )
    return tuple(expanded)
