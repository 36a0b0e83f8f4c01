"""Application credentials: API keys with scopes."""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from .choices import Scope

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
