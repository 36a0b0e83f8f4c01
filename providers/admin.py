from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin_base import ReadOnlyAdmin, change_panel_register, change_panels
from core.metrics import circuit_states_by_process

from .adapters import config_help
from .models import CAPABILITY_FIELDS, Provider, ProviderHealthCheck, ProviderModel
from .prices import prices_edited
from .pricing import PER_MILLION, RATES, TIER_THRESHOLD
from .services import provider_drain, provider_undrain

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
        self.fields["config"].help_text = config_help()

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
    *CAPABILITY_FIELDS.values(),
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
    """The provider's models, one line each, narrow enough for a 1280 px screen: prices,
    the context window and the switches; limits and capabilities are shown as text and
    edited on the model's own page (the pencil)."""

    model = ProviderModel
    form = ProviderModelForm
    extra = 0
    show_change_link = True
    fields = [
        "model",
        "upstream_model",
        "input_price",
        "cached_input_price",
        "cache_write_price",
        "output_price",
        "reasoning_price",
        "prices_overridden",
        "context_window",
        "capabilities_shown",
        "is_default",
        "enabled",
    ]
    readonly_fields = ["capabilities_shown"]

    @admin.display(description="capabilities, max output")
    def capabilities_shown(self, obj):
        if not obj.pk:
            return "-"
        caps = ", ".join(sorted(obj.capabilities)) or "none"
        limit = f"{obj.max_output_tokens:,}" if obj.max_output_tokens else "no limit"
        return f"{caps}; max output {limit}"


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    """Providers. `status` is the health probes' finding and is shown, not edited; an
    operator takes a provider out of routing with the explicit, audited Drain control."""

    form = ProviderAdminForm
    list_display = [
        "id",
        "name",
        "type",
        "status_shown",
        "avg_response_time",
        "capacity",
        "key_set",
        "base_url",
    ]
    list_filter = ["type", "status"]
    search_fields = ["id", "name"]
    ordering = ["id"]
    inlines = [ProviderModelInline]
    fields = [
        *(f for f in ProviderAdminForm.Meta.fields if f != "status"),
        "clear_api_key",
    ]
    change_form_template = "admin/providers/provider/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj else []

    def get_urls(self):
        drain = path(
            "<path:object_id>/drain/",
            self.admin_site.admin_view(self.drain_view),
            name="providers_provider_drain",
        )
        return [drain, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        provider = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if provider is not None:
            extra["health_panels"] = change_panels(request, provider)
            extra["drain_url"] = reverse("admin:providers_provider_drain", args=[provider.pk])
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def drain_view(self, request, object_id):
        """Drain (no traffic at all, not even as a last resort) or undrain one provider,
        with a reason; audited like every provider change."""
        provider = self.get_object(request, object_id)
        if provider is None:
            raise Http404
        if not self.has_change_permission(request, provider):
            raise PermissionDenied
        change_url = reverse("admin:providers_provider_change", args=[provider.pk])
        if request.method == "POST":
            if provider.drained_at:
                provider_undrain(provider=provider)
                self.message_user(request, f"{provider.id} is routed to again.", messages.SUCCESS)
            else:
                reason = request.POST.get("reason", "")
                actor = f"{request.user.get_username()} (admin)"
                provider_drain(provider=provider, reason=reason, actor_label=actor)
                self.message_user(
                    request,
                    f"{provider.id} is drained: no request goes to it until you undrain it.",
                    messages.WARNING,
                )
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{'Undrain' if provider.drained_at else 'Drain'} {provider.id}",
            "provider": provider,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/providers/provider/drain.html", context)

    @admin.display(description="status", ordering="status")
    def status_shown(self, obj):
        if obj.drained_at:
            return format_html('<span class="prov-drained">drained</span> ({})', obj.status)
        css = {"down": "prov-down", "degraded": "prov-degraded"}.get(obj.status, "")
        return format_html('<span class="{}">{}</span>', css, obj.status)

    @admin.display(boolean=True, description="API key")
    def key_set(self, obj):
        return obj.has_api_key


def _health_panel(request, provider):
    """The probes' view: status with its reason, the last probes, every web process's
    circuit breaker."""
    checks = list(provider.health_checks.all()[:10])
    change = provider.health_checks.exclude(status_before=F("status_after")).first()
    source, states = circuit_states_by_process()
    return {
        "title": "Health",
        "template": "admin/providers/provider/health_panel.html",
        "provider": provider,
        "change": change,
        "checks": checks,
        "breakers": sorted(states.get(provider.id, {}).items()),
        "breaker_source": source,
    }


change_panel_register("providers.Provider", _health_panel)


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
        *CAPABILITY_FIELDS.values(),
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
        "latency_ms",
        "error_shown",
        "status_change",
        "models_listed",
    ]
    list_filter = ["outcome", "provider", "status_after"]
    date_hierarchy = "checked_at"
    ordering = ["-checked_at"]
    show_full_result_count = False

    @admin.display(description="latency", ordering="latency")
    def latency_ms(self, obj):
        return f"{obj.latency * 1000:,.0f} ms"

    @admin.display(description="error")
    def error_shown(self, obj):
        text = obj.error_type + (f": {obj.error_message[:80]}" if obj.error_message else "")
        return text or "-"

    @admin.display(description="status")
    def status_change(self, obj):
        if obj.status_before == obj.status_after:
            return obj.status_after
        return f"{obj.status_before} → {obj.status_after}"
