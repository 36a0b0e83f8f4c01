from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from analytics.models import RoutingAnalytics
from analytics.selectors import GROUP_FIELDS, SOURCE_LOG, SOURCE_ROLLUPS, SummaryQuery
from core.api_input import BoundedDateTimeField


class RoutingAnalyticsSerializer(serializers.ModelSerializer):
    policy_name = serializers.CharField(source="policy.name", read_only=True, default=None)

    class Meta:
        model = RoutingAnalytics
        fields = [
            "id",
            "policy",
            "policy_name",
            "provider_id",
            "request_count",
            "total_cost",
            "baseline_cost",
            "avg_response_time",
            "success_rate",
            "success_count",
            "error_count",
            "refused_count",
            "cancelled_count",
            "prompt_tokens",
            "completion_tokens",
            "latency_le",
            "attempt_count",
            "attempt_error_count",
            "attempt_errors",
            "fallback_count",
            "downgrade_count",
            "guard_violation_count",
            "period_start",
            "period_end",
        ]
        read_only_fields = fields


class AnalyticsSummaryQuerySerializer(serializers.Serializer):
    """Query parameters of /api/routing/analytics/summary/."""

    start = BoundedDateTimeField(
        required=False, help_text="Inclusive, ISO 8601. Default: `end` minus 24 hours."
    )
    end = BoundedDateTimeField(required=False, help_text="Exclusive. Default: now.")
    policy = serializers.UUIDField(required=False, help_text="Only requests this policy routed.")
    provider = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Only requests served (or last tried) by this provider; empty: none reached.",
    )
    group_by = serializers.CharField(
        required=False,
        default="",
        help_text="Comma-separated: `policy`, `provider` or both; adds `groups`.",
    )
    source = serializers.ChoiceField(
        choices=["auto", SOURCE_LOG, SOURCE_ROLLUPS],
        default="auto",
        help_text="auto: the request log for ranges up to ANALYTICS_SUMMARY_LOG_MAX_HOURS "
        "inside its retention, the rollups otherwise.",
    )

    def validate_group_by(self, value):
        fields = tuple(dict.fromkeys(f.strip() for f in value.split(",") if f.strip()))
        unknown = [f for f in fields if f not in GROUP_FIELDS]
        if unknown:
            raise serializers.ValidationError(
                f"unknown grouping {', '.join(unknown)}; use {' and/or '.join(GROUP_FIELDS)}"
            )
        return fields

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        start = attrs.get("start") or end - timedelta(hours=24)
        if start >= end:
            raise serializers.ValidationError({"start": ["must be before end"]})
        attrs["start"], attrs["end"] = start, end
        return attrs

    def query(self) -> SummaryQuery:
        data = self.validated_data
        return SummaryQuery(
            start=data["start"],
            end=data["end"],
            policy_id=str(data["policy"]) if data.get("policy") else None,
            provider_id=data.get("provider"),
            group_by=data["group_by"],
            source=data["source"],
        )


class _SummaryFiguresSerializer(serializers.Serializer):
    request_count = serializers.IntegerField()
    success_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    refused_count = serializers.IntegerField()
    cancelled_count = serializers.IntegerField()
    success_rate = serializers.FloatField(
        allow_null=True, help_text="Percent of the requests the client waited for (0-100)."
    )
    cost_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    baseline_cost_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    savings_usd = serializers.DecimalField(max_digits=20, decimal_places=10)
    savings_percent = serializers.FloatField(allow_null=True, help_text="Of the baseline cost.")
    avg_latency_s = serializers.FloatField(allow_null=True)
    latency_p50_s = serializers.FloatField(allow_null=True)
    latency_p95_s = serializers.FloatField(allow_null=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    attempt_count = serializers.IntegerField(
        help_text="Upstream attempts (retries and fallbacks included); by provider, each "
        "counts against the provider it went to."
    )
    attempt_error_count = serializers.IntegerField(help_text="Failed attempts.")
    attempt_errors = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='Failed attempts by error type: {"upstream_error": 4, "timeout": 1}.',
    )
    fallback_count = serializers.IntegerField(
        help_text="Successful requests served by a fallback (an earlier target failed)."
    )
    downgrade_count = serializers.IntegerField(
        help_text="Requests served by a model of a lower quality tier than the requested one "
        "(docs/policies.md#quality-tiers)."
    )
    guard_violation_count = serializers.IntegerField(
        help_text="Successful requests that really cost more than their baseline plus the "
        "cost guard's cap (COST_OPTIMIZATION_MAX_COST_INCREASE)."
    )


class AnalyticsSummaryGroupSerializer(_SummaryFiguresSerializer):
    """One policy and/or provider: who it is first, then the figures."""

    policy_id = serializers.UUIDField(required=False, allow_null=True)
    policy_name = serializers.CharField(required=False)
    provider_id = serializers.CharField(
        required=False, allow_blank=True, help_text='"" for requests no provider was tried for.'
    )

    def get_fields(self):
        fields = super().get_fields()
        first = ("policy_id", "policy_name", "provider_id")
        return {**{k: fields[k] for k in first}, **fields}


class MeasuredSavingsSerializer(serializers.Serializer):
    basis = serializers.CharField(help_text="What this saving compares.")
    routed_requests = serializers.IntegerField(help_text="Requests the flag routed.")
    control_requests = serializers.IntegerField(help_text="Requests of the flag's control cohort.")
    coverage = serializers.FloatField(
        allow_null=True, help_text="Share of the routed requests in compared strata (0-1)."
    )
    savings_percent = serializers.FloatField(allow_null=True)
    ci95_low_percent = serializers.FloatField(allow_null=True)
    ci95_high_percent = serializers.FloatField(allow_null=True)
    note = serializers.CharField(allow_blank=True)


class AnalyticsSummarySerializer(_SummaryFiguresSerializer):
    """The range and where its figures came from first, then the figures, then the groups."""

    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=[SOURCE_LOG, SOURCE_ROLLUPS])
    savings_basis = serializers.CharField(
        help_text="What savings_usd / savings_percent compare: the list-price baseline."
    )
    measured_savings = MeasuredSavingsSerializer(
        allow_null=True,
        help_text="The routed cohort of the routing_policies flag against its control cohort, "
        "with a 95 % confidence interval (null with a policy or provider filter).",
    )
    groups = AnalyticsSummaryGroupSerializer(many=True, allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        first = ("start", "end", "source")
        return {**{k: fields[k] for k in first}, **fields, "groups": fields["groups"]}


class PolicyPreviewRequestSerializer(serializers.Serializer):
    """Body of POST /api/routing/policies/{id}/preview/ (every field optional)."""

    days = serializers.IntegerField(
        required=False, min_value=1, max_value=90, default=7, help_text="The last N days."
    )
    sample = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=200,
        default=20,
        help_text="Changed decisions to list.",
    )
    conditions = serializers.JSONField(
        required=False, help_text="An edited policy's conditions (default: as saved)."
    )
    actions = serializers.JSONField(
        required=False, help_text="An edited policy's actions (default: as saved)."
    )
    priority = serializers.IntegerField(required=False, help_text="Default: as saved.")


class _PreviewSideSerializer(serializers.Serializer):
    cost_usd = serializers.FloatField()
    savings_usd = serializers.FloatField()
    savings_percent = serializers.FloatField(allow_null=True, help_text="Of the baseline.")
    mix = serializers.ListField(
        child=serializers.DictField(), help_text="[{target, requests, share}] by requests."
    )
    downgrades = serializers.IntegerField(help_text="Primaries of a lower quality tier.")
    over_cost_guard = serializers.IntegerField(
        help_text="Primaries expected above the cost guard's limit."
    )
    no_eligible_target = serializers.IntegerField()
    expected_latency_s = serializers.FloatField(
        allow_null=True, help_text="Mean of the primaries' providers' live latency."
    )
    error_exposure = serializers.FloatField(
        allow_null=True, help_text="Mean of the primaries' providers' live error rate (0-1)."
    )


class PolicyPreviewSerializer(serializers.Serializer):
    policy_id = serializers.CharField()
    policy_name = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    days = serializers.IntegerField()
    requests_matched = serializers.IntegerField(
        help_text="Logged requests the policy would route (its decision, with it in place)."
    )
    decisions_changed = serializers.IntegerField(
        help_text="Of those, requests whose primary target differs from today's decision."
    )
    baseline_cost_usd = serializers.FloatField(
        help_text="The matched requests on their requested model's default provider."
    )
    recorded_cost_usd = serializers.FloatField(help_text="What they really cost.")
    before = _PreviewSideSerializer(help_text="Today's policies, replayed.")
    after = _PreviewSideSerializer(help_text="With the previewed policy in place.")
    changed_sample = serializers.ListField(child=serializers.DictField())
    seconds = serializers.FloatField(help_text="How long the preview took.")
