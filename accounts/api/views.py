"""JWT for users: `POST /api/auth/token/` (username, password) and `/api/auth/token/refresh/`."""

from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.jwt_auth import ScopedTokenObtainPairSerializer, ScopedTokenRefreshSerializer
from accounts.throttling import TokenEndpointThrottle


class TokenObtainView(TokenObtainPairView):
    """A refresh token and an access token whose `scopes` claim lists the user's scopes."""

    serializer_class = ScopedTokenObtainPairSerializer
    throttle_classes = [TokenEndpointThrottle]


class TokenRefreshScopedView(TokenRefreshView):
    """A new access token for a refresh token, with the user's scopes as they are now."""

    serializer_class = ScopedTokenRefreshSerializer
    throttle_classes = [TokenEndpointThrottle]
