from rest_framework import serializers

from core.api_errors import FullCleanModelSerializer
from providers.adapters import config_help
from providers.models import CAPABILITY_FIELDS, Provider, ProviderModel
from providers.prices import PRICE_FIELDS, prices_edited


class ProviderModelSerializer(FullCleanModelSerializer):
    """A model offer with its price rules, USD per token (docs/providers.md#pricing). Writing
    a price marks the row `prices_overridden` (sync_prices keeps it) unless the same request
    sets `prices_overridden`; PATCH `{"prices_overridden": false}` hands it back to the sync."""

    class Meta:
        model = ProviderModel
        fields = [
            "id",
            "provider",
            "model",
            "upstream_model",
            *PRICE_FIELDS,
            "prices_overridden",
            "price_source",
            "prices_synced_at",
            "expected_thinking_tokens",
            "context_window",
            "max_output_tokens",
            *CAPABILITY_FIELDS.values(),
            "is_default",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["price_source", "prices_synced_at", "created_at", "updated_at"]
        # The partial unique constraint is checked in clean() with a clearer message.
        validators = []

    def _validated_instance(self, instance, validated_data):
        changed = {
            name
            for name, value in validated_data.items()
            if instance.pk is None or getattr(instance, name) != value
        }
        prices_edited(instance, changed)
        return super()._validated_instance(instance, validated_data)


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
        extra_kwargs = {"config": {"help_text": config_help()}}

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            fields["id"].read_only = True  # the primary key is referenced by logs and policies
        return fields
