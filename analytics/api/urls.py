from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AnalyticsSummaryView, RoutingAnalyticsViewSet

router = DefaultRouter()
router.register("analytics", RoutingAnalyticsViewSet, basename="analytics")

# Before the router's URLs: "summary" would otherwise be taken for a rollup's id.
urlpatterns = [
    path("analytics/summary/", AnalyticsSummaryView.as_view(), name="analytics-summary"),
    *router.urls,
]
