"""A request's routing decision, shared by the gateway, the dry run (`POST
/api/routing/simulate`, the policy admin's "Simulate a request") and anything else that asks
"where would this go?":

    flags for this caller and request -> catalogue snapshot -> engine (live stats) -> decision

Nothing here calls a provider or writes anything. The per-process live provider figures
(`provider_stats`: latency, error rate, in-flight counts, circuit breakers) live here because
the decision reads them; the gateway feeds them with every upstream call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from accounts.principal import Principal
from providers.adapters.types import ChatRequest, RequestValidationError, estimate_input_tokens
from routing import flags
from routing.catalog import Catalogue, catalogue_get
from routing.engine import (
    BreakerConfig,
    Caller,
    Decision,
    DecisionOptions,
    ProviderStats,
    RequestContext,
    StatsConfig,
    compile_policy,
    compile_snapshot,
    decide,
)
from routing.output_estimates import output_estimates_get


def stats_config_from_settings() -> StatsConfig:
    """The live-stats and breaker configuration from the ROUTING_BREAKER_* and ROUTING_STATS_*
    settings (docs/configuration.md)."""
    try:
        config = StatsConfig(
            latency_decay_s=settings.ROUTING_STATS_LATENCY_DECAY_SECONDS,
            error_alpha=settings.ROUTING_STATS_ERROR_ALPHA,
            error_decay_s=settings.ROUTING_STATS_ERROR_DECAY_SECONDS,
            inflight_penalty_s=settings.ROUTING_STATS_INFLIGHT_PENALTY_SECONDS,
            view_max_age_s=settings.ROUTING_STATS_VIEW_MAX_AGE_SECONDS,
            breaker=BreakerConfig(
                failure_threshold=settings.ROUTING_BREAKER_FAILURE_THRESHOLD,
                error_rate_threshold=settings.ROUTING_BREAKER_ERROR_RATE_THRESHOLD,
                min_volume=settings.ROUTING_BREAKER_MIN_VOLUME,
                window_s=settings.ROUTING_BREAKER_WINDOW_SECONDS,
                cooldown_s=settings.ROUTING_BREAKER_COOLDOWN_SECONDS,
                # A first cool-down set above the longest one is kept fixed.
                cooldown_max_s=max(
                    settings.ROUTING_BREAKER_COOLDOWN_MAX_SECONDS,
                    settings.ROUTING_BREAKER_COOLDOWN_SECONDS,
                ),
                cooldown_factor=settings.ROUTING_BREAKER_COOLDOWN_FACTOR,
                jitter=settings.ROUTING_BREAKER_COOLDOWN_JITTER,
                half_open_max_trials=settings.ROUTING_BREAKER_HALF_OPEN_TRIALS,
                success_threshold=settings.ROUTING_BREAKER_SUCCESS_THRESHOLD,
            ),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"ROUTING_BREAKER_* / ROUTING_STATS_* settings: {exc}") from exc
    return config


# Live latency, error rate, in-flight counts and circuit breakers of this process.
provider_stats = ProviderStats(stats_config_from_settings())


def provider_stats_reset() -> None:
    """Start this process's live figures afresh, configured by the current settings (tests)."""
    provider_stats.reset(stats_config_from_settings())


def request_decide(
    principal: Principal,
    request: ChatRequest,
    request_id: str,
    headers: Mapping[str, str],
    input_tokens: int,
) -> tuple[Catalogue, DecisionOptions, RequestContext, Decision]:
    """Flags -> catalogue snapshot -> engine: (catalogue, options, context, decision), the same
    for a served request and its dry run. Raises the engine's UnknownModel for a model no
    provider offers."""
    catalogue = catalogue_get()
    options = flags.decision_options(principal, request_id)
    ctx = request_context(principal, request, request_id, headers, input_tokens)
    decision = decide(ctx, catalogue.snapshot, provider_stats.live_view(), options)
    return catalogue, options, ctx, decision


def request_context(
    principal: Principal, request: ChatRequest, request_id, headers, input_tokens
) -> RequestContext:
    user_id = str(principal.user_id)
    api_key = principal.api_key_name or None
    expected = output_estimates_get()  # in memory: refreshed off the request path
    return RequestContext(
        request_id=request_id,
        model=request.model,
        input_tokens=input_tokens,
        max_tokens=request.max_tokens,
        stream=request.stream,
        capabilities=request.required_capabilities(),
        metadata=request.metadata or {},
        headers=headers,  # lower-cased by the engine, only when some policy reads a header
        caller=Caller(
            user_id=user_id,
            username=principal.username,
            groups=principal.groups,
            api_key=api_key,
            team=principal.team or None,
        ),
        now=datetime.now(UTC),
        expected_output_tokens=None
        if request.max_tokens is not None
        else expected.output_tokens(request.model, user_id, api_key),
        thinking_tokens=expected.thinking,
        cached_share=expected.cached_share,
    )


def request_simulate(
    *, principal: Principal, request: ChatRequest, request_id: str, headers: Mapping[str, str]
) -> dict:
    """The decision for a request, with its reasons, calling no provider and writing nothing.
    Raises UnknownModel like `request_decide`."""
    _, options, ctx, decision = request_decide(
        principal, request, request_id, headers, estimate_input_tokens(request)
    )
    return {
        "request_id": request_id,
        "input_tokens_estimate": ctx.input_tokens,
        # Visible output the cost guard priced: max_tokens, else the observed/default one.
        "output_tokens_expected": ctx.max_tokens
        if ctx.max_tokens is not None
        else ctx.expected_output_tokens,
        "required_capabilities": sorted(ctx.capabilities),
        "flags": flags.as_record(options),
        "decision": decision.to_dict(),
    }


def policy_dry_run(
    *,
    principal: Principal,
    name: str,
    priority: int,
    conditions,
    actions,
    request: ChatRequest,
    request_id: str,
    headers: Mapping[str, str],
) -> dict:
    """Where `request` would go if this policy, as it stands in an editor (saved or not, any
    status), were the only active one: the policy editor's dry run. The routing_policies flag
    is taken as on for the caller; every other flag, the catalogue and this process's live
    figures are as for a served request. Raises the engine's PolicyError for an invalid
    policy and UnknownModel for a model no provider offers."""
    candidate = compile_policy("dry-run", name or "this policy", priority, conditions, actions)
    live = catalogue_get().snapshot
    snapshot = compile_snapshot(
        [candidate], live.providers.values(), live.offers.values(), version=live.version
    )
    options = replace(flags.decision_options(principal, request_id), use_policies=True)
    ctx = request_context(principal, request, request_id, headers, estimate_input_tokens(request))
    decision = decide(ctx, snapshot, provider_stats.live_view(), options)
    return {
        "request_id": request_id,
        "matched": decision.policy_id is not None,
        "flags": flags.as_record(options),
        "cost_optimization_percent": flags.cost_optimization_percent(),
        "decision": decision.to_dict(),
    }


def native_chat_request(body: dict, *, default_model: str) -> ChatRequest:
    """The native API's shape (`POST /api/ai/execute`): `prompt` or `messages`, optional
    `model` (else `default_model`), `system`, `metadata`. Raises RequestValidationError naming
    the field."""
    body = dict(body)
    prompt = body.pop("prompt", None)
    system = body.pop("system", None)
    if prompt is not None:
        if "messages" in body:
            raise RequestValidationError("prompt", "Give either 'prompt' or 'messages', not both.")
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestValidationError("prompt", "'prompt' must be a non-empty string.")
        body["messages"] = [{"role": "user", "content": prompt}]
    if system is not None:
        if not isinstance(system, str):
            raise RequestValidationError("system", "'system' must be a string.")
        body["messages"] = [{"role": "system", "content": system}, *(body.get("messages") or [])]
    if body.get("stream"):
        raise RequestValidationError("stream", "Streaming is served by POST /v1/chat/completions.")
    body.setdefault("model", default_model)
    return ChatRequest.from_openai(body)


def simulation_request(body: dict) -> ChatRequest:
    """The request a dry run decides for, from an OpenAI chat body or the native one
    (`prompt`/`messages`, `metadata`...). `stream: true` is kept, so the decision requires
    streaming. Raises RequestValidationError naming the field."""
    chat_request = (
        native_chat_request({**body, "stream": False}, default_model=settings.GATEWAY_DEFAULT_MODEL)
        if ("prompt" in body or "messages" in body)
        else ChatRequest.from_openai(body)
    )
    if body.get("stream") is True:
        chat_request.stream = True
    return chat_request
