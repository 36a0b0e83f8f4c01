"""The actions language: compiled defaults, every validation path and message, catalogue checks."""

import pytest

from routing.engine import (
    DEFAULT_FALLBACK_ON,
    FallbackSpec,
    PolicyError,
    RetrySpec,
    compile_policy,
    validate_actions,
)
from routing.engine.actions import compile_actions

from .builders import catalogue

PROVIDERS, OFFERS = catalogue()
PROVIDER_IDS = [p.id for p in PROVIDERS]


def messages(actions, offers=None, providers=None):
    return [str(issue) for issue in validate_actions(actions, offers, providers)]


def test_empty_actions_mean_requested_model_everywhere_in_written_order():
    spec, issues = compile_actions({})
    assert issues == []
    assert spec.targets is None
    assert spec.strategy == "priority"
    assert spec.fallback == FallbackSpec(True, DEFAULT_FALLBACK_ON)
    assert spec.retry == RetrySpec()
    assert spec.timeout_s is None


def test_empty_target_list_means_the_same_as_omitting_it():
    spec, issues = compile_actions({"targets": [], "strategy": "cheapest"})
    assert issues == []
    assert spec.targets is None


def test_full_actions_compile():
    spec, issues = compile_actions(
        {
            "targets": [
                {"provider": "openai", "model": "gpt-4o", "weight": 3},
                {"provider": "*", "model": "gpt-4o-mini"},
            ],
            "strategy": "balanced",
            "weights": {"cost": 1, "errors": 0},
            "fallback": {"enabled": False, "on": ["timeout", "context_length_exceeded"]},
            "retry": {
                "attempts": 3,
                "backoff_ms": 100,
                "max_backoff_ms": 800,
                "respect_retry_after": False,
            },
            "timeout_s": 20,
            "constraints": {
                "max_cost_usd": 0.01,
                "max_latency_s": 4.5,
                "capabilities": ["tools"],
                "min_context_window": 100000,
            },
        },
        OFFERS,
        PROVIDER_IDS,
    )
    assert issues == []
    assert [(t.provider, t.model, t.weight) for t in spec.targets] == [
        ("openai", "gpt-4o", 3.0),
        (None, "gpt-4o-mini", 1.0),
    ]
    assert spec.strategy == "balanced"
    # Weights not given keep their defaults.
    assert spec.weights == (1.0, 0.3, 0.0)
    assert spec.fallback == FallbackSpec(False, frozenset({"timeout", "context_length_exceeded"}))
    assert spec.retry == RetrySpec(3, 0.1, 0.8, False)
    assert spec.timeout_s == 20.0
    assert spec.constraints.max_cost_usd == 0.01
    assert spec.constraints.max_latency_s == 4.5
    assert spec.constraints.capabilities == {"tools"}
    assert spec.constraints.min_context_window == 100000


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("cheapest", "actions: must be a JSON object"),
        (
            {"strategie": "cheapest"},
            "actions.strategie: unknown key 'strategie' (did you mean 'strategy'?)",
        ),
        (
            {"strategy": "fast"},
            "actions.strategy: must be one of priority, weighted, cheapest, fastest, "
            "least_loaded, balanced",
        ),
        ({"targets": "openai"}, "actions.targets: must be a list"),
        ({"targets": ["openai"]}, "actions.targets[0]: must be a JSON object"),
        ({"targets": [{"model": "gpt-4o"}]}, "actions.targets[0].provider: required"),
        ({"targets": [{"provider": "openai"}]}, "actions.targets[0].model: required"),
        (
            {"targets": [{"provider": "openai", "model": "gpt-4o", "weight": 0}]},
            "actions.targets[0].weight: must be a number greater than 0",
        ),
        (
            {"targets": [{"provider": "openai", "model": "gpt-4o", "wieght": 2}]},
            "actions.targets[0].wieght: unknown key 'wieght' (did you mean 'weight'?)",
        ),
        (
            {
                "targets": [
                    {"provider": "openai", "model": "gpt-4o"},
                    {"provider": "openai", "model": "gpt-4o"},
                ]
            },
            "actions.targets[1]: duplicate target openai/gpt-4o",
        ),
        (
            {"weights": {"cost": -1}},
            "actions.weights.cost: must be a number greater than or equal to 0",
        ),
        (
            {"weights": {"cost": 0, "latency": 0, "errors": 0}},
            "actions.weights: at least one weight must be greater than 0",
        ),
        ({"weights": {"speed": 1}}, "actions.weights.speed: unknown key 'speed'"),
        ({"fallback": True}, "actions.fallback: must be a JSON object"),
        ({"fallback": {"enabled": "yes"}}, "actions.fallback.enabled: must be true or false"),
        ({"fallback": {"on": "timeout"}}, "actions.fallback.on: must be a list of error types"),
        (
            {"fallback": {"on": ["rate_limit"]}},
            "actions.fallback.on[0]: unknown error type 'rate_limit' "
            "(did you mean 'rate_limited'?)",
        ),
        ({"retry": {"attempts": 0}}, "actions.retry.attempts: must be an integer between 1 and 5"),
        ({"retry": {"attempts": 6}}, "actions.retry.attempts: must be an integer between 1 and 5"),
        (
            {"retry": {"attempts": 2.5}},
            "actions.retry.attempts: must be an integer between 1 and 5",
        ),
        (
            {"retry": {"attempts": True}},
            "actions.retry.attempts: must be an integer between 1 and 5",
        ),
        (
            {"retry": {"backoff_ms": -1}},
            "actions.retry.backoff_ms: must be a number of milliseconds >= 0",
        ),
        (
            {"retry": {"backoff_ms": 500, "max_backoff_ms": 100}},
            "actions.retry.max_backoff_ms: must be greater than or equal to backoff_ms",
        ),
        (
            {"retry": {"respect_retry_after": 1}},
            "actions.retry.respect_retry_after: must be true or false",
        ),
        ({"retry": {"tries": 2}}, "actions.retry.tries: unknown key 'tries'"),
        ({"timeout_s": 0}, "actions.timeout_s: must be a number greater than 0"),
        ({"timeout_s": "30"}, "actions.timeout_s: must be a number greater than 0"),
        (
            {"constraints": {"max_cost_usd": 0}},
            "actions.constraints.max_cost_usd: must be a number greater than 0",
        ),
        (
            {"constraints": {"max_latency_s": -2}},
            "actions.constraints.max_latency_s: must be a number greater than 0",
        ),
        (
            {"constraints": {"capabilities": ["vison"]}},
            "actions.constraints.capabilities[0]: unknown capability 'vison' "
            "(did you mean 'vision'?)",
        ),
        (
            {"constraints": {"capabilities": "vision"}},
            "actions.constraints.capabilities: must be a list",
        ),
        (
            {"constraints": {"min_context_window": 1.5}},
            "actions.constraints.min_context_window: must be an integer greater than 0",
        ),
        (
            {"constraints": {"max_tokens": 5}},
            "actions.constraints.max_tokens: unknown key 'max_tokens'",
        ),
    ],
)
def test_validation_paths_and_messages(actions, expected):
    found = messages(actions)
    assert any(m.startswith(expected) for m in found), found


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            {"provider": "opena1", "model": "gpt-4o"},
            "actions.targets[1].provider: unknown provider 'opena1' (did you mean 'openai'?)",
        ),
        (
            {"provider": "openai", "model": "gpt-4x"},
            "actions.targets[1].model: unknown model 'gpt-4x'",
        ),
        (
            {"provider": "anthropic", "model": "gpt-4o"},
            "actions.targets[1].model: provider 'anthropic' does not offer model 'gpt-4o'",
        ),
        ({"provider": "*", "model": "gpt-5"}, "actions.targets[1].model: unknown model 'gpt-5'"),
    ],
)
def test_targets_are_checked_against_the_catalogue_when_given(target, expected):
    actions = {"targets": [{"provider": "openai", "model": "gpt-4o"}, target]}
    found = messages(actions, OFFERS, PROVIDER_IDS)
    assert len(found) == 1 and found[0].startswith(expected), found
    # Without a catalogue only the shape is checked.
    assert messages(actions) == []


def test_providers_alone_check_provider_ids_only():
    actions = {"targets": [{"provider": "opena1", "model": "anything"}]}
    assert messages(actions, None, PROVIDER_IDS) == [
        "actions.targets[0].provider: unknown provider 'opena1' (did you mean 'openai'?)"
    ]


def test_weights_and_target_weights_are_accepted_with_any_strategy():
    # So an operator can switch strategy without rewriting the targets.
    assert (
        messages(
            {
                "strategy": "priority",
                "targets": [{"provider": "openai", "model": "gpt-4o", "weight": 2}],
                "weights": {"cost": 1},
            }
        )
        == []
    )


def test_compile_policy_raises_with_every_issue():
    with pytest.raises(PolicyError) as err:
        compile_policy("1", "bad", 1, {"modle": "x"}, {"strategy": "fast", "timeout_s": -1})
    paths = [issue.path for issue in err.value.issues]
    assert paths == ["conditions.modle", "actions.strategy", "actions.timeout_s"]
    assert "conditions.modle: unknown attribute 'modle'" in str(err.value)


def test_compile_policy_does_not_check_the_catalogue():
    # A provider removed after the policy was saved must not make it uncompilable.
    policy = compile_policy("1", "p", 1, {}, {"targets": [{"provider": "gone", "model": "x"}]})
    assert policy.spec.targets[0].provider == "gone"
