"""DRF permissions by scope: what the caller of a REST API request may do.

A request's scopes come from its credentials: an API key's own scopes, a JWT's `scopes` claim
(limited to what the user still has), or a session user's Django permissions. Unauthenticated
requests fail with 401 (DRF asks the authentication classes for a `WWW-Authenticate` header),
authenticated ones without the scope with 403.

`RoutingReadManageWrite` is the project default (settings.REST_FRAMEWORK): reading needs
`routing:view`, changing anything `routing:manage`. A view that needs something else names its
class explicitly; accounts/tests/test_access.py fails for any DRF view that ends up without a scope
check.
"""

from rest_framework import permissions
from rest_framework_simplejwt.tokens import Token

from .choices import Scope
from .models import ApiKey
from .principal import expand_scopes, user_scopes


def request_scopes(request) -> frozenset[str]:
    """The scopes of a DRF request's caller (empty when anonymous); computed once a request."""
    cached = getattr(request, "_auterity_scopes", None)
    if cached is not None:
        return cached
    user, auth = request.user, request.auth
    if not user or not user.is_authenticated:
        scopes = frozenset()
    elif isinstance(auth, ApiKey):
        scopes = expand_scopes(auth.scopes)
    elif isinstance(auth, Token):
        from .jwt_auth import token_scopes

        scopes = token_scopes(auth, user)
    else:
        scopes = user_scopes(user)
    request._auterity_scopes = scopes
    return scopes


class ScopePermission(permissions.BasePermission):
    """Base: grants a request whose caller has `scope` (subclasses name it)."""

    scope: str = ""

    def required_scope(self, request, view) -> str:
        return self.scope

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False  # DRF turns this into 401 with WWW-Authenticate
        scope = self.required_scope(request, view)
        if scope in request_scopes(request):
            return True
        self.message = f"This key or user lacks the '{scope}' scope."
        return False


class HasAiExecute(ScopePermission):
    scope = Scope.AI_EXECUTE


class HasRoutingView(ScopePermission):
    scope = Scope.ROUTING_VIEW


class HasRoutingManage(ScopePermission):
    scope = Scope.ROUTING_MANAGE


class RoutingReadManageWrite(ScopePermission):
    """Safe methods (GET, HEAD, OPTIONS) need `routing:view`; every other `routing:manage`."""

    def required_scope(self, request, view) -> str:
        if request.method in permissions.SAFE_METHODS:
            return Scope.ROUTING_VIEW
        return Scope.ROUTING_MANAGE
