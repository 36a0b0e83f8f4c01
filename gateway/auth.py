"""Who is calling the gateway: `Authorization: Bearer <API key or JWT>`, `x-api-key: <API key
or JWT>` (Anthropic's header, what the anthropic SDK sends), or an admin session. With both
headers, Authorization decides.

Answers OpenAI-style errors: 401 `invalid_api_key` without valid credentials, 403
`insufficient_scope` when the caller lacks the endpoint's scope.

A bearer token is resolved from the in-process principal cache (accounts/principal.py) on the
event loop; only a token this process has not seen recently is looked up in the database, on
an I/O thread. Bearer tokens are not sent by browsers on their own, so they need no CSRF
check; a request authenticated by the admin's session cookie is, so it must pass Django's CSRF
check like any other cookie-authenticated write (otherwise any web page an operator visits
could spend money through their session). That check is Django's own CsrfViewMiddleware,
called through its public middleware hooks on a request built from the ASGI scope.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user
from django.core.handlers.asgi import ASGIRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string

from accounts.jwt_auth import principal_from_jwt
from accounts.principal import (
    MISS,
    Principal,
    principal_cache,
    principal_for_user,
    principal_from_api_key,
)

from .offload import run_blocking
from .service import GatewayError


def _unauthenticated(message: str) -> GatewayError:
    return GatewayError(
        401,
        message,
        type="invalid_request_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="auterity"'},
    )


def _token(authorization: str, api_key_header: str) -> str | None:
    """The bearer token the caller sent (Authorization first, else x-api-key), or None."""
    if not authorization:
        return api_key_header.strip() or None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthenticated("Use 'Authorization: Bearer <API key>' or 'x-api-key'.")
    return token


def principal_from_token(token: str) -> Principal | None:
    """The API key's or JWT's principal, or None. May query the database."""
    return principal_from_api_key(token) or principal_from_jwt(token)


def _checked(principal: Principal | None, scope: str) -> Principal:
    if principal is None:
        raise _unauthenticated("Invalid, expired or revoked API key or token.")
    if not principal.has_scope(scope):
        raise GatewayError(
            403,
            f"This key or user lacks the '{scope}' scope.",
            type="permission_error",
            code="insufficient_scope",
        )
    return principal


def _no_credentials() -> GatewayError:
    return _unauthenticated(
        "No credentials: send 'Authorization: Bearer <API key>' or 'x-api-key: <API key>' "
        "(create one in the admin or with manage.py create_api_key)."
    )


def session_principal(request) -> Principal | None:
    """The principal of the admin session `request` carries, or None; GatewayError 403 when
    the request fails Django's CSRF check. Reads the session store (database)."""
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    session = store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(SimpleNamespace(session=session))
    if not user.is_authenticated:
        return None
    check = CsrfViewMiddleware(lambda _request: None)
    check.process_request(request)
    if check.process_view(request, None, (), {}) is not None:
        raise GatewayError(
            403,
            "CSRF check failed: a session-authenticated call needs the CSRF token "
            "(X-CSRFToken header) and a same-origin Referer or Origin.",
            type="permission_error",
            code="csrf_failed",
        )
    return principal_for_user(user)


def _session_principal_of_scope(asgi_scope: dict) -> Principal | None:
    return session_principal(ASGIRequest(asgi_scope, io.BytesIO(b"")))


async def authenticate(headers: Mapping[str, str], asgi_scope: dict, scope: str) -> Principal:
    """The caller of an ASGI request (`headers` with lower-case names), with `scope`;
    GatewayError 401/403 otherwise."""
    token = _token(headers.get("authorization", ""), headers.get("x-api-key", ""))
    if token:
        principal = principal_cache.peek(token)
        if principal is MISS:
            principal = await run_blocking(principal_from_token, token)
        return _checked(principal, scope)
    if settings.SESSION_COOKIE_NAME in headers.get("cookie", ""):
        principal = await run_blocking(_session_principal_of_scope, asgi_scope)
        if principal is not None:
            return _checked(principal, scope)
    raise _no_credentials()


def authenticate_gateway_request(request, scope: str) -> Principal:
    """`authenticate` for a Django view (the dry run)."""
    token = _token(request.headers.get("Authorization", ""), request.headers.get("x-api-key", ""))
    if token:
        return _checked(principal_from_token(token), scope)
    principal = session_principal(request)
    if principal is None:
        raise _no_credentials()
    return _checked(principal, scope)
