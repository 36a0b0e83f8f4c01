"""Property tests: invariants of decide() over random catalogues, policies, stats and flags.

The oracle below restates the eligibility rules from docs/policies.md independently of the
engine's code, so a change in decide() that breaks a documented promise fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.engine import (
    CAPABILITIES,
    DEFAULT_EXPECTED_OUTPUT_TOKENS,
    OVER_COST_GUARD,
    STRATEGIES,
    Caller,
    DecisionOptions,
    ModelOffer,
    PriceRules,
    ProviderInfo,
    RequestContext,
    StatsView,
    compile_policy,
    compile_snapshot,
    decide,
)

PROVIDER_IDS = ["p0", "p1", "p2", "p3"]
MODELS = ["m0", "m1", "m2"]
CAPS = sorted(CAPABILITIES)

# Integer steps keep generation cheap; prices span 1e-9..1e-5 USD per token like real lists.
prices = st.integers(1, 10_000).map(lambda n: n * 1e-9)
offer_caps = st.sampled_from(
    [CAPABILITIES, CAPABILITIES, frozenset({"streaming", "tools"}), frozenset({"tools"})]
)
request_caps = st.sampled_from(
    [frozenset(), frozenset(), frozenset({"tools"}), frozenset({"vision"})]
)


statuses = st.sampled_from(["healthy", "healthy", "healthy", "degraded", "down"])
capacities = st.sampled_from([None, 5, 50])
probe_latencies = st.sampled_from([None, 0.5, 1.5, 6.0])
windows = st.sampled_from([8_192, 128_000, 128_000, 1_000_000])
max_outputs = st.sampled_from([0, 1_024, 16_384])
breaker_states = st.sampled_from(["closed", "closed", "closed", "open", "half_open"])
live_latencies = st.sampled_from([None, 0.2, 1.0, 3.0, 12.0])
error_rates = st.sampled_from([0.0, 0.01, 0.2, 0.9])
max_costs = st.sampled_from([1e-4, 1e-3, 1e-2, 1.0])
max_latencies = st.sampled_from([0.5, 2.0, 10.0])
min_windows = st.sampled_from([8_000, 100_000, 500_000])
input_sizes = st.sampled_from([0, 10, 800, 5_000, 30_000, 150_000, 250_000])
output_sizes = st.sampled_from([None, None, 1, 300, 4_000, 20_000])
expected_outputs = st.sampled_from([None, 50, 424, 3_000])
thinking_sizes = st.sampled_from([0, 0, 0, 500, 2_048])
observed_thinking = st.dictionaries(st.sampled_from(MODELS), st.sampled_from([0, 300, 5_000]))
# A long-context cliff (as Gemini 2.5 Pro's above 200k input tokens) on some offers.
tier_thresholds = st.sampled_from([None, None, 100_000, 200_000])
cost_increases = st.sampled_from([None, 0.0, 0.05, 0.05, 0.5])
inflights = st.integers(0, 60)
flips = st.booleans()
target_weights = st.integers(1, 10)
one_in_four = st.integers(0, 3)
cost_weights = st.integers(1, 5)
latency_weights = st.integers(0, 5)
one_in_five = st.integers(0, 4)
request_numbers = st.integers(0, 10**6)
models = st.sampled_from(MODELS)
strategies = st.sampled_from(STRATEGIES)
one_capability = st.sampled_from(CAPS)
servers = st.lists(st.sampled_from(PROVIDER_IDS), min_size=1, max_size=4, unique=True)
measured = st.lists(st.sampled_from(PROVIDER_IDS), unique=True)
# Targets may name unknown providers ("ghost") and wildcards; None omits `targets`.
target_lists = st.none() | st.lists(
    st.tuples(st.sampled_from([*PROVIDER_IDS, "*", "ghost"]), models),
    min_size=1,
    max_size=8,
    unique=True,
)


@st.composite
def worlds(draw):
    """A catalogue, one catch-all policy (usually), stats, a request and the flags."""
    providers = [
        ProviderInfo(
            pid,
            "openai",
            draw(statuses),
            draw(capacities),
            draw(probe_latencies),
        )
        for pid in PROVIDER_IDS
    ]
    offers = []
    for model in MODELS:
        serving = draw(servers)
        for pid in serving:
            input_price, output_price = draw(prices), draw(prices)
            threshold = draw(tier_thresholds)
            tiers = (
                [{"above_input_tokens": threshold, "input": 2 * input_price}] if threshold else []
            )
            offers.append(
                ModelOffer(
                    pid,
                    model,
                    f"{model}@{pid}",
                    input_price,
                    output_price,
                    draw(windows),
                    draw(max_outputs),
                    draw(offer_caps),
                    pid == serving[0],
                    pricing=PriceRules.build(
                        input_price, output_price, reasoning=draw(prices), tiers=tiers
                    ),
                    thinking_tokens=draw(thinking_sizes),
                )
            )

    stats = {}
    for pid in draw(measured):
        breaker = draw(breaker_states)
        stats[pid] = StatsView(
            latency_s=draw(live_latencies),
            error_rate=draw(error_rates),
            inflight=draw(inflights),
            breaker_state=breaker,
            allows_request=breaker == "closed" or (breaker == "half_open" and draw(flips)),
        )

    actions: dict = {"strategy": draw(strategies)}
    pairs = draw(target_lists)
    if pairs is not None:
        actions["targets"] = [
            {"provider": p, "model": m, "weight": draw(target_weights)} for p, m in pairs
        ]
    constraints = {}
    if draw(one_in_four) == 0:
        constraints["max_cost_usd"] = draw(max_costs)
    if draw(one_in_four) == 0:
        constraints["max_latency_s"] = draw(max_latencies)
    if draw(one_in_four) == 0:
        constraints["capabilities"] = [draw(one_capability)]
    if draw(one_in_four) == 0:
        constraints["min_context_window"] = draw(min_windows)
    if constraints:
        actions["constraints"] = constraints
    if draw(one_in_four) == 0:
        actions["fallback"] = {"enabled": draw(flips)}
    if actions["strategy"] == "balanced" and draw(flips):
        actions["weights"] = {"cost": draw(cost_weights), "latency": draw(latency_weights)}
    use_policy = draw(one_in_five) > 0
    policies = [compile_policy("pol", "pol", 1, {}, actions)] if use_policy else []

    ctx = RequestContext(
        request_id=f"req-{draw(request_numbers)}",
        model=draw(models),
        input_tokens=draw(input_sizes),
        max_tokens=draw(output_sizes),
        stream=draw(flips),
        capabilities=draw(request_caps),
        caller=Caller(),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        expected_output_tokens=draw(expected_outputs),
        thinking_tokens=draw(observed_thinking),
    )
    options = DecisionOptions(
        use_policies=draw(one_in_five) > 0,
        cost_optimization=draw(one_in_four) > 0,
        intelligent=draw(one_in_four) > 0,
        fallback=draw(one_in_four) > 0,
        max_cost_increase=draw(cost_increases),
    )
    return policies, providers, offers, stats, ctx, options


# --- the oracle ------------------------------------------------------------------------------


def expected_cost(ctx, offer):
    """The documented expected cost (docs/policies.md#expected-cost-and-latency), restated:
    visible output from max_tokens, else the observed/default estimate; plus the target
    model's thinking (observed, else the offer's); all output capped by max_tokens and the
    offer's limit; priced at the rates of the prompt's tier, thinking at the reasoning rate,
    no cache hit."""
    if ctx.max_tokens is not None:
        visible = ctx.max_tokens
    elif ctx.expected_output_tokens is not None:
        visible = ctx.expected_output_tokens
    else:
        visible = DEFAULT_EXPECTED_OUTPUT_TOKENS
    thinking = ctx.thinking_tokens.get(offer.model, offer.thinking_tokens)
    out = visible + thinking
    if ctx.max_tokens is not None:
        out = min(out, ctx.max_tokens)
    if offer.max_output_tokens > 0:
        out = min(out, offer.max_output_tokens)
    thinking = min(thinking, out)
    rates = offer.pricing.base
    for above, tier in offer.pricing.tiers:
        if ctx.input_tokens > above:
            rates = tier
    return (
        ctx.input_tokens * rates.input
        + (out - thinking) * rates.output
        + thinking * rates.reasoning
    )


def statically_eligible(ctx, offer, providers, stats, options, constraints):
    """Request needs and policy constraints: what a target must meet to be chosen at all."""
    if offer is None or offer.provider_id not in providers:
        return False
    required = ctx.capabilities | frozenset(constraints.get("capabilities", ()))
    if ctx.stream:
        required |= {"streaming"}
    if not required <= offer.capabilities:
        return False
    if offer.context_window < ctx.input_tokens + (ctx.max_tokens or 0):
        return False
    if offer.context_window < constraints.get("min_context_window", 0):
        return False
    if expected_cost(ctx, offer) > constraints.get("max_cost_usd", float("inf")) * (1 + 1e-9):
        return False
    info = providers[offer.provider_id]
    view = stats.get(offer.provider_id, StatsView())
    latency = (
        view.latency_s
        if options.intelligent and view.latency_s is not None
        else info.avg_response_time
    )
    limit = constraints.get("max_latency_s")
    return not (limit is not None and latency is not None and latency > limit)


def healthy(offer, providers, stats, options):
    if providers[offer.provider_id].status == "down":
        return False
    return not options.intelligent or stats.get(offer.provider_id, StatsView()).allows_request


def demoted(offer, providers, stats):
    info = providers[offer.provider_id]
    inflight = stats.get(offer.provider_id, StatsView()).inflight
    return info.status == "degraded" or bool(info.capacity and inflight >= info.capacity)


def setup(world):
    policies, providers, offers, stats, ctx, options = world
    snap = compile_snapshot(policies, providers, offers, 1)
    decision = decide(ctx, snap, stats, options)
    by_key = {(o.provider_id, o.model): o for o in offers}
    provider_map = {p.id: p for p in providers}
    constraints = policies[0].actions.get("constraints", {}) if decision.policy_id else {}
    return snap, decision, by_key, provider_map, constraints


def candidates_of(snap, decision, ctx):
    if decision.policy_id is None:
        return list(snap.offers_by_model[ctx.model])
    pol = snap.policies[0]
    if pol.spec.targets is None:
        return list(snap.offers_by_model[ctx.model])
    return [c.offer for c in snap.candidates[pol.id] if c.offer is not None]


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(worlds())
def test_primary_meets_constraints_and_required_capabilities(world):
    _, _, _, stats, ctx, options = world
    _, decision, by_key, provider_map, constraints = setup(world)
    if decision.primary is None:
        assert decision.policy_id is not None  # only a policy route may end empty
        return
    primary = by_key[(decision.primary.provider_id, decision.primary.model)]
    last_resort = decision.primary.reason.startswith("last resort")
    if decision.policy_id is not None or not last_resort:
        # Only the default route's "never worse than no router" rule may break the checks.
        assert statically_eligible(ctx, primary, provider_map, stats, options, constraints)
    if not last_resort:
        assert healthy(primary, provider_map, stats, options)
    for target in decision.targets:
        offer = by_key[(target.provider_id, target.model)]
        if decision.policy_id is not None:
            assert statically_eligible(ctx, offer, provider_map, stats, options, constraints)
        assert target.expected_cost == pytest.approx(expected_cost(ctx, offer), rel=1e-12)


@SETTINGS
@given(worlds())
def test_cheapest_never_puts_a_costlier_eligible_target_first(world):
    _, _, _, stats, ctx, options = world
    snap, decision, _, provider_map, constraints = setup(world)
    if decision.strategy != "cheapest" or decision.primary is None:
        return
    if decision.primary.reason.startswith("last resort"):
        return
    eligible = [
        o
        for o in candidates_of(snap, decision, ctx)
        if statically_eligible(ctx, o, provider_map, stats, options, constraints)
        and healthy(o, provider_map, stats, options)
    ]
    if options.intelligent and any(not demoted(o, provider_map, stats) for o in eligible):
        # Degraded/saturated providers go behind the others whatever they cost.
        eligible = [o for o in eligible if not demoted(o, provider_map, stats)]
    cheapest = min(expected_cost(ctx, o) for o in eligible)
    assert decision.primary.expected_cost <= cheapest * (1 + 1e-9)


@SETTINGS
@given(worlds())
def test_same_inputs_same_decision(world):
    policies, providers, offers, stats, ctx, options = world
    first = decide(ctx, compile_snapshot(policies, providers, offers, 1), stats, options)
    # A snapshot rebuilt from the same rows in another order decides the same.
    again = decide(
        ctx,
        compile_snapshot(policies[::-1], providers[::-1], offers[::-1], 1),
        dict(reversed(list(stats.items()))),
        options,
    )
    assert first == again
    assert first.to_dict() == again.to_dict()


@SETTINGS
@given(worlds())
def test_cost_guard_holds_for_the_primary(world):
    """The guard never admits a primary whose expected cost, with the expected output and
    thinking of docs/policies.md, exceeds the baseline's by more than the cap (the oracle's
    own costs, not the engine's)."""
    _, _, _, stats, ctx, options = world
    snap, decision, by_key, provider_map, constraints = setup(world)
    if options.max_cost_increase is None or decision.primary is None:
        return
    primary = decision.primary
    if primary.reason.startswith("last resort"):
        return
    base = snap.default_offers[ctx.model]
    limit = expected_cost(ctx, base) * (1 + max(options.max_cost_increase, 0.0))
    primary_cost = expected_cost(ctx, by_key[(primary.provider_id, primary.model)])
    if primary_cost <= limit * (1 + 1e-9):
        return
    # Over the limit only when nothing within it could serve the request, the baseline included.
    assert any("guard cannot apply" in r for r in decision.reasons)
    assert not (
        statically_eligible(ctx, base, provider_map, stats, options, constraints)
        and healthy(base, provider_map, stats, options)
    )
    for target in decision.targets:
        assert expected_cost(ctx, by_key[(target.provider_id, target.model)]) > limit


@SETTINGS
@given(worlds())
def test_targets_are_unique_and_over_guard_ones_come_last(world):
    _, decision, _, _, _ = setup(world)
    keys = [(t.provider_id, t.model) for t in decision.targets]
    assert len(keys) == len(set(keys))
    reasons = [t.reason == OVER_COST_GUARD for t in decision.targets]
    assert reasons == sorted(reasons), "over-guard targets must follow the ones within it"
    if not decision.fallback.enabled:
        assert len(decision.targets) <= 1
    dropped = {(p, m) for p, m, _ in decision.dropped}
    assert not dropped & set(keys)
