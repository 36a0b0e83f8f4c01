"""One routing decision: which provider+model targets to try, in which order, and why.

The steps, in the order docs/policies.md explains them to operators:

1. baseline: the requested model on its default provider (the no-router route, cost baseline);
2. the first active policy whose conditions match, or the default route;
3. eligibility: drop targets that cannot serve the request, break the policy's constraints or
   would downgrade the requested model's quality tier without the policy's leave ("static"
   reasons), or whose provider is down / whose breaker refuses ("health" reasons);
4. order by the strategy (after the feature flags have had their say), then, with intelligent
   routing, degraded or saturated providers behind the others;
5. the cost guard: the primary may cost at most baseline * (1 + max_cost_increase);
6. last resort: if health drops left nothing, try the health-dropped targets anyway;
7. without fallback only the primary is kept.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import fields
from itertools import compress, repeat
from operator import attrgetter, call

from vocabulary import ProviderStatus

from .actions import ActionSpec, Constraints
from .canary import CANARY, CONTROL, in_cohort
from .conditions import Facts, zone
from .expected import DEFAULT_EXPECTED_OUTPUT_TOKENS
from .quality import NO_DOWNGRADE, DowngradeSpec, downgrade_refusal, tier_rank
from .snapshot import Candidate, CompiledPolicy, Snapshot
from .types import (
    DRAINED,
    Decision,
    DecisionOptions,
    FallbackSpec,
    ModelOffer,
    ProviderInfo,
    RequestContext,
    StatsView,
    Target,
    UnknownModel,
)

OVER_COST_GUARD = "over cost guard, fallback only"
DEFAULT_STRATEGY = "default"  # the strategy name reported for the default route
_COST_STRATEGIES = frozenset({"cheapest", "balanced"})
_LIVE_STRATEGIES = frozenset({"fastest", "least_loaded", "balanced"})
# Providers without a declared capacity are loaded against this nominal figure.
NOMINAL_CAPACITY = 100
_FRESH = StatsView()
# Candidates come from the index, which has already checked each one's guard condition.
_residual = attrgetter("residual")
_NO_CONSTRAINTS = Constraints()
_DEFAULT_SPEC = ActionSpec()
# Costs are sums of products of small floats; compare with a relative tolerance so a target
# priced exactly at the limit is not rejected by rounding.
_COST_EPSILON = 1e-9


class _Option:
    """A target that passed the eligibility checks, with what ordering needs to know."""

    __slots__ = (
        "cand",
        "cost",
        "demoted",
        "downgrade",
        "info",
        "latency",
        "note",
        "offer",
        "stats",
    )

    def __init__(
        self,
        cand: Candidate,
        offer: ModelOffer,
        info: ProviderInfo,
        stats: StatsView,
        cost: float,
        latency: float | None,
    ):
        self.cand = cand
        self.offer = offer
        self.info = info
        self.stats = stats
        self.cost = cost
        self.latency = latency
        self.demoted = ""
        self.note = ""
        self.downgrade = ""

    def target(self, reason: str) -> Target:
        offer = self.offer
        return _new_target(offer.provider_id, offer.model, offer.upstream_model, self.cost, reason)


class _Checker:
    """The eligibility rules for one request under one policy's constraints."""

    __slots__ = (
        "cached_share",
        "constraints",
        "downgrade",
        "input_tokens",
        "intelligent",
        "max_tokens",
        "needed_window",
        "providers",
        "requested",
        "required",
        "snapshot",
        "stats",
        "thinking",
        "visible_tokens",
    )

    def __init__(
        self,
        ctx: RequestContext,
        snapshot: Snapshot,
        stats: Mapping[str, StatsView],
        options: DecisionOptions,
        constraints: Constraints,
        requested: ModelOffer | None = None,
        downgrade: DowngradeSpec = NO_DOWNGRADE,
    ):
        required = ctx.capabilities | constraints.capabilities
        if ctx.stream:
            required = required | {"streaming"}
        self.required = required
        self.constraints = constraints
        self.input_tokens = ctx.input_tokens
        self.max_tokens = ctx.max_tokens
        if ctx.max_tokens is not None:
            self.visible_tokens = ctx.max_tokens
        elif ctx.expected_output_tokens is not None:
            self.visible_tokens = ctx.expected_output_tokens
        else:
            self.visible_tokens = DEFAULT_EXPECTED_OUTPUT_TOKENS
        self.thinking = ctx.thinking_tokens
        self.cached_share = ctx.cached_share
        # The requested model's offer when a policy may substitute others (None: no tier check).
        self.requested = requested
        self.downgrade = downgrade
        self.needed_window = ctx.input_tokens + (ctx.max_tokens or 0)
        self.snapshot = snapshot
        self.providers = snapshot.providers
        self.stats = stats
        self.intelligent = options.intelligent

    def cost(self, offer: ModelOffer) -> float:
        """Expected cost under the offer's price rules: the input tokens, the expected visible
        output and the target model's expected thinking, all output capped by max_tokens and
        the offer's limit (expected.py), and the share of the prompt this target has been
        serving from its prompt cache (observed; none assumed without an observation). Inlined
        arithmetic: this runs for every target of every request."""
        thinking = self.thinking.get(offer.model, offer.thinking_tokens)
        out = self.visible_tokens + thinking
        max_tokens = self.max_tokens
        if max_tokens is not None and out > max_tokens:
            out = max_tokens
        if 0 < offer.max_output_tokens < out:
            out = offer.max_output_tokens
        if thinking > out:
            thinking = out
        rules = offer.pricing
        rates = rules.rates_for(self.input_tokens) if rules.tiers else rules.base
        cached = self.cached_share.get((offer.provider_id, offer.model)) if self.cached_share else 0
        if cached:
            input_cost = self.input_tokens * (
                (1 - cached) * rates.input + cached * rates.cached_input
            )
        else:
            input_cost = self.input_tokens * rates.input
        return input_cost + (out - thinking) * rates.output + thinking * rates.reasoning

    def check(self, cand: Candidate) -> tuple[_Option | None, str, bool]:
        """(option, "", False) if eligible, else (None, why, is_health_reason)."""
        offer = cand.offer
        if offer is None:
            if cand.provider_id == "*":
                return None, f"no provider offers model '{cand.model}'", False
            if cand.provider_id not in self.providers:
                return None, f"unknown provider '{cand.provider_id}'", False
            return None, f"provider does not offer model '{cand.model}'", False
        info = cand.info
        if info is None:
            return None, f"unknown provider '{offer.provider_id}'", False
        if not self.required <= offer.capabilities:
            missing = sorted(self.required - offer.capabilities)
            return None, f"lacks capability {', '.join(missing)}", False
        if offer.context_window < self.needed_window:
            return (
                None,
                f"context window {offer.context_window} < {self.needed_window} tokens needed",
                False,
            )
        requested = self.requested
        downgrade = ""
        if requested is not None and offer.model != requested.model:
            refusal = downgrade_refusal(
                requested.quality_tier,
                requested.quality_score,
                offer.quality_tier,
                offer.quality_score,
                self.downgrade,
            )
            if refusal:
                return None, refusal, False
            if tier_rank(offer.quality_tier) < tier_rank(requested.quality_tier):
                downgrade = (
                    f"downgrade {requested.quality_tier} -> {offer.quality_tier or 'unrated'}, "
                    "allowed by the policy"
                )
        c = self.constraints
        if c.min_context_window is not None and offer.context_window < c.min_context_window:
            return (
                None,
                f"context window {offer.context_window} < min_context_window "
                f"{c.min_context_window}",
                False,
            )
        cost = self.cost(offer)
        if c.max_cost_usd is not None and cost > c.max_cost_usd * (1 + _COST_EPSILON):
            return None, f"expected cost ${cost:.6f} > max_cost_usd ${c.max_cost_usd:.6f}", False
        stats = self.stats.get(offer.provider_id, _FRESH)
        latency = stats.latency_s
        if latency is None or not self.intelligent:
            latency = info.avg_response_time
        if c.max_latency_s is not None and latency is not None and latency > c.max_latency_s:
            return (
                None,
                f"expected latency {latency:.2f}s > max_latency_s {c.max_latency_s:g}s",
                False,
            )
        if info.status == DRAINED:
            return None, "provider drained by an operator", False
        if info.status == ProviderStatus.DOWN:
            return None, "provider down", True
        if self.intelligent and not stats.allows_request:
            return None, f"circuit breaker {stats.breaker_state.replace('_', '-')}", True
        option = _Option(cand, offer, info, stats, cost, latency)
        option.downgrade = downgrade
        return option, "", False


def decide(
    ctx: RequestContext,
    snapshot: Snapshot,
    stats: Mapping[str, StatsView],
    options: DecisionOptions | None = None,
) -> Decision:
    """Route one request. Pure: same arguments, same decision.

    Raises `UnknownModel` if no provider in the snapshot offers `ctx.model`.
    """
    options = options or DecisionOptions()
    model = ctx.model
    base_offer = snapshot.default_offers.get(model)
    if base_offer is None:
        raise UnknownModel(model)

    reasons: list[str] = []
    policy: CompiledPolicy | None = None
    if options.use_policies:
        facts = Facts(
            ctx,
            zone(options.time_zone),
            time=snapshot.uses_time,
            headers=snapshot.uses_headers,
        )
        # The index yields, in order, the only policies that can match, each having passed its
        # guard (see index.py); the first whose remaining conditions hold wins. compress/map
        # keep the scan loop in C.
        candidates = snapshot.policy_index[model].candidates(facts)
        policy = next(
            compress(candidates, map(call, map(_residual, candidates), repeat(facts))), None
        )
        if policy is None:
            reasons.append("no policy matched")
        else:
            reasons.append(f"policy '{policy.name}' ({policy.id}) matched")
        canary = _canary_cohort(snapshot, policy, model, facts) if snapshot.canaries else None
        if canary is not None and canary[1] == CONTROL:
            reasons.append(f"canary policy {canary[0]}: this caller is in its control cohort")
    else:
        reasons.append("policies disabled")
        canary = None

    spec = policy.spec if policy is not None else _DEFAULT_SPEC
    checker = _Checker(
        ctx,
        snapshot,
        stats,
        options,
        spec.constraints,
        requested=base_offer if policy is not None else None,
        downgrade=spec.downgrade,
    )
    base_cost = checker.cost(base_offer)
    baseline = Target(
        base_offer.provider_id, model, base_offer.upstream_model, base_cost, "default provider"
    )

    if policy is None:
        strategy = DEFAULT_STRATEGY
        candidates = _default_route(snapshot, model, base_offer)
        reasons.append(
            "default route: the model's default provider, then other providers of the same "
            "model by expected cost"
        )
    else:
        strategy = spec.strategy
        if spec.targets is None:
            candidates = snapshot.model_candidates.get(model, ())
        else:
            candidates = snapshot.candidates.get(policy.id, ())

    # Eligibility.
    eligible: list[_Option] = []
    rejected: list[tuple[Candidate, str, bool]] = []
    for cand in candidates:
        option, why, is_health = checker.check(cand)
        if option is not None:
            eligible.append(option)
        else:
            rejected.append((cand, why, is_health))

    # The flags decide which strategy actually runs.
    if strategy in _COST_STRATEGIES and not options.cost_optimization:
        reasons.append(f"strategy {strategy} -> priority: cost optimization off for this request")
        strategy = "priority"
    if strategy in _LIVE_STRATEGIES and not options.intelligent:
        reasons.append(f"strategy {strategy} -> priority: intelligent routing off")
        strategy = "priority"
    if strategy != DEFAULT_STRATEGY:
        reasons.append(f"strategy: {strategy}")

    ordered = _order(strategy, eligible, ctx.request_id, spec.weights, base_offer)
    if options.intelligent:
        ordered = _demote_unhealthy(ordered)

    targets: list[Target] = []
    if ordered:
        targets = _apply_cost_guard(ordered, options, base_cost, baseline, checker, reasons)
    last_resort: set[int] = set()
    if not targets:
        if any(is_health for _, _, is_health in rejected):
            reasons.append("no healthy target left: trying unhealthy ones as a last resort")
            for i, (cand, why, is_health) in enumerate(rejected):
                if is_health and cand.offer is not None:
                    last_resort.add(i)
                    targets.append(
                        _target(cand.offer, checker.cost(cand.offer), f"last resort: {why}")
                    )
        elif policy is None:
            # Without a policy the router must never do worse than no router at all: the
            # default provider is tried even when the checks say it will probably fail.
            reasons.append("nothing eligible: using the default provider as a last resort")
            for i, (cand, why, _) in enumerate(rejected):
                if cand.offer is base_offer:
                    last_resort.add(i)
                    targets.append(_target(base_offer, base_cost, f"last resort: {why}"))
    dropped = [
        (cand.provider_id, cand.model, why)
        for i, (cand, why, _) in enumerate(rejected)
        if i not in last_resort
    ]
    for provider_id, target_model, why in dropped:
        reasons.append(f"dropped {provider_id}/{target_model}: {why}")

    fallback = spec.fallback
    if not options.fallback and fallback.enabled:
        fallback = FallbackSpec(enabled=False, on=fallback.on)
        reasons.append("fallback off for this request: only the primary is kept")
    elif not fallback.enabled:
        reasons.append("policy disables fallback: only the primary is kept")
    if not fallback.enabled and len(targets) > 1:
        targets = targets[:1]

    if not targets:
        reasons.append("no eligible target")

    return Decision(
        policy_id=policy.id if policy is not None else None,
        policy_name=policy.name if policy is not None else None,
        strategy=strategy,
        targets=tuple(targets),
        baseline=baseline,
        dropped=tuple(dropped),
        reasons=tuple(reasons),
        retry=spec.retry,
        fallback=fallback,
        timeout_s=spec.timeout_s,
        snapshot_version=snapshot.version,
        canary=canary,
    )


def _canary_cohort(
    snapshot: Snapshot, policy: CompiledPolicy | None, model: str, facts: Facts
) -> tuple[str, str] | None:
    """(canary policy id, cohort) for the first canary whose conditions match and which no
    earlier policy pre-empted: "canary" if it routed the request, "control" if only the
    caller's cohort kept it from doing so."""
    order = snapshot.order
    chosen = order[policy.id] if policy is not None else len(order)
    for canary in snapshot.canaries:
        if policy is canary:
            return canary.id, CANARY
        if order[canary.id] > chosen:
            break
        if canary.model_filter is not None and not canary.model_filter(model):
            continue
        if canary.predicate(facts) and not in_cohort(canary.id, canary.canary_percent, facts):
            return canary.id, CONTROL
    return None


def _default_route(snapshot: Snapshot, model: str, base_offer: ModelOffer) -> tuple[Candidate, ...]:
    """Every offer of the model, the default one first; `_order` sorts the rest by price."""
    candidates = snapshot.model_candidates[model]
    if candidates[0].offer is base_offer:
        return candidates
    # Only when the catalogue flags no or several defaults and the resolved one is not first.
    rest = tuple(c for c in candidates if c.offer is not base_offer)
    info = snapshot.providers.get(base_offer.provider_id)
    return (Candidate(base_offer.provider_id, model, base_offer, 1.0, 0, info=info), *rest)


# --- ordering --------------------------------------------------------------------------------


def _order(
    strategy: str,
    options: list[_Option],
    request_id: str,
    weights: tuple[float, float, float],
    base_offer: ModelOffer,
) -> list[_Option]:
    if strategy == "cheapest":
        result = sorted(options, key=lambda o: (o.cost, o.cand.index))
        for o in result:
            o.note = f"cheapest: expected ${o.cost:.6f}"
        return result
    if strategy == "fastest":
        result = sorted(
            options,
            key=lambda o: (o.latency is None, o.latency or 0.0, o.cand.index),
        )
        for o in result:
            o.note = (
                f"fastest: expected latency {o.latency:.2f}s"
                if o.latency is not None
                else "fastest: latency unknown"
            )
        return result
    if strategy == "least_loaded":
        result = sorted(options, key=lambda o: (_utilisation(o), o.cand.index))
        for o in result:
            capacity = o.info.capacity or NOMINAL_CAPACITY
            o.note = f"least loaded: {o.stats.inflight}/{capacity} in flight"
        return result
    if strategy == "weighted":
        result = sorted(options, key=lambda o: (_weighted_key(request_id, o), o.cand.index))
        total = sum(o.cand.weight for o in options)
        for o in result:
            o.note = f"weighted: weight {o.cand.weight:g} of {total:g}"
        return result
    if strategy == "balanced":
        scores = _balanced_scores(options, weights)
        result = sorted(options, key=lambda o: (scores[id(o)], o.cand.index))
        for o in result:
            o.note = f"balanced: score {scores[id(o)]:.3f} (lower is better)"
        return result
    if strategy == DEFAULT_STRATEGY:
        # The default provider (first candidate) stays first if eligible; the rest by price.
        head = [o for o in options[:1] if o.offer is base_offer]
        rest = sorted(options[len(head) :], key=lambda o: (o.cost, o.cand.provider_id))
        for o in head:
            o.note = "default provider"
        for o in rest:
            o.note = "same model on another provider"
        return head + rest
    for o in options:
        o.note = f"target #{o.cand.index + 1}" + (" (provider '*')" if o.cand.wildcard else "")
    return list(options)


def _utilisation(o: _Option) -> float:
    return o.stats.inflight / (o.info.capacity or NOMINAL_CAPACITY)


def _weighted_key(request_id: str, o: _Option) -> float:
    # Efraimidis-Spirakis: sorting by E/w with E ~ Exp(1) gives a weighted random permutation
    # (the first pick has probability w / sum(w)). E comes from a hash of the request id and the
    # target, so one request always gets the same order and dropping one target does not
    # reshuffle the others.
    digest = hashlib.blake2b(
        f"{request_id}\x1f{o.cand.provider_id}\x1f{o.offer.model}".encode(), digest_size=8
    ).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return -math.log(u) / o.cand.weight


def _balanced_scores(
    options: list[_Option], weights: tuple[float, float, float]
) -> dict[int, float]:
    """Weighted sum of cost and latency, each divided by the largest among the candidates, and
    the error rate as it is (already 0..1). Dividing by the largest keeps proportions: a target
    4% dearer scores 4% worse on cost, where min-max scaling would make it the worst outright.
    """
    w_cost, w_latency, w_errors = weights
    total = w_cost + w_latency + w_errors or 1.0
    max_cost = max((o.cost for o in options), default=0.0)
    max_latency = max((o.latency for o in options if o.latency is not None), default=0.0)
    scores = {}
    for o in options:
        # An unknown latency counts as the slowest known one: no bonus for being unmeasured.
        latency = o.latency if o.latency is not None else max_latency
        score = (
            w_cost * (o.cost / max_cost if max_cost > 0 else 0.0)
            + w_latency * (latency / max_latency if max_latency > 0 else 0.0)
            + w_errors * min(max(o.stats.error_rate, 0.0), 1.0)
        ) / total
        scores[id(o)] = score
    return scores


def _demote_unhealthy(ordered: list[_Option]) -> list[_Option]:
    healthy: list[_Option] = []
    demoted: list[_Option] = []
    for o in ordered:
        if o.info.status == ProviderStatus.DEGRADED:
            o.demoted = "degraded provider, after healthy ones"
        elif o.info.capacity and o.stats.inflight >= o.info.capacity:
            o.demoted = "provider at capacity, after others"
        if o.demoted:
            demoted.append(o)
        else:
            healthy.append(o)
    return healthy + demoted if demoted else ordered


def _target(offer: ModelOffer, cost: float, reason: str) -> Target:
    return _new_target(offer.provider_id, offer.model, offer.upstream_model, cost, reason)


# A frozen dataclass sets each field through object.__setattr__ by name, about four times
# slower than the slot descriptors; a decision builds one Target per candidate, so it uses
# the descriptors directly. The result is an ordinary Target (same eq, hash, repr).
_TARGET_FIELDS = ("provider_id", "model", "upstream_model", "expected_cost", "reason")
if tuple(f.name for f in fields(Target)) != _TARGET_FIELDS:  # pragma: no cover - guard
    raise ImportError("Target's fields changed: update _new_target in decide.py")
_new_object = object.__new__
_set_provider, _set_model, _set_upstream, _set_cost, _set_reason = (
    getattr(Target, name).__set__ for name in _TARGET_FIELDS
)


def _new_target(provider_id: str, model: str, upstream: str, cost: float, reason: str) -> Target:
    target = _new_object(Target)
    _set_provider(target, provider_id)
    _set_model(target, model)
    _set_upstream(target, upstream)
    _set_cost(target, cost)
    _set_reason(target, reason)
    return target


def _describe(o: _Option) -> str:
    note = f"{o.note}; {o.demoted}" if o.demoted else o.note
    return f"{note}; {o.downgrade}" if o.downgrade else note


def _apply_cost_guard(
    ordered: list[_Option],
    options: DecisionOptions,
    base_cost: float,
    baseline: Target,
    checker: _Checker,
    reasons: list[str],
) -> list[Target]:
    if options.max_cost_increase is None:
        return [o.target(_describe(o)) for o in ordered]
    increase = max(options.max_cost_increase, 0.0)
    limit = base_cost * (1 + increase)
    tolerance = limit * _COST_EPSILON
    within = [o for o in ordered if o.cost <= limit + tolerance]
    over = [o for o in ordered if o.cost > limit + tolerance]
    if not over:
        return [o.target(_describe(o)) for o in ordered]

    guard = (
        f"cost guard: the primary may cost at most ${limit:.6f} "
        f"(baseline ${base_cost:.6f} + {increase:.0%})"
    )
    over_targets = [o.target(OVER_COST_GUARD) for o in over]
    if within:
        reasons.append(f"{guard}; {len(over)} target(s) kept as fallback only")
        return [o.target(_describe(o)) for o in within] + over_targets

    base_offer = checker.snapshot.default_offers[baseline.model]
    info = checker.snapshot.providers.get(base_offer.provider_id)
    base_option, why, _ = checker.check(
        Candidate(base_offer.provider_id, base_offer.model, base_offer, 1.0, -1, info=info)
    )
    if base_option is not None:
        reasons.append(f"{guard}; no target within it, so the default provider goes first")
        return [
            Target(
                baseline.provider_id,
                baseline.model,
                baseline.upstream_model,
                baseline.expected_cost,
                "default provider: no policy target within the cost guard",
            ),
            *over_targets,
        ]
    reasons.append(
        f"{guard}; no target within it and the default provider is not eligible ({why}), "
        "so the guard cannot apply"
    )
    return [o.target(_describe(o)) for o in ordered]
