from django.urls import path

from .views import TokenObtainView, TokenRefreshScopedView

urlpatterns = [
    path("token/", TokenObtainView.as_view(), name="token-obtain"),
    path("token/refresh/", TokenRefreshScopedView.as_view(), name="token-refresh"),
]
