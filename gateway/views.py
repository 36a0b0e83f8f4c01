"""The dry run, `POST /api/routing/simulate`: a plain Django view (no provider is called, so
nothing waits); its errors have the gateway's OpenAI shape. The gateway's serving paths are
gateway/app.py."""

import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.choices import Scope
from providers.adapters.types import ChatRequest, RequestValidationError
from routing.decisions import request_simulate, simulation_request
from routing.engine import UnknownModel

from . import service as gateway
from .app import error_response, parse_json_body
from .auth import authenticate_gateway_request
from .service import GatewayError


def _django_response(response) -> JsonResponse:
    django_response = JsonResponse(json.loads(response.body), status=response.status)
    for name, value in response.headers.items():
        django_response[name] = value
    return django_response


@csrf_exempt
def simulate(request):
    """POST /api/routing/simulate: the decision and its reasons; no provider is called."""
    request_id = request.request_id  # core.request_context.RequestContextMiddleware
    if request.method != "POST":
        error = GatewayError(
            405,
            f"Method {request.method} is not allowed here; use POST.",
            type="invalid_request_error",
            code="method_not_allowed",
            headers={"Allow": "POST"},
        )
        return _django_response(error_response(error, request_id))
    try:
        principal = authenticate_gateway_request(request, Scope.ROUTING_VIEW)
        chat_request = _parsed(simulation_request, parse_json_body(request.body))
        answer = _simulated(
            principal=principal,
            request=chat_request,
            request_id=request_id,
            headers=request.headers,
        )
    except GatewayError as error:
        return _django_response(error_response(error, request_id))
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
