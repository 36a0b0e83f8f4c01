import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from core.admin_base import ReadOnlyAdmin

from . import services
from .choices import Scope
from .limits import api_key_spend
from .models import ApiKey, AuditEvent

LIMIT_FIELDS = [
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "tokens_per_minute",
    "budget_usd",
    "budget_period",
]


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "user", "team", "scopes", "expires_at", *LIMIT_FIELDS]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "user",
        "team",
        "scope_list",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["team"]
    search_fields = ["name", "prefix", "user__username", "team"]
    ordering = ["name"]
    actions = ["revoke_keys"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at", "spent_this_period"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        limits = ("Limits (empty: the defaults; docs/security.md)", {"fields": LIMIT_FIELDS})
        if obj is None:
            return [(None, {"fields": ["name", "user", "team", "scopes", "expires_at"]}), limits]
        return [
            (
                None,
                {
                    "fields": [
                        "name",
                        "prefix",
                        "user",
                        "team",
                        "scopes",
                        "expires_at",
                        "revoked_at",
                        "last_used_at",
                        "created_at",
                    ]
                },
            ),
            (limits[0], {"fields": [*LIMIT_FIELDS, "spent_this_period"]}),
        ]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description="spent this budget period (USD)")
    def spent_this_period(self, obj):
        if obj.pk is None or obj.budget_usd is None:
            return "no budget"
        return f"{api_key_spend(obj):.6f} of {obj.budget_usd}"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, raw_key = services.api_key_create(
            user=obj.user,
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            team=obj.team,
            expires_at=obj.expires_at,
            **{name: getattr(obj, name) for name in LIMIT_FIELDS},
        )
        obj.pk = api_key.pk
        # The only time the key is shown; it is not stored anywhere in plaintext.
        self.message_user(
            request,
            f"New API key (copy it now, it is not shown again): {raw_key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} keys.", messages.SUCCESS)


def _pretty(value) -> str:
    if value in (None, {}, []):
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is written by the application, never edited by hand."""

    list_display = ["created_at", "actor_label", "via", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type", "via"]
    search_fields = ["actor_label", "object_repr", "object_id", "request_id"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor_label",
        "actor",
        "via",
        "remote_addr",
        "request_id",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes_pretty",
        "before_pretty",
        "after_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="changes (field: [before, after])")
    def changes_pretty(self, obj):
        return _pretty(obj.changes)

    @admin.display(description="before")
    def before_pretty(self, obj):
        return _pretty(obj.before)

    @admin.display(description="after")
    def after_pretty(self, obj):
        return _pretty(obj.after)
