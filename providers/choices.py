from django.db import models


class ProviderType(models.TextChoices):
    """Wire format an upstream provider speaks; selects the adapter."""

    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", "Google Gemini"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"


class ProviderStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class ProbeOutcome(models.TextChoices):
    """What one health probe of a provider saw."""

    OK = "ok", "OK"
    SLOW = "slow", "Slow or rate limited"  # answered, but counts towards degraded
    FAILED = "failed", "Failed"  # no usable answer: error status, timeout, reset, bad body
