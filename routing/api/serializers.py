from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api_errors import FullCleanModelSerializer
from routing.models import RoutingPolicy


# The policy language's schema (routing/engine/schema.py, components added by
# routing.api.schema.add_policy_components).
@extend_schema_field({"$ref": "#/components/schemas/PolicyConditions"})
class ConditionsField(serializers.JSONField):
    pass


@extend_schema_field({"$ref": "#/components/schemas/PolicyActions"})
class ActionsField(serializers.JSONField):
    pass


class RoutingPolicySerializer(FullCleanModelSerializer):
    conditions = ConditionsField(
        required=False,
        help_text="Which requests the policy applies to; {} matches every request "
        "(docs/policies.md#conditions).",
    )
    actions = ActionsField(
        required=False,
        help_text="Where matching requests go, and how; every key has a default, {} included "
        "(docs/policies.md#actions).",
    )
    sensitive_values = serializers.JSONField(
        write_only=True,
        required=False,
        help_text="Write-only, stored encrypted: an object of named values that conditions and "
        'actions use as {"$sensitive": "<name>"}. Omit to keep the current ones, {} to clear.',
    )
    sensitive_keys = serializers.SerializerMethodField(
        help_text="Names of the policy's sensitive values (the values themselves are never shown)."
    )

    def get_sensitive_keys(self, obj) -> list[str]:
        return sorted(obj.sensitive_values or {})

    def validate_sensitive_values(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object mapping names to values.")
        return value

    class Meta:
        model = RoutingPolicy
        fields = [
            "id",
            "name",
            "description",
            "conditions",
            "actions",
            "status",
            "priority",
            "sensitive_values",
            "sensitive_keys",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
