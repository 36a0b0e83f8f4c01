from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from gateway.urls import native_urlpatterns, openai_fallback_urlpatterns, openai_urlpatterns

from . import exposition, health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include(openai_urlpatterns + openai_fallback_urlpatterns)),
    path("api/", include(native_urlpatterns)),
    path("api/auth/", include("accounts.api.urls")),
    path("api/", include("providers.api.urls")),
    path("api/routing/", include("routing.api.urls")),
    path("api/routing/", include("analytics.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", exposition.metrics, name="prometheus-django-metrics"),
]

# A path no route matches answers JSON under /api/ and /v1/ (core/api_errors.py).
handler404 = "core.api_errors.page_not_found"
