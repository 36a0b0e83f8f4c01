import json
import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from waffle.admin import FlagAdmin, SampleAdmin, SwitchAdmin
from waffle.models import Flag, Sample, Switch

from accounts.principal import principal_for_user
from core.admin_base import ReadOnlyAdmin
from core.flags import DESCRIPTIONS
from core.request_context import request_id_from
from providers.adapters.types import RequestValidationError

from . import services
from .decisions import policy_dry_run, request_simulate, simulation_request
from .engine import PolicyError, UnknownModel
from .flags import cost_optimization_percent
from .forms import (
    EXAMPLE_REQUEST,
    PolicyEditorWidget,
    PolicyJSONField,
    SimulationForm,
    json_error_location,
    json_object,
)
from .models import FlagRollback, RoutingPolicy
from .sensitive import sensitive_resolve


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
    conditions = PolicyJSONField(
        widget=PolicyEditorWidget("conditions"),
        help_text="Which requests the policy applies to; all rows must hold. Empty: every "
        "request. docs/policies.md#conditions",
    )
    actions = PolicyJSONField(
        widget=PolicyEditorWidget("actions"),
        help_text="Where matching requests go, and how. Every key has a default: leave a "
        "field empty to keep it. docs/policies.md#actions",
    )

    class Meta:
        model = RoutingPolicy
        fields = ["name", "description", "status", "priority", "conditions", "actions"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["sensitive_values"] = ""
        percent = cost_optimization_percent()
        self.fields["actions"].widget.attrs["data-sample-percent"] = f"{percent:g}"
        self.fields["actions"].help_text += (
            f" Strategies cheapest and balanced order by cost only on the cost_optimization "
            f"sample, now {percent:g} % of requests; on the others they act as priority "
            "(the written order). Admin > Waffle > Samples."
        )

    def _update_errors(self, errors):
        # Model validation names a path (conditions.$or[1].model.$in); say where that is in
        # the text the operator sent.
        if hasattr(errors, "error_dict"):
            for field in ("conditions", "actions"):
                text = self.data.get(field)
                for error in errors.error_dict.get(field, []):
                    where = json_error_location(text, error.message, field)
                    if where and where not in error.message:
                        error.message += where
        super()._update_errors(errors)

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

    change_form_template = "admin/routing/routingpolicy/change_form.html"

    def get_urls(self):
        simulate = path(
            "simulate/",
            self.admin_site.admin_view(self.simulate_view),
            name="routing_routingpolicy_simulate",
        )
        dry_run = path(
            "dry-run/",
            self.admin_site.admin_view(self.dry_run_view),
            name="routing_routingpolicy_dry_run",
        )
        return [simulate, dry_run, *super().get_urls()]

    def render_change_form(self, request, context, *args, **kwargs):
        context["dry_run_url"] = reverse("admin:routing_routingpolicy_dry_run")
        context["dry_run_example"] = json.dumps(EXAMPLE_REQUEST, indent=1)
        return super().render_change_form(request, context, *args, **kwargs)

    def dry_run_view(self, request):
        """The editor's dry run (beside the form): where a request would go under the policy
        as it stands in the form, saved or not. POST form fields: conditions, actions, name,
        priority, policy (the id, for its sensitive values), request (JSON). Answers JSON:
        the decision, or `errors` by field."""
        if request.method != "POST":
            return JsonResponse({"errors": {"__all__": ["POST only"]}}, status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        errors: dict[str, list[str]] = {}
        parsed = {}
        for field in ("conditions", "actions", "request"):
            try:
                parsed[field] = PolicyJSONField().clean(request.POST.get(field, ""))
            except ValidationError as exc:
                errors[field] = exc.messages
        try:
            priority = int(request.POST.get("priority") or 1)
        except ValueError:
            errors["priority"] = ["Enter a whole number."]
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        existing = RoutingPolicy.objects.filter(pk=_uuid_or_none(request.POST.get("policy")))
        secrets = existing.values_list("sensitive_values", flat=True).first() or {}
        try:
            chat_request = simulation_request(parsed["request"])
            result = policy_dry_run(
                principal=principal_for_user(request.user),
                name=request.POST.get("name", ""),
                priority=priority,
                conditions=sensitive_resolve(parsed["conditions"], secrets),
                actions=sensitive_resolve(parsed["actions"], secrets),
                request=chat_request,
                request_id=request_id_from(None),
                headers={},
            )
        except RequestValidationError as exc:
            where = f"{exc.param}: " if exc.param else ""
            return JsonResponse({"errors": {"request": [where + exc.message]}}, status=400)
        except UnknownModel as exc:
            return JsonResponse({"errors": {"request": [f"model: {exc}"]}}, status=400)
        except PolicyError as exc:
            for issue in exc.issues:
                field = issue.path.split(".", 1)[0].split("[", 1)[0]
                errors.setdefault(field, []).append(str(issue))
            return JsonResponse({"errors": errors}, status=400)
        return JsonResponse(result)

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


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


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


@admin.register(FlagRollback)
class FlagRollbackAdmin(ReadOnlyAdmin):
    """The rollback's history, and the page that rolls back or forward (docs/flags.md)."""

    list_display = ["created_at", "actor_label", "rolled_forward_at", "rolled_forward_by"]
    fields = ["created_at", "actor_label", "before", "after", "rolled_forward_at"]
    ordering = ["-created_at"]
    change_list_template = "admin/routing/flagrollback/change_list.html"

    def get_urls(self):
        page = path(
            "run/",
            self.admin_site.admin_view(self.rollback_view),
            name="routing_flagrollback_run",
        )
        return [page, *super().get_urls()]

    def rollback_view(self, request):
        """Current states of every routing feature, with one button to switch them all off
        and one to restore them. Changing them needs the permission to change flags."""
        allowed = request.user.has_perms(
            ["waffle.change_flag", "waffle.change_sample", "waffle.change_switch"]
        )
        if not self.has_view_permission(request):
            raise PermissionDenied
        result = verb = None
        if request.method == "POST":
            if not allowed:
                raise PermissionDenied
            actor = f"{request.user.get_username()} (admin rollback page)"
            if "rollforward" in request.POST:
                verb, result = "Rolled forward", services.routing_rollforward(actor_label=actor)
            else:
                verb, result = "Rolled back", services.routing_rollback(actor_label=actor)
            if result.cache_error:
                self.message_user(
                    request,
                    "Saved in the database, but waffle's cache could not be cleared "
                    f"({result.cache_error}).",
                    messages.WARNING,
                )
        pending = FlagRollback.objects.filter(rolled_forward_at=None).first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Routing rollback",
            "states": _state_rows(services.flag_states()),
            "result": result,
            "verb": verb,
            "pending": pending,
            "allowed": allowed,
        }
        return TemplateResponse(request, "admin/routing/flagrollback/run.html", context)


def _state_rows(states: dict) -> list[dict]:
    rows = []
    for kind, values in states.items():
        for name, value in values.items():
            if kind == "samples":
                shown, on = f"{value:g} % of requests", value > 0
            elif kind == "flags":
                shown = {None: "by rule (groups, percentage)", True: "everyone", False: "no one"}[
                    value
                ]
                on = value is not False
            else:
                shown, on = ("on" if value else "off"), value
            rows.append(
                {
                    "kind": services.SINGULAR[kind],
                    "name": name,
                    "state": shown,
                    "on": on,
                    "what": DESCRIPTIONS.get(name, ""),
                }
            )
    return rows


class _Described:
    """Waffle's list pages with a column saying what each routing object does: three switches
    named intelligent_routing* are easy to confuse in an incident."""

    @admin.display(description="what it does")
    def what_it_does(self, obj):
        return DESCRIPTIONS.get(obj.name, "")

    def get_list_display(self, request):
        return [
            "name",
            "what_it_does",
            *[c for c in super().get_list_display(request) if c not in ("name", "note")],
        ]


for _model, _admin in ((Flag, FlagAdmin), (Sample, SampleAdmin), (Switch, SwitchAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, type(_admin.__name__, (_Described, _admin), {}))
