"""Admin pages of routing economics: model quality (tiers and overrides); the impact preview
and the canary's state live here too. Registered from routing/admin.py."""

from django.contrib import admin

from .quality_models import ModelQuality


@admin.register(ModelQuality)
class ModelQualityAdmin(admin.ModelAdmin):
    """Scores and tiers from routing/quality_data.json; an operator's edit marks the row
    overridden so that `sync_quality` keeps it (docs/policies.md#quality-tiers)."""

    list_display = ["model", "tier", "score", "as_of", "overridden", "tier_basis"]
    list_filter = ["tier", "overridden"]
    search_fields = ["model"]
    fields = ["model", "score", "tier", "overridden", "source", "as_of", "tier_basis"]
    readonly_fields = ["source", "as_of"]

    def save_model(self, request, obj, form, change):
        if {"score", "tier", "model"} & set(form.changed_data):
            obj.overridden = True
        super().save_model(request, obj, form, change)
