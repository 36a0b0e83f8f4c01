"""Impact preview (docs/policies.md#impact-preview): a draft's preview on a seeded request log
of 100,000 requests agrees with what the live gateway then does with the draft active.

The log is seeded with the attributes the gateway records (route_attributes, flags) for
bodies the test can send again; the preview decides every row, and a sample of the request
shapes then goes through the live gateway (OpenAI SDK, HTTP, simulator) with the draft
active: the served provider and model must be the preview's "after" primary.
"""

import json
import random
import uuid
from datetime import timedelta

import openai
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from analytics.models import RequestLog
from analytics.preview import preview_compile, preview_decisions
from providers.adapters.types import ChatRequest, estimate_input_tokens
from routing.catalog import catalogue_get
from routing.choices import PolicyStatus
from routing.models import RoutingPolicy

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 100_000
SHAPES = 60
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro", "claude-haiku-4-5"]
DRAFT_ACTIONS = {
    "targets": [
        {"provider": "openai", "model": "gpt-4.1"},
        {"provider": "google", "model": "gemini-2.5-pro"},
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "anthropic", "model": "claude-sonnet-4-5"},
    ],
    "strategy": "cheapest",
}
DRAFT_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]


def shapes(rng):
    """Chat bodies of different sizes, models, tools and max_tokens."""
    bodies = []
    for i in range(SHAPES):
        body = {
            "model": MODELS[i % len(MODELS)],
            "messages": [{"role": "user", "content": "route me " * rng.choice([5, 200, 3000])}],
        }
        if rng.random() < 0.5:
            body["max_tokens"] = rng.choice([16, 300, 2000])
        if rng.random() < 0.3:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
                }
            ]
        bodies.append(body)
    return bodies


def seed_log(user, bodies, rng):
    """ROWS rows in one INSERT ... SELECT per shape batch: what the gateway records."""
    now = timezone.now()
    rows = []
    for n in range(ROWS):
        body = bodies[n % len(bodies)]
        request = ChatRequest.from_openai(body)
        rows.append(
            RequestLog(
                request_id=uuid.uuid4().hex,
                created_at=now - timedelta(seconds=rng.randint(60, 86_000)),
                user=user,
                api_key_name="ent-key",
                requested_model=body["model"],
                provider_id="openai",
                model=body["model"],
                status="success",
                http_status=200,
                prompt_tokens=rng.randint(5, 4000),
                completion_tokens=rng.randint(1, 800),
                flags={
                    "routing_policies": True,
                    "cost_optimization": True,
                    "intelligent_routing": True,
                    "intelligent_routing_fallback": True,
                },
                route_attributes={
                    "input_tokens": estimate_input_tokens(request),
                    "max_tokens": request.max_tokens,
                    "expected_output_tokens": None if request.max_tokens else 424,
                    "capabilities": sorted(request.required_capabilities()),
                    "metadata": {},
                    "username": user.username,
                    "groups": ["enterprise"],
                    "team": None,
                },
            )
        )
    RequestLog.objects.bulk_create(rows, batch_size=5000)


def test_preview_of_a_draft_agrees_with_the_live_gateway(
    live_server, django_user_model, demo_catalogue, cost_optimization_everywhere
):
    # given: 100,000 logged requests and a draft policy
    rng = random.Random(18)
    user = django_user_model.objects.create_user("ent", password="pw-123456")
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    _, key = api_key_create(user=user, name="ent-key", scopes=["ai:execute", "routing:view"])
    bodies = shapes(rng)
    seed_log(user, bodies, rng)
    draft = RoutingPolicy.objects.create(
        name="Draft: cheapest of four",
        priority=1,
        status=PolicyStatus.DRAFT,
        conditions={"model": {"$in": DRAFT_MODELS}},
        actions=DRAFT_ACTIONS,
    )
    compiled = preview_compile(draft.id, draft.name, 1, draft.conditions, draft.actions)

    # when: previewed
    decided = {}
    for item in preview_decisions(
        compiled, start=timezone.now() - timedelta(days=2), end=timezone.now()
    ):
        decided[item.request_id] = item
    response = APIClient().post(
        f"/api/routing/policies/{draft.id}/preview/",
        {"days": 2, "sample": 5},
        format="json",
        headers={"authorization": f"Bearer {key}"},
    )

    # then: it matched exactly the draft's models, and says so through the API
    expected = RequestLog.objects.filter(requested_model__in=DRAFT_MODELS).count()
    assert len(decided) == expected > 0
    assert all(i.after.policy_id == str(draft.id) for i in decided.values())
    assert response.status_code == 200, response.content
    figures = response.json()
    assert figures["requests_matched"] == expected
    assert figures["after"]["cost_usd"] < figures["before"]["cost_usd"]
    assert sum(m["requests"] for m in figures["after"]["mix"]) == expected
    assert len(figures["changed_sample"]) == 5
    assert figures["after"]["downgrades"] == 0  # the draft gives no leave: tiers hold

    # and: the live gateway, with the draft active, decides every shape the same way
    after_by_shape = {}
    for item in decided.values():
        attrs = json.loads(item.row[15]) if isinstance(item.row[15], str) else item.row[15]
        shape = (
            item.requested_model,
            attrs["input_tokens"],
            attrs["max_tokens"],
            tuple(attrs["capabilities"]),
        )
        primary = item.after.primary
        after_by_shape.setdefault(shape, set()).add(
            (primary.provider_id, primary.model) if primary else None
        )
    assert all(len(v) == 1 for v in after_by_shape.values())  # one decision per shape
    draft.status = PolicyStatus.ACTIVE
    draft.save()
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    compared = 0
    for body in bodies:
        if body["model"] not in DRAFT_MODELS:
            continue
        request = ChatRequest.from_openai(body)
        shape = (
            body["model"],
            estimate_input_tokens(request),
            request.max_tokens,
            tuple(sorted(request.required_capabilities())),
        )
        raw = client.chat.completions.with_raw_response.create(**body)
        served = (raw.headers["X-Auterity-Provider"], raw.headers["X-Auterity-Model"])
        assert raw.headers["X-Auterity-Policy"] == draft.name
        assert after_by_shape[shape] == {served}, (body["model"], shape)
        compared += 1
    assert compared >= 30
    assert catalogue_get().snapshot.policy(str(draft.id)) is not None
    connection.close()
