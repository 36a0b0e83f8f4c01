"""The gateway: one request's path, top to bottom.

    caller (authenticated, body size checked by the view) -> limits (rate, tokens, budget)
    -> flags -> catalogue snapshot -> decide
    -> call targets with retry and fallback -> record exactly one request-log row

The gateway application (gateway/app.py) parses HTTP (translating other API formats to the
internal ChatRequest, gateway/formats/) and awaits `chat_completion()`, `embeddings_create()`
or `count_tokens()`; everything with a rule in it is here. It runs on the event loop: the
upstream calls are the adapters' async methods, and the steps that read or write a store
(limits, the inline snapshot loads, the request-log row and usage counters) run on the
gateway's I/O threads (gateway/offload.py). Streams follow the same path, except that the row
is written when the stream ends, breaks, or the client goes away (the generator's `finally`,
or `aclose()`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings

from accounts import limits
from accounts.middleware import body_too_large_message
from accounts.principal import Principal
from analytics.choices import RequestStatus
from analytics.services import request_log_record
from core import metrics
from providers.adapters import adapter_for
from providers.adapters.errors import ProviderError
from providers.adapters.types import (
    ChatRequest,
    EmbeddingsRequest,
    RequestValidationError,
    Usage,
    estimate_embedding_tokens,
    estimate_input_tokens,
)
from routing import flags
from routing.catalog import Catalogue, catalogue_get
from routing.decisions import provider_stats, request_decide
from routing.engine import (
    OVER_COST_GUARD,
    Decision,
    DecisionOptions,
    ModelOffer,
    RequestContext,
    Target,
    UnknownModel,
    is_downgrade,
)
from routing.output_estimates import output_estimates_get
from vocabulary import Capability, ErrorType

from .formats.openai import ChunkStream
from .offload import run_blocking

logger = logging.getLogger(__name__)


# Upstream failure -> the status Auterity answers with when no target succeeded.
_STATUS_FOR_ERROR = {
    ErrorType.RATE_LIMITED: 429,
    ErrorType.TIMEOUT: 504,
    ErrorType.INVALID_REQUEST: 400,
    ErrorType.CONTEXT_LENGTH_EXCEEDED: 400,
    ErrorType.AUTHENTICATION: 502,  # the provider refused *our* key: not the caller's fault
}


class GatewayError(Exception):
    """A request Auterity answers with an error of its own (OpenAI error shape), with the
    seconds for a Retry-After header and any other headers the response must carry."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str,
        param=None,
        code=None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class StreamFormat(Protocol):
    """Renders a stream's events in the caller's format (gateway/formats/openai.py lists the
    steps); one instance per request."""

    def render_start(self, upstream_id: Any, usage_so_far: Mapping | None) -> list[bytes]: ...
    def render_chunk(self, chunk: dict) -> list[bytes]: ...
    def render_closing(self) -> list[bytes]: ...
    def render_end(self) -> list[bytes]: ...
    def render_error(self, status: int, message: str, code: str | None = None) -> list[bytes]: ...


@dataclass
class Attempt:
    provider_id: str
    model: str
    outcome: str  # "ok" or an error type
    latency_s: float
    status_code: int | None = None
    retry_after: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        data = {
            "provider": self.provider_id,
            "model": self.model,
            "outcome": self.outcome,
            "latency_ms": round(self.latency_s * 1000, 1),
        }
        if self.status_code is not None:
            data["status"] = self.status_code
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class GatewayResult:
    """What the view turns into an HTTP response."""

    request_id: str
    status: int
    body: dict | None = None
    stream: _StreamBody | None = None
    decision: Decision | None = None
    target: Target | None = None
    attempts: list[Attempt] = field(default_factory=list)
    cost: Decimal | None = None
    baseline_cost: Decimal | None = None
    latency_s: float = 0.0
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    # "frontier->economy" when the serving model is of a lower quality tier than the
    # requested one (docs/policies.md#quality-tiers), else "".
    downgrade: str = ""

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Request-ID": self.request_id,
            "X-Auterity-Policy": (self.decision.policy_name if self.decision else None) or "none",
            "X-Auterity-Provider": self.target.provider_id if self.target else "none",
            "X-Auterity-Model": self.target.model if self.target else "none",
            "X-Auterity-Attempts": str(len(self.attempts)),
            "X-Auterity-Downgrade": self.downgrade_header(),
        }
        if self.stream is None:
            headers["X-Auterity-Cost-USD"] = f"{self.cost or 0:.8f}"
        headers.update(self.rate_limit_headers)
        return headers

    def downgrade_header(self) -> str:
        """`none`, or the requested and the serving model's tiers (`frontier->economy`)."""
        return self.downgrade or "none"


def tiers_of(catalogue: Catalogue, decision: Decision, target: Target | None) -> tuple[str, str]:
    """(requested model's quality tier, serving model's), "" where unknown or unrated."""
    baseline = decision.baseline
    requested = catalogue.offers.get((baseline.provider_id, baseline.model)) if baseline else None
    served = catalogue.offers.get((target.provider_id, target.model)) if target else None
    return (
        (requested.quality_tier or "") if requested else "",
        (served.quality_tier or "") if served else "",
    )


def downgrade_label(catalogue: Catalogue, decision: Decision, target: Target | None) -> str:
    """ "frontier->economy" when `target` serves a lower quality tier than requested, else ""."""
    if target is None:
        return ""
    requested, served = tiers_of(catalogue, decision, target)
    if not is_downgrade(requested or None, served or None):
        return ""
    return f"{requested}->{served or 'unrated'}"


# --- entry points ----------------------------------------------------------------------------


def parse_chat_request(body) -> ChatRequest:
    try:
        return ChatRequest.from_openai(body)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


async def chat_completion(
    *,
    principal: Principal,
    request: ChatRequest,
    request_id: str,
    headers: Mapping[str, str],
    endpoint: str = "chat",
    stream_format: Callable[[ChatRequest], StreamFormat] | None = None,
) -> GatewayResult:
    """Serve one chat request: decide, call with retry/fallback, record. Never raises for
    upstream failures (they become an error result with its log row). A stream's events are
    rendered by `stream_format(request)` (OpenAI's chunks by default,
    gateway/formats/openai.py)."""
    catalogue, decision, result, log = await run_blocking(
        _routed, principal, request, request_id, headers, endpoint, estimate_input_tokens(request)
    )
    if request.stream:
        renderer = (stream_format or ChunkStream)(request)
        return await _serve_stream(catalogue, request, decision, result, log, renderer)
    return await _serve(catalogue, request, decision, result, log)


async def embeddings_create(
    *,
    principal: Principal,
    request: EmbeddingsRequest,
    request_id: str,
    headers: Mapping[str, str],
) -> GatewayResult:
    """Serve one embeddings request like a chat request: limits, the same policies (among the
    offers with the embeddings capability), retry and fallback, one request-log row with its
    cost. The body is OpenAI's embeddings `list`, its usage with Auterity's `cost`. A chat
    model is refused with a 400 naming `model` (no provider could embed with it)."""
    catalogue, decision, result, log = await run_blocking(
        _embeddings_routed, principal, request, request_id, headers
    )

    def call(adapter, target):
        return adapter.aembed(request, target.upstream_model)

    _, embedded = await _attempt_or_fail(catalogue, decision, result, log, call)
    await log.arecord(result, RequestStatus.SUCCESS, 200, embedded.usage)
    body = embedded.response
    body["usage"]["cost"] = float(result.cost)
    result.body = body
    return result


def _embeddings_routed(principal, request: EmbeddingsRequest, request_id: str, headers):
    """`_routed` for an embeddings request, after refusing a model no provider embeds with."""
    offers = [
        offer for (_, model), offer in catalogue_get().offers.items() if model == request.model
    ]
    if offers and not any(Capability.EMBEDDINGS in offer.capabilities for offer in offers):
        raise GatewayError(
            400,
            f"{request.model!r} is not an embeddings model (GET /v1/models lists the models; "
            "the embedding ones are served here).",
            type="invalid_request_error",
            param="model",
            code="model_not_supported",
        )
    return _routed(
        principal, request, request_id, headers, "embeddings", estimate_embedding_tokens(request)
    )


async def count_tokens(
    *,
    principal: Principal,
    request: ChatRequest,
    request_id: str,
    headers: Mapping[str, str],
) -> GatewayResult:
    """The prompt's input tokens as the target the policies pick would count them: that
    provider's own count where it has a counting endpoint (Anthropic, Gemini), else (or when
    the count fails) the gateway's estimate, which is OpenAI's own BPE for OpenAI models
    (providers/adapters/tokens.py). Counts towards the caller's request rate; no model runs,
    nothing is billed and no request-log row is written (a row with no output would skew
    the observed output lengths the cost guard reads). Body: `{"input_tokens": N}`."""
    catalogue, decision, result, estimate = await run_blocking(
        _count_tokens_decided, principal, request, request_id, headers
    )
    target = decision.targets[0]
    result.target = target
    tokens, source = estimate, "estimate"
    endpoint = catalogue.endpoints.get(target.provider_id)
    adapter = adapter_for(endpoint) if endpoint is not None else None
    if adapter is not None and adapter.supports_count_tokens:
        started = time.monotonic()
        try:
            tokens = await adapter.acount_tokens(request, target.upstream_model)
            source = "provider"
            outcome, status_code = "ok", None
        except ProviderError as exc:
            logger.warning("token count by %s failed: %s", target.provider_id, exc.message)
            outcome, status_code = exc.error_type, exc.status_code
        result.attempts.append(
            Attempt(
                target.provider_id,
                target.model,
                outcome,
                time.monotonic() - started,
                status_code,
            )
        )
    result.rate_limit_headers["X-Auterity-Token-Count"] = source
    result.body = {"input_tokens": tokens}
    return result


def _count_tokens_decided(principal, request: ChatRequest, request_id: str, headers):
    """count_tokens' steps before the count, on an I/O thread: the request rate, the decision,
    a refusal. Returns (catalogue, decision, result, the gateway's estimate)."""
    estimate = estimate_input_tokens(request)
    rate_limit_headers = admit(principal, request, request_id, "count_tokens", 0)
    catalogue, _, _, decision = _decide(principal, request, request_id, headers, estimate)
    result = GatewayResult(request_id=request_id, status=200, decision=decision, cost=Decimal(0))
    result.rate_limit_headers = rate_limit_headers
    error = refusal_before_calling(request, decision, catalogue)
    if error is not None:
        raise error
    return catalogue, decision, result, estimate


def _routed(principal, request, request_id, headers, endpoint: str, input_tokens: int):
    """What every served request does before calling anyone: the caller's limits (against
    `input_tokens`, the request's estimate), the decision, the log context; a request the
    decision cannot serve gets its error row and raises. Returns (catalogue, decision,
    result, log)."""
    started = time.monotonic()
    rate_limit_headers = admit(principal, request, request_id, endpoint, input_tokens)
    decided = time.monotonic()
    catalogue, options, ctx, decision = _decide(
        principal, request, request_id, headers, input_tokens
    )
    metrics.decision_observed(time.monotonic() - decided)
    flag_states = flags.as_record(options)
    result = GatewayResult(request_id=request_id, status=200, decision=decision)
    result.rate_limit_headers = rate_limit_headers
    log = _LogContext(
        principal, request, request_id, endpoint, catalogue, decision, flag_states, started
    )
    log.routed(ctx, options)
    metrics.request_started()

    error = refusal_before_calling(request, decision, catalogue)
    if error is not None:
        log.record(
            result,
            RequestStatus.ERROR,
            error.status,
            Usage(0, 0),
            error_type=error.code,
            error_message=error.message,
        )
        raise error
    return catalogue, decision, result, log


def models_list() -> list[dict]:
    """Every model some enabled provider offers, as OpenAI model objects (`owned_by` is its
    default provider, else the first that offers it)."""
    owners: dict[str, str] = {}
    for (provider_id, model), offer in sorted(catalogue_get().offers.items()):
        if offer.is_default or model not in owners:
            owners[model] = provider_id
    return [_model_object(model, provider_id) for model, provider_id in sorted(owners.items())]


def model_get(model_id: str) -> dict:
    """One model of `models_list()`; a 404 `model_not_found` for any other id."""
    for model in models_list():
        if model["id"] == model_id:
            return model
    raise GatewayError(
        404,
        f"The model {model_id!r} does not exist (GET /v1/models lists them).",
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )


def _model_object(model: str, provider_id: str) -> dict:
    return {"id": model, "object": "model", "created": 0, "owned_by": provider_id}


def refusal_before_calling(
    request: ChatRequest, decision: Decision, catalogue: Catalogue
) -> GatewayError | None:
    """Why the decision cannot serve the request, or None. A 400 naming `n` when n > 1 and no
    target returns several choices (the no-policy route keeps the default provider as a last
    resort, which would fail the same way; the caller can fix this, waiting cannot); a 503
    with every target's reason when no target is left."""
    reasons = "; ".join(f"{p}/{m}: {why}" for p, m, why in decision.dropped)
    if (request.n or 1) > 1 and not any(
        "multiple_choices" in catalogue.offers[(t.provider_id, t.model)].capabilities
        for t in decision.targets
        if (t.provider_id, t.model) in catalogue.offers
    ):
        return GatewayError(
            400,
            f"n={request.n}: no provider of {request.model!r} returns several choices per "
            "request (OpenAI-format and Gemini providers do); send n=1, once per choice "
            "wanted." + (f" ({reasons})" if reasons else ""),
            type="invalid_request_error",
            param="n",
            code="unsupported_parameter",
        )
    if decision.targets:
        return None
    return GatewayError(
        503,
        f"No provider can serve this request now: {reasons}",
        type="no_eligible_provider",
        code="no_eligible_provider",
    )


def admit(
    principal: Principal, request: ChatRequest, request_id: str, endpoint: str, input_tokens: int
) -> dict:
    """The caller's rate limits, tokens per minute (against `input_tokens`, the request's
    estimate) and budget (accounts/limits.py), checked before anything is routed. Returns the
    X-RateLimit-* headers; over a limit, writes the `refused` log row and raises the 429 (no
    provider is called)."""
    try:
        return limits.admit(principal, estimated_tokens=input_tokens)
    except limits.LimitExceeded as exc:
        error = GatewayError(
            exc.status,
            exc.message,
            type=exc.type,
            code=exc.code,
            retry_after=exc.retry_after,
            headers=exc.headers,
        )
        _record_refusal(principal, request_id, endpoint, error, request)
        raise error from exc


def body_size_check(*, principal: Principal, request_id: str, endpoint: str, size: int) -> None:
    """Refuse a body over MAX_REQUEST_BODY_BYTES (413 and a `refused` log row) before the view
    reads it."""
    if size <= settings.MAX_REQUEST_BODY_BYTES:
        return
    error = GatewayError(
        413, body_too_large_message(size), type="invalid_request_error", code="request_too_large"
    )
    _record_refusal(principal, request_id, endpoint, error)
    raise error


def _record_refusal(principal, request_id, endpoint, error: GatewayError, request=None) -> None:
    try:
        request_log_record(
            request_id=request_id,
            user_id=principal.user_id,
            api_key_name=principal.api_key_name,
            endpoint=endpoint,
            requested_model=request.model if request else "",
            status=RequestStatus.REFUSED,
            http_status=error.status,
            error_type=error.code or error.type,
            error_message=error.message[:500],
            stream=bool(request and request.stream),
        )
    except Exception:
        logger.exception("could not write the request log row for %s", request_id)
    metrics.request_refused()


def unknown_model(error: UnknownModel) -> GatewayError:
    return GatewayError(
        404, error.message, type="invalid_request_error", param="model", code="model_not_found"
    )


def _decide(principal, request: ChatRequest, request_id: str, headers, input_tokens: int):
    """routing.decisions.request_decide, with an unknown model as the client's 404."""
    try:
        return request_decide(principal, request, request_id, headers, input_tokens)
    except UnknownModel as exc:
        raise unknown_model(exc) from exc


def price(offer: ModelOffer | None, usage: Usage) -> Decimal:
    """What `usage` costs under `offer`'s price rules (cached input, cache writes, reasoning,
    long-context tiers: routing/engine/pricing.py), in USD to 10 decimal places (0 without an
    offer): the request log's cost and baseline cost, and bench/replay_trace.py's."""
    if offer is None:
        return Decimal(0)
    cost = offer.pricing.cost(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    )
    return Decimal(repr(cost)).quantize(Decimal("1e-10"))


def _wait_before_retry(
    error: ProviderError, retry, try_index: int, deadline: float
) -> float | None:
    """Seconds to wait before trying the same target again, or None to move on."""
    if not error.retryable or try_index + 1 >= retry.attempts:
        return None
    wait = min(retry.backoff_s * (2**try_index), retry.max_backoff_s)
    if error.retry_after is not None:
        if not retry.respect_retry_after:
            pass
        elif error.retry_after > settings.GATEWAY_MAX_RETRY_WAIT_SECONDS:
            return None  # the upstream wants a long pause: another target serves sooner
        else:
            wait = max(wait, error.retry_after)
    if time.monotonic() + wait > deadline:
        return None
    return wait


def _falls_back(decision: Decision, error: ProviderError) -> bool:
    return decision.fallback.enabled and error.error_type in decision.fallback.on


async def _attempt_loop(catalogue: Catalogue, decision: Decision, call, *, hold_open=False):
    """Try targets in order with per-target retries; return the first success.

    `call(adapter, target)` returns the awaitable of one upstream call. Returns (target,
    value, attempts) on success or raises the last ProviderError (with `.attempts` attached)
    when every try failed. With
    `hold_open` (streams) a success stays in flight for the caller to end.
    """
    attempts: list[Attempt] = []
    deadline = time.monotonic() + (decision.timeout_s or 3600)
    last_error: ProviderError | None = None
    for index, target in enumerate(decision.targets):
        if index > 0 and last_error is not None and not _falls_back(decision, last_error):
            break
        if time.monotonic() >= deadline:
            break
        endpoint = catalogue.endpoints.get(target.provider_id)
        if endpoint is None:
            continue
        adapter = adapter_for(endpoint)
        note = "fallback over cost guard" if target.reason == OVER_COST_GUARD else ""
        for try_index in range(decision.retry.attempts):
            admitted = provider_stats.begin(target.provider_id)
            if not admitted:
                provider_stats.release(target.provider_id)
                attempts.append(Attempt(target.provider_id, target.model, "circuit_open", 0.0))
                break
            t0 = time.monotonic()
            try:
                value = await call(adapter, target)
            except asyncio.CancelledError:
                # The call was abandoned (the server stopping, the client gone): no outcome.
                provider_stats.release(target.provider_id)
                raise
            except ProviderError as exc:
                elapsed = time.monotonic() - t0
                provider_stats.end(target.provider_id, elapsed, ok=False, error_type=exc.error_type)
                attempts.append(
                    Attempt(
                        target.provider_id,
                        target.model,
                        exc.error_type,
                        elapsed,
                        exc.status_code,
                        exc.retry_after,
                        note,
                    )
                )
                last_error = exc
                wait = _wait_before_retry(exc, decision.retry, try_index, deadline)
                if wait is None:
                    break
                await asyncio.sleep(wait)
                continue
            elapsed = time.monotonic() - t0
            if not hold_open:
                provider_stats.end(target.provider_id, elapsed, ok=True)
            attempts.append(Attempt(target.provider_id, target.model, "ok", elapsed, note=note))
            return target, value, attempts
    error = last_error or ProviderError("every target was skipped (circuit open)")
    error.attempts = attempts
    raise error


async def _attempt_or_fail(
    catalogue, decision, result: GatewayResult, log, call, *, hold_open=False
):
    """`_attempt_loop`, with the result filled in; when every target failed, the error row is
    written and the client's error raised."""
    try:
        target, value, attempts = await _attempt_loop(
            catalogue, decision, call, hold_open=hold_open
        )
    except ProviderError as exc:
        result.attempts = exc.attempts
        error = _upstream_failure(exc)
        await log.arecord(
            result,
            RequestStatus.ERROR,
            error.status,
            Usage(0, 0),
            error_type=exc.error_type,
            error_message=exc.message,
        )
        raise error from exc
    result.target, result.attempts = target, attempts
    # Known before a stream's headers leave.
    result.downgrade = downgrade_label(catalogue, decision, target)
    return target, value


async def _serve(
    catalogue, request: ChatRequest, decision, result: GatewayResult, log
) -> GatewayResult:
    _, chat = await _attempt_or_fail(
        catalogue,
        decision,
        result,
        log,
        lambda adapter, t: adapter.achat(request, t.upstream_model),
    )
    body = chat.response
    await log.arecord(result, RequestStatus.SUCCESS, 200, chat.usage)
    body.setdefault("usage", chat.usage.to_dict())
    body["usage"]["cost"] = float(result.cost)
    result.body = body
    return result


async def _serve_stream(
    catalogue, request, decision, result: GatewayResult, log, renderer: StreamFormat
) -> GatewayResult:
    target, stream = await _attempt_or_fail(
        catalogue,
        decision,
        result,
        log,
        lambda adapter, t: adapter.astream(request, t.upstream_model),
        hold_open=True,
    )
    opened = time.monotonic()
    finished = []

    async def finish(status, error_type: str, message: str) -> None:
        if finished:
            return
        finished.append(status)
        stream.close()
        # The stream held its provider slot until now (in-flight counts, breaker).
        provider_stats.end(
            target.provider_id,
            time.monotonic() - opened,
            ok=status != RequestStatus.ERROR,
            error_type=error_type or None,
        )
        # Shielded: a client that leaves cancels the response, never its row.
        await asyncio.shield(
            log.arecord(
                result,
                status,
                200,
                stream.usage,
                error_type=error_type,
                error_message=message,
            )
        )

    async def events() -> AsyncIterator[bytes]:
        status, error_type, message = RequestStatus.CANCELLED, "client_disconnected", ""
        try:
            for data in renderer.render_start(stream.id, stream.usage.to_dict()):
                yield data
            async for chunk in stream:
                if not chunk.get("choices") and "usage" in chunk:
                    # The usage chunk is the last: price it now so the client sees the cost.
                    cost = price(
                        catalogue.offers.get((target.provider_id, target.model)), stream.usage
                    )
                    chunk["usage"]["cost"] = float(cost)
                for data in renderer.render_chunk(chunk):
                    yield data
            for data in renderer.render_closing():
                yield data
            status, error_type = RequestStatus.SUCCESS, ""
            # Finished before the end marker: the row is queued (committed, with
            # REQUEST_LOG_COMMIT_BEFORE_RESPONSE) by the time a client reads it.
            await finish(status, error_type, message)
            for data in renderer.render_end():
                yield data
        except ProviderError as exc:
            status, error_type, message = RequestStatus.ERROR, exc.error_type, exc.message
            # The attempt went down as "ok" when the stream opened; the log must say it broke.
            if result.attempts:
                result.attempts[-1].outcome = exc.error_type
            await finish(status, error_type, message)
            for data in renderer.render_error(
                502, f"The upstream stream broke: {exc.message}", exc.error_type
            ):
                yield data
        finally:
            await finish(status, error_type, message)

    result.stream = _StreamBody(events(), finish)
    return result


class _StreamBody:
    """A stream's SSE body. The application closes it (`aclose()`) when the response ends or
    the client leaves; closing a generator that never started skips its `finally`, so
    `aclose()` finishes the request itself (once: the generator's own `finally` may already
    have)."""

    def __init__(self, events: AsyncIterator[bytes], finish):
        self._events = events
        self._finish = finish

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events

    async def aclose(self) -> None:
        try:
            await self._events.aclose()
        finally:
            await self._finish(RequestStatus.CANCELLED, "client_disconnected", "")


def _upstream_failure(exc: ProviderError) -> GatewayError:
    status = _STATUS_FOR_ERROR.get(exc.error_type, 502)
    attempts = getattr(exc, "attempts", [])
    summary = ", ".join(f"{a.provider_id}/{a.model}: {a.outcome}" for a in attempts)
    return GatewayError(
        status,
        f"All providers failed ({summary}). Last error: {exc.message}" if attempts else exc.message,
        type="upstream_error" if status >= 500 or status == 429 else "invalid_request_error",
        code=exc.error_type,
        retry_after=exc.retry_after if status == 429 else None,
    )


class _LogContext:
    """What the request-log row needs, gathered once; `record` writes exactly one row."""

    def __init__(
        self, principal, request, request_id, endpoint, catalogue, decision, flag_states, started
    ):
        self.principal = principal
        self.request = request
        self.request_id = request_id
        self.endpoint = endpoint
        self.catalogue = catalogue
        self.decision = decision
        self.flag_states = flag_states
        self.started = started
        self.recorded = False
        self.ctx: RequestContext | None = None
        self.guard_cap: float | None = None

    def routed(self, ctx: RequestContext, options: DecisionOptions) -> None:
        """What the decision read, for the row's route_attributes and guard_violation."""
        self.ctx = ctx
        self.guard_cap = options.max_cost_increase

    def route_attributes(self) -> dict:
        ctx = self.ctx
        if ctx is None:
            return {}
        return {
            "input_tokens": ctx.input_tokens,
            "max_tokens": ctx.max_tokens,
            "expected_output_tokens": ctx.expected_output_tokens,
            "capabilities": sorted(ctx.capabilities),
            "metadata": dict(ctx.metadata),
            "username": ctx.caller.username,
            "groups": sorted(ctx.caller.groups),
            "team": ctx.caller.team,
        }

    def baseline_usage(self, usage: Usage, served: ModelOffer | None, base: ModelOffer | None):
        """The served call's usage as the requested model would have billed it: the same
        prompt and visible answer; when another model served, the requested model's own
        expected thinking (its observed median, else the catalogue's expected_thinking_tokens)
        in place of the served model's, capped at max_tokens (docs/api.md#savings)."""
        if served is None or base is None or served.model == base.model:
            return usage
        estimates = output_estimates_get()
        thinking = estimates.thinking_median.get(base.model, base.thinking_tokens)
        visible = max(usage.completion_tokens - usage.reasoning_tokens, 0)
        max_tokens = self.request.max_tokens
        if max_tokens is not None and visible + thinking > max_tokens:
            thinking = max(max_tokens - visible, 0)
        return Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=visible + thinking,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=thinking,
        )

    async def arecord(self, result: GatewayResult, status, http_status, usage: Usage, **kwargs):
        """`record` on an I/O thread: the usage counters (and, with
        REQUEST_LOG_COMMIT_BEFORE_RESPONSE, the row's commit) wait on a store."""
        await run_blocking(self.record, result, status, http_status, usage, **kwargs)

    def record(
        self,
        result: GatewayResult,
        status,
        http_status,
        usage: Usage,
        *,
        error_type: str = "",
        error_message: str = "",
    ):
        if self.recorded:
            return
        self.recorded = True
        catalogue, decision, target = self.catalogue, self.decision, result.target
        serving = catalogue.offers.get((target.provider_id, target.model)) if target else None
        baseline = decision.baseline
        baseline_offer = (
            catalogue.offers.get((baseline.provider_id, baseline.model)) if baseline else None
        )
        result.cost = price(serving, usage)
        result.baseline_cost = price(
            baseline_offer, self.baseline_usage(usage, serving, baseline_offer)
        )
        result.latency_s = time.monotonic() - self.started
        requested_tier, served_tier = tiers_of(catalogue, decision, target)
        result.downgrade = downgrade_label(catalogue, decision, target)
        cap = self.guard_cap
        guard_violation = bool(
            cap is not None
            and status == RequestStatus.SUCCESS
            and result.cost > result.baseline_cost * Decimal(repr(1 + max(cap, 0.0)))
        )
        try:
            request_log_record(
                request_id=self.request_id,
                user_id=self.principal.user_id,
                api_key_name=self.principal.api_key_name,
                endpoint=self.endpoint,
                requested_model=self.request.model,
                policy_id=decision.policy_id,
                policy_name=decision.policy_name or "",
                provider_id=target.provider_id if target else "",
                model=target.model if target else "",
                status=status,
                http_status=http_status,
                error_type=error_type,
                error_message=error_message[:500],
                attempts=len(result.attempts),
                attempts_detail=[a.to_dict() for a in result.attempts],
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                cost=result.cost,
                baseline_cost=result.baseline_cost,
                latency=result.latency_s,
                stream=self.request.stream,
                flags=self.flag_states,
                requested_tier=requested_tier,
                served_tier=served_tier,
                downgrade=bool(result.downgrade),
                guard_violation=guard_violation,
                route_attributes=self.route_attributes(),
                canary_policy_id=decision.canary[0] if decision.canary else None,
                canary_cohort=decision.canary[1] if decision.canary else "",
            )
        except Exception:
            # The answer already exists; losing it because the log write failed would be worse.
            logger.exception("could not write the request log row for %s", self.request_id)
        # The spend and tokens-per-minute counters the next request's admit() reads.
        limits.usage_record(
            self.principal, tokens=usage.prompt_tokens + usage.completion_tokens, cost=result.cost
        )
        metrics.request_finished(
            provider=target.provider_id if target else "",
            model=target.model if target else "",
            policy=decision.policy_name or "",
            status=status,
            error_type=error_type,
            seconds=result.latency_s,
            attempts=result.attempts,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost=float(result.cost),
            baseline_cost=float(result.baseline_cost),
            fallback=bool(target and decision.targets and target != decision.targets[0]),
            stream=self.request.stream,
            live_stats=provider_stats.snapshot_view,
        )
