"""HTTP face of the gateway: OpenAI-compatible `/v1/...`, Anthropic-compatible
`/v1/messages`, and the native `/api/ai/...`.

Plain Django views rather than DRF: the hot path needs no content negotiation or browsable
API, and the error bodies follow the shape the path's SDK parses: OpenAI's
(`{"error": {...}}`) everywhere under /v1/ and /api/ai/, Anthropic's
(`{"type": "error", "error": {...}}`) on /v1/messages. Each view parses (translating the
caller's format, gateway/formats/), authorises and calls one gateway function, then formats
its result; a wrong method is a 405 and an unknown /v1/ path a 404, both JSON.
"""

import functools
import json

from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.choices import Scope
from accounts.middleware import checks_own_body_size, content_length
from providers.adapters.types import ChatRequest, EmbeddingsRequest, RequestValidationError
from routing.decisions import native_chat_request, request_simulate, simulation_request
from routing.engine import UnknownModel

from . import service as gateway
from .auth import authenticate_gateway_request
from .formats import anthropic as anthropic_format
from .service import GatewayError


def _error_response(error: GatewayError, request_id: str | None = None) -> JsonResponse:
    """The error in OpenAI's shape."""
    return _with_error_headers(JsonResponse(error.body(), status=error.status), error, request_id)


def _anthropic_error_response(error: GatewayError, request_id: str | None = None):
    """The error in Anthropic's shape, its type Anthropic's for the status."""
    body = anthropic_format.error_body(error.status, error.message, request_id)
    return _with_error_headers(JsonResponse(body, status=error.status), error, request_id)


def _with_error_headers(response, error: GatewayError, request_id: str | None):
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


def _method_not_allowed(method: str, allowed: tuple[str, ...], anthropic: bool = False):
    error = GatewayError(
        405,
        f"Method {method} is not allowed here; use {' or '.join(allowed)}.",
        type="invalid_request_error",
        code="method_not_allowed",
        headers={"Allow": ", ".join(allowed)},
    )
    return (_anthropic_error_response if anthropic else _error_response)(error)


def allow(*methods: str, anthropic: bool = False):
    """Django's require_http_methods, but the 405 is JSON in the path's error shape (with
    Allow), which SDKs show; GET allows HEAD. CSRF-exempt as every gateway view is (bearer
    tokens; gateway/auth.py checks CSRF for session-authenticated callers)."""
    allowed = (*methods, "HEAD") if "GET" in methods else methods

    def decorator(view):
        @functools.wraps(view)
        def inner(request, *args, **kwargs):
            if request.method not in allowed:
                return _method_not_allowed(request.method, allowed, anthropic)
            return view(request, *args, **kwargs)

        return csrf_exempt(inner)

    return decorator


def _authorised(request, endpoint: str):
    """Authenticate (ai:execute) and refuse an oversized body unread; the principal."""
    principal = authenticate_gateway_request(request, Scope.AI_EXECUTE)
    gateway.body_size_check(
        principal=principal,
        request_id=request.request_id,  # core.request_context.RequestContextMiddleware
        endpoint=endpoint,
        size=content_length(request),
    )
    return principal


def _route(request, endpoint: str, parse, stream_format=None):
    """What every routed chat endpoint does before shaping its answer: authenticate, refuse
    an oversized body unread, parse it with `parse`, serve it (a stream rendered by
    `stream_format`). Returns (chat request, result); raises GatewayError."""
    principal = _authorised(request, endpoint)
    chat_request = parse(_json_body(request))
    result = gateway.chat_completion(
        principal=principal,
        request=chat_request,
        request_id=request.request_id,
        headers=request.headers,
        endpoint=endpoint,
        stream_format=stream_format,
    )
    return chat_request, result


@checks_own_body_size
@allow("POST")
def chat_completions(request):
    """POST /v1/chat/completions: OpenAI's chat completions API, routed."""
    try:
        _, result = _route(request, "chat", gateway.parse_chat_request)
    except GatewayError as error:
        return _error_response(error, request.request_id)
    return _respond(result)


@checks_own_body_size
@allow("POST")
def embeddings(request):
    """POST /v1/embeddings: OpenAI's embeddings API, routed among the embedding models."""
    try:
        principal = _authorised(request, "embeddings")
        result = gateway.embeddings_create(
            principal=principal,
            request=_parsed(EmbeddingsRequest.from_openai, _json_body(request)),
            request_id=request.request_id,
            headers=request.headers,
        )
    except GatewayError as error:
        return _error_response(error, request.request_id)
    return _respond(result)


@allow("GET")
def list_models(request):
    """GET /v1/models: every model some enabled provider offers (OpenAI's list shape)."""
    try:
        authenticate_gateway_request(request, Scope.AI_EXECUTE)
    except GatewayError as error:
        return _error_response(error)
    return JsonResponse({"object": "list", "data": gateway.models_list()})


@allow("GET")
def retrieve_model(request, model: str):
    """GET /v1/models/{model}: one model (ids may contain "/"); 404 `model_not_found`."""
    try:
        authenticate_gateway_request(request, Scope.AI_EXECUTE)
        return JsonResponse(gateway.model_get(model))
    except GatewayError as error:
        return _error_response(error)


@csrf_exempt
def unknown_path(request, path: str = ""):
    """Any other /v1/ path, whatever the method: OpenAI's 404, never an HTML page. The caller
    is authenticated first, as on every gateway path (an anonymous one learns nothing but
    401)."""
    try:
        authenticate_gateway_request(request, Scope.AI_EXECUTE)
    except GatewayError as error:
        return _error_response(error, request.request_id)
    error = GatewayError(
        404,
        f"Unknown path {request.path} (the gateway serves /v1/chat/completions, "
        "/v1/embeddings, /v1/models, /v1/messages and /v1/messages/count_tokens).",
        type="invalid_request_error",
        code="not_found",
    )
    return _error_response(error, request.request_id)


# --- Anthropic's Messages API ----------------------------------------------------------------


@checks_own_body_size
@allow("POST", anthropic=True)
def messages(request):
    """POST /v1/messages: Anthropic's Messages API, routed like chat completions to any
    provider; the answer (or its event stream) and the errors in Anthropic's shapes."""
    request_id = request.request_id
    try:
        chat_request, result = _route(
            request,
            "messages",
            functools.partial(_parsed, anthropic_format.messages_request),
            stream_format=lambda r: anthropic_format.MessageStream(r, request_id=request_id),
        )
    except GatewayError as error:
        return _anthropic_error_response(error, request_id)
    if result.stream is None:
        result.body = anthropic_format.message_response(
            result.body, chat_request, request_id=request_id, cost=result.body["usage"]["cost"]
        )
    return _respond(result)


@checks_own_body_size
@allow("POST", anthropic=True)
def count_tokens(request):
    """POST /v1/messages/count_tokens: `{"input_tokens": N}` for a Messages request's
    prompt, as the target the policies pick would count it."""
    try:
        principal = _authorised(request, "count_tokens")
        result = gateway.count_tokens(
            principal=principal,
            request=_parsed(anthropic_format.count_tokens_request, _json_body(request)),
            request_id=request.request_id,
            headers=request.headers,
        )
    except GatewayError as error:
        return _anthropic_error_response(error, request.request_id)
    return _respond(result)


def _native_chat_request(body: dict) -> ChatRequest:
    try:
        return native_chat_request(body, default_model=settings.GATEWAY_DEFAULT_MODEL)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


@checks_own_body_size
@allow("POST")
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


@allow("POST")
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
