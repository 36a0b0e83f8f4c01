from rest_framework.routers import DefaultRouter

from .views import RoutingPolicyViewSet

router = DefaultRouter()
router.register("policies", RoutingPolicyViewSet, basename="policy")

urlpatterns = router.urls
