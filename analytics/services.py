"""Writes of the analytics app: the request log."""

from django.utils import timezone

from .models import RequestLog


def request_log_record(**fields) -> RequestLog:
    """Write one request's row. Called exactly once per gateway request, whatever happened."""
    fields.setdefault("created_at", timezone.now())
    return RequestLog.objects.create(**fields)
