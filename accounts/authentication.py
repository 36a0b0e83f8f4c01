"""DRF authentication for API keys (`Authorization: Bearer sk-aut-...`)."""

from rest_framework import authentication, exceptions

from .models import KEY_PREFIX
from .services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme != self.keyword or not token.startswith(KEY_PREFIX):
            return None  # not ours: let JWT/session try
        api_key = api_key_authenticate(token)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        return api_key.user, api_key

    def authenticate_header(self, request):
        return self.keyword
