from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.request_context import request_id_from

from . import services
from .decisions import request_simulate
from .engine import UnknownModel
from .forms import SimulationForm, json_object
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
        return json_object(text, "Must be a JSON object mapping names to values.")

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

    def get_urls(self):
        simulate = path(
            "simulate/",
            self.admin_site.admin_view(self.simulate_view),
            name="routing_routingpolicy_simulate",
        )
        return [simulate, *super().get_urls()]

    def simulate_view(self, request):
        """The "Simulate a request" page: the routing decision for a pasted request, from the
        same `routing.decisions.request_simulate` as POST /api/routing/simulate; no provider
        is called."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = SimulationForm(request.POST or None)
        result = principal = None
        if request.method == "POST" and form.is_valid():
            principal = form.principal(request.user)
            try:
                result = request_simulate(
                    principal=principal,
                    request=form.cleaned_data["chat_request"],
                    request_id=form.cleaned_data["request_id"] or request_id_from(None),
                    headers=form.cleaned_data["headers_json"],
                )
            except UnknownModel as exc:
                form.add_error("request_json", f"model: {exc.message}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Simulate a request",
            "form": form,
            "result": result,
            "principal": principal,
            "decision": _decision_rows(result["decision"]) if result else None,
        }
        return TemplateResponse(request, "admin/routing/routingpolicy/simulate.html", context)

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


def _decision_rows(decision: dict) -> dict:
    """What the dry-run page shows beyond the decision itself: each target's expected cost
    against the baseline, and a link to the matched policy."""
    baseline = decision["baseline"]
    base_cost = baseline["expected_cost"] if baseline else 0.0
    targets = []
    for position, target in enumerate(decision["targets"], 1):
        cost = target["expected_cost"]
        targets.append(
            {
                **target,
                "position": position,
                "vs_baseline": (cost - base_cost) / base_cost * 100 if base_cost else None,
            }
        )
    policy_url = (
        reverse("admin:routing_routingpolicy_change", args=[decision["policy_id"]])
        if decision["policy_id"]
        else None
    )
    return {"targets": targets, "policy_url": policy_url}
