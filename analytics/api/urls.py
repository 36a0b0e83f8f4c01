from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AnalyticsSummaryView, PolicyPreviewView, RoutingAnalyticsViewSet

router = DefaultRouter()
router.register("analytics", RoutingAnalyticsViewSet, basename="analytics")

# Before the router's URLs: "summary" would otherwise be taken for a rollup's id.
urlpatterns = [
    path("analytics/summary/", AnalyticsSummaryView.as_view(), name="analytics-summary"),
    # The policies' own routes are routing's (routing/api/urls.py); the preview reads the
    # request log, which is analytics', so it is served from here under the same prefix.
    path("policies/<str:pk>/preview/", PolicyPreviewView.as_view(), name="policy-preview"),
    *router.urls,
]
