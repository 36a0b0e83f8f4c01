from rest_framework import serializers

from core.api_errors import FullCleanModelSerializer
from providers.models import Provider, ProviderModel


class ProviderModelSerializer(FullCleanModelSerializer):
    class Meta:
        model = ProviderModel
        fields = [
            "id",
            "provider",
            "model",
            "upstream_model",
            "input_price",
            "output_price",
            "context_window",
            "max_output_tokens",
            "supports_streaming",
            "supports_tools",
            "supports_vision",
            "supports_json_mode",
            "supports_embeddings",
            "is_default",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # The partial unique constraint is checked in clean() with a clearer message.
        validators = []


class ProviderSerializer(FullCleanModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=True,
        help_text="Write-only; stored encrypted. Omit to keep the current key, '' to clear it.",
        style={"input_type": "password"},
    )
    has_api_key = serializers.BooleanField(read_only=True)
    models = serializers.SlugRelatedField(slug_field="model", many=True, read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "type",
            "cost_per_token",
            "avg_response_time",
            "capacity",
            "status",
            "config",
            "api_key",
            "has_api_key",
            "models",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["id"].read_only = True  # the primary key is referenced by logs and policies
        return fields
