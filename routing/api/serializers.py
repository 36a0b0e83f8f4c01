from auterity.api_errors import FullCleanModelSerializer
from routing.models import RoutingPolicy


class RoutingPolicySerializer(FullCleanModelSerializer):
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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
