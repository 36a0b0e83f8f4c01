"""The gateway application: an ASGI app for the gateway's paths, served on the event loop.

auterity/asgi.py sends `/v1/...`, `/api/ai/execute` and `/healthz` here and everything else
(admin, REST API, metrics, the dry run) to Django. A request's path, top to bottom:

    request id -> concurrency cap -> route (404/405 as OpenAI errors) -> auth (principal
    snapshot) -> body size limit -> parse -> limits, decide, call, record (gateway/service.py)
    -> respond (a stream relayed chunk by chunk; a client that leaves cancels it)

No Django middleware runs here: each step above is explicit, and what the browser-facing
middleware did (sessions, CSRF, messages, clickjacking headers) does not apply to bearer-token
JSON endpoints; the one exception, an admin session calling the gateway, is checked by
gateway/auth.py with Django's own CSRF middleware. Blocking work goes to the I/O threads
(gateway/offload.py). When the process holds GATEWAY_MAX_CONCURRENT_REQUESTS requests, the
next one gets a 503 with Retry-After at once rather than waiting in a queue; /healthz answers
regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from django.conf import settings

from accounts.choices import Scope
from core import metrics, request_context
from core.api_errors import store_unavailable_response
from core.snapshot import StoreUnavailable
from providers.adapters.types import ChatRequest, EmbeddingsRequest, RequestValidationError
from routing.decisions import native_chat_request

from . import service as gateway
from .auth import authenticate
from .formats import anthropic as anthropic_format
from .offload import run_blocking
from .service import GatewayError, GatewayResult

logger = logging.getLogger(__name__)

JSON = b"application/json"


@dataclass
class Request:
    """What a handler sees of an HTTP request."""

    scope: dict
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    request_id: str
    receive: Callable[[], Awaitable[dict]]
    body: bytes = b""

    def content_length(self) -> int | None:
        try:
            return max(0, int(self.headers["content-length"]))
        except (KeyError, ValueError):
            return None

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body, or None when it grows past `limit` bytes (sent chunked)."""
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: bytes = JSON
    stream: gateway._StreamBody | None = None


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


def json_response(data, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, dict(headers or {}))


def error_response(
    error: GatewayError, request_id: str | None = None, *, anthropic: bool = False
) -> Response:
    """The error in OpenAI's shape, or Anthropic's (`anthropic`: the Messages API's paths)."""
    headers = {}
    if request_id:
        headers["X-Request-ID"] = request_id
    if error.retry_after:
        headers["Retry-After"] = str(max(1, round(error.retry_after)))
    headers.update(error.headers)
    if anthropic:
        body = anthropic_format.error_body(error.status, error.message, request_id)
        return json_response(body, error.status, headers)
    return json_response(error.body(), error.status, headers)


def parse_json_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError(
            400, f"The request body is not valid JSON: {exc}", type="invalid_request_error"
        ) from exc
    if not isinstance(body, dict):
        raise GatewayError(
            400, "The request body must be a JSON object.", type="invalid_request_error"
        )
    return body


# --- the handlers --------------------------------------------------------------------------


async def _authorised(request: Request, endpoint: str):
    """Authenticate (ai:execute), refuse an oversized body unread, read it; (principal, body
    as a JSON object)."""
    principal = await authenticate(request.headers, request.scope, Scope.AI_EXECUTE)
    limit = settings.MAX_REQUEST_BODY_BYTES
    declared = request.content_length()
    if declared is not None and declared > limit:
        await _refuse_size(principal, request, endpoint, declared)
    body = await request.read_body(limit)
    if body is None:
        await _refuse_size(principal, request, endpoint, limit + 1)
    return principal, parse_json_body(body)


async def _route(
    request: Request, endpoint: str, parse, stream_format=None
) -> tuple[ChatRequest, GatewayResult]:
    """What every routed chat endpoint does before shaping its answer: authenticate, refuse
    an oversized body unread, parse it with `parse`, serve it (a stream rendered by
    `stream_format`). Raises GatewayError."""
    principal, body = await _authorised(request, endpoint)
    chat_request = parse(body)
    result = await gateway.chat_completion(
        principal=principal,
        request=chat_request,
        request_id=request.request_id,
        headers=request.headers,
        endpoint=endpoint,
        stream_format=stream_format,
    )
    return chat_request, result


async def _refuse_size(principal, request: Request, endpoint: str, size: int) -> None:
    await run_blocking(
        gateway.body_size_check,
        principal=principal,
        request_id=request.request_id,
        endpoint=endpoint,
        size=size,
    )


def _parsed(parse, body: dict):
    try:
        return parse(body)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


def _respond(result: GatewayResult) -> Response:
    if result.stream is not None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **result.headers()}
        return Response(
            200, headers=headers, content_type=b"text/event-stream", stream=result.stream
        )
    body = json.dumps(result.body, separators=(",", ":")).encode()
    return Response(200, body, result.headers())


async def chat_completions(request: Request) -> Response:
    """POST /v1/chat/completions: OpenAI's chat completions API, routed."""
    _, result = await _route(request, "chat", gateway.parse_chat_request)
    return _respond(result)


async def embeddings(request: Request) -> Response:
    """POST /v1/embeddings: OpenAI's embeddings API, routed among the embedding models."""
    principal, body = await _authorised(request, "embeddings")
    result = await gateway.embeddings_create(
        principal=principal,
        request=_parsed(EmbeddingsRequest.from_openai, body),
        request_id=request.request_id,
        headers=request.headers,
    )
    return _respond(result)


async def list_models(request: Request) -> Response:
    """GET /v1/models: every model some enabled provider offers (OpenAI's list shape)."""
    await authenticate(request.headers, request.scope, Scope.AI_EXECUTE)
    return json_response({"object": "list", "data": await run_blocking(gateway.models_list)})


async def retrieve_model(request: Request) -> Response:
    """GET /v1/models/{model}: one model (ids may contain "/"); 404 `model_not_found`."""
    await authenticate(request.headers, request.scope, Scope.AI_EXECUTE)
    model = request.path.removeprefix(_MODEL_PREFIX)
    return json_response(await run_blocking(gateway.model_get, model))


async def messages(request: Request) -> Response:
    """POST /v1/messages: Anthropic's Messages API, routed like chat completions to any
    provider; the answer (or its event stream) and the errors in Anthropic's shapes."""
    request_id = request.request_id
    chat_request, result = await _route(
        request,
        "messages",
        functools.partial(_parsed, anthropic_format.messages_request),
        stream_format=lambda r: anthropic_format.MessageStream(r, request_id=request_id),
    )
    if result.stream is None:
        result.body = anthropic_format.message_response(
            result.body, chat_request, request_id=request_id, cost=result.body["usage"]["cost"]
        )
    return _respond(result)


async def count_tokens(request: Request) -> Response:
    """POST /v1/messages/count_tokens: `{"input_tokens": N}` for a Messages request's
    prompt, as the target the policies pick would count it."""
    principal, body = await _authorised(request, "count_tokens")
    result = await gateway.count_tokens(
        principal=principal,
        request=_parsed(anthropic_format.count_tokens_request, body),
        request_id=request.request_id,
        headers=request.headers,
    )
    return _respond(result)


def _native_chat_request(body: dict) -> ChatRequest:
    try:
        return native_chat_request(body, default_model=settings.GATEWAY_DEFAULT_MODEL)
    except RequestValidationError as exc:
        raise GatewayError(400, exc.message, type="invalid_request_error", param=exc.param) from exc


async def execute(request: Request) -> Response:
    """POST /api/ai/execute: the native API; the output plus the routing decision."""
    chat_request, result = await _route(request, "execute", _native_chat_request)
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
    return json_response(body, headers=result.headers())


async def healthz(request: Request) -> Response:
    """GET /healthz: the process is up and its event loop turns."""
    return json_response({"status": "ok"})


Handler = Callable[[Request], Awaitable[Response]]

# path -> method -> handler. The Django URLconf names the same paths (gateway/urls.py) so
# that reverse() and the in-process bridge (gateway/bridge.py) know them.
ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": chat_completions},
    "/v1/embeddings": {"POST": embeddings},
    "/v1/models": {"GET": list_models, "HEAD": list_models},
    "/v1/messages": {"POST": messages},
    "/v1/messages/count_tokens": {"POST": count_tokens},
    "/api/ai/execute": {"POST": execute},
    "/healthz": {"GET": healthz, "HEAD": healthz},
}
# GET /v1/models/{model}: model ids may contain "/".
_MODEL_PREFIX = "/v1/models/"
_MODEL_ROUTE = {"GET": retrieve_model, "HEAD": retrieve_model}
# Where errors take Anthropic's shape (what the anthropic SDK parses).
_ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
# Served whatever the load: a probe must tell a busy process from a dead one.
_UNCAPPED = frozenset({"/healthz"})


def serves(path: str) -> bool:
    """Whether the gateway application answers `path` (else Django does)."""
    return path in ROUTES or path.startswith("/v1/")


async def _not_found(request: Request) -> Response:
    """Any other /v1/ path, whatever the method: OpenAI's 404, never an HTML page. The caller
    is authenticated first, as on every gateway path (an anonymous one learns nothing but
    401)."""
    await authenticate(request.headers, request.scope, Scope.AI_EXECUTE)
    raise GatewayError(
        404,
        f"Unknown path {request.path} (the gateway serves /v1/chat/completions, "
        "/v1/embeddings, /v1/models, /v1/messages and /v1/messages/count_tokens).",
        type="invalid_request_error",
        code="not_found",
    )


def _not_allowed(request: Request, allowed) -> GatewayError:
    return GatewayError(
        405,
        f"Method {request.method} is not allowed here; use {' or '.join(allowed)}.",
        type="invalid_request_error",
        code="method_not_allowed",
        headers={"Allow": ", ".join(allowed)},
    )


def _over_capacity(request: Request) -> Response:
    return error_response(
        GatewayError(
            503,
            "This gateway process is at its limit of concurrent requests "
            f"(GATEWAY_MAX_CONCURRENT_REQUESTS={settings.GATEWAY_MAX_CONCURRENT_REQUESTS}); "
            "retry shortly.",
            type="server_overloaded",
            code="server_overloaded",
            retry_after=1,
        ),
        request.request_id,
    )


def _headers_of(scope: dict) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            value = f"{headers[name]}{'; ' if name == 'cookie' else ', '}{value}"
        headers[name] = value
    return headers


class GatewayApp:
    """The ASGI application (HTTP only; auterity/asgi.py handles the lifespan)."""

    def __init__(self):
        self.active = 0

    async def __call__(self, scope: dict, receive, send) -> None:
        headers = _headers_of(scope)
        path = scope["path"]
        # The bridge (gateway/bridge.py) passes the id Django's middleware already gave.
        bridged = scope.get("auterity.request_id")
        context = request_context.request_begin(
            scope["method"], path, headers.get("x-request-id"), bridged
        )
        request = Request(
            scope, scope["method"], path, headers, context.request_id, receive=receive
        )
        capped = path not in _UNCAPPED
        if capped and self.active >= settings.GATEWAY_MAX_CONCURRENT_REQUESTS:
            response = _over_capacity(request)
            capped = False
        else:
            response = None
        if capped:
            self.active += 1
        try:
            if response is None:
                response = await self._handle(request)
            context.status = response.status
            route = request.path if request.path in ROUTES else "other"
            metrics.gateway_response(route, request.method, response.status)
            if context.client_request_id:
                response.headers["X-Client-Request-ID"] = context.client_request_id
            response.headers.setdefault("X-Request-ID", context.request_id)
            await _send(response, request, send)
        finally:
            if capped:
                self.active -= 1
            if not bridged:
                request_context.request_end(context)

    async def _handle(self, request: Request) -> Response:
        methods = ROUTES.get(request.path)
        if methods is None and request.path.startswith(_MODEL_PREFIX) and len(request.path) > 11:
            methods = _MODEL_ROUTE
        try:
            if methods is None:
                return await _not_found(request)
            handler = methods.get(request.method)
            if handler is None:
                raise _not_allowed(request, list(methods))
            return await handler(request)
        except GatewayError as error:
            anthropic = request.path in _ANTHROPIC_PATHS
            return error_response(error, request.request_id, anthropic=anthropic)
        except StoreUnavailable as exc:
            # Something never loaded is needed while its store is down (core/snapshot.py).
            django_response = store_unavailable_response(exc, request.path)
            return Response(
                django_response.status_code,
                django_response.content,
                {"Retry-After": django_response["Retry-After"]},
            )
        except ClientGone:
            return Response(499)


def _start(response: Response) -> dict:
    # What SecurityMiddleware adds on Django's paths and applies to JSON too.
    headers = [(b"content-type", response.content_type), (b"x-content-type-options", b"nosniff")]
    if response.stream is None:
        headers.append((b"content-length", str(len(response.body)).encode()))
    headers.extend(
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in response.headers.items()
    )
    return {"type": "http.response.start", "status": response.status, "headers": headers}


async def _send(response: Response, request: Request, send) -> None:
    if response.stream is None:
        with contextlib.suppress(Exception):  # a failed send: the client left, nothing to do
            await send(_start(response))
            await send({"type": "http.response.body", "body": response.body})
        return
    try:
        await _relay(response, request, send)
    finally:
        await response.stream.aclose()


async def _relay(response: Response, request: Request, send) -> None:
    """Send a stream's events as they come; a client that leaves (http.disconnect, or a send
    that fails) cancels the upstream read, and the stream's row says `cancelled`."""

    async def emit(message: dict) -> None:
        try:
            await send(message)
        except Exception as exc:  # the server's way of saying the connection is gone
            raise _SendFailed from exc

    async def pump():
        await emit(_start(response))
        async for chunk in response.stream:
            await emit({"type": "http.response.body", "body": chunk, "more_body": True})
        await emit({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected():
        while (await request.receive())["type"] != "http.disconnect":
            pass

    relay = asyncio.ensure_future(pump())
    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (watch, relay):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not relay.cancelled() and relay.exception() is not None:
        if isinstance(relay.exception(), _SendFailed):
            return  # the connection broke under a send: the client left
        raise relay.exception()


class _SendFailed(Exception):
    pass
