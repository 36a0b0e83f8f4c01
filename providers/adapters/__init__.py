"""Provider adapters: one OpenAI-shaped interface over each provider's wire format.

    adapter = adapter_for(endpoint)              # cached per endpoint value
    result = adapter.chat(request, "gpt-4o")     # ChatResult(.response, .usage)
    with adapter.stream(request, "gpt-4o") as s:  # StreamResult of chat.completion.chunk
        for chunk in s: ...
    result = await adapter.achat(request, "gpt-4o")   # the same on an event loop (the gateway)
    async with await adapter.astream(request, "gpt-4o") as s:
        async for chunk in s: ...

Failures raise ProviderError subclasses (see errors.py) that tell the router whether to
retry, fall back or give up.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .anthropic import AnthropicAdapter
from .azure import AzureOpenAIAdapter
from .base import (
    AsyncStreamResult,
    ChatResult,
    EmbeddingsResult,
    ProviderAdapter,
    StreamResult,
    aclose_sessions,
    async_session_for,
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
from .options import COMMON_OPTIONS, Option, check_config
from .types import (
    ChatRequest,
    EmbeddingsRequest,
    ProviderEndpoint,
    RequestValidationError,
    Usage,
    estimate_input_tokens,
)

# The provider types, the one registry of them: each is its adapter class, which declares it
# once (provider_type, label, options, capabilities, price_source; base.py). The Provider
# model's choices and config validation, the admin, the API, price sync and the docs tests
# all read this, so a new wire format is its adapter module plus one line here
# (docs/architecture.md).
ADAPTER_CLASSES: dict[str, type[ProviderAdapter]] = {
    cls.provider_type: cls
    for cls in (
        OpenAIAdapter,
        AzureOpenAIAdapter,
        AnthropicAdapter,
        GeminiAdapter,
        OpenAICompatibleAdapter,
    )
}


def provider_type_choices() -> list[tuple[str, str]]:
    """`Provider.type`'s choices. A callable, so the migrations name this function rather
    than copy the list: registering a type needs no migration."""
    return [(provider_type, cls.label) for provider_type, cls in ADAPTER_CLASSES.items()]


def config_options(provider_type: str) -> dict[str, Option]:
    """Every `config` key a provider of this type may set (the common ones only, for a type
    no adapter serves)."""
    adapter = ADAPTER_CLASSES.get(provider_type)
    return {**COMMON_OPTIONS, **(adapter.options if adapter else {})}


def config_problems(provider_type: str, config: Mapping[str, Any]) -> list[str]:
    """What is wrong with a provider's `config` for its type (options.check_config)."""
    adapter = ADAPTER_CLASSES.get(provider_type)
    if adapter is None:
        return check_config(config, {}, "")  # the unknown type is the `type` field's error
    return check_config(config, adapter.options, adapter.label)


def config_help() -> str:
    """Which `config` keys each provider type takes, for the admin form and the API schema."""

    def keys(options) -> str:
        return ", ".join(f"{k} (required)" if o.required else k for k, o in options.items())

    per_type = "; ".join(
        f"{provider_type}: {keys(cls.options)}"
        for provider_type, cls in ADAPTER_CLASSES.items()
        if cls.options
    )
    return f"Every type: {keys(COMMON_OPTIONS)}. By type: {per_type}."


@functools.lru_cache(maxsize=1024)
def adapter_for(endpoint: ProviderEndpoint) -> ProviderAdapter:
    """The adapter for `endpoint`, built once per distinct endpoint value (a changed key,
    URL or option makes a new one; the least recently used are dropped past 1024)."""
    adapter = ADAPTER_CLASSES.get(endpoint.type)
    if adapter is None:
        raise ValueError(
            f"unknown provider type {endpoint.type!r}; expected one of {', '.join(ADAPTER_CLASSES)}"
        )
    return adapter(endpoint)


__all__ = [
    "ADAPTER_CLASSES",
    "ERROR_CLASSES",
    "AnthropicAdapter",
    "AsyncStreamResult",
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
    "aclose_sessions",
    "adapter_for",
    "async_session_for",
    "close_sessions",
    "config_help",
    "config_options",
    "config_problems",
    "estimate_input_tokens",
    "provider_type_choices",
    "session_for",
]
