"""Provider adapters: one OpenAI-shaped interface over each provider's wire format.

    adapter = adapter_for(endpoint)              # cached per endpoint value
    result = adapter.chat(request, "gpt-4o")     # ChatResult(.response, .usage)
    with adapter.stream(request, "gpt-4o") as s:  # StreamResult of chat.completion.chunk
        for chunk in s: ...

Failures raise ProviderError subclasses (see errors.py) that tell the router whether to
retry, fall back or give up.
"""

from __future__ import annotations

import functools

from .anthropic import AnthropicAdapter
from .azure import AzureOpenAIAdapter
from .base import (
    ChatResult,
    EmbeddingsResult,
    ProviderAdapter,
    StreamResult,
    close_sessions,
    session_for,
)
from .errors import (
    ERROR_CLASSES,
    AuthenticationFailed,
    ContextTooLong,
    InvalidRequest,
    MalformedResponse,
    ProviderError,
    RateLimited,
    StreamInterrupted,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeout,
)
from .gemini import GeminiAdapter
from .openai import OpenAIAdapter
from .openai_compatible import OpenAICompatibleAdapter
from .types import (
    ChatRequest,
    EmbeddingsRequest,
    ProviderEndpoint,
    RequestValidationError,
    Usage,
    estimate_input_tokens,
)

ADAPTER_CLASSES: dict[str, type[ProviderAdapter]] = {
    "openai": OpenAIAdapter,
    "azure_openai": AzureOpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "openai_compatible": OpenAICompatibleAdapter,
}


@functools.lru_cache(maxsize=1024)
def adapter_for(endpoint: ProviderEndpoint) -> ProviderAdapter:
    """The adapter for `endpoint`, built once per distinct endpoint value (a changed key,
    URL or option makes a new one; the least recently used are dropped past 1024)."""
    return ADAPTER_CLASSES[endpoint.type](endpoint)


__all__ = [
    "ADAPTER_CLASSES",
    "ERROR_CLASSES",
    "AnthropicAdapter",
    "AuthenticationFailed",
    "AzureOpenAIAdapter",
    "ChatRequest",
    "ChatResult",
    "ContextTooLong",
    "EmbeddingsRequest",
    "EmbeddingsResult",
    "GeminiAdapter",
    "InvalidRequest",
    "MalformedResponse",
    "OpenAIAdapter",
    "OpenAICompatibleAdapter",
    "ProviderAdapter",
    "ProviderEndpoint",
    "ProviderError",
    "RateLimited",
    "RequestValidationError",
    "StreamInterrupted",
    "StreamResult",
    "UpstreamConnectionError",
    "UpstreamServerError",
    "UpstreamTimeout",
    "Usage",
    "adapter_for",
    "close_sessions",
    "estimate_input_tokens",
    "session_for",
]
