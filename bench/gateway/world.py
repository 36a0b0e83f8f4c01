"""The benchmark's data: one OpenAI-type provider pointing at the canned upstream, two models,
one active policy that matches the benchmark's requests, and a caller whose API key the
policy applies to (group `enterprise`, so the `routing_policies` flag is on for it).

    DATABASE_URL=... python -m bench.gateway.world http://127.0.0.1:18401 [--rate-limited]

Prints the new API key on stdout. Run against a freshly migrated database.
"""

from __future__ import annotations

import os
import sys

PROVIDER_ID = "bench-upstream"
USERNAME = "bench"


def world_install(upstream_url: str, *, rate_limited: bool = False) -> str:
    """Create the benchmark's catalogue and caller; return the raw API key. The key has no
    request limits unless `rate_limited` (then limits it never reaches, to measure them)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from accounts.services import api_key_create
    from providers.models import Provider, ProviderModel
    from routing.choices import PolicyStatus
    from routing.flags import install_seed_flags
    from routing.models import RoutingPolicy

    install_seed_flags(apps)
    provider = Provider(
        id=PROVIDER_ID,
        name="Benchmark upstream (canned nginx)",
        type="openai",
        capacity=1000,
        config={"base_url": upstream_url.rstrip("/"), "timeout": 60, "connect_timeout": 5},
        api_key="sk-bench-upstream",
    )
    provider.full_clean()
    provider.save()
    # gpt-4o-mini list prices; the second model gives the policy a fallback target.
    for model, is_default in (("gpt-4o-mini", True), ("gpt-4.1-mini", True)):
        ProviderModel.objects.create(
            provider=provider,
            model=model,
            upstream_model=model,
            input_price="0.00000015",
            output_price="0.0000006",
            context_window=128000,
            max_output_tokens=16384,
            supports_tools=True,
            supports_json_mode=True,
            is_default=is_default,
        )
    policy = RoutingPolicy(
        name="Benchmark: small models with fallback",
        priority=10,
        status=PolicyStatus.ACTIVE,
        conditions={"model": "gpt-4o-mini"},
        actions={
            "targets": [
                {"provider": PROVIDER_ID, "model": "gpt-4o-mini"},
                {"provider": PROVIDER_ID, "model": "gpt-4.1-mini"},
            ],
            "strategy": "priority",
            "fallback": {"enabled": True},
        },
    )
    policy.full_clean()
    policy.save()
    user = get_user_model().objects.create_user(USERNAME, password=None)
    user.groups.add(Group.objects.get_or_create(name="enterprise")[0])
    # The settings' default of 1000 requests a minute would be used up in a second. Without
    # `rate_limited` the key has no limits (0), like the LiteLLM side; with it, limits too
    # high to reach, so every request still counts itself in the limits store.
    limit = 1_000_000_000 if rate_limited else 0
    _, raw_key = api_key_create(
        user=user,
        name="bench",
        scopes=["ai:execute"],
        rate_limit_per_minute=limit,
        rate_limit_per_hour=limit,
    )
    return raw_key


def main(argv: list[str]) -> int:
    rate_limited = "--rate-limited" in argv
    argv = [a for a in argv if a != "--rate-limited"]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auterity.settings")
    import django

    django.setup()
    print(world_install(argv[0], rate_limited=rate_limited))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
