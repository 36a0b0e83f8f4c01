from django.db import models


class RequestStatus(models.TextChoices):
    """Outcome of one gateway request."""

    SUCCESS = "success", "Success"
    ERROR = "error", "Error"  # every attempt failed upstream
    REFUSED = "refused", "Refused"  # rejected before any provider call (limits, budget, input)
    CANCELLED = "cancelled", "Cancelled"  # the client went away mid-stream


class ReportKind(models.TextChoices):
    DAILY = "daily", "Daily"
