"""JWT bearer tokens for users (djangorestframework-simplejwt), in DRF views and the gateway.

Access tokens carry the user's scopes in a `scopes` claim (what the user could do when the
token was issued, readable by clients). A token grants the scopes it names *and* the user
still has: removing a permission or deactivating the user takes effect within
PRINCIPAL_CACHE_SECONDS, without waiting for the token to expire.
"""

import time
from dataclasses import replace

from django.contrib.auth import get_user_model
from rest_framework import exceptions, serializers
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import (
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, Token

from .models import KEY_PREFIX
from .principal import Principal, principal_cache, principal_for_user, user_scopes

SCOPES_CLAIM = "scopes"


def token_scopes(token: Token, user) -> frozenset[str]:
    """What a token lets `user` do now: its claimed scopes that the user still has."""
    scopes = user_scopes(user)
    claimed = token.get(SCOPES_CLAIM)
    if claimed is None:  # minted elsewhere without the claim: the user's own scopes
        return scopes
    return scopes & frozenset(claimed)


def _token_user(token: Token):
    """The user a token names (active or not), or None."""
    return (
        get_user_model()
        .objects.filter(**{api_settings.USER_ID_FIELD: token.get(api_settings.USER_ID_CLAIM)})
        .first()
    )


def _load_jwt(raw_token: str) -> tuple[Principal | None, float | None]:
    try:
        token = AccessToken(raw_token)
    except TokenError:
        return None, None
    user = _token_user(token)
    if user is None or not user.is_active:
        return None, None
    principal = replace(principal_for_user(user), scopes=token_scopes(token, user))
    return principal, max(0.0, token["exp"] - time.time())


def principal_from_jwt(raw_token: str) -> Principal | None:
    """The user an access token names, limited to the token's scopes; None if invalid."""
    if raw_token.count(".") != 2:
        return None  # not a JWT: do not fill the cache with garbage
    return principal_cache.get(raw_token, _load_jwt)


class ScopedTokenObtainPairSerializer(TokenObtainPairSerializer):
    """`POST /api/auth/token/` with username and password: a refresh and an access token."""

    @classmethod
    def get_token(cls, user) -> RefreshToken:
        token = super().get_token(user)
        token[SCOPES_CLAIM] = sorted(user_scopes(user))
        token["username"] = user.get_username()
        return token

    def validate(self, attrs):
        data = super().validate(attrs)
        data["scopes"] = sorted(user_scopes(self.user))
        return data


class ScopedTokenRefreshSerializer(TokenRefreshSerializer):
    """`POST /api/auth/token/refresh/`: a new access token with the user's scopes of *now*."""

    scopes = serializers.ListField(child=serializers.CharField(), read_only=True)

    def validate(self, attrs):
        try:
            refresh = self.token_class(attrs["refresh"])
        except TokenError as exc:
            raise exceptions.AuthenticationFailed(str(exc), "token_not_valid") from exc
        user = _token_user(refresh)
        if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
            raise exceptions.AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            )
        access = refresh.access_token
        scopes = sorted(user_scopes(user))
        access[SCOPES_CLAIM] = scopes
        return {"access": str(access), "scopes": scopes}


class ScopedJWTAuthentication(JWTAuthentication):
    """simplejwt's DRF authentication, leaving API keys (`sk-aut-...`) to ApiKeyAuthentication."""

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None or raw.startswith(KEY_PREFIX.encode()):
            return None
        return super().authenticate(request)
