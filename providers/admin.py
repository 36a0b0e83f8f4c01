from django import forms
from django.contrib import admin

from core.admin_base import ReadOnlyAdmin

from .models import Provider, ProviderHealthCheck, ProviderModel


class ProviderAdminForm(forms.ModelForm):
    """The API key is write-only: the field starts empty and blank means "keep the current one"."""

    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only, stored encrypted. Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "type",
            "status",
            "capacity",
            "cost_per_token",
            "avg_response_time",
            "config",
            "api_key",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["api_key"] = ""

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key", "")
        if not value and self.instance.pk:
            return self.instance.api_key if not self.data.get("clear_api_key") else ""
        return value


class ProviderModelInline(admin.TabularInline):
    model = ProviderModel
    extra = 0
    fields = [
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
    ]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderAdminForm
    list_display = [
        "id",
        "name",
        "type",
        "status",
        "avg_response_time",
        "capacity",
        "key_set",
        "base_url",
    ]
    list_filter = ["type", "status"]
    search_fields = ["id", "name"]
    ordering = ["id"]
    inlines = [ProviderModelInline]
    fields = [*ProviderAdminForm.Meta.fields, "clear_api_key"]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj else []

    @admin.display(boolean=True, description="API key")
    def key_set(self, obj):
        return obj.has_api_key


@admin.register(ProviderModel)
class ProviderModelAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "provider",
        "upstream_model",
        "input_price",
        "output_price",
        "context_window",
        "is_default",
        "enabled",
    ]
    list_filter = ["provider", "is_default", "enabled", "supports_tools", "supports_vision"]
    search_fields = ["model", "upstream_model", "provider__id"]
    ordering = ["model", "provider"]
    list_select_related = ["provider"]


@admin.register(ProviderHealthCheck)
class ProviderHealthCheckAdmin(ReadOnlyAdmin):
    list_display = [
        "checked_at",
        "provider",
        "outcome",
        "latency",
        "error_type",
        "status_before",
        "status_after",
        "models_listed",
    ]
    list_filter = ["outcome", "provider", "status_after"]
    date_hierarchy = "checked_at"
    ordering = ["-checked_at"]
    show_full_result_count = False
