"""decide(): policy matching, eligibility, strategies, flags, the cost guard and fallbacks.

Expected costs for the default request (1,000 input tokens, max_tokens 500), from builders:
gpt-4o $0.0075 (openai and azure), gpt-4.1 $0.006, gemini-2.5-pro $0.00625,
claude-sonnet-4-5 $0.0105, gemini-2.5-flash $0.00155, gpt-4o-mini $0.00045.
"""

import json

import pytest

from routing.engine import (
    DEFAULT_EXPECTED_OUTPUT_TOKENS,
    DRAINED,
    OVER_COST_GUARD,
    Caller,
    DecisionOptions,
    OutputEstimates,
    PriceRules,
    ProviderInfo,
    StatsView,
    Target,
    UnknownModel,
    decide,
)

from .builders import catalogue, offer, policy, request, snapshot

ALL_ON = DecisionOptions()
GUARD_OFF = DecisionOptions(max_cost_increase=None)


def route(decision):
    return [(t.provider_id, t.model) for t in decision.targets]


def targets(*pairs):
    return {"targets": [{"provider": p, "model": m} for p, m in pairs]}


def with_status(**statuses):
    providers, _ = catalogue()
    return [
        ProviderInfo(p.id, p.type, statuses.get(p.id, p.status), p.capacity, p.avg_response_time)
        for p in providers
    ]


# --- baseline and policy selection -----------------------------------------------------------


def test_unknown_model_raises():
    with pytest.raises(UnknownModel) as err:
        decide(request("gpt-9"), snapshot(), {}, ALL_ON)
    assert err.value.model == "gpt-9"


def test_default_route_is_the_default_provider_then_the_others_by_price():
    decision = decide(request("gpt-4o"), snapshot(), {}, ALL_ON)
    assert decision.policy_id is None
    assert decision.strategy == "default"
    assert route(decision) == [("openai", "gpt-4o"), ("azure", "gpt-4o")]
    assert decision.baseline.provider_id == "openai"
    assert decision.baseline.expected_cost == pytest.approx(0.0075)
    assert decision.targets[1].upstream_model == "gpt-4o-2024-08-06"
    assert "no policy matched" in decision.reasons


def test_first_matching_policy_in_priority_order_wins():
    enterprise = policy(
        targets(("openai", "gpt-4.1")), {"caller.groups": "enterprise"}, name="ent", priority=5
    )
    everyone = policy(targets(("google", "gemini-2.5-pro")), {}, name="all", priority=10)
    never = policy(targets(("azure", "gpt-4o")), {"model": "nope"}, name="never", priority=1)
    snap = snapshot(enterprise, everyone, never)

    vip = decide(request(caller=Caller(groups=frozenset({"enterprise"}))), snap, {}, ALL_ON)
    assert vip.policy_name == "ent"
    assert route(vip) == [("openai", "gpt-4.1")]
    assert "policy 'ent' (ent) matched" in vip.reasons

    other = decide(request(), snap, {}, ALL_ON)
    assert other.policy_name == "all"
    assert route(other) == [("google", "gemini-2.5-pro")]


def test_policies_disabled_takes_the_default_route():
    snap = snapshot(policy(targets(("openai", "gpt-4.1"))))
    decision = decide(request(), snap, {}, DecisionOptions(use_policies=False))
    assert decision.policy_id is None
    assert route(decision) == [("openai", "gpt-4o"), ("azure", "gpt-4o")]
    assert "policies disabled" in decision.reasons


def test_all_flags_off_is_exactly_the_default_provider():
    snap = snapshot(policy(targets(("openai", "gpt-4.1"))))
    rollback = DecisionOptions(
        use_policies=False, cost_optimization=False, intelligent=False, fallback=False
    )
    decision = decide(request(), snap, {}, rollback)
    assert route(decision) == [("openai", "gpt-4o")]
    assert decision.fallback.enabled is False


def test_omitted_targets_mean_the_requested_model_on_every_provider():
    snap = snapshot(policy({"strategy": "priority"}))
    decision = decide(request("gpt-4o"), snap, {}, ALL_ON)
    assert route(decision) == [("openai", "gpt-4o"), ("azure", "gpt-4o")]


def test_retry_timeout_and_fallback_come_from_the_policy():
    snap = snapshot(
        policy(
            {
                **targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro")),
                "retry": {"attempts": 3, "backoff_ms": 100, "max_backoff_ms": 400},
                "timeout_s": 12,
                "fallback": {"on": ["timeout"]},
            }
        )
    )
    decision = decide(request(), snap, {}, ALL_ON)
    assert decision.retry.attempts == 3
    assert decision.retry.backoff_s == 0.1
    assert decision.retry.max_backoff_s == 0.4
    assert decision.timeout_s == 12
    assert decision.fallback.on == {"timeout"}


# --- eligibility -----------------------------------------------------------------------------


def dropped_reasons(decision):
    return {(p, m): why for p, m, why in decision.dropped}


def test_targets_lacking_a_required_capability_are_dropped():
    snap = snapshot(
        policy(
            {
                **targets(("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o")),
                "constraints": {"capabilities": ["json_mode"]},
            }
        )
    )
    decision = decide(request(capabilities={"vision"}), snap, {}, GUARD_OFF)
    assert route(decision) == [("openai", "gpt-4o")]
    assert dropped_reasons(decision) == {
        ("anthropic", "claude-sonnet-4-5"): "lacks capability json_mode"
    }
    assert "dropped anthropic/claude-sonnet-4-5: lacks capability json_mode" in decision.reasons


def test_stream_requires_the_streaming_capability():
    _, offers = catalogue()
    offers.append(offer("google", "batch-only", 1e-7, 1e-7, caps=frozenset({"tools"})))
    offers.append(offer("openai", "batch-only", 2e-7, 2e-7, default=True))
    snap = snapshot(
        policy(targets(("google", "batch-only"), ("openai", "batch-only"))), offers=offers
    )
    assert route(decide(request("batch-only", stream=True), snap, {}, GUARD_OFF)) == [
        ("openai", "batch-only")
    ]
    assert route(decide(request("batch-only"), snap, {}, GUARD_OFF))[0] == ("google", "batch-only")


def test_context_window_must_hold_input_plus_max_tokens():
    snap = snapshot(policy(targets(("openai", "gpt-4o"), ("openai", "gpt-4.1"))))
    decision = decide(request(input_tokens=120_000, max_tokens=10_000), snap, {}, GUARD_OFF)
    assert route(decision) == [("openai", "gpt-4.1")]
    assert dropped_reasons(decision)[("openai", "gpt-4o")] == (
        "context window 128000 < 130000 tokens needed"
    )


def test_min_context_window_constraint():
    snap = snapshot(
        policy(
            {
                **targets(("openai", "gpt-4o"), ("google", "gemini-2.5-pro")),
                "constraints": {"min_context_window": 500_000},
            }
        )
    )
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [("google", "gemini-2.5-pro")]


def test_max_cost_constraint_uses_expected_cost():
    snap = snapshot(
        policy(
            {
                **targets(("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1")),
                "constraints": {"max_cost_usd": 0.008},
            }
        )
    )
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [("openai", "gpt-4.1")]
    assert dropped_reasons(decision)[("anthropic", "claude-sonnet-4-5")] == (
        "expected cost $0.010500 > max_cost_usd $0.008000"
    )


def test_expected_cost_defaults_output_and_caps_it_at_max_output():
    _, offers = catalogue()
    offers.append(offer("openai", "tiny-out", 1e-6, 1e-5, default=True, max_output=100))
    snap = snapshot(offers=offers)
    # No max_tokens and nothing observed: the default expected output.
    no_max = decide(request("gpt-4o", input_tokens=1000, max_tokens=None), snap, {}, ALL_ON)
    assert no_max.targets[0].expected_cost == pytest.approx(
        1000 * 2.5e-6 + DEFAULT_EXPECTED_OUTPUT_TOKENS * 10e-6
    )
    capped = decide(request("tiny-out", input_tokens=10, max_tokens=5000), snap, {}, ALL_ON)
    assert capped.targets[0].expected_cost == pytest.approx(10 * 1e-6 + 100 * 1e-5)


def test_expected_output_comes_from_the_observed_length_when_max_tokens_is_absent():
    snap = snapshot()

    observed = decide(request(max_tokens=None, expected_output=1200), snap, {}, ALL_ON)
    asked = decide(request(max_tokens=50, expected_output=1200), snap, {}, ALL_ON)

    assert observed.baseline.expected_cost == pytest.approx(1000 * 2.5e-6 + 1200 * 10e-6)
    # What the caller allows wins over what was observed.
    assert asked.baseline.expected_cost == pytest.approx(1000 * 2.5e-6 + 50 * 10e-6)


def test_observed_lengths_prefer_the_caller_then_the_model_then_the_default():
    estimates = OutputEstimates(
        by_caller={("gpt-4o", "7", "ci"): 90}, by_model={"gpt-4o": 300}, default_output=424
    )

    assert estimates.output_tokens("gpt-4o", "7", "ci") == 90
    assert estimates.output_tokens("gpt-4o", "7", None) == 300
    assert estimates.output_tokens("gpt-4o-mini", "7", "ci") == 424


def test_thinking_models_cost_their_thinking_and_lose_the_guard():
    # gemini-2.5-pro's list prices look cheaper than gpt-4o's, until its thinking is counted.
    _, offers = catalogue()
    offers = [
        offer("google", "gemini-2.5-pro", 1.25e-6, 10e-6, default=True, thinking=1024)
        if o.model == "gemini-2.5-pro"
        else o
        for o in offers
    ]
    snap = snapshot(policy(targets(("google", "gemini-2.5-pro"))), offers=offers)
    ctx = request("gpt-4o", input_tokens=1000, max_tokens=None, expected_output=200)

    decision = decide(ctx, snap, {}, ALL_ON)

    # gpt-4o: 1000 x $2.5 + 200 x $10 per 1M = $0.0045; gemini: 1000 x $1.25 + (200 + 1024) x
    # $10 = $0.01349: over the guard, so the baseline serves and gemini is fallback only.
    assert decision.targets[0].provider_id == "openai"
    assert decision.targets[1].reason == OVER_COST_GUARD
    assert decision.targets[1].expected_cost == pytest.approx(1000 * 1.25e-6 + 1224 * 10e-6)
    # Observed thinking replaces the catalogue's expectation.
    light = decide(
        request("gpt-4o", max_tokens=None, expected_output=200, thinking={"gemini-2.5-pro": 0}),
        snap,
        {},
        ALL_ON,
    )
    assert light.targets[0].provider_id == "google"


def test_max_tokens_caps_visible_output_and_thinking_together():
    snap = snapshot(offers=[offer("google", "thinker", 1e-6, 10e-6, default=True, thinking=5000)])

    decision = decide(request("thinker", input_tokens=100, max_tokens=800), snap, {}, GUARD_OFF)

    assert decision.baseline.expected_cost == pytest.approx(100 * 1e-6 + 800 * 10e-6)


def test_long_context_tier_applies_to_the_expected_cost():
    rules = PriceRules.build(
        1.25e-6, 10e-6, tiers=[{"above_input_tokens": 200_000, "input": 2.5e-6, "output": 15e-6}]
    )
    snap = snapshot(
        offers=[offer("google", "pro", 1.25e-6, 10e-6, default=True, window=10**6, pricing=rules)]
    )

    short = decide(request("pro", input_tokens=200_000, max_tokens=100), snap, {}, GUARD_OFF)
    long = decide(request("pro", input_tokens=200_001, max_tokens=100), snap, {}, GUARD_OFF)

    assert short.baseline.expected_cost == pytest.approx(200_000 * 1.25e-6 + 100 * 10e-6)
    assert long.baseline.expected_cost == pytest.approx(200_001 * 2.5e-6 + 100 * 15e-6)


def test_max_latency_prefers_live_stats_over_the_probe_figure():
    snap = snapshot(
        policy(
            {
                **targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro")),
                "constraints": {"max_latency_s": 2},
            }
        )
    )
    # Probes say both are fast enough (1.2 s and 0.9 s); live stats say openai is slow.
    stats = {"openai": StatsView(latency_s=3.5)}
    decision = decide(request(), snap, stats, GUARD_OFF)
    assert route(decision) == [("google", "gemini-2.5-pro")]
    assert dropped_reasons(decision)[("openai", "gpt-4.1")] == (
        "expected latency 3.50s > max_latency_s 2s"
    )
    # With intelligent routing off the engine ignores live stats: only the catalogue counts.
    static = decide(
        request(), snap, stats, DecisionOptions(intelligent=False, max_cost_increase=None)
    )
    assert route(static) == [("openai", "gpt-4.1"), ("google", "gemini-2.5-pro")]


def test_missing_offers_and_providers_are_dropped_with_a_reason():
    snap = snapshot(
        policy(
            targets(
                ("ghost", "gpt-4o"),
                ("anthropic", "gpt-4o"),
                ("*", "gpt-9"),
                ("openai", "gpt-4.1"),
            )
        )
    )
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [("openai", "gpt-4.1")]
    assert dropped_reasons(decision) == {
        ("ghost", "gpt-4o"): "unknown provider 'ghost'",
        ("anthropic", "gpt-4o"): "provider does not offer model 'gpt-4o'",
        ("*", "gpt-9"): "no provider offers model 'gpt-9'",
    }


def test_down_provider_and_open_breaker_are_dropped():
    snap = snapshot(
        policy(targets(("openai", "gpt-4.1"), ("azure", "gpt-4o"), ("google", "gemini-2.5-pro"))),
        providers=with_status(openai="down"),
    )
    stats = {"azure": StatsView(breaker_state="open", allows_request=False)}
    decision = decide(request(), snap, stats, GUARD_OFF)
    assert route(decision) == [("google", "gemini-2.5-pro")]
    assert dropped_reasons(decision) == {
        ("openai", "gpt-4.1"): "provider down",
        ("azure", "gpt-4o"): "circuit breaker open",
    }


def test_a_drained_provider_is_not_even_a_last_resort():
    snap = snapshot(
        policy(targets(("openai", "gpt-4.1"), ("azure", "gpt-4o"))),
        providers=with_status(openai=DRAINED),
    )
    stats = {"azure": StatsView(breaker_state="open", allows_request=False)}
    decision = decide(request(), snap, stats, GUARD_OFF)
    # azure's open breaker makes it a last resort; the drained openai is not one
    assert route(decision) == [("azure", "gpt-4o")]
    assert dropped_reasons(decision)[("openai", "gpt-4.1")] == "provider drained by an operator"


def test_unhealthy_targets_are_a_last_resort_only():
    snap = snapshot(
        policy(
            targets(("openai", "gpt-4.1"), ("azure", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"))
        ),
        providers=with_status(openai="down"),
    )
    stats = {"azure": StatsView(breaker_state="open", allows_request=False)}
    # Sonnet is eligible: the unhealthy ones are not tried at all.
    assert route(decide(request(), snap, stats, GUARD_OFF)) == [("anthropic", "claude-sonnet-4-5")]
    # Sonnet lacks json_mode: only unhealthy targets are left, so they are tried anyway.
    decision = decide(request(capabilities={"json_mode"}), snap, stats, GUARD_OFF)
    assert route(decision) == [("openai", "gpt-4.1"), ("azure", "gpt-4o")]
    assert [t.reason for t in decision.targets] == [
        "last resort: provider down",
        "last resort: circuit breaker open",
    ]
    # Statically ineligible targets are never a last resort.
    assert dropped_reasons(decision) == {
        ("anthropic", "claude-sonnet-4-5"): "lacks capability json_mode"
    }


def test_policy_with_nothing_eligible_gives_no_targets():
    snap = snapshot(policy(targets(("anthropic", "claude-sonnet-4-5"))))
    decision = decide(request(capabilities={"json_mode"}), snap, {}, ALL_ON)
    assert decision.targets == ()
    assert decision.primary is None
    assert "no eligible target" in decision.reasons


def test_default_route_never_ends_empty():
    # Without a policy the router must not do worse than no router: the default provider is
    # still tried even if the checks say it will fail.
    snap = snapshot()
    decision = decide(request("claude-sonnet-4-5", capabilities={"json_mode"}), snap, {}, ALL_ON)
    assert route(decision) == [("anthropic", "claude-sonnet-4-5")]
    assert decision.targets[0].reason == "last resort: lacks capability json_mode"


def test_degraded_providers_move_behind_healthy_ones():
    snap = snapshot(
        policy(targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro"))),
        providers=with_status(openai="degraded"),
    )
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [("google", "gemini-2.5-pro"), ("openai", "gpt-4.1")]
    assert decision.targets[1].reason == "target #1; degraded provider, after healthy ones"
    # A static router keeps the written order.
    static = decide(request(), snap, {}, DecisionOptions(intelligent=False, max_cost_increase=None))
    assert route(static) == [("openai", "gpt-4.1"), ("google", "gemini-2.5-pro")]


def test_saturated_providers_move_behind_the_others():
    snap = snapshot(policy(targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro"))))
    decision = decide(request(), snap, {"openai": StatsView(inflight=100)}, GUARD_OFF)
    assert route(decision) == [("google", "gemini-2.5-pro"), ("openai", "gpt-4.1")]


def test_intelligent_off_ignores_the_breaker_but_not_down():
    snap = snapshot(
        policy(targets(("openai", "gpt-4.1"), ("azure", "gpt-4o"), ("google", "gemini-2.5-pro"))),
        providers=with_status(google="down"),
    )
    stats = {"openai": StatsView(breaker_state="open", allows_request=False)}
    decision = decide(
        request(), snap, stats, DecisionOptions(intelligent=False, max_cost_increase=None)
    )
    assert route(decision) == [("openai", "gpt-4.1"), ("azure", "gpt-4o")]
    assert dropped_reasons(decision) == {("google", "gemini-2.5-pro"): "provider down"}


# --- strategies ------------------------------------------------------------------------------

FOUR = targets(
    ("anthropic", "claude-sonnet-4-5"),
    ("openai", "gpt-4.1"),
    ("google", "gemini-2.5-pro"),
    ("azure", "gpt-4o"),
)


def test_priority_keeps_the_written_order():
    snap = snapshot(policy({**FOUR, "strategy": "priority"}))
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4.1"),
        ("google", "gemini-2.5-pro"),
        ("azure", "gpt-4o"),
    ]
    assert decision.targets[0].reason == "target #1"


def test_cheapest_orders_by_expected_cost_ties_by_written_order():
    snap = snapshot(
        policy(
            {
                **targets(
                    ("azure", "gpt-4o"),
                    ("anthropic", "claude-sonnet-4-5"),
                    ("openai", "gpt-4o"),
                    ("openai", "gpt-4.1"),
                ),
                "strategy": "cheapest",
            }
        )
    )
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [
        ("openai", "gpt-4.1"),
        ("azure", "gpt-4o"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
    ]
    assert decision.targets[0].reason == "cheapest: expected $0.006000"


def test_cheapest_depends_on_the_request_shape():
    # gemini-2.5-pro: cheaper input, same output price as gpt-4o; gpt-4.1: cheaper output.
    snap = snapshot(
        policy(
            {**targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro")), "strategy": "cheapest"}
        )
    )
    prompt_heavy = decide(request(input_tokens=100_000, max_tokens=10), snap, {}, GUARD_OFF)
    assert route(prompt_heavy)[0] == ("google", "gemini-2.5-pro")
    output_heavy = decide(request(input_tokens=10, max_tokens=10_000), snap, {}, GUARD_OFF)
    assert route(output_heavy)[0] == ("openai", "gpt-4.1")


def test_fastest_orders_by_live_latency_then_probe_then_unknown():
    providers = with_status()
    providers[1] = ProviderInfo("azure", "azure_openai", "healthy", 50, None)
    snap = snapshot(policy({**FOUR, "strategy": "fastest"}), providers=providers)
    stats = {"google": StatsView(latency_s=2.5), "anthropic": StatsView(latency_s=0.4)}
    decision = decide(request(), snap, stats, GUARD_OFF)
    # anthropic 0.4 (live), openai 1.2 (probe), google 2.5 (live), azure unknown.
    assert route(decision) == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4.1"),
        ("google", "gemini-2.5-pro"),
        ("azure", "gpt-4o"),
    ]
    assert decision.targets[-1].reason == "fastest: latency unknown"


def test_least_loaded_uses_inflight_over_capacity():
    snap = snapshot(policy({**FOUR, "strategy": "least_loaded"}))
    stats = {
        "anthropic": StatsView(inflight=40),  # 40/80 = 0.5
        "openai": StatsView(inflight=30),  # 30/100 = 0.3
        "google": StatsView(inflight=20),  # 20/100 nominal = 0.2
        "azure": StatsView(inflight=20),  # 20/50 = 0.4
    }
    decision = decide(request(), snap, stats, GUARD_OFF)
    assert [p for p, _ in route(decision)] == ["google", "openai", "azure", "anthropic"]
    assert decision.targets[0].reason == "least loaded: 20/100 in flight"


def test_weighted_is_deterministic_per_request_id_and_follows_the_weights():
    snap = snapshot(
        policy(
            {
                "targets": [
                    {"provider": "openai", "model": "gpt-4.1", "weight": 3},
                    {"provider": "google", "model": "gemini-2.5-pro", "weight": 1},
                ],
                "strategy": "weighted",
            }
        )
    )
    first = decide(request(request_id="abc"), snap, {}, GUARD_OFF)
    again = decide(request(request_id="abc"), snap, {}, GUARD_OFF)
    assert first == again
    picks = [
        route(decide(request(request_id=f"r{i}"), snap, {}, GUARD_OFF))[0][0] for i in range(4000)
    ]
    share = picks.count("openai") / len(picks)
    assert 0.72 <= share <= 0.78
    assert len(route(first)) == 2


def test_weighted_order_of_the_rest_is_stable_when_one_target_is_dropped():
    pairs = [
        ("openai", "gpt-4.1"),
        ("google", "gemini-2.5-pro"),
        ("azure", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
    ]
    snap = snapshot(policy({**targets(*pairs), "strategy": "weighted"}))
    down = snapshot(
        policy({**targets(*pairs), "strategy": "weighted"}), providers=with_status(anthropic="down")
    )
    for i in range(50):
        full = [
            t
            for t in route(decide(request(request_id=f"x{i}"), snap, {}, GUARD_OFF))
            if t[0] != "anthropic"
        ]
        assert full == route(decide(request(request_id=f"x{i}"), down, {}, GUARD_OFF))


def test_balanced_trades_cost_latency_and_errors():
    two = targets(("openai", "gpt-4.1"), ("google", "gemini-2.5-pro"))
    # gpt-4.1 $0.006 but slow and erroring; gemini-2.5-pro $0.00625 fast and clean.
    stats = {
        "openai": StatsView(latency_s=3.0, error_rate=0.3),
        "google": StatsView(latency_s=1.0, error_rate=0.0),
    }
    snap = snapshot(policy({**two, "strategy": "balanced"}))
    assert route(decide(request(), snap, stats, GUARD_OFF))[0] == ("google", "gemini-2.5-pro")
    cost_only = snapshot(
        policy({**two, "strategy": "balanced", "weights": {"cost": 1, "latency": 0, "errors": 0}})
    )
    decision = decide(request(), cost_only, stats, GUARD_OFF)
    assert route(decision)[0] == ("openai", "gpt-4.1")
    # 0.006 / 0.00625: cost is scaled by the dearest candidate, so proportions survive.
    assert decision.targets[0].reason == "balanced: score 0.960 (lower is better)"


def test_cost_optimization_off_turns_cheapest_and_balanced_into_priority():
    for strategy in ("cheapest", "balanced"):
        snap = snapshot(policy({**FOUR, "strategy": strategy}))
        decision = decide(
            request(), snap, {}, DecisionOptions(cost_optimization=False, max_cost_increase=None)
        )
        assert decision.strategy == "priority"
        assert route(decision)[0] == ("anthropic", "claude-sonnet-4-5")
        assert (
            f"strategy {strategy} -> priority: cost optimization off for this request"
            in decision.reasons
        )


def test_intelligent_off_turns_live_strategies_into_priority():
    for strategy in ("fastest", "least_loaded", "balanced"):
        snap = snapshot(policy({**FOUR, "strategy": strategy}))
        stats = {"azure": StatsView(latency_s=0.01)}
        decision = decide(
            request(), snap, stats, DecisionOptions(intelligent=False, max_cost_increase=None)
        )
        assert decision.strategy == "priority"
        assert route(decision)[0] == ("anthropic", "claude-sonnet-4-5")


# --- cost guard ------------------------------------------------------------------------------


def test_cost_guard_moves_costlier_targets_behind_as_fallback_only():
    # Request for gpt-4o ($0.0075 baseline, limit $0.007875); Sonnet costs $0.0105.
    snap = snapshot(policy(targets(("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1"))))
    decision = decide(request(), snap, {}, ALL_ON)
    assert route(decision) == [("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5")]
    assert decision.targets[1].reason == OVER_COST_GUARD
    assert any(
        r.startswith("cost guard: the primary may cost at most $0.007875") for r in decision.reasons
    )


def test_cost_guard_allows_up_to_the_configured_increase():
    # gpt-4o at $0.0075 vs a gpt-4o-mini baseline of $0.00045: only allowed with a big increase.
    snap = snapshot(policy(targets(("openai", "gpt-4o")), {"model": "gpt-4o-mini"}))
    guarded = decide(request("gpt-4o-mini"), snap, {}, ALL_ON)
    assert route(guarded) == [("openai", "gpt-4o-mini"), ("openai", "gpt-4o")]
    assert guarded.targets[0].reason == "default provider: no policy target within the cost guard"
    assert guarded.targets[1].reason == OVER_COST_GUARD
    generous = decide(request("gpt-4o-mini"), snap, {}, DecisionOptions(max_cost_increase=20))
    assert route(generous) == [("openai", "gpt-4o")]
    unguarded = decide(request("gpt-4o-mini"), snap, {}, GUARD_OFF)
    assert route(unguarded) == [("openai", "gpt-4o")]


def test_cost_guard_cannot_apply_when_the_baseline_is_not_eligible():
    # Only gpt-4.1 has the window this policy demands; gpt-4o-mini (the baseline) does not, so
    # there is nothing cheaper to fall back on and the costlier target goes first.
    snap = snapshot(
        policy(
            {**targets(("openai", "gpt-4.1")), "constraints": {"min_context_window": 500_000}},
            {"model": "gpt-4o-mini"},
        )
    )
    decision = decide(request("gpt-4o-mini"), snap, {}, ALL_ON)
    assert route(decision) == [("openai", "gpt-4.1")]
    assert any("guard cannot apply" in r for r in decision.reasons)


def test_cost_guard_does_not_put_a_down_baseline_first():
    snap = snapshot(
        policy(targets(("google", "gemini-2.5-pro")), {"model": "gpt-4o-mini"}),
        providers=with_status(openai="down"),
    )
    decision = decide(request("gpt-4o-mini"), snap, {}, ALL_ON)
    assert route(decision) == [("google", "gemini-2.5-pro")]
    assert any("(provider down), so the guard cannot apply" in r for r in decision.reasons)


def test_cheaper_substitution_is_allowed():
    snap = snapshot(
        policy({**targets(("openai", "gpt-4o"), ("openai", "gpt-4o-mini")), "strategy": "cheapest"})
    )
    decision = decide(request("gpt-4o"), snap, {}, ALL_ON)
    assert route(decision)[0] == ("openai", "gpt-4o-mini")
    assert decision.baseline.model == "gpt-4o"


# --- fallback --------------------------------------------------------------------------------


def test_fallback_disabled_by_the_policy_keeps_only_the_primary():
    snap = snapshot(policy({**FOUR, "fallback": {"enabled": False}}))
    decision = decide(request(), snap, {}, GUARD_OFF)
    assert route(decision) == [("anthropic", "claude-sonnet-4-5")]
    assert decision.fallback.enabled is False
    assert "policy disables fallback: only the primary is kept" in decision.reasons


def test_fallback_disabled_by_the_flag_keeps_only_the_primary():
    decision = decide(request(), snapshot(), {}, DecisionOptions(fallback=False))
    assert route(decision) == [("openai", "gpt-4o")]
    assert decision.fallback.enabled is False
    assert "fallback off for this request: only the primary is kept" in decision.reasons


def test_targets_are_ordinary_frozen_targets():
    decision = decide(request(), snapshot(), {}, ALL_ON)
    primary = decision.targets[0]
    assert primary == Target(
        "openai", "gpt-4o", "gpt-4o", primary.expected_cost, "default provider"
    )
    assert hash(primary) == hash(
        Target("openai", "gpt-4o", "gpt-4o", primary.expected_cost, "default provider")
    )
    with pytest.raises(AttributeError):
        primary.provider_id = "azure"


def test_decision_serialises_to_json():
    snap = snapshot(policy({**FOUR, "strategy": "cheapest"}), version="v7")
    data = json.loads(json.dumps(decide(request(), snap, {}, ALL_ON).to_dict()))
    assert data["policy_name"] == "p"
    assert data["strategy"] == "cheapest"
    assert data["snapshot_version"] == "v7"
    assert data["targets"][0] == {
        "provider_id": "openai",
        "model": "gpt-4.1",
        "upstream_model": "gpt-4.1",
        "expected_cost": pytest.approx(0.006),
        "reason": "cheapest: expected $0.006000",
    }
    assert data["baseline"]["provider_id"] == "openai"
    assert data["retry"] == {
        "attempts": 1,
        "backoff_s": 0.2,
        "max_backoff_s": 2.0,
        "respect_retry_after": True,
    }
    assert data["fallback"]["on"] == sorted(data["fallback"]["on"])
