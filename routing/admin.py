from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from . import services
from .models import RoutingPolicy


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "priority", "strategy", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]
    ordering = ["priority", "name"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fields = [
        "id",
        "name",
        "description",
        "status",
        "priority",
        "conditions",
        "actions",
        "created_at",
        "updated_at",
    ]
    actions = ["activate_policies", "deactivate_policies"]

    @admin.display(description="strategy")
    def strategy(self, obj):
        return (
            (obj.actions or {}).get("strategy", "priority")
            if isinstance(obj.actions, dict)
            else "?"
        )

    def _set_status(self, request, queryset, service, verb):
        done = 0
        for policy in queryset:
            try:
                service(policy=policy)
                done += 1
            except ValidationError as exc:
                self.message_user(
                    request, f"{policy.name}: {'; '.join(exc.messages)}", messages.ERROR
                )
        if done:
            self.message_user(request, f"{verb} {done} policies.", messages.SUCCESS)

    @admin.action(description="Activate selected policies")
    def activate_policies(self, request, queryset):
        self._set_status(request, queryset, services.policy_activate, "Activated")

    @admin.action(description="Deactivate selected policies")
    def deactivate_policies(self, request, queryset):
        self._set_status(request, queryset, services.policy_deactivate, "Deactivated")
