"""One place that turns exceptions into JSON error responses for the REST API.

Bodies keep DRF's shape: `{"field": ["message", ...]}` for validation errors and
`{"detail": "..."}` otherwise (documented in docs/api.md).
"""

import functools

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
from django.views.defaults import page_not_found as django_page_not_found
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .snapshot import StoreUnavailable

# Paths whose clients parse OpenAI's error shape (the gateway's); every other path gets DRF's.
_OPENAI_SHAPED = ("/v1/", "/api/ai/")
# A store outage is usually short: clients may retry after a second.
_STORE_RETRY_AFTER = "1"


def validation_error_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {field: list(messages) for field, messages in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}


def store_unavailable_response(exc: StoreUnavailable, path: str) -> JsonResponse:
    """503 JSON for a request that needed something never loaded while its store is down."""
    message = f"{exc} (try again shortly)."
    if path.startswith(_OPENAI_SHAPED):
        body = {
            "error": {
                "message": message,
                "type": "service_unavailable",
                "param": None,
                "code": "store_unavailable",
            }
        }
    else:
        body = {"detail": message, "code": "store_unavailable"}
    response = JsonResponse(body, status=503)
    response["Retry-After"] = _STORE_RETRY_AFTER
    return response


def require_get_json(view):
    """Like Django's require_GET, but the 405 is JSON (with Allow), as every API answer is."""

    @functools.wraps(view)
    def inner(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                {"detail": f'Method "{request.method}" not allowed.', "code": "method_not_allowed"},
                status=405,
            )
            response["Allow"] = "GET, HEAD"
            return response
        return view(request, *args, **kwargs)

    return inner


def page_not_found(request, exception=None):
    """handler404: JSON for API paths (a URL no route matches, e.g. an id with a dot in it),
    Django's page for the rest. In the shape the path's clients parse."""
    if request.path.startswith(_OPENAI_SHAPED):
        body = {
            "error": {
                "message": f"Unknown path {request.path}.",
                "type": "invalid_request_error",
                "param": None,
                "code": "not_found",
            }
        }
        return JsonResponse(body, status=404)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return django_page_not_found(request, exception)


class StoreUnavailableMiddleware:
    """Turns a StoreUnavailable that escaped a view into a 503 JSON answer instead of a 500
    (core/snapshot.py says when it is raised). The gateway application (gateway/app.py) answers
    the same for its own paths."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, StoreUnavailable):
            return store_unavailable_response(exception, request.path)
        return None


def exception_handler(exc, context):
    if isinstance(exc, StoreUnavailable):
        return store_unavailable_response(exc, context["request"].path)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    elif isinstance(exc, ProtectedError | RestrictedError):
        names = (
            sorted({str(obj) for obj in list(exc.protected_objects)[:5]})
            if hasattr(exc, "protected_objects")
            else []
        )
        return Response(
            {"detail": "Cannot delete: other records still refer to this one.", "blocking": names},
            status=status.HTTP_409_CONFLICT,
        )
    return drf_exception_handler(exc, context)


class FullCleanModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that runs the model's full_clean(), so admin and API share the rules."""

    def _validated_instance(self, instance, validated_data):
        for attr, value in validated_data.items():
            setattr(instance, attr, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(validation_error_detail(exc)) from exc
        # full_clean() lets None through for a `blank=True` field (a JSON field's empty value),
        # which a NOT NULL column then refuses with a 500: refuse it here, naming the field.
        nulls = {
            field.name: ["This field may not be null."]
            for field in instance._meta.concrete_fields
            if not field.null
            and field.name in validated_data
            and validated_data[field.name] is None
        }
        if nulls:
            raise serializers.ValidationError(nulls)
        return instance

    def create(self, validated_data):
        instance = self._validated_instance(self.Meta.model(), validated_data)
        instance.save()
        return instance

    def update(self, instance, validated_data):
        instance = self._validated_instance(instance, validated_data)
        instance.save()
        return instance


# Answers every REST API operation may give besides its own: (code, when), documented by
# `document_error_responses` so that a client (and the API fuzzing in CI) knows them all.
_ALWAYS = (
    ("401", "No credentials, or invalid ones."),
    ("403", "The caller lacks the scope (`routing:view` to read, `routing:manage` to write)."),
    ("429", "Too many requests from this caller (Retry-After)."),
    ("503", "A data store is unreachable and the answer needs it (`store_unavailable`)."),
)
_WITH_INPUT = (("400", "Invalid input: the body says which field or parameter, and why."),)
_WITH_BODY = (
    ("413", "Body over MAX_REQUEST_BODY_BYTES."),
    ("415", "A body that is not JSON (or a form)."),
)
_WITH_LOOKUP = (("404", "No such object (or page)."),)
_ON_DELETE = (("409", "Other records still refer to it (`blocking` names some)."),)
ERROR_SCHEMA = {
    "type": "object",
    "description": 'DRF\'s error shape: `{"detail": "..."}` (with a `code` for some), or '
    '`{"<field>": ["message", ...]}` for invalid input.',
    "additionalProperties": True,
}


def document_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: add the error answers of `_ALWAYS` and the rest
    to every REST API operation that documents none of its own (the gateway's operations
    document theirs, in OpenAI's shape: gateway/openapi.py)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if any(code.startswith(("4", "5")) for code in responses):
                continue  # documents its own errors
            parameters = operation.get("parameters") or []
            codes = list(_ALWAYS)
            if parameters or "requestBody" in operation:
                codes += _WITH_INPUT
            if "requestBody" in operation:
                codes += _WITH_BODY
            if "{" in path or any(p.get("name") == "page" for p in parameters):
                codes += _WITH_LOOKUP
            if method == "delete":
                codes += _ON_DELETE
            for code, description in codes:
                responses.setdefault(code, {"description": description, "content": error})
    return result
