from rest_framework import serializers

from analytics.models import RoutingAnalytics


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
            "error_count",
            "prompt_tokens",
            "completion_tokens",
            "period_start",
            "period_end",
        ]
        read_only_fields = fields
