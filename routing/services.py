"""Writes and rules for routing policies."""

from django.db import transaction

from .choices import PolicyStatus
from .models import RoutingPolicy


@transaction.atomic
def policy_set_status(*, policy: RoutingPolicy, status: str) -> RoutingPolicy:
    """Move a policy to `status`, re-validating it first (an active policy must be valid now)."""
    policy.status = status
    policy.full_clean()
    policy.save(update_fields=["status", "updated_at"])
    return policy


def policy_activate(*, policy: RoutingPolicy) -> RoutingPolicy:
    return policy_set_status(policy=policy, status=PolicyStatus.ACTIVE)


def policy_deactivate(*, policy: RoutingPolicy) -> RoutingPolicy:
    return policy_set_status(policy=policy, status=PolicyStatus.INACTIVE)
