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
        "description": "Requests for a GPT-4o-class model (gpt-4o, gpt-4.1, gemini-2.5-pro) are "
        "served by the cheapest model of that class for the request's size: gpt-4.1 for short "
        "prompts with long answers, gemini-2.5-pro for long prompts. Reasoning models (gpt-5, "
        "o3-mini) are left out: their hidden reasoning tokens make list prices misleading.",
        "priority": 20,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": {"$in": ["gpt-4o", "gpt-4.1", "gemini-2.5-pro"]}},
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
        "description": "Requests for a small fast model (gpt-4o-mini, gpt-4.1-nano, "
        "gemini-2.5-flash-lite) go to the cheapest of the three; DeepSeek V3 is the last "
        "fallback.",
        "priority": 30,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": {"$in": ["gpt-4o-mini", "gpt-4.1-nano", "gemini-2.5-flash-lite"]}},
        "actions": {
            "targets": [
                {"provider": "openai", "model": "gpt-4o-mini"},
                {"provider": "openai", "model": "gpt-4.1-nano"},
                {"provider": "google", "model": "gemini-2.5-flash-lite"},
                {"provider": "deepseek", "model": "deepseek-chat"},
            ],
            "strategy": "cheapest",
            "constraints": {"capabilities": ["streaming"]},
        },
    },
    {
        "name": "Claude Sonnet chat: cheapest frontier equivalent",
        "description": "Claude Sonnet requests without tools (chat, summaries, drafting) go to "
        "the cheapest frontier model: Sonnet, Gemini 2.5 Pro or GPT-4.1. Requests with tools "
        "(agents, built and tested against Sonnet) keep Sonnet.",
        "priority": 35,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": "claude-sonnet-4-5", "capabilities": {"$nin": ["tools"]}},
        "actions": {
            "targets": [
                {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                {"provider": "google", "model": "gemini-2.5-pro"},
                {"provider": "openai", "model": "gpt-4.1"},
            ],
            "strategy": "cheapest",
            "retry": {"attempts": 2, "backoff_ms": 200, "respect_retry_after": True},
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
