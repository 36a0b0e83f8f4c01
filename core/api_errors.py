"""One place that turns exceptions into JSON error responses for the REST API.

Bodies keep DRF's shape: `{"field": ["message", ...]}` for validation errors and
`{"detail": "..."}` otherwise (documented in docs/api.md).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
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


class StoreUnavailableMiddleware:
    """Turns a StoreUnavailable that escaped a view into a 503 JSON answer instead of a 500
    (core/snapshot.py says when it is raised). In MIDDLEWARE and GATEWAY_MIDDLEWARE."""

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
        return instance

    def create(self, validated_data):
        instance = self._validated_instance(self.Meta.model(), validated_data)
        instance.save()
        return instance

    def update(self, instance, validated_data):
        instance = self._validated_instance(instance, validated_data)
        instance.save()
        return instance
