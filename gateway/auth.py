"""Who is calling the gateway: `Authorization: Bearer <API key or JWT>`, `x-api-key: <API key
or JWT>` (Anthropic's header, what the anthropic SDK sends), or an admin session. With both
headers, Authorization decides.

Answers OpenAI-style errors: 401 `invalid_api_key` without valid credentials, 403
`insufficient_scope` when the caller lacks the endpoint's scope.

The views are CSRF-exempt because bearer tokens are not sent by browsers on their own; a
request authenticated by the admin's session cookie is, so it must pass Django's CSRF check
like any other cookie-authenticated write (otherwise any web page an operator visits could
spend money through their session).
"""

from django.conf import settings
from django.contrib.auth import get_user
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

from accounts.jwt_auth import principal_from_jwt
from accounts.principal import Principal, principal_for_user, principal_from_api_key

from .service import GatewayError


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _csrf_failure(request) -> str | None:
    """Why a session-authenticated request fails Django's CSRF check, or None (as DRF does)."""
    check = _CsrfCheck(lambda _request: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _session_user(request):
    """The admin-session user, or AnonymousUser. The gateway's paths skip the session and
    authentication middleware (auterity/fast_path.py), so the session is read here, only for a
    request that brought no bearer token; nothing is written back to it."""
    if not hasattr(request, "user"):
        if not hasattr(request, "session"):
            store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
            request.session = store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        request.user = get_user(request)
    return request.user


def _unauthenticated(message: str) -> GatewayError:
    return GatewayError(
        401,
        message,
        type="invalid_request_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="auterity"'},
    )


def authenticate_gateway_request(request, scope: str) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    api_key_header = request.headers.get("x-api-key", "").strip()
    principal = None
    if not header and api_key_header:
        header, scheme, token = api_key_header, "bearer", api_key_header
    if header:
        if scheme.lower() != "bearer" or not token:
            raise _unauthenticated("Use 'Authorization: Bearer <API key>' or 'x-api-key'.")
        principal = principal_from_api_key(token)
        if principal is None:
            principal = principal_from_jwt(token)
        if principal is None:
            raise _unauthenticated("Invalid, expired or revoked API key or token.")
    elif _session_user(request).is_authenticated:
        reason = _csrf_failure(request)
        if reason:
            raise GatewayError(
                403, f"CSRF check failed: {reason}", type="permission_error", code="csrf_failed"
            )
        principal = principal_for_user(request.user)
    else:
        raise _unauthenticated(
            "No credentials: send 'Authorization: Bearer <API key>' or 'x-api-key: <API key>' "
            "(create one in the admin or with manage.py create_api_key)."
        )
    if not principal.has_scope(scope):
        raise GatewayError(
            403,
            f"This key or user lacks the '{scope}' scope.",
            type="permission_error",
            code="insufficient_scope",
        )
    return principal
