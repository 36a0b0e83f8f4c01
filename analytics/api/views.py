import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRoutingView
from analytics.models import RoutingAnalytics
from analytics.preview import PreviewError, policy_preview, preview_compile
from analytics.selectors import analytics_summary
from core.api_input import BoundedIsoDateTimeFilter
from routing.models import RoutingPolicy

from .serializers import (
    AnalyticsSummaryQuerySerializer,
    AnalyticsSummarySerializer,
    PolicyPreviewRequestSerializer,
    PolicyPreviewSerializer,
    RoutingAnalyticsSerializer,
)


class RoutingAnalyticsFilter(django_filters.FilterSet):
    """`start`/`end` select periods that begin in [start, end)."""

    start = BoundedIsoDateTimeFilter(field_name="period_start", lookup_expr="gte")
    end = BoundedIsoDateTimeFilter(field_name="period_start", lookup_expr="lt")
    provider = django_filters.CharFilter(field_name="provider_id")

    class Meta:
        model = RoutingAnalytics
        fields = ["policy", "provider", "start", "end"]


class RoutingAnalyticsViewSet(viewsets.ReadOnlyModelViewSet):
    """Rollups of the request log per period, policy and provider."""

    serializer_class = RoutingAnalyticsSerializer
    queryset = RoutingAnalytics.objects.select_related("policy")
    filterset_class = RoutingAnalyticsFilter
    ordering_fields = ["period_start", "provider_id", "total_cost", "request_count"]


class AnalyticsSummaryView(APIView):
    """Totals over a time range: cost, baseline cost, savings, requests, success rate and
    latency percentiles, optionally per policy and/or provider (docs/jobs.md)."""

    permission_classes = [HasRoutingView]

    @extend_schema(
        parameters=[AnalyticsSummaryQuerySerializer], responses=AnalyticsSummarySerializer
    )
    def get(self, request):
        query = AnalyticsSummaryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(AnalyticsSummarySerializer(analytics_summary(query.query())).data)


class PolicyPreviewView(APIView):
    """Impact preview: replay the last N days of the request log through the routing engine
    with this policy in place (as saved, or edited: send `conditions`/`actions`/`priority`),
    and compare with today's decisions. Writes nothing (docs/policies.md#impact-preview)."""

    permission_classes = [HasRoutingView]

    @extend_schema(
        request=PolicyPreviewRequestSerializer,
        responses={200: PolicyPreviewSerializer},
        summary="Impact preview of a policy on recorded traffic",
    )
    def post(self, request, pk):
        body = PolicyPreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = get_object_or_404(RoutingPolicy, pk=pk)
        data = body.validated_data
        conditions = data.get("conditions", policy.resolved_conditions())
        actions = data.get("actions", policy.resolved_actions())
        try:
            compiled = preview_compile(
                policy.id, policy.name, data.get("priority", policy.priority), conditions, actions
            )
        except PreviewError as exc:
            fields: dict[str, list[str]] = {}
            for issue in exc.issues:
                fields.setdefault(issue.path.split(".")[0].split("[")[0], []).append(str(issue))
            raise ValidationError(fields) from exc
        result = policy_preview(compiled, days=data["days"], sample_size=data["sample"])
        return Response(PolicyPreviewSerializer(result).data)
