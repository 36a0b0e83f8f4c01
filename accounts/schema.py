"""How the OpenAPI schema (/api/schema/, /api/docs/) describes Auterity's credentials.

Imported by AccountsConfig.ready(): drf-spectacular finds extensions by subclass registration.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="AUTHORIZATION", token_prefix="Bearer"
        )
        scheme["description"] = (
            "An Auterity API key, `sk-aut-...` (admin or `manage.py create_api_key`)."
        )
        return scheme


class ScopedJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.jwt_auth.ScopedJWTAuthentication"
    name = "jwt"

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(
            header_name="AUTHORIZATION", token_prefix="Bearer", bearer_format="JWT"
        )
        scheme["description"] = "An access token from POST /api/auth/token/."
        return scheme
