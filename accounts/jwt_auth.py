"""JWT bearer tokens for users (djangorestframework-simplejwt), outside DRF views too."""

from django.contrib.auth import get_user_model
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from .principal import Principal, principal_for_user


def principal_from_jwt(raw_token: str) -> Principal | None:
    """The user an access token names, or None if the token is invalid or expired."""
    try:
        token = AccessToken(raw_token)
    except TokenError:
        return None
    user = get_user_model().objects.filter(pk=token.get("user_id"), is_active=True).first()
    return principal_for_user(user) if user else None
