"""Admin pages of routing economics: model quality (tiers and overrides); the impact preview
and the canary's state live here too. Registered from routing/admin.py."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .canary import canary_guard_errors, policy_canary_finish, policy_canary_start
from .choices import CanaryState, PolicyStatus
from .models import CANARY_GUARD_DEFAULTS, PolicyCanary
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


class CanaryStartForm(forms.ModelForm):
    class Meta:
        model = PolicyCanary
        fields = ["policy", "percent", "bake_minutes", "guard"]
        help_texts = {
            "guard": "Overrides of the defaults: "
            + ", ".join(f"{k} {v}" for k, v in CANARY_GUARD_DEFAULTS.items())
            + " (docs/policies.md#canary-activation)."
        }

    def clean(self):
        data = super().clean()
        policy = data.get("policy")
        if policy is not None and policy.status == PolicyStatus.ACTIVE:
            self.add_error("policy", "already active: deactivate it to canary it")
        for message in canary_guard_errors(data.get("guard") or {}):
            self.add_error("guard", message)
        return data


@admin.register(PolicyCanary)
class PolicyCanaryAdmin(admin.ModelAdmin):
    """Policy canaries: start one (Add), watch its state and last comparison, stop it."""

    list_display = [
        "policy",
        "percent",
        "state",
        "started_at",
        "bake_minutes",
        "verdict",
        "decided_at",
        "reason",
    ]
    list_filter = ["state"]
    actions = ["stop"]
    readonly_fields = [
        "policy",
        "percent",
        "bake_minutes",
        "guard",
        "state",
        "started_at",
        "decided_at",
        "reason",
        "figures",
        "started_by",
    ]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = CanaryStartForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    @admin.display(description="last comparison")
    def verdict(self, obj):
        figures = obj.figures or {}
        if not figures:
            return "-"
        parts = [figures.get("verdict", "")]
        for cohort in ("canary", "control"):
            f = figures.get(cohort) or {}
            parts.append(
                f"{cohort}: {f.get('requests', 0)} req, errors {f.get('error_rate')}, "
                f"p95 {f.get('latency_p95_s')} s"
            )
        return "; ".join(parts)

    def save_model(self, request, obj, form, change):
        try:
            started = policy_canary_start(
                policy=obj.policy,
                percent=obj.percent,
                bake_minutes=obj.bake_minutes,
                guard=obj.guard or {},
                started_by=str(request.user),
            )
        except ValidationError as exc:  # raced with another change since the form was valid
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            raise
        obj.pk = started.pk

    @admin.action(description="Stop the selected canaries (policy back to draft)")
    def stop(self, request, queryset):
        for canary in queryset.filter(state=CanaryState.RUNNING).select_related("policy"):
            policy_canary_finish(
                canary=canary, state=CanaryState.STOPPED, reason=f"stopped by {request.user}"
            )
