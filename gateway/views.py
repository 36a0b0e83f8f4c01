"""HTTP face of the gateway: OpenAI-compatible `/v1/...` and the native `/api/ai/...`.

Plain Django views rather than DRF: the hot path needs no content negotiation or browsable
API, and the error bodies follow OpenAI's shape (`{"error": {...}}`) that SDKs parse.
Each view parses, authorises and calls one gateway function.
"""

import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.choices import Scope
from accounts.middleware import checks_own_body_size, content_length
from providers.adapters.types import ChatRequest, RequestValidationError
from routing.catalog import catalogue_get
from routing.decisions import native_chat_request, request_simulate, simulation_request
from routing.engine import UnknownModel

from . import service as gateway
from .auth import authenticate_gateway_request
from .service import GatewayError


def _error_response(error: GatewayError, request_id: str | None = None) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    if request_id:
        response["X-Request-ID"] = request_id
    if error.retry_after:
        response["Retry-After"] = str(max(1, round(error.retry_after)))
    for name, value in error.headers.items():
        response[name] = value
    return response


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError(
            400, f"The request body is not valid JSON: {exc}", type="invalid_request_error"
        ) from exc
    if not isinstance(body, dict):
        raise GatewayError(
            400, "The request body must be a JSON object.", type="invalid_request_error"
        )
    return body


def _respond(result: gateway.GatewayResult):
    if result.stream is not None:
        response = StreamingHttpResponse(result.stream, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    else:
        response = HttpResponse(
            json.dumps(result.body, separators=(",", ":")), content_type="application/json"
        )
    for name, value in result.headers().items():
        response[name] = value
    return response


def _route(request, endpoint: str, parse):
    """What every routed endpoint does before shaping its answer: authenticate, refuse an
    oversized body unread, parse it with `parse`, serve it. Returns (chat request, result);
    raises GatewayError."""
    principal = authenticate_gateway_request(request, Scope.AI_EXECUTE)
    gateway.body_size_check(
        principal=principal,
        request_id=request.request_id,
        endpoint=endpoint,
        size=content_length(request),
    )
    chat_request = parse(_json_body(request))
    result = gateway.chat_completion(
        principal=principal,
        request=chat_request,
        request_id=request.request_id,  # core.request_context.RequestContextMiddleware
        headers=request.headers,
        endpoint=endpoint,
    )
    return chat_request, result


@checks_own_body_size
@csrf_exempt
@require_POST
def chat_completions(request):
    """POST /v1/chat/completions: OpenAI's chat completions API, routed."""
    try:
        _, result = _route(request, "chat", gateway.parse_chat_request)
    except GatewayError as error:
        return _error_response(error, request.request_id)
    return _respond(result)


@require_GET
def list_models(request):
    """GET /v1/models: every model some enabled provider offers (OpenAI's list shape)."""
    try:
        authenticate_gateway_request(request, Scope.AI_EXECUTE)
    except GatewayError as error:
        return _error_response(error)
    catalogue = catalogue_get()
    owners = {}
    for (provider_id, model), offer in sorted(catalogue.offers.items()):
        if offer.is_default or model not in owners:
            owners[model] = provider_id
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": provider_id}
        for model, provider_id in sorted(owners.items())
    ]
    return JsonResponse({"object": "list", "data": data})


def _native_chat_request(body: dict) -> ChatRequest:
    try:
        return native_chat_request(body, default_model=settings.GATEWAY_DEFAULT_MODEL)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


@checks_own_body_size
@csrf_exempt
@require_POST
def execute(request):
    """POST /api/ai/execute: the native API; the output plus the routing decision."""
    try:
        chat_request, result = _route(request, "execute", _native_chat_request)
    except GatewayError as error:
        return _error_response(error, request.request_id)
    choice = (result.body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    decision = result.decision
    body = {
        "id": request.request_id,
        "output": message.get("content"),
        "message": message,
        "finish_reason": choice.get("finish_reason"),
        "usage": result.body.get("usage"),
        "routing": {
            "policy": {"id": decision.policy_id, "name": decision.policy_name},
            "provider": result.target.provider_id,
            "model": result.target.model,
            "requested_model": chat_request.model,
            "strategy": decision.strategy,
            "attempts": [a.to_dict() for a in result.attempts],
            "cost_usd": float(result.cost),
            "baseline_cost_usd": float(result.baseline_cost),
            "latency_ms": round(result.latency_s * 1000, 1),
            "reasons": list(decision.reasons),
        },
    }
    response = JsonResponse(body)
    for name, value in result.headers().items():
        response[name] = value
    return response


@csrf_exempt
@require_POST
def simulate(request):
    """POST /api/routing/simulate: the decision and its reasons; no provider is called."""
    request_id = request.request_id  # core.request_context.RequestContextMiddleware
    try:
        principal = authenticate_gateway_request(request, Scope.ROUTING_VIEW)
        chat_request = _parsed(simulation_request, _json_body(request))
        answer = _simulated(
            principal=principal,
            request=chat_request,
            request_id=request_id,
            headers=request.headers,
        )
    except GatewayError as error:
        return _error_response(error, request_id)
    response = JsonResponse(answer)
    response["X-Request-ID"] = request_id
    return response


def _parsed(parse, body: dict) -> ChatRequest:
    try:
        return parse(body)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


def _simulated(**kwargs) -> dict:
    try:
        return request_simulate(**kwargs)
    except UnknownModel as exc:
        raise gateway.unknown_model(exc) from exc
