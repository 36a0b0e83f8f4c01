"""Application credentials: API keys with scopes."""

import hashlib
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from .choices import AuditAction, BudgetPeriod, Scope

KEY_PREFIX = "sk-aut-"


def hash_key(raw_key: str) -> str:
    # Keys are 256-bit random values, so a fast unsalted hash is enough (no dictionary attack
    # is possible) and keeps authentication to one indexed lookup per request.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A secret an application presents as `Authorization: Bearer sk-aut-...`.

    Only a SHA-256 hash is stored; `prefix` (the first characters) identifies the key in lists
    and logs. The key acts for its owner, limited to its scopes.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, unique=True)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    team = models.CharField(max_length=100, blank=True, default="")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Abuse limits (docs/security.md). Empty request limits take the RATE_LIMIT_* defaults.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests per minute. Empty: the default (RATE_LIMIT_PER_MINUTE); 0: no limit.",
    )
    rate_limit_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests per hour. Empty: the default (RATE_LIMIT_PER_HOUR); 0: no limit.",
    )
    tokens_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Prompt + completion tokens per minute. Empty or 0: no limit.",
    )
    budget_usd = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Spend allowed per budget period (USD). Empty: no budget.",
    )
    budget_period = models.CharField(
        max_length=10, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH
    )

    class Meta:
        db_table = "api_keys"
        ordering = ["name", "id"]
        verbose_name = "API key"
        # Users (sessions, JWT) get gateway scopes through these permissions or their groups.
        permissions = [
            ("ai_execute", "Can call the AI gateway (scope ai:execute)"),
            ("routing_view", "Can read routing, providers and analytics (scope routing:view)"),
            ("routing_manage", "Can manage routing, providers and flags (scope routing:manage)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], name="%(app_label)s_%(class)s_unique_name"
            ),
            models.CheckConstraint(
                condition=models.Q(budget_usd__gte=0) | models.Q(budget_usd__isnull=True),
                name="%(app_label)s_%(class)s_budget_non_negative",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def clean(self):
        super().clean()
        if not isinstance(self.scopes, list) or not self.scopes:
            raise ValidationError({"scopes": f"A non-empty list of: {', '.join(Scope.values)}."})
        unknown = [s for s in self.scopes if s not in Scope.values]
        if unknown:
            raise ValidationError(
                {
                    "scopes": f"Unknown scope(s) {', '.join(map(str, unknown))}; "
                    f"use {', '.join(Scope.values)}."
                }
            )


class UsageCounter(models.Model):
    """One fixed-window counter of the embedded rate-limit store (accounts/limits.py).

    `key` names the caller, what is counted and the window (`rl:key:12:m:29034567` is key 12's
    requests in minute 29034567 since the epoch), so a window never needs resetting: the next
    one is another row. Rows are upserted atomically in SQL, which is what makes the limits
    hold across worker processes without Redis; expired rows are deleted now and then.
    """

    key = models.CharField(primary_key=True, max_length=200)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "usage_counters"
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} = {self.value}"


class AuditEvent(models.Model):
    """Someone changed a policy, provider, provider model, feature flag or API key.

    `changes` maps each changed field to `[before, after]`; `before`/`after` are the whole
    object (secrets replaced by a marker saying only whether one is set). The actor is the
    request's user (and API key, if one was used); "system" for changes made outside a request
    (migrations, jobs, the shell).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=255, help_text="Who, as shown at the time.")
    via = models.CharField(max_length=20, help_text="admin, api, cli or system.")
    action = models.CharField(max_length=10, choices=AuditAction.choices)
    object_type = models.CharField(max_length=100, help_text="app_label.model")
    object_id = models.CharField(max_length=255)
    object_repr = models.CharField(max_length=255)
    changes = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        db_table = "audit_log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_log_object"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=AuditAction.values),
                name="%(app_label)s_%(class)s_action_valid",
            ),
        ]

    def __str__(self):
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor_label} {self.action} {self.object_repr}"
