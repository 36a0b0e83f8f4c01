"""Example routing policies installed by `seed_demo` (docs/policies.md explains each).

They save money without lowering a request's quality tier (docs/policies.md#quality-tiers),
except the one whose name says it downgrades (and whose actions allow it).
"""

from django.db import transaction

from .choices import PolicyStatus
from .models import RoutingPolicy

DEMO_POLICIES = [
    {
        "name": "Batch jobs on the cheapest small model (downgrades)",
        "description": "Requests tagged metadata.priority=batch go to the cheapest small model "
        "that can take them, whatever tier was asked for: a deliberate downgrade "
        "(allow_downgrade_to: economy), marked on every such request; latency does not matter.",
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
            "allow_downgrade_to": "economy",
        },
    },
    {
        "name": "GPT-4o class: cheapest equivalent",
        "description": "Requests for gpt-4o, gpt-4.1 or gemini-2.5-pro are served by the "
        "cheapest of the three at the requested quality tier or above: gpt-4o requests may go "
        "to gpt-4.1 or gemini-2.5-pro, gpt-4.1 requests to gemini-2.5-pro, and gemini-2.5-pro "
        "requests stay where they are. Expected costs count gemini-2.5-pro's thinking.",
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
        "gemini-2.5-flash-lite, all economy tier) go to the cheapest of the three; DeepSeek V3 "
        "(standard tier) is the last fallback.",
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
        "the cheapest frontier-tier model: Sonnet, Gemini 2.5 Pro or GPT-5 (their thinking "
        "priced in). Requests with tools (agents, built and tested against Sonnet) keep Sonnet.",
        "priority": 35,
        "status": PolicyStatus.ACTIVE,
        "conditions": {"model": "claude-sonnet-4-5", "capabilities": {"$nin": ["tools"]}},
        "actions": {
            "targets": [
                {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                {"provider": "google", "model": "gemini-2.5-pro"},
                {"provider": "openai", "model": "gpt-5"},
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
