"""One place that turns exceptions into JSON error responses for the REST API.

Bodies keep DRF's shape: `{"field": ["message", ...]}` for validation errors and
`{"detail": "..."}` otherwise (documented in docs/api.md).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def validation_error_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {field: list(messages) for field, messages in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}


def exception_handler(exc, context):
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
