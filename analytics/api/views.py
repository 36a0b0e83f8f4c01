import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRoutingView
from analytics.models import RoutingAnalytics
from analytics.selectors import analytics_summary
from core.api_input import BoundedIsoDateTimeFilter

from .serializers import (
    AnalyticsSummaryQuerySerializer,
    AnalyticsSummarySerializer,
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
