import django_filters
from rest_framework import viewsets

from analytics.models import RoutingAnalytics

from .serializers import RoutingAnalyticsSerializer


class RoutingAnalyticsFilter(django_filters.FilterSet):
    """`start`/`end` select periods that begin in [start, end)."""

    start = django_filters.IsoDateTimeFilter(field_name="period_start", lookup_expr="gte")
    end = django_filters.IsoDateTimeFilter(field_name="period_start", lookup_expr="lt")
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
