from django.db import models


class RequestStatus(models.TextChoices):
    """Outcome of one gateway request."""

    SUCCESS = "success", "Success"
    ERROR = "error", "Error"  # every attempt failed upstream
    REFUSED = "refused", "Refused"  # rejected before any provider call (limits, budget, input)
    CANCELLED = "cancelled", "Cancelled"  # the client went away mid-stream


class ProbeOutcome(models.TextChoices):
    """What one health probe of a provider saw."""

    OK = "ok", "OK"
    SLOW = "slow", "Slow or rate limited"  # answered, but counts towards degraded
    FAILED = "failed", "Failed"  # no usable answer: error status, timeout, reset, bad body


class ReportKind(models.TextChoices):
    DAILY = "daily", "Daily"
