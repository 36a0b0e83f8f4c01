"""Example routing policies installed by `seed_demo` (docs/policies.md explains each)."""

from django.db import transaction

from .choices import PolicyStatus
from .models import RoutingPolicy

DEMO_POLICIES = [
    {
        "name": "Batch jobs on the cheapest small model",
        "description": "Requests tagged metadata.priority=batch go to the cheapest small model "
        "that can take them; latency does not matter.",
        "priority": 10,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"metadata.priority": "batch"},
        "actions": {
            "targets": [
                {"provider": "openai", "model": "gpt-4.1-nano"},
                {"provider": "google", "model": "gemini-2.5-flash-lite"},
                {"provider": "deepseek", "model": "deepseek-chat"},
            ],
            "strategy": "cheapest",
            "fallback": {"enabled": True},
        },
    },
    {
        "name": "GPT-4o class: cheapest equivalent",
        "description": "gpt-4o requests are served by the cheapest model of the same class "
        "that meets the request's needs, within the cost guard.",
        "priority": 20,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": {"$in": ["gpt-4o", "gpt-4.1"]}},
        "actions": {
            "targets": [
                {"provider": "openai", "model": "gpt-4o"},
                {"provider": "openai", "model": "gpt-4.1"},
                {"provider": "google", "model": "gemini-2.5-pro"},
            ],
            "strategy": "cheapest",
            "fallback": {"enabled": True},
            "retry": {"attempts": 2, "backoff_ms": 200, "respect_retry_after": True},
        },
    },
    {
        "name": "Small models: cheapest equivalent",
        "description": "gpt-4o-mini requests go to the cheapest comparable small model.",
        "priority": 30,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": "gpt-4o-mini"},
        "actions": {
            "targets": [
                {"provider": "openai", "model": "gpt-4o-mini"},
                {"provider": "openai", "model": "gpt-4.1-mini"},
                {"provider": "google", "model": "gemini-2.5-flash"},
                {"provider": "deepseek", "model": "deepseek-chat"},
            ],
            "strategy": "cheapest",
            "constraints": {"capabilities": ["streaming"]},
        },
    },
    {
        "name": "Enterprise Claude: fastest healthy",
        "description": "Enterprise callers asking for Claude Sonnet get the fastest healthy of "
        "Sonnet and Opus... as a draft to show the workflow; activate it in the admin.",
        "priority": 40,
        "status": PolicyStatus.DRAFT,
        "conditions": {"caller.groups": "enterprise", "model": {"$regex": "^claude-sonnet"}},
        "actions": {
            "targets": [
                {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                {"provider": "google", "model": "gemini-2.5-pro"},
            ],
            "strategy": "fastest",
            "timeout_s": 30,
        },
    },
]


@transaction.atomic
def demo_policies_install() -> list[RoutingPolicy]:
    policies = []
    for spec in DEMO_POLICIES:
        spec = dict(spec)
        policy, created = RoutingPolicy.objects.get_or_create(name=spec.pop("name"), defaults=spec)
        if created:
            policy.full_clean()
        policies.append(policy)
    return policies
