from decimal import Decimal

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join

from core.admin_base import ReadOnlyAdmin

from .models import Provider, ProviderHealthCheck, ProviderModel
from .prices import prices_edited
from .pricing import PER_MILLION, RATES, TIER_THRESHOLD

_MILLION = Decimal(PER_MILLION)


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


class PerMillionTokensField(forms.DecimalField):
    """A price stored in USD per token, shown and typed in USD per 1M tokens, as providers
    publish them."""

    def __init__(self, **kwargs):
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            return _per_million(value)
        return value  # what the operator typed, shown again with the form's errors

    def to_python(self, value):
        value = super().to_python(value)
        return None if value is None else (value / _MILLION).quantize(Decimal("1e-12"))

    def validate(self, value):
        super().validate(None if value is None else value * _MILLION)


def _per_million(value) -> str:
    """'2.5' for 0.0000025: the per-token price times a million, without trailing zeros."""
    text = format((Decimal(value) * _MILLION).normalize(), "f")
    return text


_PRICE_LABELS = {
    "input_price": "Input $/1M",
    "cached_input_price": "Cached input $/1M",
    "cache_write_price": "Cache write $/1M",
    "output_price": "Output $/1M",
    "reasoning_price": "Reasoning $/1M",
}


_LIMIT_FIELDS = [
    "context_window",
    "max_output_tokens",
    "supports_streaming",
    "supports_tools",
    "supports_vision",
    "supports_json_mode",
    "supports_embeddings",
]


class ProviderModelForm(forms.ModelForm):
    """A model's prices in USD per 1M tokens. Changing one marks the row `prices_overridden`
    (sync_prices keeps it) unless the same edit sets or clears that flag itself."""

    class Meta:
        model = ProviderModel
        fields = [
            "provider",
            "model",
            "upstream_model",
            *_PRICE_LABELS,
            "price_tiers",
            "prices_overridden",
            "expected_thinking_tokens",
            *_LIMIT_FIELDS,
            "is_default",
            "enabled",
        ]
        field_classes = dict.fromkeys(_PRICE_LABELS, PerMillionTokensField)
        labels = _PRICE_LABELS
        help_texts = {
            "cached_input_price": "Blank: billed as input.",
            "cache_write_price": "Blank: billed as input.",
            "reasoning_price": "Blank: billed as output.",
        }

    def save(self, commit=True):
        prices_edited(self.instance, set(self.changed_data))
        return super().save(commit)


def prices_summary(obj: ProviderModel) -> str:
    """Every rate per 1M tokens, then each long-context tier."""
    lines = [
        (
            "",
            ", ".join(
                f"{label.removesuffix(' $/1M').lower()} ${_per_million(getattr(obj, name))}"
                for name, label in _PRICE_LABELS.items()
                if getattr(obj, name) is not None
            ),
        )
    ]
    for tier in obj.price_tiers or ():
        rates = ", ".join(
            f"{rate.replace('_', ' ')} ${_per_million(tier[rate])}"
            for rate in RATES
            if rate in tier
        )
        lines.append((f"above {tier[TIER_THRESHOLD]:,} input tokens: ", rates))
    return format_html_join("", "<div>{}{}</div>", lines)


class ProviderModelInline(admin.TabularInline):
    model = ProviderModel
    form = ProviderModelForm
    extra = 0
    fields = [
        "model",
        "upstream_model",
        "input_price",
        "cached_input_price",
        "cache_write_price",
        "output_price",
        "reasoning_price",
        "prices_overridden",
        *_LIMIT_FIELDS,
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
    form = ProviderModelForm
    list_display = [
        "model",
        "provider",
        "upstream_model",
        "input_per_million",
        "output_per_million",
        "prices_overridden",
        "context_window",
        "is_default",
        "enabled",
    ]
    list_filter = [
        "provider",
        "is_default",
        "enabled",
        "prices_overridden",
        "supports_tools",
        "supports_vision",
    ]
    search_fields = ["model", "upstream_model", "provider__id"]
    ordering = ["model", "provider"]
    list_select_related = ["provider"]
    readonly_fields = ["prices", "price_source", "prices_synced_at"]
    fieldsets = [
        (None, {"fields": ["provider", "model", "upstream_model", "is_default", "enabled"]}),
        (
            "Prices (USD per 1M tokens)",
            {
                "fields": [
                    "prices",
                    *_PRICE_LABELS,
                    "price_tiers",
                    "prices_overridden",
                    "price_source",
                    "prices_synced_at",
                    "expected_thinking_tokens",
                ]
            },
        ),
        ("Limits and capabilities", {"fields": _LIMIT_FIELDS}),
    ]

    @admin.display(description="Input $/1M", ordering="input_price")
    def input_per_million(self, obj):
        return _per_million(obj.input_price)

    @admin.display(description="Output $/1M", ordering="output_price")
    def output_per_million(self, obj):
        return _per_million(obj.output_price)

    @admin.display(description="Price rules")
    def prices(self, obj):
        return prices_summary(obj) if obj.pk else "-"


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
