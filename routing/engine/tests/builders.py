"""Small builders for engine tests: a realistic catalogue and terse request/policy helpers."""

from __future__ import annotations

from datetime import UTC, datetime

from routing.engine import (
    Caller,
    ModelOffer,
    ProviderInfo,
    RequestContext,
    compile_policy,
    compile_snapshot,
)

ALL_CAPS = frozenset({"streaming", "tools", "vision", "json_mode"})
# A Wednesday, 14:30 UTC.
NOW = datetime(2026, 3, 4, 14, 30, tzinfo=UTC)


def offer(
    provider: str,
    model: str,
    input_price: float,
    output_price: float,
    *,
    default: bool = False,
    window: int = 128_000,
    max_output: int = 16_384,
    caps: frozenset[str] = ALL_CAPS,
    upstream: str | None = None,
    pricing=None,
    thinking: int = 0,
) -> ModelOffer:
    return ModelOffer(
        provider_id=provider,
        model=model,
        upstream_model=upstream or model,
        input_price=input_price,
        output_price=output_price,
        context_window=window,
        max_output_tokens=max_output,
        capabilities=frozenset(caps),
        is_default=default,
        pricing=pricing,
        thinking_tokens=thinking,
    )


def catalogue() -> tuple[list[ProviderInfo], list[ModelOffer]]:
    """Four providers and list prices close to the public ones (USD per token)."""
    providers = [
        ProviderInfo("openai", "openai", "healthy", capacity=100, avg_response_time=1.2),
        ProviderInfo("azure", "azure_openai", "healthy", capacity=50, avg_response_time=1.5),
        ProviderInfo("anthropic", "anthropic", "healthy", capacity=80, avg_response_time=1.8),
        ProviderInfo("google", "gemini", "healthy", capacity=None, avg_response_time=0.9),
    ]
    offers = [
        offer("openai", "gpt-4o", 2.5e-6, 10e-6, default=True),
        offer("azure", "gpt-4o", 2.5e-6, 10e-6, upstream="gpt-4o-2024-08-06"),
        offer("openai", "gpt-4o-mini", 0.15e-6, 0.6e-6, default=True),
        offer("azure", "gpt-4o-mini", 0.15e-6, 0.6e-6, caps=frozenset({"streaming", "tools"})),
        offer("openai", "gpt-4.1", 2.0e-6, 8e-6, default=True, window=1_047_576, max_output=32_768),
        offer(
            "anthropic",
            "claude-sonnet-4-5",
            3e-6,
            15e-6,
            default=True,
            window=200_000,
            max_output=64_000,
            caps=frozenset({"streaming", "tools", "vision"}),
        ),
        offer(
            "google",
            "gemini-2.5-flash",
            0.3e-6,
            2.5e-6,
            default=True,
            window=1_048_576,
            max_output=65_536,
        ),
        offer(
            "google",
            "gemini-2.5-pro",
            1.25e-6,
            10e-6,
            default=True,
            window=1_048_576,
            max_output=65_536,
        ),
    ]
    return providers, offers


def request(
    model: str = "gpt-4o",
    input_tokens: int = 1000,
    max_tokens: int | None = 500,
    *,
    request_id: str = "req-1",
    stream: bool = False,
    capabilities: frozenset[str] | set[str] = frozenset(),
    metadata: dict | None = None,
    headers: dict | None = None,
    caller: Caller | None = None,
    now: datetime | None = NOW,
    expected_output: int | None = None,
    thinking: dict | None = None,
) -> RequestContext:
    return RequestContext(
        request_id=request_id,
        model=model,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        stream=stream,
        capabilities=frozenset(capabilities),
        metadata=metadata or {},
        headers=headers or {},
        caller=caller or Caller(),
        now=now,
        expected_output_tokens=expected_output,
        thinking_tokens=thinking or {},
    )


def policy(
    actions: dict,
    conditions: dict | None = None,
    *,
    priority: int = 10,
    name: str = "p",
    id: str | None = None,
    status: str = "active",
):
    return compile_policy(id or name, name, priority, conditions or {}, actions, status=status)


def snapshot(*policies, providers=None, offers=None, version=1):
    default_providers, default_offers = catalogue()
    return compile_snapshot(
        policies,
        default_providers if providers is None else providers,
        default_offers if offers is None else offers,
        version,
    )
