"""The request id: minted once per request, on every log line; in a Celery task, the task id.

`RequestContextMiddleware` owns the id. It sets `request.request_id` (always Auterity's own:
a uuid4 hex, unique, the request log's key) and `request.client_request_id` (the caller's
`X-Request-ID` when it is sane, else ""), keeps both in a context variable that the logging
filter (core/logs.py) and the request log (analytics/services.py) read, and answers with
`X-Request-ID` (the own id) and, when the caller sent one, `X-Client-Request-ID` (its own).
Callers reuse and repeat ids (retries, a fixed id per job), so a caller's id never keys
anything: five requests sent with one X-Request-ID are five requests with five rows.

The id stays set until Django closes the response, not just
until the view returns: a stream's events, the gateway's request-log write at the end of a
stream, and the access log line all run after the view, and must carry the same id.
"""

from __future__ import annotations

import logging
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import request_finished

access_logger = logging.getLogger("auterity.access")

# Probes and scrapes arrive every few seconds; their access lines are noise at INFO.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class RequestContext:
    request_id: str
    method: str
    path: str
    started: float
    status: int | None = None
    client_request_id: str = ""


_current: ContextVar[RequestContext | None] = ContextVar("auterity_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def client_request_id_from(incoming: str | None) -> str:
    """The caller's X-Request-ID if it is sane (printable, no spaces, at most 64 characters),
    for tracing across systems; else ""."""
    if incoming and len(incoming) <= 64 and incoming.isprintable() and " " not in incoming:
        return incoming
    return ""


def request_id_from(incoming: str | None) -> str:
    """A sane id given by hand (the admin's dry run form), else a new one."""
    return client_request_id_from(incoming) or new_request_id()


def current_request_id() -> str | None:
    """The id of the request this thread is serving, or None outside a request."""
    context = _current.get()
    return context.request_id if context is not None else None


def current_client_request_id(request_id: str) -> str:
    """The caller's X-Request-ID of the request `request_id` if this thread is serving it."""
    context = _current.get()
    if context is None or context.request_id != request_id:
        return ""
    return context.client_request_id


def task_started(task_id: str) -> None:
    """A Celery task starts in this thread: its log lines carry the task id as `request_id`
    (auterity/celery.py connects this and `task_finished` to Celery's signals)."""
    _current.set(RequestContext(task_id, "TASK", "", time.monotonic()))


def task_finished() -> None:
    _current.set(None)


def request_begin(
    method: str, path: str, client_header: str | None, request_id: str | None = None
) -> RequestContext:
    """A request starts in this context (a thread, or the gateway's task for it): its id
    (`request_id` when the caller already minted it, else a new one), and the caller's own
    X-Request-ID (`client_header`) when sane. `path` never has the query string (some clients
    put keys there)."""
    context = RequestContext(
        request_id=request_id or new_request_id(),
        method=method,
        path=path,
        started=time.monotonic(),
        client_request_id=client_request_id_from(client_header),
    )
    _current.set(context)
    return context


def request_end(context: RequestContext | None = None) -> None:
    """The request's last byte left: its access line, and the context is cleared."""
    context = context or _current.get()
    if context is None:
        return
    try:
        if settings.LOG_ACCESS:
            level = logging.DEBUG if context.path in _QUIET_PATHS else logging.INFO
            duration_ms = round((time.monotonic() - context.started) * 1000, 1)
            access_logger.log(
                level,
                "%s %s %s %.1fms",
                context.method,
                context.path,
                context.status,
                duration_ms,
                extra={
                    "method": context.method,
                    "path": context.path,
                    "status": context.status,
                    "duration_ms": duration_ms,
                },
            )
    finally:
        _current.set(None)


class RequestContextMiddleware:
    """Give every request an id, log one access line per request when it is done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = request_begin(request.method, request.path, request.headers.get("X-Request-ID"))
        request.request_id = context.request_id
        request.client_request_id = context.client_request_id
        response = self.get_response(request)
        context.status = response.status_code
        response["X-Request-ID"] = context.request_id
        if context.client_request_id:
            response["X-Client-Request-ID"] = context.client_request_id
        return response


def _request_done(sender, **kwargs):
    """Django sends request_finished from `response.close()`, after the last streamed byte."""
    request_end()


request_finished.connect(_request_done, dispatch_uid="core.request_context.done")
