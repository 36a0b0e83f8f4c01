from rest_framework.routers import DefaultRouter

from .views import RoutingAnalyticsViewSet

router = DefaultRouter()
router.register("analytics", RoutingAnalyticsViewSet, basename="analytics")

urlpatterns = router.urls
