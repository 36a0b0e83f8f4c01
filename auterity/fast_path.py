"""The gateway's requests take a shorter middleware chain than the admin's and the REST API's.

`MIDDLEWARE` serves browsers and operators: static files, sessions, CSRF, messages, the audit
trail, clickjacking headers. None of it applies to `/v1/chat/completions` and the other gateway
endpoints, which authenticate by bearer token and answer JSON, yet together it cost ~0.9 ms of
CPU per request here, about a third of the gateway's own work (bench/README.md).

`GatewayFastPathMiddleware` sits in `MIDDLEWARE` after the request id: for the gateway's paths
it hands the request to a second Django handler built from `GATEWAY_MIDDLEWARE` (security
headers and redirects, the request size limit, django-prometheus' per-view metrics), which
resolves the URL and calls the view as Django always does; every other path goes on down
`MIDDLEWARE` unchanged. It works the same under the web server, the test client and
live-server tests, so the tests exercise it.

A gateway request authenticated by an admin session instead of a bearer token (allowed, with a
CSRF check) has no session middleware here: gateway/auth.py loads the session user
itself, only in that case.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.urls import NoReverseMatch, reverse


class _GatewayHandler(BaseHandler):
    """Django's request handling (URL resolution, view middleware, exception responses) over
    GATEWAY_MIDDLEWARE instead of MIDDLEWARE."""

    def load_middleware(self, is_async=False):
        # BaseHandler builds its chain from settings.MIDDLEWARE; give it the gateway's list for
        # the time of the build (once per process, while the main handler is being built).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = list(settings.GATEWAY_MIDDLEWARE)
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class GatewayFastPathMiddleware:
    """Send the gateway's paths through GATEWAY_MIDDLEWARE, the rest down MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._handler = _GatewayHandler()
        self._handler.load_middleware()
        self._paths: frozenset[str] | None = None

    def gateway_paths(self) -> frozenset[str]:
        # The gateway's endpoints are those of gateway/urls.py, reversed on first
        # use: the URLconf may not be importable while middleware loads.
        if self._paths is None:
            from gateway.urls import native_urlpatterns, openai_urlpatterns

            paths = set()
            for pattern in (*openai_urlpatterns, *native_urlpatterns):
                try:
                    paths.add(reverse(pattern.name))
                except NoReverseMatch:
                    continue  # a URLconf without the gateway (some tests)
            self._paths = frozenset(paths)
        return self._paths

    def __call__(self, request):
        if request.path in self.gateway_paths():
            response = self._handler._middleware_chain(request)
            if not response.streaming and "Content-Length" not in response:
                # What CommonMiddleware does on the full chain: without it a JSON answer goes
                # out chunked, unlike the providers' own APIs.
                response.headers["Content-Length"] = str(len(response.content))
            return response
        return self.get_response(request)
