from django.db import models


class ProviderStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class ProbeOutcome(models.TextChoices):
    """What one health probe of a provider saw."""

    OK = "ok", "OK"
    SLOW = "slow", "Slow or rate limited"  # answered, but counts towards degraded
    FAILED = "failed", "Failed"  # no usable answer: error status, timeout, reset, bad body
