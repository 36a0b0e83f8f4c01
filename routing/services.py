"""Writes and rules for routing policies, and the routing rollback."""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone
from waffle.models import Flag, Sample, Switch

from core.flags import COST_OPTIMIZATION, ROUTING_POLICIES, SWITCHES

from .choices import CanaryState, PolicyStatus
from .flags import flags_reset
from .models import FlagRollback, PolicyCanary, RoutingPolicy

logger = logging.getLogger(__name__)


@transaction.atomic
def policy_set_status(*, policy: RoutingPolicy, status: str) -> RoutingPolicy:
    """Move a policy to `status`, re-validating it first (an active policy must be valid now).
    A canary still running on it ends: the operator decided instead of the evaluation."""
    policy.status = status
    policy.full_clean()
    policy.save(update_fields=["status", "updated_at"])
    for canary in PolicyCanary.objects.filter(policy=policy, state=CanaryState.RUNNING):
        canary.state = CanaryState.STOPPED
        canary.decided_at = timezone.now()
        canary.reason = f"status set to {status} by an operator"
        canary.save(update_fields=["state", "decided_at", "reason"])
    return policy


def policy_activate(*, policy: RoutingPolicy) -> RoutingPolicy:
    return policy_set_status(policy=policy, status=PolicyStatus.ACTIVE)


def policy_deactivate(*, policy: RoutingPolicy) -> RoutingPolicy:
    return policy_set_status(policy=policy, status=PolicyStatus.INACTIVE)


# --- rollback ----------------------------------------------------------------------------------
#
# docs/flags.md#rollback. Every routing feature off in one audited transaction, and back.
# The waffle rows are saved with Model.save() rather than waffle's own save(): waffle's
# flushes its cache in an on_commit hook whose exception (Redis down) would escape after the
# commit and hide what was done. The cache is cleared here instead, after the commit, and a
# failure is reported rather than raised: the database holds the truth, and the gateway reads
# flags from the database when the cache is unreachable.


@dataclass(frozen=True)
class FlagChange:
    kind: str  # flag, sample or switch
    name: str
    field: str  # everyone, percent or active
    before: Any
    after: Any

    def __str__(self):
        return f"{self.kind} {self.name}: {self.field} {self.before!r} -> {self.after!r}"


@dataclass(frozen=True)
class RollbackResult:
    rollback: FlagRollback | None  # None: nothing to do
    changes: tuple[FlagChange, ...]
    cache_error: str  # "" when waffle's cache was cleared


# (kind, model, names, field, the rolled-back value)
_ROLLBACK_FIELDS = (
    ("flags", Flag, (ROUTING_POLICIES,), "everyone", False),
    ("samples", Sample, (COST_OPTIMIZATION,), "percent", 0),
    ("switches", Switch, SWITCHES, "active", False),
)


SINGULAR = {"flags": "flag", "samples": "sample", "switches": "switch"}


def _plain(value):
    """A waffle field's value as JSON keeps it (Sample.percent is a Decimal)."""
    return float(value) if isinstance(value, Decimal) else value


def flag_states() -> dict:
    """The rollback's fields as they are now; an object that does not exist is left out
    (routing treats a missing flag, sample or switch as off)."""
    states: dict = {}
    for kind, model, names, field, _ in _ROLLBACK_FIELDS:
        rows = model.objects.filter(name__in=names).values_list("name", field)
        states[kind] = {name: _plain(value) for name, value in rows}
    return states


def _apply(target: dict) -> list[FlagChange]:
    """Set the fields to `target`'s values (same shape as flag_states()); the changes made."""
    changes: list[FlagChange] = []
    for kind, model, names, field, _ in _ROLLBACK_FIELDS:
        wanted = target.get(kind, {})
        for obj in model.objects.select_for_update().filter(name__in=names).order_by("name"):
            if obj.name not in wanted:
                continue
            old, new = _plain(getattr(obj, field)), wanted[obj.name]
            if old == new:
                continue
            setattr(obj, field, new)
            obj.modified = timezone.now()
            models.Model.save(obj)  # see the note above: no on_commit cache flush
            changes.append(FlagChange(SINGULAR[kind], obj.name, field, old, new))
    return changes


def _flush_flag_cache() -> str:
    """Clear waffle's cached copies of every object the rollback touches (also those it found
    already in place: a run after the cache came back clears what a failed run left)."""
    objects = [
        obj
        for _, model, names, _, _ in _ROLLBACK_FIELDS
        for obj in model.objects.filter(name__in=names)
    ]
    for obj in objects:
        try:
            obj.flush()
        except Exception as exc:  # any cache backend's connection error
            logger.warning("routing rollback: waffle's cache could not be cleared: %s", exc)
            return f"{type(exc).__name__}: {exc}"
    flags_reset()
    return ""


def routing_rollback(*, actor_label: str) -> RollbackResult:
    """Switch every routing feature off: the `routing_policies` flag (Everyone: No), the
    `cost_optimization` sample (0 %) and the three switches, in one transaction recorded in
    the audit trail and as a FlagRollback holding the states it replaced."""
    with transaction.atomic():
        before = flag_states()
        off = {
            kind: dict.fromkeys(before[kind], value) for kind, _, _, _, value in _ROLLBACK_FIELDS
        }
        changes = _apply(off)
        rollback = None
        if changes:
            rollback = FlagRollback.objects.create(
                actor_label=actor_label[:255], before=before, after=flag_states()
            )
    return RollbackResult(rollback, tuple(changes), _flush_flag_cache())


def routing_rollforward(*, actor_label: str) -> RollbackResult:
    """Restore the states from before the last rollback not yet rolled forward."""
    with transaction.atomic():
        rollback = FlagRollback.objects.select_for_update().filter(rolled_forward_at=None).first()
        if rollback is None:
            return RollbackResult(None, (), "")
        changes = _apply(rollback.before)
        rollback.rolled_forward_at = timezone.now()
        rollback.rolled_forward_by = actor_label[:255]
        rollback.save(update_fields=["rolled_forward_at", "rolled_forward_by"])
    return RollbackResult(rollback, tuple(changes), _flush_flag_cache())
