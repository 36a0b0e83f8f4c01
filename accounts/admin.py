from django import forms
from django.contrib import admin, messages

from . import services
from .choices import Scope
from .models import ApiKey


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "user", "team", "scopes", "expires_at"]


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
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "user", "team", "scopes", "expires_at"]
        return [
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

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

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
