"""Request-wide security plumbing: the body size limit, the audit actor, rate-limit headers."""

from django.conf import settings
from django.http import JsonResponse

from .audit import request_context


def checks_own_body_size(view):
    """Mark a view that enforces MAX_REQUEST_BODY_BYTES itself (the gateway views, which must
    write a request-log row for the refusal and so need the caller first)."""
    view.checks_own_body_size = True
    return view


def content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def body_too_large_message(size: int) -> str:
    limit = settings.MAX_REQUEST_BODY_BYTES
    return (
        f"Request body too large: {size} bytes; the limit is {limit} bytes ({limit / 2**20:g} MiB)."
    )


class RequestSizeLimitMiddleware:
    """413 with a JSON body for any request declaring a body over MAX_REQUEST_BODY_BYTES.

    Runs before the view, so the body is never read. Bodies sent without Content-Length
    (chunked) are not read by Django's WSGI request at all; DATA_UPLOAD_MAX_MEMORY_SIZE (same
    value) is the backstop for anything that reads `request.body` another way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        size = content_length(request)
        if size <= settings.MAX_REQUEST_BODY_BYTES:
            return None
        if getattr(view_func, "checks_own_body_size", False):
            return None
        return JsonResponse(
            {"detail": body_too_large_message(size), "code": "request_too_large"}, status=413
        )


class AuditContextMiddleware:
    """Makes the request known to the audit trail (who changed what) for the request's
    duration, and adds the `X-RateLimit-*` headers a DRF throttle left on the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_context(request):
            response = self.get_response(request)
        for name, value in getattr(request, "auterity_rate_headers", {}).items():
            response.setdefault(name, value)
        return response
