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


class AnalyticsSummarySerializer(_SummaryFiguresSerializer):
    """The range and where its figures came from first, then the figures, then the groups."""

    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=[SOURCE_LOG, SOURCE_ROLLUPS])
    groups = AnalyticsSummaryGroupSerializer(many=True, allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        first = ("start", "end", "source")
        return {**{k: fields[k] for k in first}, **fields, "groups": fields["groups"]}
