"""What happened: one row per gateway request, and rollups of them per period."""

import uuid

from django.conf import settings
from django.db import models

from routing.models import RoutingPolicy

from .choices import ReportKind, RequestStatus


class RequestLog(models.Model):
    """One gateway request, successful or not, with what it cost and what it would have cost.

    `baseline_cost` is the same usage priced on the requested model's default provider, so
    `baseline_cost - cost` is what routing saved (negative: it cost more). `attempts_detail`
    lists every upstream attempt (provider, model, outcome, error type, latency).
    `request_id` is minted by Auterity for every request, so every answered request has its own
    row, whatever the caller sends; the caller's own id is `client_request_id`.
    """

    id = models.BigAutoField(primary_key=True)
    request_id = models.CharField(
        max_length=64, unique=True, help_text="The gateway's own id (X-Request-ID of the answer)."
    )
    client_request_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_index=True,
        help_text="The caller's X-Request-ID, when it sent a sane one (not unique: callers "
        "retry and reuse ids).",
    )
    created_at = models.DateTimeField(db_index=True)
    # History, not a live reference: deleting a user or a policy leaves the log's rows as they
    # are (no constraint, nothing for Django to collect or update among millions of rows);
    # `api_key_name` and `policy_name` keep them readable. `user`/`policy` may name a row that
    # is gone: read them through select_related (a LEFT JOIN gives None) or by id.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    api_key_name = models.CharField(max_length=100, blank=True, default="")
    endpoint = models.CharField(max_length=50, default="chat")
    requested_model = models.CharField(max_length=200)
    policy = models.ForeignKey(
        "routing.RoutingPolicy",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
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
    # Parts of the two counts above, billed at their own rates (routing/engine/pricing.py).
    cached_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens read from the provider's prompt cache."
    )
    cache_write_tokens = models.PositiveIntegerField(
        default=0, help_text="Prompt tokens written to the provider's prompt cache."
    )
    reasoning_tokens = models.PositiveIntegerField(
        default=0, help_text="Completion tokens the model spent thinking."
    )
    cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency = models.FloatField(default=0, help_text="Seconds, whole request.")
    stream = models.BooleanField(default=False)
    flags = models.JSONField(default=dict, blank=True)
    # Quality tiers (docs/policies.md#quality-tiers): the requested model's and the served
    # one's, and whether serving it crossed a tier downward.
    requested_tier = models.CharField(max_length=20, blank=True, default="")
    served_tier = models.CharField(max_length=20, blank=True, default="")
    downgrade = models.BooleanField(
        default=False, help_text="Served by a model of a lower quality tier than requested."
    )
    guard_violation = models.BooleanField(
        default=False,
        help_text="Cost more than the baseline plus the cost guard's cap "
        "(COST_OPTIMIZATION_MAX_COST_INCREASE) although the guard was on.",
    )
    # What routing read of the request, so the impact preview can decide it again
    # (docs/policies.md#impact-preview): input token estimate, max_tokens, capabilities,
    # metadata, the caller's groups and team. Headers are not kept (they may hold secrets).
    route_attributes = models.JSONField(default=dict, blank=True)
    # The canary policy whose conditions matched, and the caller's side of it ("canary" or
    # "control"; docs/policies.md#canary-activation).
    canary_policy_id = models.UUIDField(null=True, blank=True)
    canary_cohort = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        db_table = "request_log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["policy", "created_at"], name="request_log_policy_time"),
            models.Index(fields=["provider_id", "created_at"], name="request_log_provider_time"),
            models.Index(fields=["status", "created_at"], name="request_log_status_time"),
            models.Index(
                fields=["canary_policy_id", "created_at"],
                name="request_log_canary_time",
                condition=models.Q(canary_policy_id__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RequestStatus.values),
                name="%(app_label)s_%(class)s_status_valid",
            ),
        ]

    def __str__(self):
        return f"{self.request_id} {self.requested_model} -> {self.provider_id}/{self.model}"


NO_POLICY = uuid.UUID(int=0)

# Latency bounds (seconds) of the cumulative histogram kept with each rollup, as Prometheus
# keeps its `le` buckets. Percentiles over long ranges are interpolated between them.
LATENCY_BUCKETS = (
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    120.0,
)


def latency_key(bound: float) -> str:
    """The JSON key of a bound in `RoutingAnalytics.latency_le` ("le_0.05", "le_1", "le_inf")."""
    return f"le_{bound:g}"


class RoutingAnalytics(models.Model):
    """Request-log rollup for one period, policy and provider (the seed's routing_analytics).

    Written only by `analytics_rollup()`, which recomputes recent periods from the request
    log, so a row always equals what the log said for its period when it last ran.
    `policy_key` is the policy id, or the nil UUID for requests no policy routed: the row's
    identity, kept when the policy is deleted (then `policy` becomes NULL). `provider_id`
    is "" for requests refused or failed before any provider was chosen.

    Units: costs in USD, avg_response_time in seconds (successful requests), success_rate in
    percent (0-100) of the requests the client waited for: successes / (all - cancelled).
    `latency_le` keeps the latency distribution, so percentiles stay answerable after the raw
    rows are gone.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    policy = models.ForeignKey(
        "routing.RoutingPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="analytics",
    )
    policy_key = models.UUIDField(default=NO_POLICY, editable=False)
    provider_id = models.CharField(max_length=100)
    request_count = models.IntegerField(default=0)
    success_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    refused_count = models.IntegerField(default=0)
    cancelled_count = models.IntegerField(default=0)
    total_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    avg_response_time = models.DecimalField(max_digits=10, decimal_places=3, default=0)
    success_rate = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    latency_le = models.JSONField(
        default=dict,
        blank=True,
        help_text="Successful requests answered within each bound, cumulative: "
        '{"le_0.05": n, ..., "le_120": n, "le_inf": all of them}.',
    )
    # Attempt-level figures: every upstream attempt counts against the provider it went to,
    # so a provider that fails and is rescued by a fallback shows its failures here even
    # though the request itself succeeded elsewhere.
    attempt_count = models.IntegerField(
        default=0, help_text="Upstream attempts on this provider (retries, fallbacks included)."
    )
    attempt_error_count = models.IntegerField(default=0, help_text="Of those, failed ones.")
    attempt_errors = models.JSONField(
        default=dict,
        blank=True,
        help_text='Failed attempts by error type: {"upstream_error": n, "timeout": n, ...}.',
    )
    fallback_count = models.IntegerField(
        default=0, help_text="Requests this provider served after an earlier target failed."
    )
    downgrade_count = models.IntegerField(
        default=0, help_text="Requests served by a lower quality tier than requested."
    )
    guard_violation_count = models.IntegerField(
        default=0,
        help_text="Requests that really cost more than the baseline plus the cost guard's cap.",
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()

    class Meta:
        db_table = "routing_analytics"
        ordering = ["-period_start", "provider_id"]
        verbose_name_plural = "routing analytics"
        indexes = [
            models.Index(fields=["period_start", "provider_id"], name="routing_analytics_period"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["period_start", "policy_key", "provider_id"],
                name="%(app_label)s_%(class)s_one_row_per_period_policy_provider",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")),
                name="%(app_label)s_%(class)s_period_not_empty",
            ),
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M} {self.provider_id}"

    @property
    def savings(self):
        return self.baseline_cost - self.total_cost


class AnalyticsReport(models.Model):
    """A stored cost report: one day's requests, cost, baseline, savings, latency, success
    rate and top errors per policy and provider, compared with the day before.

    `data` is the whole report as built (docs/jobs.md shows its shape); the columns beside it
    are copies of the totals for the admin list. One report per kind and day: building it
    again replaces it.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=20, choices=ReportKind.choices, default=ReportKind.DAILY)
    day = models.DateField(help_text="The day reported on, in the report's time zone.")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    request_count = models.IntegerField(default=0)
    total_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    success_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    data = models.JSONField(default=dict)
    recipients = models.JSONField(default=list, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "analytics_reports"
        ordering = ["-day", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "day"], name="%(app_label)s_%(class)s_one_per_kind_and_day"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=ReportKind.values),
                name="%(app_label)s_%(class)s_kind_valid",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} report {self.day:%Y-%m-%d}"

    def summary(self) -> dict:
        """A few JSON-safe facts, for the task's result and logs."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "day": self.day.isoformat(),
            "request_count": self.request_count,
            "total_cost": str(self.total_cost),
            "emailed_at": self.emailed_at.isoformat() if self.emailed_at else None,
            "recipients": list(self.recipients),
        }

    @property
    def savings(self):
        return self.baseline_cost - self.total_cost


class PolicyImpact(RoutingPolicy):
    """The routing policies as the impact preview and the canary see them (admin only: a
    proxy, no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "policy impact preview"
        verbose_name_plural = "policy impact previews"
