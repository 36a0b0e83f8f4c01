"""A failing provider, end to end: live Auterity -> provider simulator with injected faults.

Each test puts a "fault drill" policy in front of the demo policies so the route is explicit
(OpenAI first, Anthropic as the fallback, or the other way round for streams), breaks one
provider in the simulator, and checks what a caller and an operator rely on: requests still
succeed through the fallback, every upstream attempt is in the request log, the breaker opens
(the simulator stops seeing traffic) and closes again once the provider recovers. The breaker
settings are the real ones (ROUTING_BREAKER_*), shortened here so the cool-down passes quickly.
"""

import json
import time
from decimal import Decimal

import pytest
import requests
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from accounts.services import api_key_create
from analytics.models import RequestLog
from providers.models import Provider
from routing import decisions
from routing.choices import PolicyStatus
from routing.engine import DEFAULT_FALLBACK_ON, OVER_COST_GUARD
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db(transaction=True)

THRESHOLD = 3  # consecutive failures that open a breaker in these tests
COOLDOWN_S = 1.5
HELLO = [{"role": "user", "content": "Say hello to the gateway, please."}]


@pytest.fixture
def breaker(settings):
    """The gateway's live stats rebuilt from short breaker settings; returns a state reader."""
    settings.ROUTING_BREAKER_FAILURE_THRESHOLD = THRESHOLD
    settings.ROUTING_BREAKER_COOLDOWN_SECONDS = COOLDOWN_S
    decisions.provider_stats_reset()
    return lambda provider_id: decisions.provider_stats.view(provider_id).breaker_state


@pytest.fixture
def routed_key(django_user_model, demo_catalogue):
    """An enterprise caller (routing policies always apply) that may also run dry runs."""
    user = django_user_model.objects.create_user("ops", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    _, raw_key = api_key_create(user=user, name="ops-key", scopes=["ai:execute", "routing:view"])
    # A hung upstream should cost half a second per attempt, not the demo's 60 s.
    for provider in Provider.objects.filter(id__in=["openai", "anthropic"]):
        provider.config = {**provider.config, "timeout": 0.5}
        provider.save()
    return raw_key


def drill_policy(model, targets, *, retry_attempts=1, name="Fault drill"):
    policy = RoutingPolicy(
        name=name,
        status=PolicyStatus.ACTIVE,
        priority=1,
        conditions={"model": model},
        actions={
            "targets": [{"provider": p, "model": m} for p, m in targets],
            "strategy": "priority",
            "retry": {"attempts": retry_attempts, "backoff_ms": 50},
            # The drills are about fallback, not quality: any tier may stand in.
            "allow_downgrade_to": "economy",
        },
    )
    policy.full_clean()
    policy.save()
    return policy


@pytest.fixture
def openai_first(routed_key):
    """gpt-4o-mini: OpenAI, then Claude Haiku (dearer than the cost guard allows: fallback only)."""
    drill_policy("gpt-4o-mini", [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")])


def chat(live_server, key, model="gpt-4o-mini", **body):
    return requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": HELLO, "max_tokens": 8, **body},
        timeout=30,
    )


def dry_run(live_server, key, model="gpt-4o-mini"):
    response = requests.post(
        f"{live_server.url}/api/routing/simulate",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": HELLO, "max_tokens": 8},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["decision"]


def rows():
    return list(RequestLog.objects.order_by("id"))


def attempts(row):
    return [(a["provider"], a["outcome"]) for a in row.attempts_detail]


def wait_for_half_open(state, provider_id):
    """Wait out the cool-down (polling, not a fixed sleep), then check the breaker moved."""
    deadline = time.monotonic() + COOLDOWN_S + 10
    while state(provider_id) == "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state(provider_id) == "half_open"


def sse_events(response):
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            payload = line[len(b"data: ") :]
            events.append(payload if payload == b"[DONE]" else json.loads(payload))
    return events


def streamed_text(events):
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        pytest.param({"error_rate": 1.0, "error_status": 503}, "upstream_error", id="503"),
        pytest.param(
            {"error_rate": 1.0, "error_status": 429, "retry_after": 30},
            "rate_limited",
            id="429-retry-after",
        ),
        pytest.param({"timeout_rate": 1.0, "hang_seconds": 3}, "timeout", id="timeout"),
        pytest.param({"reset_rate": 1.0}, "connection_error", id="connection-reset"),
        pytest.param({"malformed_rate": 1.0}, "malformed_response", id="malformed-body"),
    ],
)
def test_failing_provider_falls_back_opens_the_breaker_and_closes_after_recovery(
    live_server, routed_key, sim, openai_first, breaker, fault, outcome
):
    # given: OpenAI fails every request in one way
    sim.set_fault("openai", **fault)

    # when: more requests than it takes to open the breaker
    for _ in range(THRESHOLD + 3):
        response = chat(live_server, routed_key)
        # then: every one succeeds through the fallback
        assert response.status_code == 200, response.text
        assert response.headers["X-Auterity-Provider"] == "anthropic"
        assert response.json()["choices"][0]["message"]["content"]

    # every attempt is in the log: the failed one first, then the fallback that served it
    logged = rows()
    assert len(logged) == THRESHOLD + 3
    assert [attempts(r) for r in logged[:THRESHOLD]] == (
        [[("openai", outcome), ("anthropic", "ok")]] * THRESHOLD
    )
    # once the breaker is open, OpenAI is skipped: dropped by the decision, or (while the
    # decision still reads a live view from before it opened) refused at the door
    for row in logged[THRESHOLD:]:
        assert attempts(row) in (
            [("anthropic", "ok")],
            [("openai", "circuit_open"), ("anthropic", "ok")],
        )
    for row in logged:
        assert (row.status, row.provider_id, row.attempts) == (
            "success",
            "anthropic",
            len(row.attempts_detail),
        )
    failed = logged[0].attempts_detail[0]
    if outcome == "rate_limited":
        # 30 s is longer than the gateway waits on one target: straight to the fallback
        assert (failed["status"], failed["retry_after"]) == (429, 30.0)
    if outcome == "upstream_error":
        assert failed["status"] == 503

    # the breaker opened: OpenAI saw only the requests before it, and the dry run says why
    assert breaker("openai") == "open"
    assert sim.stats("openai")["requests"] == THRESHOLD
    time.sleep(decisions.provider_stats.config.view_max_age_s)  # decisions share views this long
    decision = dry_run(live_server, routed_key)
    assert [t["provider_id"] for t in decision["targets"]] == ["anthropic"]
    assert {"provider_id": "openai", "model": "gpt-4o-mini", "reason": "circuit breaker open"} in (
        decision["dropped"]
    )

    # when: OpenAI recovers and the cool-down passes
    sim.clear_faults("openai")
    wait_for_half_open(breaker, "openai")
    trial = chat(live_server, routed_key)
    # then: the trial request goes to OpenAI again, succeeds, and closes the breaker
    assert trial.status_code == 200
    assert trial.headers["X-Auterity-Provider"] == "openai"
    assert breaker("openai") == "closed"
    assert chat(live_server, routed_key).headers["X-Auterity-Provider"] == "openai"
    assert sim.stats("openai")["by_outcome"]["ok"] == 2
    assert [attempts(r) for r in rows()[-2:]] == [[("openai", "ok")]] * 2


def test_a_failed_trial_reopens_the_breaker_for_another_cool_down(
    live_server, routed_key, sim, openai_first, breaker
):
    sim.set_fault("openai", error_rate=1.0, error_status=500)
    for _ in range(THRESHOLD):
        assert chat(live_server, routed_key).status_code == 200
    assert breaker("openai") == "open"

    # when: the cool-down passes but OpenAI is still broken
    wait_for_half_open(breaker, "openai")
    response = chat(live_server, routed_key)
    # then: one trial reached OpenAI, failed, the request was still served, the breaker re-opened
    assert response.status_code == 200, response.text
    assert attempts(rows()[-1]) == [("openai", "upstream_error"), ("anthropic", "ok")]
    assert breaker("openai") == "open"
    assert sim.stats("openai")["requests"] == THRESHOLD + 1
    assert chat(live_server, routed_key).headers["X-Auterity-Provider"] == "anthropic"
    assert sim.stats("openai")["requests"] == THRESHOLD + 1


def test_a_short_retry_after_is_waited_out_on_the_same_target_before_falling_back(
    live_server, routed_key, sim, breaker
):
    # given: two tries per target, and OpenAI asking for a one-second pause
    drill_policy(
        "gpt-4o-mini",
        [("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")],
        retry_attempts=2,
    )
    sim.set_fault("openai", error_rate=1.0, error_status=429, retry_after=1)
    # when
    response = chat(live_server, routed_key)
    # then: both tries on OpenAI are logged with the pause it asked for, then the fallback
    assert response.status_code == 200
    (row,) = rows()
    assert attempts(row) == [
        ("openai", "rate_limited"),
        ("openai", "rate_limited"),
        ("anthropic", "ok"),
    ]
    assert [a.get("retry_after") for a in row.attempts_detail] == [1.0, 1.0, None]
    assert sim.stats("openai")["by_outcome"] == {"error_429": 2}


def test_when_every_target_is_rate_limited_the_caller_gets_429_with_retry_after(
    live_server, routed_key, sim, openai_first, breaker
):
    for name in ("openai", "anthropic"):
        sim.set_fault(name, error_rate=1.0, error_status=429, retry_after=20)
    response = chat(live_server, routed_key)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "20"
    assert response.json()["error"]["code"] == "rate_limited"
    (row,) = rows()
    assert (row.status, row.http_status, row.error_type) == ("error", 429, "rate_limited")
    assert attempts(row) == [("openai", "rate_limited"), ("anthropic", "rate_limited")]


def test_a_stream_cut_before_its_first_content_falls_back_and_the_client_never_notices(
    live_server, routed_key, sim, breaker
):
    # given: Claude Haiku first, GPT-4o mini behind it; Anthropic cuts every stream after its
    # opening events (message_start, content_block_start, ping), before any text
    drill_policy(
        "claude-haiku-4-5",
        [("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4o-mini")],
    )
    sim.set_fault("anthropic", cut_stream_rate=1.0)

    for _ in range(THRESHOLD + 2):
        # when
        with chat(
            live_server, routed_key, "claude-haiku-4-5", stream=True, max_tokens=1
        ) as response:
            # then: a whole answer from the fallback, ending like any stream
            assert response.status_code == 200
            assert response.headers["X-Auterity-Provider"] == "openai"
            events = sse_events(response)
        assert events[-1] == b"[DONE]"
        assert streamed_text(events)

    logged = rows()
    assert len(logged) == THRESHOLD + 2  # each row is written before its stream's [DONE]
    assert all(r.status == "success" and r.stream for r in logged)
    first_attempts = [r.attempts_detail[0] for r in logged[:THRESHOLD]]
    assert all(a["provider"] == "anthropic" for a in first_attempts)
    assert all(a["outcome"] in DEFAULT_FALLBACK_ON for a in first_attempts)
    assert [attempts(r)[-1] for r in logged] == [("openai", "ok")] * len(logged)
    # the cut streams opened Anthropic's breaker: no later stream reached it
    assert breaker("anthropic") == "open"
    for row in logged[THRESHOLD:]:
        assert attempts(row)[:-1] in ([], [("anthropic", "circuit_open")])
    assert sim.stats("anthropic")["by_outcome"] == {"cut_stream": THRESHOLD}


def test_a_stream_cut_after_content_ends_with_an_error_event_and_counts_against_the_provider(
    live_server, routed_key, sim, openai_first, breaker
):
    # given: OpenAI cuts every stream about halfway through its text
    sim.set_fault("openai", cut_stream_rate=1.0)

    for _ in range(THRESHOLD):
        # when
        with chat(live_server, routed_key, stream=True, max_tokens=10) as response:
            assert response.status_code == 200
            assert response.headers["X-Auterity-Provider"] == "openai"
            events = sse_events(response)
        # then: the text so far, then an OpenAI-shaped error event instead of [DONE]; the
        # gateway cannot switch providers once the client has part of an answer
        assert streamed_text(events)
        assert events[-1]["error"]["code"] == "stream_interrupted"
        assert b"[DONE]" not in events

    logged = rows()
    assert [(r.status, r.error_type) for r in logged] == [("error", "stream_interrupted")] * 3
    assert [attempts(r) for r in logged] == [[("openai", "stream_interrupted")]] * THRESHOLD
    assert all(r.provider_id == "openai" for r in logged)
    # the text that was streamed is counted (estimated from its length: no usage chunk came)
    assert all(r.completion_tokens > 0 for r in logged)
    assert all(r.cost > 0 for r in logged)

    # the broken streams count as failures: the breaker opened, the next stream went elsewhere
    assert breaker("openai") == "open"
    with chat(live_server, routed_key, stream=True, max_tokens=10) as response:
        assert response.headers["X-Auterity-Provider"] == "anthropic"
        events = sse_events(response)
    assert events[-1] == b"[DONE]"
    assert sim.stats("openai")["streams"] == THRESHOLD


def test_the_cost_guard_puts_a_costlier_target_behind_and_marks_it_when_it_serves(
    live_server, routed_key, sim
):
    # given: a policy that lists Claude Sonnet (20x gpt-4o-mini's price) first
    drill_policy(
        "gpt-4o-mini",
        [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o-mini")],
        name="Upgrade drill",
    )

    # when: both are up
    response = chat(live_server, routed_key)
    # then: the guard keeps the costlier target out of first place
    assert response.headers["X-Auterity-Provider"] == "openai"
    decision = dry_run(live_server, routed_key)
    primary, fallback = decision["targets"]
    assert (primary["provider_id"], fallback["provider_id"]) == ("openai", "anthropic")
    assert primary["expected_cost"] <= decision["baseline"]["expected_cost"] * 1.05
    assert fallback["expected_cost"] > decision["baseline"]["expected_cost"] * 1.05
    assert fallback["reason"] == OVER_COST_GUARD

    # when: the cheap target fails, the costlier one serves, and the log says it was over
    sim.set_fault("openai", error_rate=1.0, error_status=503)
    response = chat(live_server, routed_key)
    assert response.headers["X-Auterity-Provider"] == "anthropic"
    guarded, served = rows()[-1].attempts_detail
    assert (guarded["provider"], guarded["outcome"], guarded.get("note")) == (
        "openai",
        "upstream_error",
        None,
    )
    assert (served["provider"], served["outcome"], served["note"]) == (
        "anthropic",
        "ok",
        "fallback over cost guard",
    )
    row = rows()[-1]
    assert row.cost > row.baseline_cost * Decimal("1.05")


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro"])
def test_no_primary_costs_more_than_the_guard_allows_under_the_demo_policies(
    live_server, routed_key, cost_optimization_everywhere, model
):
    for prompt_chars in (40, 4_000, 60_000):
        for max_tokens in (None, 16, 4_000):
            for metadata in ({}, {"priority": "batch"}):
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": "x" * prompt_chars}],
                    "metadata": metadata,
                }
                if max_tokens:
                    body["max_tokens"] = max_tokens
                response = requests.post(
                    f"{live_server.url}/api/routing/simulate",
                    headers={"Authorization": f"Bearer {routed_key}"},
                    json=body,
                    timeout=10,
                )
                assert response.status_code == 200, response.text
                decision = response.json()["decision"]
                limit = decision["baseline"]["expected_cost"] * 1.05 * (1 + 1e-9)
                assert decision["targets"][0]["expected_cost"] <= limit, decision
                for target in decision["targets"][1:]:
                    if target["expected_cost"] > limit:
                        assert target["reason"] == OVER_COST_GUARD, decision


def test_the_breaker_and_health_settings_configure_the_gateway(settings):
    settings.ROUTING_BREAKER_FAILURE_THRESHOLD = 7
    settings.ROUTING_BREAKER_COOLDOWN_SECONDS = 12.5
    settings.ROUTING_BREAKER_HALF_OPEN_TRIALS = 2
    settings.ROUTING_STATS_ERROR_ALPHA = 0.25
    config = decisions.stats_config_from_settings()
    assert (config.breaker.failure_threshold, config.breaker.cooldown_s) == (7, 12.5)
    assert (config.breaker.half_open_max_trials, config.error_alpha) == (2, 0.25)

    settings.ROUTING_BREAKER_FAILURE_THRESHOLD = 0
    with pytest.raises(ImproperlyConfigured, match="failure_threshold"):
        decisions.stats_config_from_settings()
