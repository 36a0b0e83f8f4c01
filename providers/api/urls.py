from rest_framework.routers import DefaultRouter

from .views import ProviderModelViewSet, ProviderViewSet

router = DefaultRouter()
router.register("provider-models", ProviderModelViewSet, basename="provider-model")
router.register("providers", ProviderViewSet, basename="provider")

urlpatterns = router.urls
