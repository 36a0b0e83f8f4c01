"""Routing policies: operator-written rules that pick the provider and model for a request."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from core.encryption import EncryptedJSONField

from .choices import PolicyStatus
from .policy_validation import policy_errors
from .sensitive import sensitive_errors, sensitive_resolve


class RoutingPolicy(models.Model):
    """A rule "requests matching `conditions` are served as `actions` say".

    Active policies are evaluated in ascending `priority` (1 first), ties broken by name then
    id, and the first match wins; a request no policy matches takes its model's default route.
    The condition and action language is documented in docs/policies.md.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    conditions = models.JSONField(default=dict, blank=True)
    # {} is valid: every action key has a default (docs/policies.md#actions).
    actions = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=50, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    priority = models.IntegerField(default=1, help_text="Lower numbers are evaluated first.")
    sensitive_values = EncryptedJSONField(
        help_text='Values stored encrypted, used in conditions/actions as {"$sensitive": "name"} '
        "(docs/security.md). Write-only."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "routing_policies"
        ordering = ["priority", "name", "id"]
        verbose_name_plural = "routing policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PolicyStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "priority"], name="routing_policy_status_prio")]

    def __str__(self):
        return self.name

    def resolved_conditions(self):
        """`conditions` with sensitive values in place of their references."""
        return sensitive_resolve(self.conditions, self.sensitive_values or {})

    def resolved_actions(self):
        return sensitive_resolve(self.actions, self.sensitive_values or {})

    def clean(self):
        super().clean()
        errors = sensitive_errors(self.conditions, self.actions, self.sensitive_values or {})
        if not errors:
            errors = policy_errors(self.resolved_conditions(), self.resolved_actions())
        if errors:
            raise ValidationError(errors)


class FlagRollback(models.Model):
    """One use of the routing rollback: every routing feature switched off in one step.

    `before` holds the states the rollback replaced (`{"flags": {name: {"everyone": ...}},
    "samples": {name: percent}, "switches": {name: active}}`), so `routing_rollforward` can
    restore exactly them; `after` what it set. Written only by `routing.services`.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)
    actor_label = models.CharField(max_length=255)
    before = models.JSONField()
    after = models.JSONField()
    rolled_forward_at = models.DateTimeField(null=True, blank=True)
    rolled_forward_by = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "routing rollback"

    def __str__(self):
        state = "rolled forward" if self.rolled_forward_at else "in force"
        return f"rollback {self.created_at:%Y-%m-%d %H:%M:%S} by {self.actor_label} ({state})"
