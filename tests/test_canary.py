"""Canary activation end to end (docs/policies.md#canary-activation): a policy activated as
"canary 50 %" over the REST API routes half of its callers; real traffic goes through the live
gateway to the provider simulator (faults set through its control API); the real Celery task
function judges it. A bad canary (its target fails half the time) is rolled back within its
bake window, with the audit row, the alert metric and the email; a good one is promoted."""

from datetime import timedelta

import openai
import pytest
import requests
from django.contrib.auth.models import Group
from django.core import mail
from django.db.models import Count
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from accounts.services import api_key_create
from analytics.log_writer import request_log_writer
from analytics.models import RequestLog
from analytics.tasks import evaluate_canaries_task
from routing.choices import CanaryState, PolicyStatus
from routing.models import PolicyCanary, RoutingPolicy

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = 20
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def callers(django_user_model, demo_catalogue, cost_optimization_everywhere):
    """Twenty enterprise callers (routing policies on for all), each with its own key."""
    group = Group.objects.get_or_create(name="enterprise")[0]
    keys = []
    for n in range(CALLERS):
        user = django_user_model.objects.create_user(f"caller-{n}", password="pw-123456")
        user.groups.add(group)
        keys.append(api_key_create(user=user, name=f"key-{n}", scopes=["ai:execute"])[1])
    return keys


@pytest.fixture
def manager(django_user_model):
    user = django_user_model.objects.create_user("ops", password="pw-123456")
    return api_key_create(user=user, name="ops", scopes=["routing:view", "routing:manage"])[1]


@pytest.fixture
def mailbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CANARY_ALERT_RECIPIENTS = ["oncall@example.com"]
    return mail.outbox


def start_canary(manager, target, *, bake_minutes, name):
    policy = RoutingPolicy.objects.create(
        name=name,
        priority=1,
        status=PolicyStatus.DRAFT,
        conditions={"model": "gpt-4o-mini"},
        actions={"targets": [target], "fallback": {"enabled": False}},
    )
    response = APIClient().post(
        f"/api/routing/policies/{policy.id}/canary/",
        {"percent": 50, "bake_minutes": bake_minutes, "guard": {"min_requests": 10}},
        format="json",
        headers={"authorization": f"Bearer {manager}"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "running"
    return policy


def traffic(live_server, keys, per_caller=4):
    served = []
    for key in keys:
        client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
        for _ in range(per_caller):
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=HELLO, max_tokens=5
                )
                served.append(raw.headers["X-Auterity-Model"])
            except openai.APIStatusError as exc:
                served.append(exc.status_code)
    request_log_writer().flush(10)
    return served


def test_a_bad_canary_is_rolled_back_within_its_bake_window(
    live_server, callers, manager, mailbox, sim, settings
):
    # given: the canary's target fails half the time (the simulator's control API), and a cost
    # guard wide enough to admit it: at list prices deepseek-chat costs about 1.8x gpt-4o-mini,
    # so the default +5 % guard would keep the canary's requests on the baseline and no error
    # would reach the evaluation (this test judges errors, not cost)
    settings.COST_OPTIMIZATION_MAX_COST_INCREASE = 1.5
    requests.put(
        f"{sim.url}/_sim/faults/deepseek", json={"error_rate": 0.5, "error_status": 500}, timeout=5
    ).raise_for_status()
    policy = start_canary(
        manager,
        {"provider": "deepseek", "model": "deepseek-chat"},
        bake_minutes=30,
        name="Small to DeepSeek (canary)",
    )
    # when: the callers send their traffic, and beat's task judges the canary
    traffic(live_server, callers)
    cohorts = dict(
        RequestLog.objects.filter(canary_policy_id=policy.id)
        .values_list("canary_cohort")
        .annotate(n=Count("id"))
    )
    assert cohorts.get("canary", 0) >= 10 and cohorts.get("control", 0) >= 10, cohorts
    results = evaluate_canaries_task()
    # then: rolled back to draft, within the bake window
    assert [r["outcome"] for r in results] == ["rolled_back"]
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.DRAFT
    canary = PolicyCanary.objects.get(policy=policy)
    assert canary.state == CanaryState.ROLLED_BACK
    assert canary.decided_at < canary.started_at + timedelta(minutes=canary.bake_minutes)
    assert "error rate" in canary.reason
    # the audit row: the policy's status change, by the canary evaluation
    event = (
        AuditEvent.objects.filter(object_type="routing.RoutingPolicy", object_id=str(policy.id))
        .order_by("-id")
        .first()
    )
    assert event.actor_label == "canary evaluation"
    assert event.changes["status"] == ["canary", "draft"]
    # the alert metric, as Prometheus scrapes it
    metrics = requests.get(f"{live_server.url}/metrics", timeout=5).text
    assert f'ai_routing_canary_rollbacks_total{{policy="{policy.name}"}} 1.0' in metrics
    # the email
    assert len(mailbox) == 1
    assert mailbox[0].to == ["oncall@example.com"]
    assert policy.name in mailbox[0].subject and "error rate" in mailbox[0].body
    # and the canary no longer routes anyone
    assert set(traffic(live_server, callers[:3], per_caller=1)) != {"deepseek-chat"}


def test_a_good_canary_is_promoted_after_its_bake_time(live_server, callers, manager, mailbox):
    policy = start_canary(
        manager,
        {"provider": "openai", "model": "gpt-4.1-nano"},
        bake_minutes=5,
        name="Small to nano (canary)",
    )
    served = traffic(live_server, callers)
    assert "gpt-4.1-nano" in served
    # not baked yet: keeps running
    assert [r["outcome"] for r in evaluate_canaries_task()] == ["running"]
    # the bake time passes (the rows stay inside the canary's window)
    PolicyCanary.objects.filter(policy=policy).update(
        started_at=PolicyCanary.objects.get(policy=policy).started_at - timedelta(minutes=6)
    )
    assert [r["outcome"] for r in evaluate_canaries_task()] == ["promoted"]
    policy.refresh_from_db()
    assert policy.status == PolicyStatus.ACTIVE
    assert PolicyCanary.objects.get(policy=policy).state == CanaryState.PROMOTED
    assert mailbox == []
