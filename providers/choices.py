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


class Capability(models.TextChoices):
    STREAMING = "streaming", "Streaming"
    TOOLS = "tools", "Tools / function calling"
    VISION = "vision", "Vision (image input)"
    JSON_MODE = "json_mode", "JSON mode"
    EMBEDDINGS = "embeddings", "Embeddings"
    # n > 1 (several choices per request): from the adapter, not a per-model setting.
    MULTIPLE_CHOICES = "multiple_choices", "Several choices per request (n > 1)"


class ProbeOutcome(models.TextChoices):
    """What one health probe of a provider saw."""

    OK = "ok", "OK"
    SLOW = "slow", "Slow or rate limited"  # answered, but counts towards degraded
    FAILED = "failed", "Failed"  # no usable answer: error status, timeout, reset, bad body
