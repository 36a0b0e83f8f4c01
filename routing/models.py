"""Routing policies: operator-written rules that pick the provider and model for a request."""

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from .choices import PolicyStatus


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
    actions = models.JSONField(default=dict)
    status = models.CharField(
        max_length=50, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    priority = models.IntegerField(default=1, help_text="Lower numbers are evaluated first.")
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

    def clean(self):
        super().clean()
        from .policy_validation import policy_errors

        errors = policy_errors(self.conditions, self.actions)
        if errors:
            raise ValidationError(errors)
