"""The words the layers share: the error types a provider call can end in and the
capabilities a model can have, each declared once.

Pure Python that imports nothing of the project, nor Django: it sits below `core/` so that
both the routing engine (which may import no app and not `core/`, see pyproject.toml's
import-linter contracts) and the providers' adapters read the same definition. Members are
`str`s (a `StrEnum`), so they compare, hash, serialise and store as their values.
"""

from __future__ import annotations

from enum import StrEnum


class _Labelled(StrEnum):
    """A `StrEnum` whose members also carry a human label: `NAME = "value", "Label"`."""

    label: str

    def __new__(cls, value: str, label: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """(value, label) pairs, the shape of a Django field's `choices`."""
        return [(member.value, member.label) for member in cls]


class ErrorType(_Labelled):
    """How a call to a provider failed: each adapter error class
    (providers/adapters/errors.py) is exactly one of these, and routing policies'
    `fallback.on` lists them (docs/policies.md)."""

    RATE_LIMITED = "rate_limited", "Rate limited (429)"
    TIMEOUT = "timeout", "Timed out"
    CONNECTION_ERROR = "connection_error", "Connection failed or reset"
    UPSTREAM_ERROR = "upstream_error", "Upstream server error (5xx, overloaded)"
    INVALID_REQUEST = "invalid_request", "Invalid request (400/404/422)"
    AUTHENTICATION = "authentication", "Authentication failed (the provider refused our key)"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded", "Context window exceeded"
    MALFORMED_RESPONSE = "malformed_response", "Malformed response"
    STREAM_INTERRUPTED = "stream_interrupted", "Stream broke after its first chunk"


class Capability(_Labelled):
    """What a model can do, and so what a request may require of it
    (`ChatRequest.required_capabilities`, a policy's `capabilities` condition and
    constraint). Each adapter declares the ones its wire format carries; each provider model
    says which of those it has (providers/models.py)."""

    STREAMING = "streaming", "Streaming"
    TOOLS = "tools", "Tools / function calling"
    VISION = "vision", "Vision (image input)"
    JSON_MODE = "json_mode", "JSON mode"
    EMBEDDINGS = "embeddings", "Embeddings"
    # n > 1 (several choices per request): from the adapter, not a per-model setting.
    MULTIPLE_CHOICES = "multiple_choices", "Several choices per request (n > 1)"


__all__ = ["Capability", "ErrorType"]
