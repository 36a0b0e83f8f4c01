"""What happened: one row per gateway request, and rollups of them per period."""

import uuid

from django.conf import settings
from django.db import models

from .choices import RequestStatus


class RequestLog(models.Model):
    """One gateway request, successful or not, with what it cost and what it would have cost.

    `baseline_cost` is the same usage priced on the requested model's default provider, so
    `baseline_cost - cost` is what routing saved (negative: it cost more). `attempts_detail`
    lists every upstream attempt (provider, model, outcome, error type, latency).
    """

    id = models.BigAutoField(primary_key=True)
    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key_name = models.CharField(max_length=100, blank=True, default="")
    endpoint = models.CharField(max_length=50, default="chat")
    requested_model = models.CharField(max_length=200)
    policy = models.ForeignKey(
        "routing.RoutingPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy_name = models.CharField(max_length=255, blank=True, default="")
    provider_id = models.CharField(max_length=100, blank=True, default="")
    model = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=20, choices=RequestStatus.choices)
    http_status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=50, blank=True, default="")
    error_message = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    attempts_detail = models.JSONField(default=list, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency = models.FloatField(default=0, help_text="Seconds, whole request.")
    stream = models.BooleanField(default=False)
    flags = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "request_log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["policy", "created_at"], name="request_log_policy_time"),
            models.Index(fields=["provider_id", "created_at"], name="request_log_provider_time"),
            models.Index(fields=["status", "created_at"], name="request_log_status_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RequestStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.request_id} {self.requested_model} -> {self.provider_id}/{self.model}"


class RoutingAnalytics(models.Model):
    """Request-log rollup for one period, policy and provider (the seed's routing_analytics).

    Units: costs in USD, avg_response_time in seconds, success_rate in percent (0-100).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(
        "routing.RoutingPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="analytics",
    )
    provider_id = models.CharField(max_length=100)
    request_count = models.IntegerField(default=0)
    total_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    avg_response_time = models.DecimalField(max_digits=10, decimal_places=3, default=0)
    success_rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    error_count = models.IntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()

    class Meta:
        db_table = "routing_analytics"
        ordering = ["-period_start", "provider_id"]
        verbose_name_plural = "routing analytics"
        indexes = [
            models.Index(fields=["period_start", "provider_id"], name="routing_analytics_period"),
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M} {self.provider_id}"

    @property
    def savings(self):
        return self.baseline_cost - self.total_cost
