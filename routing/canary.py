"""Canary activation of a policy: start, roll back, promote, stop (docs/policies.md
#canary-activation). Writes only; the verdict comes from analytics (analytics/canary.py),
which reads the request log. Every change saves the policy and its PolicyCanary row, so the
audit trail records both (accounts/audit.py), under the actor in force (the evaluation runs
as "canary evaluation").
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .choices import CanaryState, PolicyStatus
from .models import CANARY_GUARD_DEFAULTS, PolicyCanary, RoutingPolicy


def canary_guard_errors(guard) -> list[str]:
    if not isinstance(guard, dict):
        return ["guard: must be a JSON object"]
    errors = []
    for key, value in guard.items():
        if key not in CANARY_GUARD_DEFAULTS:
            errors.append(f"guard.{key}: unknown; one of {', '.join(CANARY_GUARD_DEFAULTS)}")
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            errors.append(f"guard.{key}: must be a number >= 0")
    return errors


@transaction.atomic
def policy_canary_start(
    *,
    policy: RoutingPolicy,
    percent: float,
    bake_minutes: int = 60,
    guard: dict | None = None,
    started_by: str = "",
) -> PolicyCanary:
    """Route `percent` % of the callers the policy matches through it, for `bake_minutes`.
    Raises ValidationError naming the field."""
    errors: dict[str, list[str]] = {}
    if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 < percent < 100:
        errors["percent"] = ["must be a number between 0 and 100 (exclusive)"]
    if not isinstance(bake_minutes, int) or isinstance(bake_minutes, bool) or bake_minutes < 1:
        errors["bake_minutes"] = ["must be a whole number of minutes >= 1"]
    guard_errors = canary_guard_errors(guard or {})
    if guard_errors:
        errors["guard"] = guard_errors
    if policy.status == PolicyStatus.ACTIVE:
        errors["status"] = ["the policy is already active: deactivate it to canary it"]
    if errors:
        raise ValidationError(errors)
    PolicyCanary.objects.filter(policy=policy, state=CanaryState.RUNNING).update(
        state=CanaryState.STOPPED, decided_at=timezone.now(), reason="replaced by a new canary"
    )
    policy.status = PolicyStatus.CANARY
    policy.full_clean()
    policy.save(update_fields=["status", "updated_at"])
    return PolicyCanary.objects.create(
        policy=policy,
        percent=float(percent),
        bake_minutes=bake_minutes,
        guard=guard or {},
        started_at=timezone.now(),
        started_by=started_by,
    )


@transaction.atomic
def policy_canary_finish(
    *, canary: PolicyCanary, state: str, reason: str, figures: dict | None = None
) -> PolicyCanary:
    """End a running canary: rolled back (the policy back to draft), promoted (active) or
    stopped (draft)."""
    policy = canary.policy
    policy.status = PolicyStatus.ACTIVE if state == CanaryState.PROMOTED else PolicyStatus.DRAFT
    policy.save(update_fields=["status", "updated_at"])
    canary.state = state
    canary.reason = reason[:500]
    canary.decided_at = timezone.now()
    if figures is not None:
        canary.figures = figures
    canary.save(update_fields=["state", "reason", "decided_at", "figures"])
    return canary


def policy_canary_record(*, canary: PolicyCanary, figures: dict) -> None:
    """Keep the latest comparison on a running canary (the admin shows it)."""
    PolicyCanary.objects.filter(pk=canary.pk).update(figures=figures)
