"""DRF throttles backed by accounts/limits.py, so the REST API and the gateway share counters.

- `CallerRateThrottle` (every REST API view): the caller's requests per minute/hour count in
  the same windows as its gateway requests. Token and budget limits are the gateway's alone.
- `TokenEndpointThrottle` (the JWT views): password guesses per client address.

Headers for the response (`X-RateLimit-*`) are left on the Django request for
`accounts.middleware.AuditContextMiddleware` to copy, because a throttle cannot touch the
response itself.
"""

from dataclasses import dataclass, replace

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from . import limits
from .models import ApiKey


@dataclass(frozen=True)
class _Caller:
    caller_key: str
    api_key_id: int | None
    limits: limits.KeyLimits


def _caller(request) -> _Caller | None:
    user, auth = request.user, request.auth
    if not user or not user.is_authenticated:
        return None
    if isinstance(auth, ApiKey):
        own = replace(limits.KeyLimits.from_api_key(auth), tokens_per_minute=None, budget_usd=None)
        return _Caller(limits.caller_key(auth.pk, user.pk), auth.pk, own)
    return _Caller(limits.caller_key(None, user.pk), None, limits.DEFAULT_LIMITS)


class CallerRateThrottle(BaseThrottle):
    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        caller = _caller(request)
        if caller is None:
            return True  # anonymous requests are refused with 401 by the permission anyway
        try:
            headers = limits.admit(caller)
        except limits.LimitExceeded as exc:
            request._request.auterity_rate_headers = exc.headers
            self._wait = exc.retry_after
            return False
        request._request.auterity_rate_headers = headers
        return True

    def wait(self):
        return self._wait


class TokenEndpointThrottle(BaseThrottle):
    """AUTH_TOKEN_RATE_LIMIT_PER_MINUTE token requests per client address (0: no limit)."""

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        limit = settings.AUTH_TOKEN_RATE_LIMIT_PER_MINUTE
        if not limit:
            return True
        allowed, retry_after = limits.window_hit(
            f"token-endpoint:{self.get_ident(request)}", limit=limit, seconds=60
        )
        self._wait = None if allowed else retry_after
        return allowed

    def wait(self):
        return self._wait
