import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from . import services
from .models import RoutingPolicy


class RoutingPolicyAdminForm(forms.ModelForm):
    """Sensitive values are write-only: the field starts empty and blank keeps the current ones."""

    sensitive_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="Write-only, stored encrypted. A JSON object of named values; use one in "
        'conditions or actions as {"$sensitive": "name"}. Leave blank to keep the current ones.',
    )
    clear_sensitive_values = forms.BooleanField(
        required=False, help_text="Remove every sensitive value."
    )

    class Meta:
        model = RoutingPolicy
        fields = ["name", "description", "status", "priority", "conditions", "actions"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["sensitive_values"] = ""

    def clean_sensitive_values(self):
        text = self.cleaned_data.get("sensitive_values", "").strip()
        if not text:
            if self.data.get("clear_sensitive_values"):
                return {}
            return self.instance.sensitive_values if self.instance.pk else {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object mapping names to values.")
        return value

    def _post_clean(self):
        # Set before the model's full_clean(), which resolves references against these values.
        self.instance.sensitive_values = self.cleaned_data.get(
            "sensitive_values", self.instance.sensitive_values
        )
        super()._post_clean()


@admin.register(RoutingPolicy)
class RoutingPolicyAdmin(admin.ModelAdmin):
    form = RoutingPolicyAdminForm
    list_display = ["name", "status", "priority", "strategy", "updated_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]
    ordering = ["priority", "name"]
    readonly_fields = ["id", "sensitive_keys", "created_at", "updated_at"]
    fields = [
        "id",
        "name",
        "description",
        "status",
        "priority",
        "conditions",
        "actions",
        "sensitive_keys",
        "sensitive_values",
        "clear_sensitive_values",
        "created_at",
        "updated_at",
    ]
    actions = ["activate_policies", "deactivate_policies"]

    @admin.display(description="sensitive value names")
    def sensitive_keys(self, obj):
        return ", ".join(sorted(obj.sensitive_values or {})) or "-"

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
