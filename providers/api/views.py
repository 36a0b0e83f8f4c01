from rest_framework import viewsets

from providers.models import CAPABILITY_FIELDS, Provider, ProviderModel

from .serializers import ProviderModelSerializer, ProviderSerializer


class ProviderViewSet(viewsets.ModelViewSet):
    """AI providers. `api_key` is write-only and never returned."""

    queryset = Provider.objects.prefetch_related("models")
    serializer_class = ProviderSerializer
    filterset_fields = ["type", "status"]
    search_fields = ["id", "name"]
    ordering_fields = ["id", "name", "type", "status", "avg_response_time", "capacity"]


class ProviderModelViewSet(viewsets.ModelViewSet):
    """Models offered by providers, with list prices (USD per token) and capabilities."""

    queryset = ProviderModel.objects.select_related("provider")
    serializer_class = ProviderModelSerializer
    filterset_fields = [
        "provider",
        "model",
        "is_default",
        "enabled",
        *CAPABILITY_FIELDS.values(),
    ]
    search_fields = ["model", "upstream_model", "provider__id"]
    ordering_fields = ["model", "provider", "input_price", "output_price", "context_window"]
